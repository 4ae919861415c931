"""One error hierarchy for the engine.

Every `HearthError` carries `user_message`, a sentence fit to show a person as is, and an
optional `detail` for logs and bug reports. `Cancelled` is deliberately not a `HearthError`:
the user asked for it, so there is nothing to show.
"""

from __future__ import annotations


class HearthError(Exception):
    """Base of every error the engine raises on purpose."""

    def __init__(self, user_message: str, detail: str | None = None) -> None:
        super().__init__(user_message if detail is None else f"{user_message} ({detail})")
        self.user_message = user_message
        self.detail = detail


class Cancelled(Exception):
    """The user stopped the operation. Callers end quietly; nothing is shown."""


class InvalidModelFile(HearthError):
    """A model file failed validation before llama.cpp was allowed to open it."""


class ModelNotFound(HearthError):
    """A model id or path names nothing that is installed."""


class ModelNotAllowed(HearthError):
    """The machine policy's list of allowed model checksums does not include this file."""


class ModelLoadError(HearthError):
    """llama.cpp could not load a file that passed our validation."""


class WorkerCrashed(HearthError):
    """The model worker process died (crash, kill, out of memory). `signal_name` names the
    signal that ended it ("SIGSEGV", "SIGILL"), when one did."""

    def __init__(
        self, user_message: str, detail: str | None = None, signal_name: str | None = None
    ) -> None:
        super().__init__(user_message, detail)
        self.signal_name = signal_name


class GenerationError(HearthError):
    """Generation failed for a reason other than a dead worker."""


class PromptTooLong(GenerationError):
    """The prompt alone fills the model's context window; nothing was generated."""


class SchemaRefused(GenerationError):
    """A JSON schema to hold the answer to cannot be used (invalid, too large, or it refers
    outside itself); nothing was generated."""


class SettingsError(HearthError):
    """A setting has an unknown key or a value outside its schema."""


class BundledAssetMissing(HearthError):
    """A bundled model that the installer should have provided is missing."""


class CatalogError(HearthError):
    """model_catalog.json is missing, malformed or names an unknown model."""


class DownloadError(HearthError):
    """A model download failed; the partial file is kept for the next attempt unless said."""


class DownloadsDisabled(DownloadError):
    """Offline mode or the machine policy forbids downloads; nothing was sent."""


class UnsafeFileName(DownloadError):
    """A repository file name that could escape the models folder; refused before any request."""


class NotEnoughSpace(DownloadError):
    """The disk cannot hold the file; refused before the first byte or stopped on ENOSPC."""


class ChecksumMismatch(DownloadError):
    """The downloaded bytes are not the file we were promised; it was quarantined."""


class RemoteError(DownloadError):
    """The server said no (401/403/404) or kept failing (5xx, network) after retries."""


class PackError(HearthError):
    """A model pack is incomplete, damaged, unsigned or signed by a key we do not trust.
    Nothing was installed."""


class DocumentError(HearthError):
    """A collection, the document index or a search could not do what was asked."""


class CollectionNotFound(DocumentError):
    """No collection has that name."""


class EmbeddingInputTooLong(DocumentError):
    """A text to embed is longer than the embedder reads; nothing was embedded."""


class IndexBusy(DocumentError):
    """Another process is writing this document index."""


class NetworkBlocked(HearthError, ConnectionRefusedError):
    """A network request outside a download the user started; refused before it left.
    An OSError, so libraries that try the network on their own treat it as being offline."""


class ServerError(GenerationError):
    """A remote model server or Chroma server could not be used: unreachable, refused the
    token, too busy, too slow, or dropped the connection. The turn ends with this message."""


class ServerNotAllowed(ServerError):
    """Settings or the machine policy do not allow this server (or any remote source)."""


class ServerAuthFailed(ServerError):
    """The server refused the token (HTTP 401 or 403)."""
