"""The transport's TLS policy: verified HTTPS fails with an x509 message that suggests --insecure-registry."""

from __future__ import annotations

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
