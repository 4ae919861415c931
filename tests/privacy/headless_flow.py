"""The whole Hearth flow, headless, wired as the desktop app wires it (documents indexed and
searched in child processes, the model in its worker): load the bundled model, index a folder,
ask with documents, chat, export the chat. test_no_egress.py runs it in a network namespace
under strace. Prints one JSON line of what it did."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(docs: str, export_to: str) -> int:
    from engine import network

    network.install("headless flow")
    from app import compose
    from engine.conversation import Saved

    services = compose.build(isolate_documents=True)
    try:
        library = services.documents
        library.create("policies", [docs])
        indexed = list(library.sync("policies"))[-1]
        chat = services.chats.create(
            collections=["policies"], sampling={"temperature": 0.0, "max_tokens": 32}
        )
        asked = [
            e
            for e in services.conversations.send(chat.id, "What does the pelican guard?")
            if isinstance(e, Saved)
        ][-1].message
        services.chats.configure(chat.id, collections=[])
        chatted = [
            e
            for e in services.conversations.send(chat.id, "Thank you. Say goodbye.")
            if isinstance(e, Saved)
        ][-1].message
        from engine import chat_export

        chat_export.write(services.chats, chat.id, Path(export_to))  # .json or .md by suffix
        export = services.chats.export(chat.id)
        print(
            json.dumps(
                {
                    "indexed": indexed.indexed,
                    "sources": [s["file"] for s in asked.sources],
                    "asked": asked.status,
                    "chatted": chatted.status,
                    "messages": len(export["messages"]),
                    "recorded": len(network.read_log()),
                }
            )
        )
    finally:
        services.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
