"""The model runtime: a worker process that owns llama.cpp, and the client that streams from it."""

from engine.runtime.client import LoadedModel, ModelRuntime
from engine.runtime.events import Done, Event, GenerationStats, Notice, TextPiece
from engine.runtime.params import ChatMessage, ChatRequest, LoadParams, SamplingParams

__all__ = [
    "ChatMessage",
    "ChatRequest",
    "Done",
    "Event",
    "GenerationStats",
    "LoadParams",
    "LoadedModel",
    "ModelRuntime",
    "Notice",
    "SamplingParams",
    "TextPiece",
]
