"""all-MiniLM-L6-v2 exported to ONNX on this machine, from the bundled safetensors, once.

onnxruntime runs the same float32 maths as torch, 1.4x faster on an AVX2 CPU without native
bfloat16 (bench/bench_indexing.py, docs/documents.md). Nothing is downloaded: the export traces
the installed model with torch (the `onnx` package writes the file) into the cache folder, named
by what it was made from, written to a temporary name and renamed when whole. Before a new file
is used, it must give the same vectors as torch on a padded probe batch; if the export or that
check fails, the caller keeps torch.

A release build makes the export once, at build time (`python -m engine.documents.onnx_export
OUT`), and ships it in the embedder's folder as `onnx/model.onnx` with `hearth-export.json`
(what it was made from, its hash, the probe's cosine); the frozen app then runs the embedder on
onnxruntime alone and carries no torch (`shipped`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

EXPORT_VERSION = 1  # raise it when the export below changes: the cached file is made again
PROBE = [
    "A short one.",
    "Let the dough rise for two hours in a warm place, then knead it and bake it at 220 "
    "degrees for forty minutes; padding and the attention mask are checked by this pair.",
]
MIN_PROBE_COSINE = 0.9999
_NAMES = ("input_ids", "attention_mask", "token_type_ids", "last_hidden_state")
SHIPPED = "onnx"  # the folder, inside the embedder's own, that a release build ships it in
RECORD = "hearth-export.json"


def cached_path(folder: Path, cache: Path) -> Path:
    """Where the export of the model in `folder` lives: keyed by the weights' size and time,
    the model's config, torch's version and EXPORT_VERSION."""
    import torch

    weights = folder / "model.safetensors"
    st = weights.stat()
    key = json.dumps(
        [
            st.st_size,
            st.st_mtime_ns,
            (folder / "config.json").read_text(encoding="utf-8"),
            torch.__version__,
            EXPORT_VERSION,
        ]
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache / f"{folder.name}-float32-{digest}.onnx"


def ensure(folder: Path, cache: Path) -> Path:
    """The exported model, made now if it is not cached. Raises on any failure."""
    target = cached_path(folder, cache)
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    _export(folder, target)
    log.info("embedder exported to ONNX: %s", target)
    return target


def shipped(folder: Path, source_sha256: str) -> Path | None:
    """The export a release build put in `folder` (`onnx/model.onnx`), if its record says it
    was made from the weights whose hash is `source_sha256`; else None."""
    path = shipped_file(folder)
    record = shipped_record(folder)
    if record is None:
        return None
    if not path.is_file() or record.get("source_sha256") != source_sha256:
        log.warning("embedder: the shipped ONNX export is not of these weights; not used")
        return None
    return path


def shipped_file(folder: Path) -> Path:
    """Where a release build puts the export in the embedder's `folder`."""
    return folder / SHIPPED / "model.onnx"


