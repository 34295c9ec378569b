"""Running a registry until it is told to stop: options to a server, signals, clean exit."""

from __future__ import annotations

import signal
import threading

from pallet.errors import InvalidArgument
from pallet.registry.server import signingkey
from pallet.registry.server.auth import BasicAuth, Htpasswd, NoAuth, TokenAuth
from pallet.registry.server.server import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    LOG_LEVELS,
    make_server,
    tls_context,
)
from pallet.registry.server.storage import Storage
from pallet.registry.server.tokens import TokenSigner

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType
    from typing import TextIO

    from pallet.registry.server.auth import Authorizer
    from pallet.registry.server.server import RegistryServer

__all__ = ["AUTH_MODES", "build_server", "parse_addr", "run"]

AUTH_MODES = ("none", "htpasswd", "token")

#: upload sessions untouched this long are removed at start (distribution's default: a week)
STALE_UPLOAD_SECONDS = 7 * 24 * 3600


def parse_addr(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:5000`` for IPv6; an empty host means all interfaces)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise InvalidArgument(f'invalid address "{text}": expected HOST:PORT, e.g. 127.0.0.1:5000')
    return host.strip("[]") or "0.0.0.0", int(port)


def build_server(
    *,
    addr: str,
    storage_dir: str,
    auth: str = "none",
    htpasswd: str | None = None,
    realm: str = "",
    tls_cert: str | None = None,
    tls_key: str | None = None,
    log_level: str = "warn",
    log_stream: TextIO | None = None,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> RegistryServer:
    """A bound server for these options; ``InvalidArgument`` names the option that is wrong."""
    if auth not in AUTH_MODES:
        raise InvalidArgument(f'unknown auth mode "{auth}"; use one of {", ".join(AUTH_MODES)}')
    if auth != "none" and not htpasswd:
        raise InvalidArgument(
            f"--auth {auth} needs --htpasswd FILE (bcrypt entries, 'htpasswd -Bc FILE USER')"
        )
    if bool(tls_cert) != bool(tls_key):
        raise InvalidArgument("TLS needs both --tls-cert and --tls-key")
    if log_level not in LOG_LEVELS:
        raise InvalidArgument(f'unknown log level "{log_level}"; use one of {", ".join(LOG_LEVELS)}')
    if not header_timeout > 0:  # also refuses NaN
        raise InvalidArgument(f"--header-timeout must be a positive number of seconds, not {header_timeout}")
    if max_connections < 1:
        raise InvalidArgument(f"--max-connections must be at least 1, not {max_connections}")
    authorizer: Authorizer = NoAuth()
    token_auth: TokenAuth | None = None
    if auth == "htpasswd":
        assert htpasswd is not None
        authorizer = BasicAuth(Htpasswd(htpasswd), realm or "pallet-registry")
    elif auth == "token":
        assert htpasswd is not None
        key = signingkey.load_or_create(storage_dir)
        token_auth = TokenAuth(Htpasswd(htpasswd), TokenSigner(key=key), realm=realm)
        authorizer = token_auth
    tls = tls_context(tls_cert, tls_key) if tls_cert and tls_key else None
    storage = Storage(storage_dir)
    storage.purge_uploads(STALE_UPLOAD_SECONDS)
    try:
        return make_server(
            parse_addr(addr),
            storage=storage,
            authorizer=authorizer,
            token_auth=token_auth,
            tls=tls,
            log_level=LOG_LEVELS[log_level],
            log_stream=log_stream,
            header_timeout=header_timeout,
            max_connections=max_connections,
        )
    except OSError as exc:
        from pallet.errors import Unavailable

        raise Unavailable(f"cannot listen on {addr}: {exc.strerror or exc}; pick another --addr") from None


class _Stop(BaseException):
    """Raised in the main thread by SIGTERM/SIGINT to leave ``serve_forever``."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def run(server: RegistryServer) -> None:
    """Serve until SIGINT or SIGTERM, then close the listening socket and return.

    Requests in flight are cut off (their upload sessions stay on disk and
    can be resumed); nothing half-written is ever visible as a blob. The
    storage's lock is held shared meanwhile, so ``garbage-collect`` refuses
    to run; ``Unavailable`` if a collection is running now.
    """
    lock = server.storage.lock()
    if not lock.acquire(shared=True, blocking=False):
        from pallet.errors import Unavailable

        server.server_close()
        raise Unavailable(
            f"garbage collection is running on {server.storage.root}; serve it again once that is done"
        )
    previous: dict[signal.Signals, object] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, _stop)
    server.log("warn", f"serving the registry on {server.url} (storage {server.storage.root})")
    try:
        server.serve_forever(poll_interval=0.5)
    except _Stop:
        server.log("warn", "stopping")
    finally:
        server.server_close()
        lock.release()
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
