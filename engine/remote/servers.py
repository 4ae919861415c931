"""Which servers Hearth may talk to, and how: URLs, the policy check, TLS, tokens, the guard.

A server is named by its URL in the settings (`remote.servers` for model servers,
`remote.chroma_servers` for Chroma). Every request to one goes through `connection()`, which
checks, at that moment, that remote sources are allowed (`remote.allowed`, not offline mode),
that the URL is still configured and its host on `remote.allowed_hosts` (when that list is
set, usually by machine policy), and then opens the network guard for that host alone, on the
calling thread, for the length of the request. Tokens live in the OS keyring
(`engine.vault.keyring_backend`), keyed by the server's URL; never in settings or logs.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from engine import network
from engine.errors import ServerError, ServerNotAllowed
from engine.settings import Settings
from engine.vault import EncryptionUnavailable, keyring_backend

Kind = Literal["model", "chroma"]
KEYRING_SERVICE = "Hearth servers"
_LIST_KEY: dict[Kind, str] = {"model": "remote.servers", "chroma": "remote.chroma_servers"}


@dataclass(frozen=True)
class Server:
    """A server's URL, taken apart. `key` (host:port) names it in model ids and the UI."""

    url: str  # as configured, without a trailing slash
    scheme: str
    host: str
    port: int

    @property
    def key(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def tls(self) -> bool:
        return self.scheme == "https"


def parse(url: str) -> Server:
    """A server URL (http or https, a host, an optional port and path) -> Server.
    Raises ServerError for anything else, with what was wrong."""
    text = url.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServerError(
            f"“{url}” is not a server address: it must start with http:// or https:// and "
            "name a host, e.g. https://gpu.example.org:8080/v1."
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ServerError(
            f"“{url}” carries a user name, password, query or fragment: give the plain "
            "address, and the token separately (it is kept in the keyring)."
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ServerError(f"“{url}” has a port that is not a number from 1 to 65535.") from None
    return Server(text, parts.scheme, parts.hostname.lower(), port)


def configured(settings: Settings, kind: Kind = "model") -> list[Server]:
    """The servers of `kind` in the settings, parsed; malformed entries are skipped (the
    settings page and `hearth remote list` show them with their problem)."""
    out = []
    for url in settings.get(_LIST_KEY[kind]):
        try:
            out.append(parse(url))
        except ServerError:
            continue
    return out


def find(settings: Settings, key_or_url: str, kind: Kind = "model") -> Server | None:
    """The configured server with that key (host:port) or URL."""
    wanted = key_or_url.strip().rstrip("/")
    return next((s for s in configured(settings, kind) if wanted in (s.key, s.url)), None)


def add(settings: Settings, url: str, kind: Kind = "model") -> Server:
    """Configure the server at `url` (moved to the end if it was there) and save the settings.
    Raises ServerError for a malformed URL, ServerNotAllowed when servers are off, and
    SettingsError (with the policy's reason) when the policy fixes the list."""
    server = parse(url)
    why = refusal(settings)
    if why is not None:
        raise ServerNotAllowed(why)
    key = _LIST_KEY[kind]
    urls = [u for u in settings.get(key) if u.strip().rstrip("/") != server.url]
    settings.set(key, [*urls, server.url])
    settings.save()
    return server


def remove(settings: Settings, url: str, kind: Kind = "model") -> Server | None:
    """Take the server at `url` off the settings and save them; None when it was not there.
    Its token stays in the keyring until `forget_token` (the keyring can be slow)."""
    server = parse(url)
    key = _LIST_KEY[kind]
    urls = [u for u in settings.get(key) if u.strip().rstrip("/") != server.url]
    if len(urls) == len(settings.get(key)):
        return None
    settings.set(key, urls)
    settings.save()
    return server


def forget_token(server: Server) -> None:
    """Remove the server's token from the keyring, if there is a keyring and a token."""
    with contextlib.suppress(ServerError):  # no keyring: no token was kept there either
        set_token(server, None)


def refusal(settings: Settings, server: Server | None = None, kind: Kind = "model") -> str | None:
    """Why Hearth may not use `server` (or any server, without one) now, or None when it may."""
    if settings.get("privacy.offline_mode"):
        why = settings.locked.get("privacy.offline_mode")
        return "Offline mode is on, so Hearth uses no server." + (f" {why}" if why else "")
    if not settings.get("remote.allowed"):
        why = settings.locked.get("remote.allowed")
        return "Model servers and shared collections are turned off" + (
            f" by this computer's policy: {why}" if why else " in the settings."
        )
    if server is None:
        return None
    if find(settings, server.url, kind) is None:
        why = settings.locked.get(_LIST_KEY[kind])
        return f"The server {server.url} is not one of the configured servers" + (
            f" (fixed by this computer's policy: {why})." if why else "."
        )
    hosts = [h.strip().lower() for h in settings.get("remote.allowed_hosts") if h.strip()]
    if hosts and server.host not in hosts and server.key not in hosts:
        why = settings.locked.get("remote.allowed_hosts")
        return f"The host {server.key} is not on the list of allowed hosts" + (
            f" ({why})." if why else "."
        )
    return None


def check(settings: Settings, server: Server, kind: Kind = "model") -> None:
    """Raise ServerNotAllowed when `server` may not be used now."""
    why = refusal(settings, server, kind)
    if why is not None:
        raise ServerNotAllowed(why, server.url)


@contextmanager
def connection(settings: Settings, server: Server, kind: Kind = "model") -> Iterator[None]:
    """Around one request to `server`: checked now, then the network guard opened for its
    host alone on this thread. Every connection made is in the egress log."""
    check(settings, server, kind)
    label = "model server" if kind == "model" else "shared collections (Chroma server)"
    with network.allow_hosts(f"{label} {server.key}", [server.host]):
        yield


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """Certificates always verified: by the system's authorities, and those in
    `remote.ca_bundle` (an organisation's own CA) as well."""
    bundle = str(settings.get("remote.ca_bundle")).strip()
    context = ssl.create_default_context()
    try:
        if bundle:
            context.load_verify_locations(cafile=bundle)
        return context
    except (OSError, ssl.SSLError) as exc:
        raise ServerError(
            f"The certificate authorities file “{bundle}” (remote.ca_bundle) cannot be used: {exc}."
        ) from None


# -- tokens --------------------------------------------------------------------------------------


def token(server: Server) -> str | None:
    """The server's token from the keyring, or None when it has none (or no keyring)."""
    try:
        found = keyring_backend().get_password(KEYRING_SERVICE, server.url)
    except EncryptionUnavailable:
        return None
    except Exception as exc:  # keyring backends raise their own kinds (locked, D-Bus)
        raise ServerError(
            f"The keyring refused access to the token of {server.key}.", str(exc)
        ) from None
    return str(found) if found else None


def set_token(server: Server, value: str | None) -> None:
    """Keep `value` as the server's token in the keyring (None or empty: forget it)."""
    try:
        backend = keyring_backend()
    except EncryptionUnavailable as exc:
        raise ServerError(
            "This computer has no keyring to keep the server's token in, and Hearth does not "
            "write tokens to files. Start a keyring service (GNOME Keyring, KWallet) and try "
            "again.",
            exc.detail,
        ) from None
    try:
        if value:
            backend.set_password(KEYRING_SERVICE, server.url, value)
        elif backend.get_password(KEYRING_SERVICE, server.url) is not None:
            backend.delete_password(KEYRING_SERVICE, server.url)
    except Exception as exc:
        raise ServerError(
            f"The keyring did not keep the token of {server.key}.", str(exc)
        ) from None


def headers(server: Server) -> dict[str, Any]:
    """HTTP headers for a request: the bearer token when the server has one."""
    found = token(server)
    return {"Authorization": f"Bearer {found}"} if found else {}