def shipped_record(folder: Path) -> dict[str, Any] | None:
    """What `write_shipped` recorded beside a shipped export, or None."""
    try:
        record = json.loads((folder / SHIPPED / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_shipped(folder: Path, out: Path, source_sha256: str) -> dict[str, Any]:
    """For a release build: export the model in `folder` to `out`/model.onnx (checked by the
    same probe as `ensure`) and write `out`/hearth-export.json; returns the record. Refuses,
    before any work, weights whose hash is not `source_sha256` (the ones Hearth pins)."""
    import torch

    from engine import files

    found = files.sha256_file(folder / "model.safetensors")
    if found != source_sha256:
        raise ValueError(f"{folder} holds other weights than Hearth ships ({found})")
    out.mkdir(parents=True, exist_ok=True)
    target = out / "model.onnx"
    cosine = _export(folder, target, half_weights=True)
    target.chmod(0o644)  # made by mkstemp (0600): every user of an installed build reads it
    record = {
        "made_from": "model.safetensors",
        "source_sha256": found,
        "onnx_sha256": files.sha256_file(target),
        "weights_stored_as": "float16, computed in float32",
        "probe_cosine": round(cosine, 7),
        "min_probe_cosine": MIN_PROBE_COSINE,
        "torch": torch.__version__,
        "export_version": EXPORT_VERSION,
    }
    (out / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def _export(folder: Path, target: Path, half_weights: bool = False) -> float:
    """Export the model in `folder` to `target` (written whole or not at all) and return the
    lowest probe cosine against torch; raises when the export fails or disagrees. With
    `half_weights`, the weights are stored in float16 (`_store_weights_in_float16`)."""
    import torch
    import transformers
    from transformers import AutoModel

    transformers.utils.logging.disable_progress_bar()  # no bars on stderr
    model = AutoModel.from_pretrained(
        str(folder),
        local_files_only=True,
        dtype=torch.float32,
        attn_implementation="eager",  # plain ops: onnxruntime fuses them itself
    ).eval()

    class _Hidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    # Traced on an unpadded batch: traced on a padded one, transformers' mask code bakes that
    # example's padding into the graph (it then disagreed with torch at cosine 0.95). Padding
    # is what the probe below checks.
    ids = torch.tensor([[101, 2023, 2003, 102], [101, 2023, 2003, 102]])
    mask = torch.ones_like(ids)
    reference = _torch_vectors(folder, model)  # before the export, which leaves the model changed
    fd, tmp = tempfile.mkstemp(prefix=target.name, suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        # The tracer warns about every Python branch in transformers' code; the probe below is
        # what tells whether the graph is right.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Hidden(model),
                (ids, mask, torch.zeros_like(ids)),
                tmp,
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["last_hidden_state"],
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in _NAMES},
                opset_version=17,
                dynamo=False,
            )
        if half_weights:
            _store_weights_in_float16(tmp)
        worst = _probe(tmp, folder, reference)
        if worst < MIN_PROBE_COSINE:
            raise RuntimeError(f"the ONNX export disagrees with torch (cosine {worst:.6f})")
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return worst


def _store_weights_in_float16(path: str | Path) -> None:
    """Store the export's large float32 weights in float16, each read through a Cast back to
    float32: the file halves (86 to 43 MB, the release's largest compressible part after the
    chat model) and the arithmetic stays float32; onnxruntime folds the casts when the session
    opens. Rounding the weights left 565 passages' vectors at cosine 0.9999996 or more to the
    float32 export's and the same first passage for 81 questions (bench/bench_embedder_export.py,
    docs/documents.md); the probe checks the result like any export."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    casts = []
    for weights in list(graph.initializer):
        if weights.data_type != TensorProto.FLOAT or int(np.prod(weights.dims)) < 1024:
            continue  # small tensors (biases, norms) stay float32: they save nothing
        half = numpy_helper.from_array(
            numpy_helper.to_array(weights).astype(np.float16), weights.name + "/float16"
        )
        graph.initializer.remove(weights)
        graph.initializer.append(half)
        casts.append(
            helper.make_node(
                "Cast", [half.name], [weights.name], to=TensorProto.FLOAT, name=half.name + "/cast"
            )
        )
    for i, cast in enumerate(casts):
        graph.node.insert(i, cast)  # before every use: the graph stays in topological order
    onnx.save(model, str(path))


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' mean pooling: the average of the real tokens' vectors."""
    summed = (hidden * mask[..., None]).sum(1)
    return summed / mask.sum(1, keepdims=True).clip(min=1)


def session(path: Path | str, threads: int | None) -> Any:
    """An onnxruntime session on the CPU, with all its graph optimisations."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_batch(session: Any, encoded: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """The last hidden states of one batch of token ids (padded here), and its mask."""
    width = max(map(len, encoded))
    ids = np.zeros((len(encoded), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, e in enumerate(encoded):
        ids[row, : len(e)] = e
        mask[row, : len(e)] = 1
    hidden = session.run(
        None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    )[0]
    return hidden, mask


def _probe_ids(folder: Path) -> list[list[int]]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    return [tokenizer.encode(t, add_special_tokens=True).ids for t in PROBE]


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _torch_vectors(folder: Path, model: Any) -> np.ndarray:
    """torch's unit vectors for PROBE, each text on its own (no padding)."""
    import torch

    rows = []
    with torch.no_grad():
        for e in _probe_ids(folder):
            ids = torch.tensor([e])
            hidden = model(
                input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=0 * ids
            ).last_hidden_state.numpy()
            rows.append(hidden[0].mean(0))
    return _unit(np.vstack(rows))


def _probe(path: str, folder: Path, reference: np.ndarray) -> float:
    """The lowest cosine between the export's vectors for PROBE, run as one padded batch,
    and torch's `reference`."""
    hidden, mask = run_batch(session(path, None), _probe_ids(folder))
    return float((_unit(mean_pool(hidden, mask)) * reference).sum(1).min())


def main(argv: list[str] | None = None) -> int:
    """`python -m engine.documents.onnx_export OUT`: the release build's export of the bundled
    all-MiniLM-L6-v2 into OUT (model.onnx, hearth-export.json)."""
    import argparse

    from engine import models

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    embedder = models.BUNDLED_EMBEDDER
    record = write_shipped(embedder.path(), args.out, embedder.sha256)
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
