"""The transport's TLS policy: verified HTTPS fails with an x509 message that suggests --insecure-registry."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pallet.registry.client import hosts, transport
from pallet.registry.client.errors import TLSFailure
from pallet.registry.client.repository import Registry, Repository
from pallet.registry.client.transport import Transport


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[str]:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=self-signed",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_untrusted_certificate_is_a_tls_failure_suggesting_insecure_registry(
    tls_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pretend the loopback registry is a remote one, so its certificate is checked
    monkeypatch.setattr(hosts, "is_insecure", lambda registry, insecure=(): False)
    monkeypatch.setattr(transport.hosts, "is_insecure", lambda registry, insecure=(): False)
    t = Transport()
    try:
        with pytest.raises(TLSFailure) as err:
            Repository(Registry(t, tls_server, None), "app").get_manifest("v1", what="manifest")
    finally:
        t.close()
    assert str(err.value).startswith(f"x509: TLS with registry {tls_server} failed:")
    assert f"--insecure-registry {tls_server}" in str(err.value)
    assert err.value.exit_code == 76


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_insecure_loopback_registry_with_tls_is_used_without_verification(tls_server: str) -> None:
    t = Transport()
    try:
        assert t.base_url(tls_server) == f"https://{tls_server}"
    finally:
        t.close()


class _FirstBytes:
    """A loopback server that notes how each connection opens: a TLS ClientHello or plain HTTP.

    A ClientHello gets the ``400`` a plain HTTP server sends it; plain requests get ``200 {}``.
    """

    def __init__(self) -> None:
        self.opened: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.host = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="first-bytes")
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(10)
                first = conn.recv(1)
                if first == b"\x16":  # a TLS handshake record: answer as a plain HTTP server does
                    self.opened.append("tls")
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                    continue
                self.opened.append("http")
                data = first
                while b"\r\n\r\n" not in data:
                    piece = conn.recv(4096)
                    if not piece:
                        break
                    data += piece
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._listener.close()


@pytest.fixture
def first_bytes() -> Iterator[_FirstBytes]:
    server = _FirstBytes()
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_loopback_registry_is_tried_over_https_first_then_plain_http_as_docker_does(
    first_bytes: _FirstBytes, name: str
) -> None:
    # docker (moby registry/service_v2.go lookupV2Endpoints) lists https:// first and, for an
    # insecure registry, http:// after it; 127.0.0.0/8, ::1 and localhost are insecure by default
    host = first_bytes.host.replace("127.0.0.1", name)
    t = Transport()
    try:
        base = t.base_url(host)
        assert base == f"http://{host}"
        assert t.base_url(host) == base  # decided once per registry
        assert t.request("GET", f"{base}/v2/", registry=host).status == 200
    finally:
        t.close()
    assert first_bytes.opened == ["tls", "http"]


def test_a_registry_that_is_not_insecure_is_never_tried_over_plain_http(
    first_bytes: _FirstBytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport.hosts, "is_insecure", lambda registry, insecure=(): False)
    t = Transport()
    try:
        with pytest.raises(TLSFailure):
            Repository(Registry(t, first_bytes.host, None), "app").get_manifest("v1", what="manifest")
    finally:
        t.close()
    assert "http" not in first_bytes.opened
