"""The registry under abuse: every request gets an HTTP answer, and no client holds a thread forever."""

from __future__ import annotations

import base64
import http.client
import io
import json
import select
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import bcrypt
import pytest

from pallet.registry.server import server as server_module
from pallet.registry.server.auth import BasicAuth, Htpasswd
from pallet.registry.server.server import RegistryServer, make_server
from pallet.registry.server.storage import Storage

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LONG_PASSWORD = "p" * 72 + "-and-what-bcrypt-never-reads"

#: a generous bound on any wait for the server: a hang fails the test instead of blocking it
WAIT = 20.0


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def htpasswd(tmp_path: Path) -> Htpasswd:
    entries = []
    for user, password in (("alice", b"s3cret"), ("long", LONG_PASSWORD.encode()[:72])):
        # what htpasswd -B makes of a long password: a hash of its first 72 bytes
        hashed = bcrypt.hashpw(password, bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$")
        entries.append(f"{user}:{hashed}\n")
    path = tmp_path / "htpasswd"
    path.write_text("".join(entries))
    return Htpasswd(str(path))


ServerFactory = Callable[..., RegistryServer]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start servers (htpasswd auth unless told otherwise); each is stopped and joined at the end."""
    started: list[tuple[RegistryServer, threading.Thread]] = []

    def start(**options: object) -> RegistryServer:
        options.setdefault("authorizer", BasicAuth(Htpasswd(str(tmp_path / "htpasswd"))))
        srv = make_server(("127.0.0.1", 0), storage=Storage(str(tmp_path / "storage")), **options)  # type: ignore[arg-type]
        thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        started.append((srv, thread))
        return srv

    try:
        yield start
    finally:
        for srv, thread in started:
            srv.shutdown()
            thread.join()
            srv.server_close()


def _request(
    srv: RegistryServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    host, port = srv.server_address[:2]
    conn = http.client.HTTPConnection(str(host), port, timeout=WAIT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _code(body: bytes) -> str:
    return str(json.loads(body)["errors"][0]["code"])


def _connect(srv: RegistryServer) -> socket.socket:
    host, port = srv.server_address[:2]
    return socket.create_connection((str(host), port), timeout=WAIT)


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closes ``sock`` (EOF or reset) within ``WAIT`` seconds, sending nothing."""
    sock.settimeout(WAIT)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


# --- inputs that used to close the connection without an answer ----------------------------------


def test_password_longer_than_72_bytes_gets_401_not_a_dropped_connection(
    htpasswd: Htpasswd, serve: ServerFactory
) -> None:
    srv = serve()
    status, body = _request(srv, "GET", "/v2/", headers=_basic("alice", "x" * 200))
    assert status == 401
    assert _code(body) == "UNAUTHORIZED"


def test_password_longer_than_72_bytes_is_checked_on_its_first_72_as_docker_registry_does(
    htpasswd: Htpasswd, serve: ServerFactory
) -> None:
    assert htpasswd.check("long", LONG_PASSWORD)
    assert htpasswd.check("long", LONG_PASSWORD[:72] + "anything else")
    assert not htpasswd.check("long", "q" + LONG_PASSWORD[1:])
    srv = serve()
    assert _request(srv, "GET", "/v2/", headers=_basic("long", LONG_PASSWORD))[0] == 200


def _push_manifest(srv: RegistryServer, data: bytes) -> tuple[int, bytes]:
    return _request(
        srv,
        "PUT",
        "/v2/app/manifests/v1",
        data,
        {"Content-Type": OCI_MANIFEST, **_basic("alice", "s3cret")},
    )


def test_manifest_of_deeply_nested_arrays_is_refused_with_400(
    htpasswd: Htpasswd, serve: ServerFactory
) -> None:
    srv = serve()
    depth = 200_000  # far past Python's recursion limit, well under the 4 MiB manifest limit
    status, body = _push_manifest(srv, b'{"layers":' + b"[" * depth + b"]" * depth + b"}")
    assert status == 400
    assert _code(body) == "MANIFEST_INVALID"
    assert "nested too deeply" in json.loads(body)["errors"][0]["message"]


def test_manifest_with_a_number_of_thousands_of_digits_is_refused_with_400(
    htpasswd: Htpasswd, serve: ServerFactory
) -> None:
    srv = serve()
    doc = b'{"schemaVersion":2,"config":{"digest":"sha256:' + b"0" * 64 + b'","size":' + b"9" * 5000 + b"}}"
    status, body = _push_manifest(srv, doc)
    assert status == 400
    assert _code(body) == "MANIFEST_INVALID"


def test_unexpected_error_in_a_handler_is_a_500_with_its_traceback_logged_at_the_default_level(
    htpasswd: Htpasswd, serve: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> object:
        raise RuntimeError("a bug in a handler")

    monkeypatch.setattr(server_module, "dispatch", broken)
    log = io.StringIO()
    srv = serve(log_stream=log)  # the default log level
    status, body = _request(srv, "GET", "/v2/app/tags/list", headers=_basic("alice", "s3cret"))
    assert status == 500
    assert _code(body) == "UNKNOWN"
    assert "a bug in a handler" not in body.decode()  # details go to the log, not to clients
    text = log.getvalue()
    assert " error " in text
    assert "Traceback (most recent call last)" in text
    assert "RuntimeError: a bug in a handler" in text


# --- slow and numerous clients -----------------------------------------------------------------


def test_client_that_stops_in_the_middle_of_its_headers_is_disconnected_after_the_header_timeout(
    htpasswd: Htpasswd, serve: ServerFactory
) -> None:
    srv = serve(header_timeout=0.5)
    with _connect(srv) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        assert _closed_by_server(sock)


def test_header_timeout_is_a_deadline_that_trickled_bytes_do_not_extend(
    htpasswd: Htpasswd, serve: ServerFactory
) -> None:
    srv = serve(header_timeout=0.5)
    with _connect(srv) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\n")
        closed = False
        for _ in range(int(WAIT / 0.1)):  # one byte every 0.1 s: each read is quick, the whole is not
            try:
                sock.sendall(b"X")
            except OSError:
                closed = True
                break
            readable, _, _ = select.select([sock], [], [], 0.1)
            if readable:
                closed = _closed_by_server(sock)
                break
        assert closed


def test_connections_beyond_the_bound_wait_until_one_ends(htpasswd: Htpasswd, serve: ServerFactory) -> None:
    srv = serve(max_connections=1)
    host, port = srv.server_address[:2]
    first = http.client.HTTPConnection(str(host), port, timeout=WAIT)
    second = http.client.HTTPConnection(str(host), port, timeout=WAIT)
    try:
        first.request("GET", "/v2/", headers=_basic("alice", "s3cret"))
        answer = first.getresponse()
        assert answer.status == 200
        answer.read()  # the first connection stays open (keep-alive) and holds the only slot

        second.request("GET", "/v2/", headers=_basic("alice", "s3cret"))
        assert second.sock is not None
        readable, _, _ = select.select([second.sock], [], [], 0.5)
        assert not readable  # queued: not served while the slot is taken

        first.close()
        assert second.getresponse().status == 200
    finally:
        first.close()
        second.close()


def test_server_stops_while_a_connection_waits_for_a_slot(htpasswd: Htpasswd, tmp_path: Path) -> None:
    srv = make_server(
        ("127.0.0.1", 0),
        storage=Storage(str(tmp_path / "storage")),
        authorizer=BasicAuth(htpasswd),
        max_connections=1,
    )
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        with _connect(srv) as holder, _connect(srv) as waiting:
            holder.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")  # holds the slot, headers unfinished
            waiting.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
            srv.shutdown()
            thread.join(WAIT)
            assert not thread.is_alive()
    finally:
        if thread.is_alive():
            srv.shutdown()
            thread.join()
        srv.server_close()
