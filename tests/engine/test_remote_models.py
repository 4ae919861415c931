"""Models on OpenAI-compatible servers (engine/remote), against real servers on loopback:
llama-cpp-python's own server on the bundled model, and Hearth's own API as an upstream.
Faults are real: the server SIGKILLed mid-answer, a wrong token, a proxy that goes silent,
nothing listening. Every failure must end the turn with a clear message, never hang it.

Tokens live in keyrings.alt's file keyring, chosen through PYTHON_KEYRING_BACKEND as a user
would; this machine has no desktop keyring service."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import models, network, remote
from engine import paths as paths_module
from engine.errors import (
    ModelNotFound,
    NetworkBlocked,
    ServerAuthFailed,
    ServerError,
    ServerNotAllowed,
)
from engine.paths import DataPaths
from engine.runtime import ChatMessage, ChatRequest, Done, ModelRuntime, SamplingParams, TextPiece
from engine.settings import Settings
from tests.model_servers import FaultProxy, LlamaServer, free_port

QUESTION = "Name three colours of the rainbow."
GREEDY = SamplingParams(temperature=0.0, max_tokens=24, seed=1)


@pytest.fixture(scope="module")
def llama(bundled_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with LlamaServer(bundled_gguf, api_key="team-secret-1", log=log) as server:
        yield server


@pytest.fixture
def home() -> DataPaths:
    return paths_module.resolve().ensure()


def settings_for(*urls: str, **values: object) -> Settings:
    settings = Settings.load(None)
    settings.set("remote.servers", list(urls))
    for key, value in values.items():
        settings.set(key.replace("__", "."), value)
    return settings


def use(settings: Settings, url: str, token: str | None) -> remote.Server:
    server = remote.servers.parse(url)
    remote.servers.set_token(server, token)
    return server


def answer(runtime: ModelRuntime, params: object, text: str = QUESTION) -> tuple[str, Done]:
    pieces: list[str] = []
    done = None
    request = ChatRequest((ChatMessage("user", text),), GREEDY)
    for event in runtime.stream_chat(request, model=params):  # type: ignore[arg-type]
        if isinstance(event, TextPiece):
            pieces.append(event.text)
        elif isinstance(event, Done):
            done = event
    assert done is not None
    return "".join(pieces), done


def test_a_server_model_answers_as_the_same_model_does_locally(
    llama: LlamaServer, keyring_file: None, home: DataPaths, bundled_gguf: Path
) -> None:
    settings = settings_for(llama.url)
    use(settings, llama.url, "team-secret-1")
    [status] = remote.refresh(settings, home)
    assert status.problem is None and [m.model for m in status.models] == ["smollm2"]
    model_id = f"remote:127.0.0.1:{llama.port}/smollm2"
    assert [m.id for m in status.models] == [model_id]

    params = models.load_params(model_id, settings, home)
    assert params.remote and params.server == llama.url
    with ModelRuntime(
        admit=models.gate(settings, home), remote=remote.RemoteModels(settings)
    ) as rt:
        loaded = rt.load(params)
        assert loaded.file["remote"] and rt.worker_pid is None  # no local worker for it
        text, done = answer(rt, params)
        assert text.strip() and done.stats.stop_reason in ("eos", "length")
        assert done.stats.generated_tokens > 0
        # The same model, the same greedy sampling, here: the same words.
        local = models.load_params(models.BUNDLED_CHAT.id, settings, home, context_length=2048)
        local_text, _ = answer(rt, local)
        assert rt.worker_pid is not None
    assert text == local_text


def test_stop_ends_a_remote_answer_at_once_and_leaves_nothing_running(
    llama: LlamaServer, keyring_file: None, home: DataPaths
) -> None:
    settings = settings_for(llama.url)
    use(settings, llama.url, "team-secret-1")
    params = models.load_params(f"remote:127.0.0.1:{llama.port}/smollm2", settings, home)
    rt = ModelRuntime(admit=models.gate(settings, home), remote=remote.RemoteModels(settings))
    request = ChatRequest(
        (ChatMessage("user", "Tell a very long story about a lighthouse keeper."),),
        SamplingParams(temperature=0.0, max_tokens=1500),
    )
    events = rt.stream_chat(request, model=params)
    first = next(e for e in events if isinstance(e, TextPiece))
    assert first.text
    t0 = time.perf_counter()
    rt.stop()
    rest = list(events)
    assert time.perf_counter() - t0 < 5.0  # not the 1500 tokens asked for; loose for load
    assert isinstance(rest[-1], Done) and rest[-1].stats.stop_reason == "cancelled"
    rt.close()


def test_a_wrong_or_missing_token_is_said_plainly(
    llama: LlamaServer, keyring_file: None, home: DataPaths
) -> None:
    settings = settings_for(llama.url)
    params = models.load_params(f"remote:127.0.0.1:{llama.port}/smollm2", settings, home)
    rt = ModelRuntime(admit=models.gate(settings, home), remote=remote.RemoteModels(settings))
    for token in (None, "not-the-token"):
        use(settings, llama.url, token)
        with pytest.raises(ServerAuthFailed) as err:
            rt.load(params)
        assert "refused Hearth's token (HTTP 401)" in err.value.user_message
    [status] = remote.refresh(settings, home)
    assert status.problem is not None and "HTTP 401" in status.problem
    rt.close()


def test_the_token_is_kept_in_the_keyring_not_in_settings_or_logs(
    llama: LlamaServer, keyring_file: None, home: DataPaths, tmp_path: Path
) -> None:
    settings = Settings.load(home.settings_file)
    settings.set("remote.servers", [llama.url])
    settings.save()
    server = use(settings, llama.url, "team-secret-1")
    assert remote.servers.token(server) == "team-secret-1"
    remote.refresh(settings, home)
    written = [p for p in home.config.parent.rglob("*") if p.is_file()]
    assert home.settings_file in written
    assert not [p for p in written if b"team-secret-1" in p.read_bytes()]


def test_a_server_killed_mid_answer_ends_the_turn_keeping_what_arrived(
    bundled_gguf: Path, keyring_file: None, home: DataPaths
) -> None:
    with LlamaServer(bundled_gguf) as doomed:
        settings = settings_for(doomed.url)
        params = models.load_params(f"remote:127.0.0.1:{doomed.port}/smollm2", settings, home)
        rt = ModelRuntime(admit=models.gate(settings, home), remote=remote.RemoteModels(settings))
        request = ChatRequest(
            (ChatMessage("user", "Tell a very long story about a lighthouse keeper."),),
            SamplingParams(temperature=0.0, max_tokens=1500),
        )
        got: list[str] = []
        with pytest.raises(ServerError) as err:
            for event in rt.stream_chat(request, model=params):
                if isinstance(event, TextPiece):
                    got.append(event.text)
                    if len(got) == 3:
                        doomed.kill()
        rt.close()
    assert len(got) >= 3
    assert "dropped in the middle of the answer; what arrived is kept" in err.value.user_message


def test_a_server_that_goes_silent_ends_the_turn_after_the_timeout(
    llama: LlamaServer, keyring_file: None, home: DataPaths
) -> None:
    with FaultProxy(llama.port, delay_s=3.0) as proxy:
        settings = settings_for(proxy.url(), remote__timeout_s=1.0)
        use(settings, proxy.url(), "team-secret-1")
        params = remote.load_params(settings, home, f"remote:127.0.0.1:{proxy.port}/smollm2")
        rt = ModelRuntime(admit=models.gate(settings, home), remote=remote.RemoteModels(settings))
        t0 = time.perf_counter()
        with pytest.raises(ServerError) as err:
            answer(rt, params)
        assert time.perf_counter() - t0 < 10
        rt.close()
    assert "took too long" in err.value.user_message or "sent nothing for 1 s" in (
        err.value.user_message
    )


def test_nothing_listening_is_said_plainly(keyring_file: None, home: DataPaths) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    settings = settings_for(url)
    rt = ModelRuntime(admit=models.gate(settings, home), remote=remote.RemoteModels(settings))
    params = remote.load_params(settings, home, f"remote:127.0.0.1:{url.split(':')[2][:-3]}/m")
    with pytest.raises(ServerError) as err:
        rt.load(params)
    assert "could not reach the model server" in err.value.user_message


def test_an_unknown_model_lists_what_the_server_offers(
    llama: LlamaServer, keyring_file: None, home: DataPaths
) -> None:
    settings = settings_for(llama.url)
    use(settings, llama.url, "team-secret-1")
    rt = ModelRuntime(admit=models.gate(settings, home), remote=remote.RemoteModels(settings))
    params = remote.load_params(settings, home, f"remote:127.0.0.1:{llama.port}/gpt-9")
    with pytest.raises(ModelNotFound) as err:
        rt.load(params)
    assert "does not offer “gpt-9” (it offers: smollm2)" in err.value.user_message


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"remote__allowed": False}, "turned off"),
        ({"privacy__offline_mode": True}, "Offline mode is on"),
        ({"remote__allowed_hosts": ["gpu.example.org"]}, "not on the list of allowed hosts"),
    ],
)
def test_settings_and_policy_refuse_before_any_connection(
    llama: LlamaServer, home: DataPaths, values: dict[str, object], says: str
) -> None:
    with FaultProxy(llama.port) as proxy:
        settings = settings_for(proxy.url())
        model = f"remote:127.0.0.1:{proxy.port}/smollm2"
        params = remote.load_params(settings, home, model)
        for key, value in values.items():
            settings.set(key.replace("__", "."), value)
        rt = ModelRuntime(admit=models.gate(settings, home), remote=remote.RemoteModels(settings))
        with pytest.raises(ServerNotAllowed) as err:
            rt.load(params)
        assert says in err.value.user_message
        with pytest.raises(ServerNotAllowed):
            models.load_params(model, settings, home)
        [status] = remote.refresh(settings, home)
        assert status.problem is not None and says in status.problem
        assert proxy.connections == 0
        rt.close()


def test_a_policy_lock_is_named_in_the_refusal(llama: LlamaServer, home: DataPaths) -> None:
    reason = "Set by Example Corp IT (ticket 42)"
    settings = Settings.load(None, locks={"remote.allowed": (False, reason)})
    settings.set("remote.servers", [llama.url])
    with pytest.raises(ServerNotAllowed) as err:
        models.load_params(f"remote:127.0.0.1:{llama.port}/smollm2", settings, home)
    assert reason in err.value.user_message


def test_a_server_that_is_not_configured_is_refused(llama: LlamaServer, home: DataPaths) -> None:
    settings = settings_for()  # none configured
    with pytest.raises(ModelNotFound):
        models.load_params(f"remote:127.0.0.1:{llama.port}/smollm2", settings, home)
    # LoadParams built by hand do not get round it: the runtime checks at each request.
    params = remote.load_params(settings_for(llama.url), home, f"remote:127.0.0.1:{llama.port}/x")
    rt = ModelRuntime(admit=models.gate(settings, home), remote=remote.RemoteModels(settings))
    with pytest.raises(ServerNotAllowed):
        rt.load(params)


# -- the network guard -------------------------------------------------------------------------


def test_allow_hosts_lets_a_thread_reach_only_the_named_hosts(home: DataPaths) -> None:
    """The hook's decision for addresses off this machine. The hook is called as Python's
    audit machinery would call it, so no packet is ever sent."""
    since = time.time()
    sock = socket.socket()
    outcome: dict[str, object] = {}

    def server_thread() -> None:
        with network.allow_hosts("model server 192.0.2.7:8080", ["192.0.2.7"]):
            network._hook("socket.connect", (sock, ("192.0.2.7", 8080)))
            outcome["named"] = "passed"
            try:
                network._hook("socket.connect", (sock, ("198.51.100.9", 443)))
            except NetworkBlocked:
                outcome["other"] = "refused"
            try:
                network._hook("socket.getaddrinfo", ("tracker.example.com", 443, 0, 0, 0, 0))
            except NetworkBlocked:
                outcome["lookup"] = "refused"

    t = threading.Thread(target=server_thread, name="hearth-test-guard")
    t.start()
    t.join()
    with pytest.raises(NetworkBlocked):  # another thread, at the same time, is not let out
        network._hook("socket.connect", (sock, ("192.0.2.7", 8080)))
    sock.close()
    assert outcome == {"named": "passed", "other": "refused", "lookup": "refused"}
    log = network.read_log(since=since)
    assert [(a.host, a.allowed) for a in log] == [
        ("192.0.2.7", True),
        ("198.51.100.9", False),
        ("tracker.example.com", False),
        ("192.0.2.7", False),
    ]
    assert log[0].purpose == "model server 192.0.2.7:8080"


# -- Hearth's own API as the upstream --------------------------------------------------------


def test_another_hearths_api_serves_as_the_model_server(
    keyring_file: None, home: DataPaths, tmp_path: Path
) -> None:
    from engine.api import token as api_token
    from engine.api.backend import Backend
    from engine.api.server import ApiServer

    upstream_paths = paths_module.resolve({"HEARTH_HOME": str(tmp_path / "gpu-box")}).ensure()
    upstream_settings = Settings.load(None)
    upstream_runtime = ModelRuntime(admit=models.gate(upstream_settings, upstream_paths))
    from engine.documents.library import DocumentLibrary

    library = DocumentLibrary(upstream_paths.data / "documents", upstream_settings)
    backend = Backend(upstream_runtime, upstream_settings, upstream_paths, lambda: library)
    api = ApiServer(backend, upstream_settings, upstream_paths, port=0)
    api.start()
    try:
        url = f"http://127.0.0.1:{api.port}/v1"
        settings = settings_for(url)
        use(settings, url, api_token.read_or_create(upstream_paths))
        [status] = remote.refresh(settings, home)
        assert status.problem is None
        model = f"remote:127.0.0.1:{api.port}/{models.BUNDLED_CHAT.id}"
        assert model in [m.id for m in status.models]
        rt = ModelRuntime(admit=models.gate(settings, home), remote=remote.RemoteModels(settings))
        text, done = answer(rt, models.load_params(model, settings, home))
        rt.close()
        assert text.strip() and done.stats.generated_tokens > 0
    finally:
        api.stop()
        upstream_runtime.close()
        library.close()


# -- the rest of Hearth on a server model ------------------------------------------------------


def test_a_chat_with_documents_answers_from_local_passages_on_a_server_model(
    llama: LlamaServer, keyring_file: None, home: DataPaths, tmp_path: Path
) -> None:
    """Retrieval stays here, on the laptop's collection; the server writes the answer; the
    chat, its sources and the audit trail are saved as for a local model."""
    from engine import answer_audit
    from engine.chats import ChatStore
    from engine.conversation import Conversations
    from engine.documents.events import Retrieved
    from engine.documents.library import DocumentLibrary
    from tests import doc_files

    docs = tmp_path / "docs"
    docs.mkdir()
    doc_files.make_pdf(
        docs / "badges.pdf",
        ["Visitors. Every visitor badge must be returned to the front desk by 6 pm."],
    )
    settings = settings_for(llama.url)
    use(settings, llama.url, "team-secret-1")
    library = DocumentLibrary(home.data / "documents", settings)
    library.create("Office", [str(docs)])
    list(library.sync("Office"))
    store = ChatStore(tmp_path / "chats.sqlite")
    rt = ModelRuntime(admit=models.gate(settings, home), remote=remote.RemoteModels(settings))
    model = f"remote:127.0.0.1:{llama.port}/smollm2"
    try:
        convo = Conversations(store, rt, settings, home, lambda: library)
        chat = store.create(
            model=model, sampling={"temperature": 0.0, "max_tokens": 32}, collections=["Office"]
        )
        events = list(convo.send(chat.id, "By when must visitor badges be returned?"))
    finally:
        rt.close()
        library.close()
    retrieved = next(e for e in events if isinstance(e, Retrieved))
    assert retrieved.sources and retrieved.sources[0].path.endswith("badges.pdf")
    final = events[-1].message
    assert final.status == "done" and final.content.strip() and final.sources
    assert f'"model": "{model}"' in json.dumps(answer_audit.trail(home).records()[-1])
    store.close()


def test_a_json_schema_answer_from_a_server_matches_the_schema(
    llama: LlamaServer, keyring_file: None, home: DataPaths
) -> None:
    """llama-cpp-python's server refuses OpenAI's json_schema form; Hearth then sends its
    json_object-with-schema form, and checks the whole answer against the schema."""
    schema = {
        "type": "object",
        "properties": {"colour": {"type": "string", "enum": ["red", "green", "blue"]}},
        "required": ["colour"],
        "additionalProperties": False,
    }
    settings = settings_for(llama.url)
    use(settings, llama.url, "team-secret-1")
    params = models.load_params(f"remote:127.0.0.1:{llama.port}/smollm2", settings, home)
    rt = ModelRuntime(admit=models.gate(settings, home), remote=remote.RemoteModels(settings))
    sampling = SamplingParams(temperature=0.0, max_tokens=40, json_schema=json.dumps(schema))
    request = ChatRequest((ChatMessage("user", "Pick a colour of the sky."),), sampling)
    events = list(rt.stream_chat(request, model=params))
    rt.close()
    text = "".join(e.text for e in events if isinstance(e, TextPiece))
    assert json.loads(text)["colour"] in ("red", "green", "blue")


def test_a_busy_server_says_when_to_try_again(keyring_file: None, home: DataPaths) -> None:
    """A server at its limit (vLLM and gateways answer 429 with Retry-After)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Busy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._busy()

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._busy()

        def _busy(self) -> None:
            body = b'{"error": {"message": "rate limit reached", "type": "rate_limit"}}'
            self.send_response(429)
            self.send_header("Retry-After", "30")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    serving = threading.Thread(target=httpd.serve_forever, name="busy-server", daemon=True)
    serving.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_port}/v1"
        settings = settings_for(url)
        params = remote.load_params(settings, home, f"remote:127.0.0.1:{httpd.server_port}/m")
        rt = ModelRuntime(admit=models.gate(settings, home), remote=remote.RemoteModels(settings))
        with pytest.raises(ServerError) as err:
            answer(rt, params)
        rt.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert "busy (HTTP 429" in err.value.user_message and "30 s" in err.value.user_message


