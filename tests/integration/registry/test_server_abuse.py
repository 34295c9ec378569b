"""``pallet registry serve --auth htpasswd`` under abuse: answers for bad input, limits from its flags."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from server_process import RegistryProcess

pytestmark = pytest.mark.root

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$")
    (tmp_path / "htpasswd").write_text(f"alice:{hashed}\n")
    reg = RegistryProcess(
        tmp_path / "storage",
        tmp_path / "registry.log",
        "--auth",
        "htpasswd",
        "--htpasswd",
        str(tmp_path / "htpasswd"),
        "--header-timeout",
        "0.5",
        "--max-connections",
        "4",
    )
    try:
        yield reg
    finally:
        reg.stop()


def test_served_registry_answers_a_password_longer_than_72_bytes_with_401(registry: RegistryProcess) -> None:
    status, _, body = registry.request("GET", "/v2/", headers=_auth("alice", "s" * 100))
    assert status == 401
    assert registry.error_code(body) == "UNAUTHORIZED"


@pytest.mark.parametrize(
    "manifest",
    [
        pytest.param(b'{"layers":' + b"[" * 100_000 + b"]" * 100_000 + b"}", id="nested-arrays"),
        pytest.param(b'{"schemaVersion":2,"size":' + b"1" * 5000 + b"}", id="number-of-5000-digits"),
    ],
)
def test_served_registry_answers_a_hostile_manifest_with_400(
    registry: RegistryProcess, manifest: bytes
) -> None:
    status, _, body = registry.request(
        "PUT",
        "/v2/app/manifests/v1",
        manifest,
        {"Content-Type": OCI_MANIFEST, **_auth("alice", "s3cret")},
    )
    assert status == 400
    assert json.loads(body)["errors"][0]["code"] == "MANIFEST_INVALID"


def test_served_registry_drops_a_client_that_stalls_in_its_headers(registry: RegistryProcess) -> None:
    with socket.create_connection(("127.0.0.1", registry.port), timeout=20) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthoriz")
        with contextlib.suppress(ConnectionResetError):  # a reset is a close too
            assert sock.recv(1024) == b""
