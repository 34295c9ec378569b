"""The registry's HTTP server: ``http.server`` threads, TLS, auth, one log line per request.

One thread per connection (``ThreadingHTTPServer``), HTTP/1.1 with
keep-alive. Request bodies are read as streams (``requestbody``) and blobs
are sent with ``sendfile``: memory use does not grow with blob size. The
server holds no state of its own beyond ``Storage`` and the token key.

What a client cannot do to it:

- hold a thread by sending its request slowly: the TLS handshake, the request
  line and the headers must all arrive within ``header_timeout`` seconds of
  the connection (or, on a kept-alive connection, of the next request's first
  byte), a deadline and not a per-read timeout, so trickling bytes does not
  extend it (Go's ``http.Server.ReadHeaderTimeout``; nginx's
  ``client_header_timeout``, 60 s by default, as here);
- take every thread: at most ``max_connections`` connections are served at
  once; the accept loop waits for one to end and later clients wait in the
  kernel's listen backlog (Go's ``netutil.LimitListener``);
- get no answer: a request the server fails on is answered ``500`` and the
  traceback is logged at ``error``, which the default ``warn`` level shows.

docker-registry (distribution) has neither limit to borrow a name from: its
``http`` section offers only ``draintimeout``, and its Go ``http.Server`` runs
with no ``ReadHeaderTimeout`` and an unbounded listener; hence the Go and
nginx names above, as ``--header-timeout`` and ``--max-connections``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import ssl
import struct
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from pallet.errors import PalletError
from pallet.registry.server.errorcodes import RegistryError, error_body
from pallet.registry.server.handlers import FileBody, Request, Response, dispatch, needed_scopes
from pallet.registry.server.requestbody import Body
from pallet.registry.server.routes import match

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO, TextIO

    from pallet.registry.server.auth import Authorizer, TokenAuth
    from pallet.registry.server.storage import Storage

__all__ = [
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "LOG_LEVELS",
    "RegistryServer",
    "make_server",
]

#: --log-level names; a request line is logged at "info", failures of the server at "error"
LOG_LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40}

#: seconds a client has to send a request's line and headers (nginx's client_header_timeout)
DEFAULT_HEADER_TIMEOUT = 60.0

#: connections served at once, one thread each; more wait in the listen backlog
DEFAULT_MAX_CONNECTIONS = 256

#: how often the accept loop, waiting for a free connection slot, looks whether it should stop
_SLOT_POLL = 0.2

_TOKEN_FORM_LIMIT = 64 << 10

#: file bodies up to this size (manifests, image configs) are read and sent in the same
#: write as the headers: one syscall and one segment instead of a write plus a sendfile
_INLINE_FILE = 64 << 10


class RegistryServer(ThreadingHTTPServer):
    """A bound registry server; ``serve_forever()`` runs it, ``shutdown()`` stops it."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        *,
        storage: Storage,
        authorizer: Authorizer,
        token_auth: TokenAuth | None = None,
        tls: ssl.SSLContext | None = None,
        log_level: int = LOG_LEVELS["warn"],
        log_stream: TextIO | None = None,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self.storage = storage
        self.authorizer = authorizer
        self.token_auth = token_auth
        self.tls = tls
        self.log_level = log_level
        self.log_stream = log_stream if log_stream is not None else sys.stderr
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        self._closing = threading.Event()
        super().__init__(address, RegistryRequestHandler)
        if tls is not None:
            # handshakes happen in the connection's own thread, not in accept()
            self.socket = tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host!s}:{port}"

    def log(self, level: str, message: str) -> None:
        if LOG_LEVELS[level] >= self.log_level:
            with contextlib.suppress(OSError, ValueError):
                self.log_stream.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {level} {message}\n")
                self.log_stream.flush()

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        """Serve the connection on a thread of its own once one of ``max_connections`` slots is free."""
        try:
            while not self._slots.acquire(timeout=_SLOT_POLL):
                if self._closing.is_set():
                    self.shutdown_request(request)
                    return
        except BaseException:  # SIGTERM's _Stop while waiting: the connection is not ours to serve
            self.shutdown_request(request)
            raise
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def shutdown(self) -> None:
        self._closing.set()  # an accept loop waiting for a slot stops waiting
        super().shutdown()

    def handle_error(self, request: object, client_address: object) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, ssl.SSLError)):
            # a client that hangs up, stalls or fails its TLS handshake is not the server's failure
            self.log("debug", f"connection from {client_address}: {exc!r}")
            return
        self.log("error", f"connection from {client_address} failed:\n{traceback.format_exc().rstrip()}")