def test_hearths_api_serves_a_server_model_to_its_own_clients(
    llama: LlamaServer, keyring_file: None, home: DataPaths
) -> None:
    """A tool on this laptop speaks to Hearth's local API; Hearth passes the answer on from
    the team's server, with its token, which the tool never sees."""
    import openai

    from engine.api import token as api_token
    from engine.api.backend import Backend
    from engine.api.server import ApiServer
    from engine.documents.library import DocumentLibrary

    settings = settings_for(llama.url)
    use(settings, llama.url, "team-secret-1")
    remote.refresh(settings, home)
    library = DocumentLibrary(home.data / "documents", settings)
    rt = ModelRuntime(admit=models.gate(settings, home), remote=remote.RemoteModels(settings))
    api = ApiServer(Backend(rt, settings, home, lambda: library), settings, home, port=0)
    api.start()
    model = f"remote:127.0.0.1:{llama.port}/smollm2"
    try:
        with openai.OpenAI(
            base_url=api.url, api_key=api_token.read_or_create(home), max_retries=0, timeout=120
        ) as client:
            assert model in [m.id for m in client.models.list()]
            stream = client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": QUESTION}],
                max_tokens=16,
                temperature=0,
                stream=True,
            )
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    finally:
        api.stop()
        rt.close()
        library.close()
    assert text.strip()


def test_tls_is_verified_and_an_organisations_ca_can_be_added(
    llama: LlamaServer, keyring_file: None, home: DataPaths, tmp_path: Path
) -> None:
    """Behind a TLS proxy whose certificate an internal CA signed: refused (nothing sent)
    until that CA's file is named in remote.ca_bundle, then answered."""
    from tests.model_servers import TLSProxy, make_tls_files

    ca, cert, key = make_tls_files(tmp_path)
    with TLSProxy(llama.port, cert_file=cert, key_file=key) as proxy:
        settings = settings_for(proxy.url())
        use(settings, proxy.url(), "team-secret-1")
        [status] = remote.refresh(settings, home)
        assert status.problem is not None and "could not be verified" in status.problem
        assert "remote.ca_bundle" in status.problem
        settings.set("remote.ca_bundle", str(ca))
        [status] = remote.refresh(settings, home)
        assert status.problem is None and status.models
        rt = ModelRuntime(admit=models.gate(settings, home), remote=remote.RemoteModels(settings))
        text, _ = answer(rt, models.load_params(status.models[0].id, settings, home))
        rt.close()
    assert text.strip()
