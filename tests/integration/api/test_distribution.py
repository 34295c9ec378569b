"""``GET /distribution/{name}/json`` against pallet's own registry server on 127.0.0.1."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pallet.testing.host import require_host_path

if TYPE_CHECKING:
    from conftest import ApiService

pytestmark = pytest.mark.root


def test_distribution_inspect_names_the_manifest_and_its_platform(api: ApiService, tmp_path: Path) -> None:
    """What docker-py's ``inspect_distribution`` reads: the descriptor the tag resolves to (the digest
    a push printed) and the image's platform; an unknown tag is docker's 404 with a message."""
    require_host_path("/usr/local/bin/docker", "the docker CLI")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        api.env.argv("registry", "serve", "--addr", f"127.0.0.1:{port}", "--storage", str(tmp_path / "reg")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        target = f"127.0.0.1:{port}/dist/bb:v1"
        api.docker_ok("tag", "busybox", target)
        pushed = api.docker_ok("push", target)
        found = re.search(r"v1: digest: (sha256:[0-9a-f]{64}) size: (\d+)", pushed)
        assert found is not None, pushed
        doc = api.json("GET", f"/v1.47/distribution/{target}/json")
        assert doc["Descriptor"]["digest"] == found[1]
        assert doc["Descriptor"]["size"] == int(found[2])
        assert doc["Descriptor"]["mediaType"].endswith(("manifest.v1+json", "manifest.v2+json"))
        assert doc["Platforms"] == [{"architecture": "amd64", "os": "linux"}]
        status, _, body = api.request("GET", f"/v1.47/distribution/127.0.0.1:{port}/dist/bb:nosuch/json")
        assert status == 404, body
        assert b'"message"' in body
    finally:
        server.terminate()
        server.wait(timeout=30)
