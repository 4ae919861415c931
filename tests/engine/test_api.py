"""The local API, driven by the official `openai` client over loopback, against the real
bundled model, the real embedder, a real chromadb collection of real PDF and DOCX files."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openai
import psutil
import pydantic
import pytest

from engine import models
from engine import paths as paths_module
from engine.api import token
from engine.api.audit import AuditLog
from engine.api.backend import Backend
from engine.api.gate import Gate
from engine.api.protocol import ApiError
from engine.api.server import ApiServer, ApiServerError
from engine.documents.library import DocumentLibrary
from engine.errors import Cancelled
from engine.paths import DataPaths
from engine.runtime import ModelRuntime
from engine.settings import Settings
from tests import doc_files

CHAT = models.BUNDLED_CHAT.id
EMBED = models.BUNDLED_EMBEDDER.id
FACT = "The vault code word is PELICAN and it is changed every Tuesday."


@dataclass
class Api:
    server: ApiServer
    runtime: ModelRuntime
    library: DocumentLibrary
    paths: DataPaths
    settings: Settings

    @property
    def token(self) -> str:
        return token.read_or_create(self.paths)

    def client(self, key: str | None = None, **kw: Any) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.server.url, api_key=key or self.token, max_retries=0, timeout=120, **kw
        )

    def raw(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    home = tmp_path_factory.mktemp("api-home")
    data_paths = paths_module.resolve({"HEARTH_HOME": str(home)}).ensure()
    settings = Settings.load(None)
    docs = home / "docs"
    docs.mkdir()
    doc_files.make_pdf(
        docs / "security.pdf",
        [
            "Quarterly report for the board. Revenue grew by nine percent in the north.",
            f"Security. {FACT} The facilities manager keeps the record.",
        ],
    )
    doc_files.make_docx(
        docs / "policy.docx",
        [("Remote work", ["Employees may work remotely two days per week."])],
        page_break_between=False,
    )
    library = DocumentLibrary(data_paths.data / "documents", settings)
    library.create("Office", [str(docs)])
    list(library.sync("Office"))
    runtime = ModelRuntime(admit=models.gate(settings, data_paths))
    runtime.load(models.load_params(CHAT, settings, data_paths))  # the worker starts now
    server = ApiServer(
        Backend(runtime, settings, data_paths, lambda: library), settings, data_paths, port=0
    )
    server.start()
    yield Api(server, runtime, library, data_paths, settings)
    server.stop()
    runtime.close()


@pytest.fixture
def client(api: Api) -> Iterator[openai.OpenAI]:
    c = api.client()
    yield c
    c.close()  # its keep-alive connections would keep server threads alive


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# -- chat and completions ---------------------------------------------------------------------


def test_chat_streams_the_same_answer_it_gives_whole(client: openai.OpenAI) -> None:
    question = ask("What is the capital of France? Answer in one word.")
    whole = client.chat.completions.create(
        model=CHAT, messages=question, temperature=0, max_tokens=24
    )
    assert whole.object == "chat.completion" and whole.model == CHAT
    text = whole.choices[0].message.content or ""
    assert "Paris" in text
    assert whole.choices[0].finish_reason == "stop"
    assert whole.usage is not None and whole.usage.prompt_tokens > 5
    assert whole.usage.completion_tokens > 0

    chunks = list(
        client.chat.completions.create(
            model=CHAT,
            messages=question,
            temperature=0,
            max_tokens=24,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and not any(finishes[:-1])
    assert chunks[-1].usage is not None and not chunks[-1].choices
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_max_tokens_ends_with_length(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model=CHAT, messages=ask("Tell me a long story."), max_tokens=5, temperature=0
    )
    assert out.choices[0].finish_reason == "length"
    assert out.usage is not None and out.usage.completion_tokens == 5


def test_completions_continue_the_raw_prompt(api: Api, client: openai.OpenAI) -> None:
    prompt = "The capital of France is"
    out = client.completions.create(model=CHAT, prompt=prompt, max_tokens=8, temperature=0)
    assert out.object == "text_completion"
    # no chat template around it: the prompt is its own handful of tokens
    assert out.usage is not None and out.usage.prompt_tokens <= 8
    assert "Paris" in out.choices[0].text
    streamed = "".join(
        c.choices[0].text
        for c in client.completions.create(
            model=CHAT, prompt=prompt, max_tokens=8, temperature=0, stream=True
        )
    )
    assert streamed == out.choices[0].text


def test_parameters_it_cannot_honour_are_refused_by_name(client: openai.OpenAI) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=CHAT, messages=ask("hi"), tools=[tool])
    assert err.value.body["param"] == "tools"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=CHAT, messages=ask("hi"), n=2)
    assert err.value.body["param"] == "n"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=CHAT, messages=ask("hi"), temperature=7)
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-4o", messages=ask("hi"))
    assert "GET /v1/models" in str(err.value)
    with pytest.raises(openai.NotFoundError):  # a path is not a model id
        client.chat.completions.create(model=str(models.BUNDLED_CHAT.path()), messages=ask("hi"))


def test_a_prompt_longer_than_the_context_is_a_400(api: Api, client: openai.OpenAI) -> None:
    long = "word " * 6000  # the default context is 4096 tokens
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=CHAT, messages=ask(long), max_tokens=4)
    assert err.value.body["code"] == "context_length_exceeded"  # type: ignore[index]


# -- structured output -------------------------------------------------------------------------


class Person(pydantic.BaseModel):
    name: str = pydantic.Field(max_length=24)
    age: int = pydantic.Field(ge=0, le=150)


def test_the_clients_parse_helper_gets_the_shape_it_asked_for(client: openai.OpenAI) -> None:
    """`parse` sends a strict json_schema response_format made from a pydantic model; the
    grammar holds even the sampled answers of a 135M model to it."""
    question = ask("Bob is 42 years old. Give his name and age.")
    for seed in (1, 2, 3):
        out = client.chat.completions.parse(
            model=CHAT,
            messages=question,
            response_format=Person,
            temperature=0.9,
            seed=seed,
            max_tokens=120,
        )
        person = out.choices[0].message.parsed
        assert isinstance(person, Person), out.choices[0].message.content
    greedy = client.chat.completions.parse(
        model=CHAT, messages=question, response_format=Person, temperature=0, max_tokens=120
    )
    assert greedy.choices[0].message.parsed == Person(name="Bob", age=42)


def test_json_object_mode_streams_one_object(client: openai.OpenAI) -> None:
    chunks = client.chat.completions.create(
        model=CHAT,
        messages=ask("List three fruits and their colours."),
        temperature=0,
        max_tokens=200,
        stream=True,
        response_format={"type": "json_object"},
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert isinstance(json.loads(text), dict)


def test_completions_take_llama_cpp_servers_json_schema_field(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"colour": {"enum": ["red", "green", "blue"]}},
        "required": ["colour"],
        "additionalProperties": False,
    }
    out = client.completions.create(
        model=CHAT,
        prompt="The sky, as JSON:",
        max_tokens=30,
        temperature=0,
        extra_body={"json_schema": schema},
    )
    assert json.loads(out.choices[0].text)["colour"] in ("red", "green", "blue")


def test_unusable_schemas_are_a_400_and_nothing_is_fetched(client: openai.OpenAI) -> None:
    def refused(fmt: dict[str, Any], model: str = CHAT, **kw: Any) -> dict[str, Any]:
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(
                model=model, messages=ask("hi"), max_tokens=4, response_format=fmt, **kw
            )  # type: ignore[arg-type]
        body: dict[str, Any] = err.value.body  # type: ignore[assignment]
        assert body["param"] == "response_format"
        return body

    remote = {
        "type": "json_schema",
        "json_schema": {"name": "x", "schema": {"$ref": "https://schemas.example.com/person.json"}},
    }
    assert "refers outside itself" in refused(remote)["message"]
    assert (
        refused(
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "strnig"}}}
        )["code"]
        == "invalid_json_schema"
    )
    # refused by llama.cpp's limits, found in the worker: still a 400, and it keeps serving
    assert (
        refused(
            {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "string", "maxLength": 20000}},
            }
        )["code"]
        == "invalid_json_schema"
    )
    refused({"type": "xml"})
    refused({"type": "json_object"}, model="docs/Office", extra_body={"documents_only": True})
    out = client.chat.completions.create(model=CHAT, messages=ask("Hi"), max_tokens=4)
    assert out.choices[0].finish_reason in ("stop", "length")


# -- embeddings ------------------------------------------------------------------------------


def test_embeddings_match_the_bundled_embedder_in_both_encodings(
    api: Api, client: openai.OpenAI
) -> None:
    texts = ["A cat sat on the mat.", "A kitten rested on the rug.", "Stock markets fell."]
    default = client.embeddings.create(model=EMBED, input=texts)  # the client asks for base64
    floats = client.embeddings.create(model=EMBED, input=texts, encoding_format="float")
    a = np.array([d.embedding for d in default.data], dtype=np.float32)
    b = np.array([d.embedding for d in floats.data], dtype=np.float32)
    assert a.shape == (3, 384)
    assert np.array_equal(a, b)
    direct, counts = api.library.embed(texts)
    assert np.allclose(a, direct, atol=1e-6)
    assert default.usage.prompt_tokens == sum(counts)
    sims = a @ a.T
    assert sims[0, 1] > sims[0, 2] + 0.2  # cat/kitten far closer than cat/stocks


def test_embedding_input_the_model_would_cut_is_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.embeddings.create(model=EMBED, input="lorem ipsum " * 300)
    assert err.value.body["code"] == "input_too_long"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model=CHAT, input="hello")


# -- collections -------------------------------------------------------------------------------


def test_a_collection_answers_with_its_sources(api: Api, client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model="docs/Office",
        messages=ask("What is the vault code word?"),
        temperature=0,
        max_tokens=60,
    )
    extra = out.model_extra or {}
    sources = extra["sources"]
    assert sources, "the answer must carry its sources"
    top = sources[0]
    assert top["file"] == "security.pdf" and top["page"] == 2
    assert "PELICAN" in top["quote"]
    assert top["n"] == 1 and top["similarity"] > 0.3
    assert extra["grounding"]["summary"].endswith(".")
    record = extra["record"]  # chained in the answers' audit trail, checkable later
    assert record["format"] == "hearth-answer-record/1" and record["audit"]["seq"] >= 1
    assert record["answer"] == out.choices[0].message.content
    assert record["sources"][0]["document_sha256"] == top["document_sha256"]
    from engine import answer_record

    assert answer_record.verify(api.paths, record).ok

    chunks = list(
        client.chat.completions.create(
            model="docs/Office",
            messages=ask("What is the vault code word?"),
            temperature=0,
            max_tokens=60,
            stream=True,
        )
    )
    with_sources = [c for c in chunks if (c.model_extra or {}).get("sources")]
    assert len(with_sources) == 1 and chunks.index(with_sources[0]) <= 1
    assert sum(1 for c in chunks if (c.model_extra or {}).get("record")) == 1
    assert (with_sources[0].model_extra or {})["sources"] == sources
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == out.choices[0].message.content
    )


def test_collections_also_by_extension_field_and_listed_as_models(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model=CHAT,
        messages=ask("How many days may employees work remotely?"),
        temperature=0,
        max_tokens=40,
        extra_body={"collections": ["Office"]},
    )
    assert any(s["file"] == "policy.docx" for s in (out.model_extra or {})["sources"])
    ids = {m.id: m for m in client.models.list()}
    assert {CHAT, EMBED, "docs/Office"} <= set(ids)
    office = ids["docs/Office"].model_extra or {}
    assert office["kind"] == "collection"
    assert office["documents"] == 2 and office["passages"] >= 2  # the PDF and the DOCX
    assert client.models.retrieve("docs/Office").id == "docs/Office"
    assert (client.models.retrieve(EMBED).model_extra or {})["kind"] == "embedding"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="docs/Nope", messages=ask("hi"))


def test_documents_only_says_so_instead_of_guessing(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model="docs/Office",
        messages=ask("Which football club won the 1998 cup final?"),
        extra_body={"documents_only": True},
    )
    assert (out.model_extra or {})["sources"] == []
    assert "found nothing" in (out.choices[0].message.content or "")
    assert out.usage is not None and out.usage.completion_tokens == 0


# -- authentication, browsers, limits ----------------------------------------------------------


def test_a_missing_or_wrong_token_gets_401(api: Api) -> None:
    for key in ("wrong", "hearth-" + "x" * 43):
        bad = api.client(key=key)
        with pytest.raises(openai.AuthenticationError) as err:
            bad.models.list()
        assert err.value.status_code == 401
        bad.close()
    status, headers, _ = api.raw("GET", "/v1/models")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    # Refused before its body is read, and the connection still serves the next request:
    # the body was not taken for one.
    conn = http.client.HTTPConnection("127.0.0.1", api.server.port, timeout=60)
    conn.request(
        "POST",
        "/v1/chat/completions",
        json.dumps({"model": CHAT, "messages": ask("hi")}).encode(),
        {"Content-Type": "application/json"},
    )
    first = conn.getresponse()
    first.read()
    conn.request("GET", "/v1/models", headers={"Authorization": f"Bearer {api.token}"})
    second = conn.getresponse()
    assert (first.status, second.status) == (401, 200)
    second.read()
    conn.close()
    status, _, _ = api.raw("GET", "/v1/nothing-here")
    assert status == 401  # no route answers without the token, not even "not found"


def test_a_rotated_token_stops_working_at_once(api: Api) -> None:
    old = api.token
    new = token.rotate(api.paths)
    assert new != old and new.startswith("hearth-")
    if os.name == "posix":
        assert token.path(api.paths).stat().st_mode & 0o077 == 0  # private to its user
    status, _, _ = api.raw("GET", "/v1/models", headers={"Authorization": f"Bearer {old}"})
    assert status == 401
    status, _, _ = api.raw("GET", "/v1/models", headers={"Authorization": f"Bearer {new}"})
    assert status == 200


def test_web_pages_and_rebound_host_names_are_refused(api: Api) -> None:
    auth = {"Authorization": f"Bearer {api.token}"}
    status, headers, _ = api.raw(
        "GET", "/v1/models", headers={**auth, "Origin": "https://evil.example"}
    )
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    status, _, _ = api.raw(
        "OPTIONS",
        "/v1/chat/completions",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert status == 403
    # DNS rebinding: a page on evil.example whose name now points at 127.0.0.1
    status, _, _ = api.raw("GET", "/v1/models", headers={**auth, "Host": "evil.example:80"})
    assert status == 403
    api.settings.set("api.cors_origins", ["http://localhost:3000"])
    try:
        status, headers, _ = api.raw(
            "OPTIONS",
            "/v1/chat/completions",
            headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
        )
        assert status == 204
        assert headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
        assert "Authorization" in headers["Access-Control-Allow-Headers"]
        status, headers, _ = api.raw(
            "GET", "/v1/models", headers={**auth, "Origin": "http://localhost:3000"}
        )
        assert status == 200
        assert headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    finally:
        api.settings.reset("api.cors_origins")


def test_request_bodies_are_limited(api: Api) -> None:
    auth = {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"}
    api.settings.set("api.max_request_mb", 1)
    try:
        body = json.dumps({"model": EMBED, "input": "x" * (1024 * 1024 + 10)}).encode()
        status, _, raw = api.raw("POST", "/v1/embeddings", body, auth)
        assert status == 413 and json.loads(raw)["error"]["code"] == "request_too_large"
    finally:
        api.settings.reset("api.max_request_mb")
    for bad_body in (b"{not json", b"[" * 200_000 + b"]" * 200_000):  # the second: too deep
        status, _, raw = api.raw("POST", "/v1/embeddings", bad_body, auth)
        assert status == 400 and json.loads(raw)["error"]["code"] == "invalid_json"


def test_a_non_loopback_bind_needs_the_machine_policy(api: Api) -> None:
    user = Settings.load(None)
    user.set("api.allowed_hosts", ["0.0.0.0"])  # a user's own setting does not count
    for settings in (Settings.load(None), user):
        server = ApiServer(api.server.backend, settings, api.paths, host="0.0.0.0", port=0)
        with pytest.raises(ApiServerError, match="machine policy"):
            server.start()
        assert not server.running
    policy = Settings.load(None, locks={"api.allowed_hosts": (["0.0.0.0"], "IT ticket 7")})
    server = ApiServer(api.server.backend, policy, api.paths, host="0.0.0.0", port=0)
    server.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request("GET", "/v1/models", headers={"Authorization": f"Bearer {api.token}"})
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        server.stop()
    off = Settings.load(None, locks={"api.enabled": (False, "No servers here.")})
    with pytest.raises(ApiServerError, match="No servers here"):
        ApiServer(api.server.backend, off, api.paths, port=0).start()


# -- one model, a queue ----------------------------------------------------------------------------


def test_concurrent_requests_queue_for_one_model_and_all_complete(api: Api) -> None:
    results: dict[int, str] = {}
    failures: list[BaseException] = []
    clients = [api.client() for _ in range(6)]

    def one(i: int) -> None:
        try:
            kw: dict[str, Any] = {
                "model": CHAT,
                "messages": ask(f"Say the number {i}."),
                "max_tokens": 16,
                "temperature": 0,
            }
            if i % 2:
                results[i] = "".join(
                    c.choices[0].delta.content or ""
                    for c in clients[i].chat.completions.create(stream=True, **kw)
                    if c.choices
                )
            else:
                results[i] = (
                    clients[i].chat.completions.create(**kw).choices[0].message.content or ""
                )
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=one, args=(i,), name=f"hearth-test-{i}") for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    for c in clients:
        c.close()
    assert not failures, failures
    assert sorted(results) == list(range(6)) and all(results.values())
    workers = [
        p
        for p in psutil.Process().children(recursive=True)
        if "engine.runtime.worker" in " ".join(p.cmdline())
    ]
    assert len(workers) == 1, "one model worker, however many requests"


def test_the_queue_is_first_come_first_served_and_bounded() -> None:
    gate = Gate(max_waiting=2)
    order: list[str] = []
    release = threading.Event()
    entered = threading.Event()

    def hold() -> None:
        with gate.turn(lambda: False):
            entered.set()
            release.wait(10)
            order.append("first")

    def later(name: str) -> None:
        with gate.turn(lambda: False):
            order.append(name)

    first = threading.Thread(target=hold, name="hearth-test-hold")
    first.start()
    entered.wait(10)
    second = threading.Thread(target=later, args=("second",), name="hearth-test-second")
    second.start()
    while gate.waiting < 2:
        threading.Event().wait(0.01)
    with pytest.raises(Cancelled), gate.turn(lambda: True):
        pass  # a client that leaves while waiting gives up its place
    assert gate.waiting == 2
    third = threading.Thread(target=later, args=("third",), name="hearth-test-third")
    third.start()
    while gate.waiting < 3:
        threading.Event().wait(0.01)
    with pytest.raises(ApiError) as err, gate.turn(lambda: False):
        pass
    assert err.value.status == 503
    release.set()
    for t in (first, second, third):
        t.join(10)
    assert order == ["first", "second", "third"]
    assert gate.waiting == 0


def test_a_client_that_leaves_mid_answer_stops_it(api: Api) -> None:
    body = json.dumps(
        {
            "model": CHAT,
            "messages": ask("Write a very long essay about rivers."),
            "max_tokens": 2000,
            "stream": True,
            "temperature": 0.7,
        }
    ).encode()
    conn = http.client.HTTPConnection("127.0.0.1", api.server.port, timeout=60)
    conn.request(
        "POST",
        "/v1/chat/completions",
        body=body,
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"},
    )
    resp = conn.getresponse()
    assert resp.status == 200
    resp.fp.readline()  # the first chunk is on its way
    conn.sock.close() if conn.sock else None
    resp.close()
    conn.close()
    # the next request is answered, so the abandoned one let go of the model
    with api.client() as c:
        out = c.chat.completions.create(model=CHAT, messages=ask("Hi"), max_tokens=4)
    assert out.choices[0].finish_reason in ("stop", "length")
    # The abandoned request's thread writes its entry after giving up its turn, so it may
    # land just after the next answer.
    deadline = time.monotonic() + 10
    while not any(e["status"] == 499 for e in AuditLog(api.paths.logs).read()):
        assert time.monotonic() < deadline, (
            "the abandoned stream is recorded as the client having left"
        )
        time.sleep(0.05)


def test_the_audit_log_records_requests_but_never_content(api: Api) -> None:
    secret = "ZEBRA-CROSSING-4471"
    log = AuditLog(api.paths.logs)
    with api.client() as c:
        # Each entry is written before the client has the whole answer, streamed or not.
        c.chat.completions.create(model=CHAT, messages=ask(f"Repeat {secret}"), max_tokens=8)
        assert log.read()[-1]["path"] == "/v1/chat/completions"
        c.embeddings.create(model=EMBED, input=f"embed {secret}")
        assert log.read()[-1]["path"] == "/v1/embeddings"
        list(c.completions.create(model=CHAT, prompt=f"{secret} means", max_tokens=4, stream=True))
        assert log.read()[-1]["path"] == "/v1/completions"
    raw = (api.paths.logs / "api-audit.jsonl").read_text(encoding="utf-8")
    assert secret not in raw and "ZEBRA" not in raw
    entries = log.read()
    paths = [e["path"] for e in entries[-3:]]
    assert paths == ["/v1/chat/completions", "/v1/embeddings", "/v1/completions"]
    assert all(e["authorized"] and e["status"] == 200 for e in entries[-3:])
    assert entries[-3]["completion_tokens"] is not None
    assert any(not e["authorized"] and e["status"] == 401 for e in entries)
    from engine.audit import verify

    assert verify(log.path).ok  # chained: `hearth audit verify` checks it


def test_the_runtime_answers_with_the_model_the_caller_named(api: Api, bundled_gguf: Path) -> None:
    """The window and the API share one runtime: a request names its model, and the runtime
    loads it in the same turn if another caller loaded something else meanwhile."""
    from engine.runtime import ChatMessage, ChatRequest, Done, LoadParams

    small = LoadParams(model_path=str(bundled_gguf), context_length=512)
    api.runtime.load(LoadParams(model_path=str(bundled_gguf), context_length=1024))
    events = list(api.runtime.stream_chat(ChatRequest((ChatMessage("user", "Hi"),)), model=small))
    assert isinstance(events[-1], Done)
    loaded = api.runtime.loaded
    assert loaded is not None and loaded.params == small
    # The API, asked for the file that is loaded, takes it as it is: no reload.
    pid = api.runtime.worker_pid
    with api.client() as c:
        c.chat.completions.create(model=CHAT, messages=ask("Hi"), max_tokens=2)
    assert api.runtime.loaded is loaded and api.runtime.worker_pid == pid
