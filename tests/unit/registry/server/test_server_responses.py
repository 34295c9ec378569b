"""How the registry's HTTP server writes responses: small bodies with their headers, keep-alive kept."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pallet.oci.digest import Digest
from pallet.registry.server.auth import NoAuth
from pallet.registry.server.server import RegistryServer, make_server
from pallet.registry.server.storage import Storage

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _digest(data: bytes) -> Digest:
    return Digest("sha256:" + hashlib.sha256(data).hexdigest())


def _store_blob(storage: Storage, name: str, data: bytes) -> Digest:
    digest = storage.store_blob(data)
    storage.link_blob(name, digest)
    return digest


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RegistryServer]:
    srv = make_server(("127.0.0.1", 0), storage=Storage(str(tmp_path)), authorizer=NoAuth())
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        thread.join()
        srv.server_close()


@pytest.fixture
def server_writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, int]]:
    """Every ``sendall`` made by a thread other than the test's own: (data, flags)."""
    writes: list[tuple[bytes, int]] = []
    original = socket.socket.sendall
    main = threading.current_thread()

    def spy(self: socket.socket, data: bytes, flags: int = 0) -> None:
        if threading.current_thread() is not main:
            writes.append((bytes(data), flags))
        original(self, data, flags)

    monkeypatch.setattr(socket.socket, "sendall", spy)
    return writes


def _connect(srv: RegistryServer) -> http.client.HTTPConnection:
    host, port = srv.server_address[:2]
    return http.client.HTTPConnection(str(host), port, timeout=10)


def test_manifest_goes_out_in_one_write_with_its_headers(
    server: RegistryServer, server_writes: list[tuple[bytes, int]]
) -> None:
    data = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST}).encode()
    server.storage.put_manifest("app", data, OCI_MANIFEST, tags=["v1"], subject=None, referrer=None)
    conn = _connect(server)
    conn.request("GET", "/v2/app/manifests/v1")
    response = conn.getresponse()
    assert response.read() == data
    assert response.getheader("Docker-Content-Digest") == _digest(data)
    assert response.getheader("Content-Type") == OCI_MANIFEST
    assert len(server_writes) == 1
    head, _, body = server_writes[0][0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert body == data
    conn.close()


def test_large_blob_follows_a_head_marked_more_and_the_connection_stays_open(
    server: RegistryServer, server_writes: list[tuple[bytes, int]]
) -> None:
    data = os.urandom(300_000)  # above the inline limit: sent with sendfile
    digest = _store_blob(server.storage, "app", data)
    conn = _connect(server)
    conn.request("GET", f"/v2/app/blobs/{digest}")
    response = conn.getresponse()
    assert response.status == 200
    assert response.read() == data
    assert [flags for _, flags in server_writes] == [socket.MSG_MORE]
    assert server_writes[0][0].endswith(b"Content-Length: 300000\r\n\r\n")
    conn.request("GET", f"/v2/app/blobs/{digest}", headers={"Range": "bytes=10-19"})
    partial = conn.getresponse()
    assert (partial.status, partial.read()) == (206, data[10:20])
    assert conn.sock is not None  # the same connection carried both requests
    conn.close()


def test_head_of_a_manifest_gives_its_length_and_no_body(server: RegistryServer) -> None:
    data = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST}).encode()
    digest = server.storage.put_manifest("app", data, OCI_MANIFEST, tags=["v1"], subject=None, referrer=None)
    conn = _connect(server)
    conn.request("HEAD", f"/v2/app/manifests/{digest}")
    head = conn.getresponse()
    assert head.status == 200
    assert head.getheader("Content-Length") == str(len(data))
    assert head.read() == b""
    conn.request("GET", "/v2/app/manifests/missing")
    missing = conn.getresponse()
    assert missing.status == 404
    assert json.loads(missing.read())["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    conn.close()
