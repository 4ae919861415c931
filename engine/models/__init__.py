"""Models: what is installed, where more come from, whether they fit, and which may run.

This package's face is this file: the window, the CLI, the API and the rest of the engine import
from `engine.models`, never from its modules (a test holds them to it). Where things are:

| module       | owns                                                                        |
|--------------|-----------------------------------------------------------------------------|
| `access`     | the machine policy's allow-list, and `load_params`: the one way from a model  |
|              | the user named to what the runtime loads (the runtime checks it again)      |
| `registry`   | installed models (bundled, downloaded, imported, packs, in place), import,   |
|              | delete, and resolving an id or path to a file                               |
| `bundled`    | the models that ship inside Hearth's packages                               |
| `catalog`    | `model_catalog.json` and its schema                                         |
| `downloads`  | resumable downloads, verified against the catalog or the server's checksum   |
|              | before they are installed                                                   |
| `packs`      | signed offline model packs: export, verify, import                          |
| `discovery`  | GGUF files other apps (LM Studio, GPT4All, the HF cache) downloaded          |
| `fit`        | the memory estimate: will a model run here, on the GPU or the CPU           |
| `overview`   | all of the above in one call, for the Models page and `hearth models`        |
| `recommended`| how each model is best run (catalog or GGUF), under the user's own settings  |

The file format (`engine.gguf`), the machine (`engine.hardware`) and the llama.cpp build
(`engine.llama_build`) stay beside this package: the runtime needs them too.
"""

from engine.models.access import (
    allowed_digests,
    check_file,
    gate,
    load_params,
    refuse_unlisted,
)
from engine.models.bundled import ALL as BUNDLED
from engine.models.bundled import CHAT as BUNDLED_CHAT
from engine.models.bundled import EMBEDDER as BUNDLED_EMBEDDER
from engine.models.bundled import EMBEDDER_BGE as BUNDLED_EMBEDDER_BGE
from engine.models.bundled import EMBEDDERS as BUNDLED_EMBEDDERS
from engine.models.bundled import BundledModel
from engine.models.bundled import by_id as bundled_model
from engine.models.catalog import CATALOG_PATH, SCHEMA_PATH, Catalog, CatalogModel
from engine.models.catalog import load as load_catalog
from engine.models.catalog import validate as validate_catalog
from engine.models.discovery import Found, discover, known_locations
from engine.models.downloads import (
    DownloadConfig,
    DownloadDone,
    DownloadProgress,
    DownloadRequest,
    check_request,
    discard_partial,
    download,
    partial_downloads,
    refusal,
)
from engine.models.fit import Fit, FitEstimate, ModelShape, estimate
from engine.models.fit import for_model as fit_for
from engine.models.overview import CatalogRow, Overview, overview, suggest_download
from engine.models.packs import (
    Pack,
    PackExported,
    PackFile,
    PackImported,
    PackProgress,
    export_pack,
    import_pack,
    load_pack_key,
    new_pack_key,
    pack_key_id,
    pack_key_pem,
    pack_keys_for,
    pack_public_key,
    read_pack,
    trusted_pack_keys,
    verify_pack_files,
)
from engine.models.recommended import Recommendation, answer_defaults, recommendation
from engine.models.registry import (
    Imported,
    ImportProgress,
    InstalledModel,
    Registry,
    delete,
    display_name,
    find,
    import_model,
    installed,
    locate,
    resolve,
)

__all__ = [
    "BUNDLED",
    "BUNDLED_CHAT",
    "BUNDLED_EMBEDDER",
    "BUNDLED_EMBEDDERS",
    "BUNDLED_EMBEDDER_BGE",
    "CATALOG_PATH",
    "SCHEMA_PATH",
    "BundledModel",
    "Catalog",
    "CatalogModel",
    "CatalogRow",
    "DownloadConfig",
    "DownloadDone",
    "DownloadProgress",
    "DownloadRequest",
    "Fit",
    "FitEstimate",
    "Found",
    "ImportProgress",
    "Imported",
    "InstalledModel",
    "ModelShape",
    "Overview",
    "Pack",
    "PackExported",
    "PackFile",
    "PackImported",
    "PackProgress",
    "Recommendation",
    "Registry",
    "allowed_digests",
    "answer_defaults",
    "bundled_model",
    "check_file",
    "check_request",
    "delete",
    "discard_partial",
    "discover",
    "display_name",
    "download",
    "estimate",
    "export_pack",
    "find",
    "fit_for",
    "gate",
    "import_model",
    "import_pack",
    "installed",
    "known_locations",
    "load_catalog",
    "load_pack_key",
    "load_params",
    "locate",
    "new_pack_key",
    "overview",
    "pack_key_id",
    "pack_key_pem",
    "pack_keys_for",
    "pack_public_key",
    "partial_downloads",
    "read_pack",
    "recommendation",
    "refusal",
    "refuse_unlisted",
    "resolve",
    "suggest_download",
    "trusted_pack_keys",
    "validate_catalog",
    "verify_pack_files",
]