class RegistryRequestHandler(BaseHTTPRequestHandler):
    """Turns each HTTP request into a ``handlers.Request`` and writes the ``Response``."""

    protocol_version = "HTTP/1.1"
    server_version = "pallet-registry"
    sys_version = ""

    def version_string(self) -> str:
        return self.server_version

    rbufsize = 1 << 16
    #: an idle keep-alive connection is closed after this many seconds
    timeout = 300
    server: RegistryServer

    def setup(self) -> None:
        deadline = time.monotonic() + self.server.header_timeout
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            # the handshake is part of the header phase
            self.connection.settimeout(self.server.header_timeout)
            self.connection.do_handshake()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # every read goes through the deadline reader; the plain file the base class made is not used
        self.rfile.close()
        self._reader = _DeadlineReader(self.connection, self.timeout)
        self._reader.deadline = deadline
        self._buffered = io.BufferedReader(self._reader, self.rbufsize)
        self.rfile = self._buffered
        self._kept_alive = False

    def handle_one_request(self) -> None:
        """Wait for a request, then give its line and headers ``header_timeout`` seconds to arrive.

        A kept-alive connection may sit idle for ``timeout`` seconds before
        the next request's first byte; the first request's deadline runs from
        the connection (``setup``).
        """
        if self._kept_alive:
            self._reader.deadline = None
            try:
                if not self._buffered.peek(1):
                    self.close_connection = True
                    return
            except (TimeoutError, ConnectionError):
                self.close_connection = True
                return
            self._reader.deadline = time.monotonic() + self.server.header_timeout
        self._kept_alive = True
        super().handle_one_request()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # _handle logs one line per request, with its duration

    def log_message(self, format: str, *args: object) -> None:
        self.server.log("debug", format % args)

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _base_url(self) -> str:
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return f"{'https' if self.server.tls else 'http'}://{host}"

    def _handle(self) -> None:
        self._reader.end_deadline()  # the headers are in; a body may take as long as it takes
        started = time.monotonic()
        method = self.command
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        body: Body | None = None
        try:
            body = Body(self.rfile, self.headers)  # type: ignore[arg-type]  # a BufferedReader
            if parts.path == "/token" and self.server.token_auth is not None:
                response = self._token(query, body)
            else:
                route = match(parts.path)
                if route is None:
                    raise RegistryError("UNSUPPORTED", f"no endpoint at {parts.path}", status=404)
                request = Request(method, route, query, self.headers, body)
                self.server.authorizer.authorize(
                    self.headers.get("Authorization"), needed_scopes(request), self._base_url()
                )
                response = dispatch(request, self.server.storage)
        except RegistryError as err:
            response = _error_response(err)
        except PalletError as err:
            status = err.http_status
            response = _error_response(RegistryError("UNKNOWN", str(err), status=status))
        except (ConnectionError, TimeoutError) as err:
            self.server.log("info", f'{self.client_address[0]} "{method} {parts.path}" client gone: {err}')
            self.close_connection = True
            return
        except OSError as err:
            self.server.log("error", f'"{method} {parts.path}" failed: {err}')
            response = _error_response(RegistryError("UNKNOWN", f"storage error: {err.strerror or err}"))
        except Exception:  # noqa: BLE001 - a bug: the client gets a 500, the operator the traceback
            self.server.log(
                "error", f'"{method} {parts.path}" failed unexpectedly:\n{traceback.format_exc().rstrip()}'
            )
            response = _error_response(
                RegistryError("UNKNOWN", "internal server error; the registry's log has the details")
            )
        try:
            sent = self._send(method, response, body)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
            sent = -1
        if self.server.log_level <= LOG_LEVELS["info"]:  # not even formatted when it is not logged
            elapsed = (time.monotonic() - started) * 1000
            self.server.log(
                "info",
                f'{self.client_address[0]} "{method} {self.path}" {response.status} {sent} {elapsed:.1f}ms',
            )

    def _token(self, query: dict[str, list[str]], body: Body) -> Response:
        auth = self.server.token_auth
        assert auth is not None
        authorization = self.headers.get("Authorization")
        scopes = query.get("scope", [])
        service = query.get("service", [""])[0]
        if self.command == "POST":
            # the OAuth2 form of the token request (docker's CLI sends it): password grant only
            form = parse_qs(body.read_all(_TOKEN_FORM_LIMIT).decode("utf-8", "replace"))
            if form.get("grant_type", [""])[0] != "password":
                raise RegistryError("UNSUPPORTED", "only grant_type=password is supported", status=400)
            import base64

            user, password = form.get("username", [""])[0], form.get("password", [""])[0]
            authorization = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            scopes = form.get("scope", [])
            service = form.get("service", [""])[0]
        elif self.command != "GET":
            raise RegistryError("UNSUPPORTED", "the token endpoint takes GET or POST", status=405)
        answer = auth.issue(authorization, scopes, service)
        answer["issued_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return Response(200, {"Content-Type": "application/json"}, json.dumps(answer).encode())

    def _send(self, method: str, response: Response, body: Body | None) -> int:
        """Write ``response``; return the body bytes sent."""
        headers = dict(response.headers)
        if body is None or not body.drain():
            self.close_connection = True
            headers["Connection"] = "close"
        payload = response.body
        length = payload.length if isinstance(payload, FileBody) else len(payload)
        headers.setdefault("Content-Length", str(length))
        if method == "HEAD" or not length:
            self._write_head(response, headers)
            return 0
        if isinstance(payload, FileBody) and length > _INLINE_FILE:
            with open(payload.path, "rb") as f:
                self._write_head(response, headers, more=True)
                sent = self._sendfile(f, payload.offset, payload.length)
        else:
            data = _read_span(payload) if isinstance(payload, FileBody) else payload
            self._write_head(response, headers, data)
            sent = len(data)
        if sent < length:
            self.close_connection = True  # the body came out short: the framing is lost
        return sent

    def _write_head(
        self, response: Response, headers: dict[str, str], body: bytes = b"", *, more: bool = False
    ) -> None:
        """Send the status line, the headers and ``body`` in one write (one segment, no Nagle wait).

        ``more``: a sendfile body follows; ``MSG_MORE`` lets the kernel put the
        head in the same segment as the first bytes of the file instead of
        sending a small segment of its own.
        """
        status = response.status
        lines = [
            f"{self.protocol_version} {status} {self.responses.get(status, ('',))[0]}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
            "Docker-Distribution-API-Version: registry/2.0",
        ]
        lines += [f"{key}: {value}" for key, value in headers.items()]
        lines += [f"{key}: {value}" for key, value in response.repeated]
        lines.append("\r\n")
        head = "\r\n".join(lines).encode("latin-1", "strict")
        if more and not isinstance(self.connection, ssl.SSLSocket):  # SSL sockets take no flags
            self.connection.sendall(head, socket.MSG_MORE)
        else:
            self.wfile.write(head + body)

    def _sendfile(self, f: BinaryIO, offset: int, count: int) -> int:
        """Send ``count`` bytes of ``f`` from ``offset``; returns the bytes sent.

        ``socket.sendfile`` on a socket with a timeout polls before every
        ``sendfile(2)`` and gives back the GIL each time the socket buffer
        fills; a blocking socket with a kernel send timeout (``SO_SNDTIMEO``)
        sends a whole blob in a few calls, and a stalled client still cannot
        hold the thread forever.
        """
        sock = self.connection
        if isinstance(sock, ssl.SSLSocket):  # no kernel TLS here: sendfile would only copy through Python
            sent: int = sock.sendfile(f, offset, count)
            return sent
        timeout = sock.gettimeout()
        sock.settimeout(None)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", int(self.timeout), 0))
        done = 0
        try:
            while done < count:
                try:
                    n = os.sendfile(sock.fileno(), f.fileno(), offset + done, count - done)
                except BlockingIOError:
                    raise TimeoutError("client stopped reading") from None
                if n == 0:
                    break  # the file is shorter than it was: the client sees a short body
                done += n
        finally:
            sock.settimeout(timeout)
        return done


class _DeadlineReader(io.RawIOBase):
    """The connection's reads, bounded by ``deadline`` (a ``time.monotonic()`` value) while one is set.

    Without a deadline each read waits at most ``idle`` seconds. ``TimeoutError``
    when the deadline passes, however the bytes trickle in.
    """

    def __init__(self, sock: socket.socket, idle: float | None) -> None:
        super().__init__()
        self._sock = sock
        self._idle = idle
        self._timeout: float | None = sock.gettimeout()
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def _set_timeout(self, timeout: float | None) -> None:
        if timeout != self._timeout:  # settimeout is a syscall: not on every read of a body
            self._sock.settimeout(timeout)
            self._timeout = timeout

    def end_deadline(self) -> None:
        self.deadline = None
        self._set_timeout(self._idle)

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.deadline is None:
            self._set_timeout(self._idle)
        else:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the request's headers did not arrive in time")
            self._set_timeout(remaining)
        return self._sock.recv_into(buffer)


def _read_span(body: FileBody) -> bytes:
    """The bytes of a small file body (short if the file is shorter than promised)."""
    fd = os.open(body.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.pread(fd, body.length, body.offset)
    finally:
        os.close(fd)


def _error_response(err: RegistryError) -> Response:
    headers = {"Content-Type": "application/json"}
    headers.update(err.headers)
    return Response(err.status, headers, error_body([err]))


def make_server(
    address: tuple[str, int],
    *,
    storage: Storage,
    authorizer: Authorizer,
    token_auth: TokenAuth | None = None,
    tls: ssl.SSLContext | None = None,
    log_level: int = LOG_LEVELS["warn"],
    log_stream: TextIO | None = None,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> RegistryServer:
    """A registry server bound to ``address`` (port 0 picks a free port), not yet serving."""
    return RegistryServer(
        address,
        storage=storage,
        authorizer=authorizer,
        token_auth=token_auth,
        tls=tls,
        log_level=log_level,
        log_stream=log_stream,
        header_timeout=header_timeout,
        max_connections=max_connections,
    )


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server TLS context from a PEM certificate chain and key; ``InvalidArgument`` if unusable."""
    from pallet.errors import InvalidArgument

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidArgument(f"cannot load TLS certificate {cert} / key {key}: {exc}") from None
    return context
