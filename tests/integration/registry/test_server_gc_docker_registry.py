"""``pallet registry garbage-collect`` keeps and deletes what docker-registry's own
``garbage-collect`` does, on the same pushes made to both (Debian's distribution 2.8)."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from client_fixtures import PASSWORD, USER, DockerRegistry
from server_process import RegistryProcess

from pallet.oci import mediatypes

_MAIN = "from pallet.cli.main import main; raise SystemExit(main())"

pytestmark = pytest.mark.skipif(shutil.which("docker-registry") is None, reason="needs docker-registry")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Client:
    """Just enough of the distribution API to push blobs and manifests, delete and look."""

    def __init__(self, host: str, *, auth: bool) -> None:
        self.host = host
        self.headers = {}
        if auth:
            token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"

    def _request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str]]:
        conn = http.client.HTTPConnection(self.host, timeout=30)
        try:
            conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
            resp = conn.getresponse()
            resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()

    def blob(self, repository: str, data: bytes) -> str:
        status, headers = self._request("POST", f"/v2/{repository}/blobs/uploads/")
        assert status == 202, status
        location = urllib.parse.urlsplit(headers["location"])
        query = f"{location.query}&" if location.query else ""
        digest = _digest(data)
        status, _ = self._request(
            "PUT",
            f"{location.path}?{query}digest={digest}",
            data,
            {"Content-Type": "application/octet-stream"},
        )
        assert status == 201, status
        return digest

    def image(self, repository: str, name: str, layers: list[bytes], *, tag: str | None) -> str:
        config = json.dumps({"architecture": "amd64", "os": "linux", "name": name}).encode()
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": mediatypes.OCI_MANIFEST,
                "config": {
                    "mediaType": mediatypes.OCI_CONFIG,
                    "digest": self.blob(repository, config),
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": mediatypes.OCI_LAYER_GZIP,
                        "digest": self.blob(repository, b),
                        "size": len(b),
                    }
                    for b in layers
                ],
            }
        ).encode()
        digest = _digest(body)
        status, _ = self._request(
            "PUT",
            f"/v2/{repository}/manifests/{tag or digest}",
            body,
            {"Content-Type": mediatypes.OCI_MANIFEST},
        )
        assert status == 201, status
        return digest

    def delete_manifest(self, repository: str, digest: str) -> None:
        status, _ = self._request("DELETE", f"/v2/{repository}/manifests/{digest}")
        assert status == 202, status

    def present(self, repository: str, kind: str, digest: str) -> bool:
        accept = {"Accept": mediatypes.OCI_MANIFEST} if kind == "manifests" else {}
        status, _ = self._request("HEAD", f"/v2/{repository}/{kind}/{digest}", headers=accept)
        assert status in (200, 404), status
        return status == 200


def _push(client: Client) -> dict[str, tuple[str, str, str]]:
    """The same pushes on either registry; name -> (repository, blobs|manifests, digest) to look at."""
    shared, l1, l2, l4, l5 = (os.urandom(1) + bytes([i]) * 3000 for i in range(5))
    things: dict[str, tuple[str, str, str]] = {}
    things["tagged"] = ("a", "manifests", client.image("a", "tagged", [l1, shared], tag="latest"))
    things["untagged"] = ("a", "manifests", client.image("a", "untagged", [l2], tag=None))
    things["orphan"] = ("a", "blobs", client.blob("a", b"uploaded, never in a manifest"))
    things["retagged"] = ("b", "manifests", client.image("b", "old", [shared], tag="v1"))
    things["current"] = ("b", "manifests", client.image("b", "new", [l4], tag="v1"))  # moves v1
    deleted = client.image("a", "deleted", [l5], tag="gone")
    client.delete_manifest("a", deleted)
    things["deleted"] = ("a", "manifests", deleted)
    for name, data, repository in (
        ("layer-1", l1, "a"),
        ("layer-2", l2, "a"),
        ("layer-4", l4, "b"),
        ("layer-5", l5, "a"),
        ("shared-in-a", shared, "a"),
        ("shared-in-b", shared, "b"),
    ):
        things[name] = (repository, "blobs", _digest(data))
    return things


def _presence(client: Client, things: dict[str, tuple[str, str, str]]) -> dict[str, bool]:
    return {name: client.present(*where) for name, where in things.items()}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def _docker(workdir: Path) -> Iterator[DockerRegistry]:
    reg = DockerRegistry(workdir / "docker")
    try:
        yield reg
    finally:
        reg.stop()


@pytest.mark.parametrize("untagged", [False, True], ids=["marked", "delete-untagged"])
def test_collects_what_docker_registry_collects(workdir: Path, untagged: bool) -> None:
    flags = ["--delete-untagged"] if untagged else []
    docker_dir, pallet_storage = workdir / "docker", workdir / "pallet-storage"
    runs: dict[str, dict[str, bool]] = {}
    lines: dict[str, str] = {}

    reg = DockerRegistry(docker_dir)
    try:
        things = _push(Client(reg.host, auth=True))
        runs["docker before"] = _presence(Client(reg.host, auth=True), things)
    finally:
        reg.stop()
    done = subprocess.run(
        ["docker-registry", "garbage-collect", *flags, str(docker_dir / "config.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines["docker"] = next(
        line for line in done.stdout.splitlines() if "eligible for deletion" in line and "marked" in line
    )
    reg = DockerRegistry(docker_dir)
    try:
        runs["docker after"] = _presence(Client(reg.host, auth=True), things)
    finally:
        reg.stop()

    server = RegistryProcess(pallet_storage, workdir / "pallet.log")
    try:
        pallet_things = _push(Client(server.host, auth=False))
        runs["pallet before"] = _presence(Client(server.host, auth=False), pallet_things)
    finally:
        server.stop()
    done = subprocess.run(
        [sys.executable, "-c", _MAIN, "registry", "garbage-collect", *flags, str(pallet_storage)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines["pallet"] = next(
        line for line in done.stdout.splitlines() if "eligible for deletion" in line and "marked" in line
    )
    server = RegistryProcess(pallet_storage, workdir / "pallet-again.log")
    try:
        runs["pallet after"] = _presence(Client(server.host, auth=False), pallet_things)
    finally:
        server.stop()

    assert runs["pallet before"] == runs["docker before"]
    assert runs["pallet after"] == runs["docker after"]
    assert lines["pallet"] == lines["docker"]
    assert not runs["pallet after"]["layer-5"]  # the deleted manifest's only layer
    assert runs["pallet after"]["shared-in-b"]
    assert runs["pallet after"]["untagged"] != untagged
