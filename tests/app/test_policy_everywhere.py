"""A model outside the machine policy's allow-list is refused by every way in: the CLI (ask,
chat, serve), the API, a stored chat's turn, a model pack, and the runtime itself when handed
parameters built by hand. Each case also runs once with the model allowed, so a refusal for
some other reason cannot pass for the policy's."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import models
from engine import paths as paths_module
from engine.chats import ChatStore
from engine.conversation import Conversations
from engine.errors import ModelNotAllowed
from engine.files import sha256_file
from engine.runtime import ChatMessage, ChatRequest, LoadParams, ModelRuntime, SamplingParams
from engine.settings import Settings
from tests.runtimes import new_runtime

OTHER_MODEL = "0" * 64  # the only checksum the policy allows: not the bundled model's
REFUSED = "policy does not allow"


def policy_file(folder: Path, allowed: list[str]) -> Path:
    path = folder / "policy.json"
    path.write_text(
        json.dumps(
            {
                "reason": "Set by the test's IT department",
                "settings": {"models.allowed_sha256": allowed},
            }
        )
    )
    return path


def hearth(policy: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HEARTH_POLICY=str(policy))
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        input=stdin,
    )


@pytest.fixture(scope="module")
def bundled_sha(bundled_gguf: Path) -> str:
    return sha256_file(bundled_gguf)


def under_policy(allowed: list[str]) -> Settings:
    return Settings.load(None, locks={"models.allowed_sha256": (allowed, "IT")})


def test_the_cli_refuses_a_model_outside_the_list(
    tmp_path: Path, bundled_gguf: Path, bundled_sha: str
) -> None:
    refused = policy_file(tmp_path, [OTHER_MODEL])
    for args in (
        ["ask", "Hi", "--max-tokens", "2"],
        ["ask", "Hi", "--max-tokens", "2", "--model", str(bundled_gguf)],
        ["chat"],
        ["serve", "--port", "0"],
    ):
        result = hearth(refused, *args, stdin="Hi\n")
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert REFUSED in result.stderr, (args, result.stderr)
    allowed = policy_file(tmp_path, [bundled_sha])
    result = hearth(allowed, "ask", "Hi", "--max-tokens", "2")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("allowed", [False, True])
def test_the_api_refuses_a_model_outside_the_list(allowed: bool, bundled_sha: str) -> None:
    from engine.api import token
    from engine.api.backend import Backend
    from engine.api.server import ApiServer

    paths = paths_module.resolve().ensure()
    settings = under_policy([bundled_sha if allowed else OTHER_MODEL])
    runtime = ModelRuntime(admit=models.gate(settings, paths))
    server = ApiServer(Backend(runtime, settings, paths, lambda: None), settings, paths, port=0)
    server.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        body = json.dumps(
            {
                "model": models.BUNDLED_CHAT.id,
                "max_tokens": 2,
                "messages": [{"role": "user", "content": "Hi"}],
            }
        )
        conn.request(
            "POST",
            "/v1/chat/completions",
            body=body,
            headers={
                "Authorization": f"Bearer {token.read_or_create(paths)}",
                "Content-Type": "application/json",
            },
        )
        response = conn.getresponse()
        answer = json.loads(response.read())
        conn.close()
    finally:
        server.stop()
        runtime.close()
    if allowed:
        assert response.status == 200, answer
    else:
        assert response.status == 403 and answer["error"]["code"] == "model_not_allowed"
        assert runtime.worker_pid is None  # refused before the worker was started


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChatStore]:
    s = ChatStore(tmp_path / "chats.sqlite")
    yield s
    s.close()


@pytest.mark.parametrize("allowed", [False, True])
def test_a_chat_turn_refuses_a_model_outside_the_list(
    allowed: bool, store: ChatStore, bundled_sha: str
) -> None:
    paths = paths_module.resolve().ensure()
    settings = under_policy([bundled_sha if allowed else OTHER_MODEL])
    convo = Conversations(
        store, ModelRuntime(admit=models.gate(settings, paths)), settings, paths, lambda: None
    )
    chat = store.create()
    try:
        if allowed:
            events = list(convo.send(chat.id, "Hi"))
            assert events
        else:
            with pytest.raises(ModelNotAllowed, match=REFUSED):
                list(convo.send(chat.id, "Hi"))
            assert store.messages(chat.id) == []  # refused before the question was saved
    finally:
        convo.runtime.close()


def test_the_runtime_refuses_hand_built_parameters_outside_the_list(
    bundled_gguf: Path, bundled_sha: str
) -> None:
    """The caller that forgets `models.load_params` is held to the policy all the same, for a
    load and for a request that names its model."""
    hand_built = LoadParams(str(bundled_gguf), context_length=512)
    request = ChatRequest((ChatMessage("user", "Hi"),), SamplingParams(max_tokens=2))
    with new_runtime(settings=under_policy([OTHER_MODEL])) as runtime:
        with pytest.raises(ModelNotAllowed, match=REFUSED):
            runtime.load(hand_built)
        with pytest.raises(ModelNotAllowed, match=REFUSED):
            list(runtime.stream_chat(request, model=hand_built))
        assert runtime.loaded is None and runtime.worker_pid is None
    with new_runtime(settings=under_policy([bundled_sha])) as runtime:
        assert runtime.load(hand_built).params == hand_built


def test_a_pack_with_a_model_outside_the_list_installs_nothing(
    tmp_path: Path, bundled_gguf: Path
) -> None:
    from tests.gguf_tools import with_string_metadata

    office = paths_module.resolve({"HEARTH_HOME": str(tmp_path / "office")}).ensure()
    site = paths_module.resolve({"HEARTH_HOME": str(tmp_path / "site")}).ensure()
    model = with_string_metadata(bundled_gguf, tmp_path / "team.gguf", "general.name", "Team")
    *_, done = models.import_model(model, office)
    assert isinstance(done, models.Imported)
    key = models.new_pack_key()
    *_, exported = models.export_pack([done.model.id], tmp_path / "pack", office, key)
    assert isinstance(exported, models.PackExported)
    public = models.pack_public_key(key)
    with pytest.raises(ModelNotAllowed, match=REFUSED):
        list(models.import_pack(tmp_path / "pack", site, under_policy([OTHER_MODEL]), [public]))
    assert [p.name for p in site.models.glob("*.gguf")] == []
    *_, imported = models.import_pack(
        tmp_path / "pack", site, under_policy([sha256_file(model)]), [public]
    )
    assert isinstance(imported, models.PackImported) and len(imported.installed) == 1
