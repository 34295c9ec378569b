"""The HTTP server of ``pallet system service``: listeners, the request loop, and what every answer carries.

One thread per connection (the standard library's ``http.server``): a
handler calls the engine's blocking verbs directly, a hijacked connection
(attach, exec) is a plain socket its thread owns, and an idle service is one
small process (no event loop, no extra interpreter). Each request opens the
engine (``Service.open``, well under a millisecond) and closes it once its
answer is sent, so a long ``logs -f`` or ``attach`` never holds up another
request: the engine's own file locks keep concurrent requests, and ``pallet``
commands run beside the service, consistent.

Every answer carries ``Api-Version``, ``OSType``, ``Docker-Experimental``,
``Builder-Version`` and ``Server``; errors are docker's ``{"message": …}``
with the status of their ``pallet.errors`` category (``errors.py``).

Adding a route: see ``routes/__init__.py`` (a handler is ``Request ->
Response``, ``messages.py``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import socketserver
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from pallet.api import versions
from pallet.api.errors import HttpError, error_body, status_of
from pallet.api.hijack import Connection, hung_up, upgrade_head
from pallet.api.messages import Body, Empty, Hijack, Json, Raw, Request, Response, Stream
from pallet.errors import InvalidArgument, PalletError, Unavailable

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from pallet.api.routing import RouteTable
    from pallet.engine.service import Service

__all__ = ["ApiServer", "Tls", "default_host"]

log = logging.getLogger("pallet.api")

SERVER_NAME = "pallet"
#: a body left unread past this is not drained: the connection closes instead
_DRAIN_LIMIT = 1 << 20


def default_host(run_root: str) -> str:
    """The socket of the service of an engine whose run dir is ``run_root``."""
    return f"unix://{os.path.join(run_root, 'docker.sock')}"


class Tls:
    """The files of a TLS listener; client certificates signed by ``ca`` are required (dockerd's ``--tlsverify``)."""

    def __init__(self, *, ca: str, cert: str, key: str) -> None:
        self.ca, self.cert, self.key = ca, cert, key

    def context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            ctx.load_cert_chain(self.cert, self.key)
            ctx.load_verify_locations(cafile=self.ca)
        except (OSError, ssl.SSLError) as e:
            raise InvalidArgument(f"cannot load the TLS files: {e}") from None
        return ctx


def _engine_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pallet")
    except PackageNotFoundError:
        return "0.0.0"


class _Handler(BaseHTTPRequestHandler):
    """One connection's requests, dispatched through the route table."""

    protocol_version = "HTTP/1.1"
    server: _Listener

    def version_string(self) -> str:
        return self.server.api.server_header

    def address_string(self) -> str:
        return str(self.client_address[0]) if self.client_address else "unix"

    def log_message(self, format: str, *args: Any) -> None:
        """http.server's own lines: our dispatcher logs each request once."""

    def setup(self) -> None:
        super().setup()
        self._api_version = versions.MAX_VERSION

    def _common(self) -> dict[str, str]:
        return {
            "Api-Version": versions.text(self._api_version),
            "Builder-Version": "1",
            "Docker-Experimental": "false",
            "Ostype": "linux",
            "Server": self.version_string(),
        }

    def _common_headers(self) -> None:
        for name, value in self._common().items():
            if name != "Server":  # send_response sends it
                self.send_header(name, value)

    def parse_request(self) -> bool:
        # http.server drops a request line of blanks without a word; Go's server answers it
        line: bytes = getattr(self, "raw_requestline", b"")
        if not line.decode("latin-1").split():  # as http.server splits it (\x1c… are blanks to str)
            self.command, self.requestline = "", ""
            self.send_error(400, f"malformed HTTP request {line.decode('latin-1')!r}")
            return False
        return super().parse_request()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (bad request line, unknown method, headers too long) as docker's JSON."""
        self.close_connection = True
        self.request_version = "HTTP/1.1"  # an unreadable request line leaves 0.9: no status line at all
        self._send_error(code, message or "bad request")

    def _send_error(self, status: int, message: str) -> None:
        body = error_body(message)
        self.send_response(status)
        self._common_headers()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _client_gone(self) -> bool:
        """The client closed its end (or the connection broke): nobody reads the answer any more."""
        return hung_up(self.connection)

    def _body(self) -> Body:
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        length_text = self.headers.get("Content-Length")
        length = None
        if length_text is not None and not chunked:
            try:
                length = int(length_text)
            except ValueError:
                length = -1
            if length < 0:
                raise HttpError(400, f"invalid Content-Length: {length_text!r}")
        return Body(self.rfile, length=length, chunked=chunked)

    def _dispatch(self) -> None:
        api = self.server.api
        started = time.monotonic()
        request: Request | None = None
        body: Body | None = None
        status = 500
        try:
            url = urlsplit(self.path)
            body = self._body()
            self._api_version, path = versions.split_version(unquote(url.path))
            match = api.routes.find(self.command, path)
            if match is None:
                raise HttpError(404, "page not found")
            request = Request(
                method=self.command,
                path=path,
                params=match.params,
                query=parse_qs(url.query, keep_blank_values=True),
                headers=self.headers,  # type: ignore[arg-type]
                body=body,
                version=self._api_version,
                open_service=api.open_service,
                shared=api.shared,
                client_gone=self._client_gone,
            )
            response = match.handler(request)
            status = response.status
            self._answer(response, body)
        except PalletError as e:
            status = status_of(e)
            self._refuse(status, e.message, body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:
            log.exception("%s %s failed", self.command, self.path)
            status = 500
            self._refuse(500, f"internal error: {e}", body)
        finally:
            if request is not None:
                request.close()
            log.info("%s %s %d %.1fms", self.command, self.path, status, (time.monotonic() - started) * 1000)

    def _refuse(self, status: int, message: str, body: Body | None) -> None:
        if self.close_connection and getattr(self, "_head_sent", False):
            return  # the answer was under way: the connection closes
        self._finish_body(body)
        try:
            self._send_error(status, message)
        except OSError:
            self.close_connection = True

    def _finish_body(self, body: Body | None) -> None:
        """Read what the handler left of the body, so the next request starts where it should."""
        if body is None:
            self.close_connection = True
            return
        try:
            if not body.done:
                body.read_all(_DRAIN_LIMIT)
        except PalletError:
            self.close_connection = True

    def _start(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        self._common_headers()
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self._head_sent = True

    def _answer(self, response: Response, body: Body) -> None:
        self._head_sent = False
        if not isinstance(response, Hijack):
            self._finish_body(body)
        headers = dict(response.headers)
        head_only = self.command == "HEAD"
        if isinstance(response, Json):
            import json

            data = json.dumps(response.doc).encode() + b"\n"
            self._start(
                response.status,
                {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers},
            )
            if not head_only:
                self.wfile.write(data)
        elif isinstance(response, Raw):
            self._start(
                response.status,
                {"Content-Type": response.content_type, "Content-Length": str(len(response.data)), **headers},
            )
            if not head_only:
                self.wfile.write(response.data)
        elif isinstance(response, Empty):
            if response.status not in (204, 304):
                headers.setdefault("Content-Length", "0")
            self._start(response.status, headers)
        elif isinstance(response, Stream):
            self._stream(response, headers, head_only)
        elif isinstance(response, Hijack):
            self._hijack(response)
        else:
            raise TypeError(f"a handler answered {response!r}")

    def _stream(self, response: Stream, headers: dict[str, str], head_only: bool) -> None:
        chunks = response.chunks
        try:
            self._start(
                response.status,
                {"Content-Type": response.content_type, "Transfer-Encoding": "chunked", **headers},
            )
            if head_only:
                return
            self.wfile.flush()
            for chunk in chunks:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away: closing the iterator stops the work
        except Exception:
            self.close_connection = True  # the head was sent: no status to change, the connection ends
            raise
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def _hijack(self, response: Hijack) -> None:
        upgrade = self.headers.get("Upgrade", "").lower() == "tcp"
        self.close_connection = True
        self._head_sent = True
        self.wfile.flush()
        self.connection.sendall(upgrade_head(upgrade, response.content_type, self._common()))
        response.run(Connection(self.connection, self.rfile))


class _Listener(socketserver.ThreadingMixIn, socketserver.BaseServer):
    """A listening socket (unix or TLS tcp) whose connections ``_Handler`` serves."""

    daemon_threads = True
    block_on_close = False
    api: ApiServer

    def __init__(self, api: ApiServer, sock: socket.socket, tls: ssl.SSLContext | None, path: str) -> None:
        super().__init__(sock.getsockname(), _Handler)
        self.api = api
        self.socket = sock
        self.tls = tls
        self.path = path  # a unix socket's file, removed at shutdown

    def fileno(self) -> int:
        return self.socket.fileno()

    def get_request(self) -> tuple[socket.socket, Any]:
        return self.socket.accept()

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:  # the handshake on the connection's own thread: a slow client blocks nobody
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                log.warning("TLS handshake failed: %s", e)
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that failed outside a request (a client that reset it while idle): logged, no traceback."""
        import sys

        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            log.debug("connection ended: %s", error)
        else:
            log.error("connection failed", exc_info=error)

    def shutdown_request(self, request: Any) -> None:
        with contextlib.suppress(OSError):
            request.shutdown(socket.SHUT_WR)
        self.close_request(request)

    def close_request(self, request: Any) -> None:
        request.close()

    def server_close(self) -> None:
        self.socket.close()
        if self.path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


class ApiServer:
    """The Docker Engine API of one engine (root and run dir) on one or more listeners."""

    def __init__(
        self,
        *,
        root: str,
        run_root: str,
        routes: RouteTable,
        open_service: Callable[[], Service] | None = None,
    ) -> None:
        self.root = root
        self.run_root = run_root
        self.routes = routes
        self.server_header = f"{SERVER_NAME}/{_engine_version()} (linux)"
        self._listeners: list[_Listener] = []
        self._threads: list[threading.Thread] = []
        if open_service is None:
            from pallet.engine.service import Service

            def open_service() -> Service:
                return Service.open(root, run_root)

        self.open_service = open_service
        #: what requests share (``Request.shared``): exec instances, attaches waiting for a start
        self.shared: dict[str, Any] = {}

    def listen(self, hosts: Sequence[str], tls: Tls | None = None) -> None:
        """Bind every host (``unix://PATH``, ``tcp://HOST:PORT`` with ``tls``); nothing is served yet."""
        for host in hosts:
            scheme, _, address = host.partition("://")
            if scheme == "unix" and address:
                self._listeners.append(_Listener(self, _bind_unix(address), None, address))
            elif scheme == "tcp" and address:
                if tls is None:
                    raise InvalidArgument(
                        f"{host}: tcp:// needs --tlsverify with --tlscacert, --tlscert and --tlskey: "
                        "the API gives root on this host to whoever reaches it"
                    )
                self._listeners.append(_Listener(self, _bind_tcp(address), tls.context(), ""))
            else:
                raise InvalidArgument(f"invalid --host {host!r}: use unix:///PATH or tcp://HOST:PORT")

    def addresses(self) -> list[str]:
        out = []
        for listener in self._listeners:
            if listener.path:
                out.append(f"unix://{listener.path}")
            else:
                host, port = listener.socket.getsockname()[:2]
                out.append(f"tcp://{host}:{port}")
        return out

    def start(self) -> None:
        for listener in self._listeners:
            thread = threading.Thread(
                target=listener.serve_forever, name=f"listen {listener.path or 'tcp'}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop accepting, remove the sockets; connections under way end with the process."""
        for listener in self._listeners:
            if any(t.is_alive() for t in self._threads):
                listener.shutdown()
            listener.server_close()
        self._listeners.clear()


def _group_id(name: str) -> int | None:
    import grp

    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def _bind_unix(path: str) -> socket.socket:
    """Listen on ``path``: mode 0660 group ``pallet`` if that group exists, else 0600 (root only).

    A socket file nobody serves any more (a killed service) is replaced; one a
    live service listens on is ``Unavailable``.
    """
    os.makedirs(os.path.dirname(path) or ".", mode=0o711, exist_ok=True)
    if os.path.lexists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # stale: nobody answers
        else:
            raise Unavailable(f"{path}: another service is listening on it; stop that one first")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # never a moment with wider permissions than asked for
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    gid = _group_id("pallet")
    if gid is not None:
        try:
            os.chown(path, 0, gid)
        except OSError:  # rootless: the group is not ours to give; the socket stays ours only
            pass
        else:
            os.chmod(path, 0o660)
    sock.listen(128)
    return sock


def _bind_tcp(address: str) -> socket.socket:
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except (ValueError, OSError) as e:
        raise InvalidArgument(f"invalid tcp address {address!r}: {e}") from None
    family, kind, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(sockaddr)
    except OSError as e:
        sock.close()
        raise Unavailable(f"cannot listen on {address}: {e.strerror}") from None
    sock.listen(128)
    return sock
