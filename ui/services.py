"""What the window needs from the app's services. app/compose.py builds them (its `Services`
matches this shape); ui/ declares the shape so that it never imports app/, and mypy checks the
two agree where app/gui.py hands them to the window."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from engine.api.server import ApiServer
    from engine.chats import ChatStore
    from engine.conversation import Conversations
    from engine.documents.library import Documents
    from engine.erase import Area
    from engine.paths import DataPaths
    from engine.policy import Policy
    from engine.runtime import ModelRuntime
    from engine.settings import Settings


class Services(Protocol):
    paths: DataPaths
    settings: Settings
    runtime: ModelRuntime
    policy: Policy | None
    started: float  # "connections since start" counts from here
    chats_problem: str | None  # why the saved chat history could not be opened

    @property
    def documents(self) -> Documents: ...

    @property
    def chats(self) -> ChatStore: ...

    @property
    def conversations(self) -> Conversations: ...

    @property
    def api_running(self) -> bool: ...

    def api_server(self, host: str | None = None, port: int | None = None) -> ApiServer: ...

    def erase_all_data(self) -> list[Area]: ...

    def close(self) -> None: ...
