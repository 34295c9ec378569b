"""SIGKILL of the service during ``docker pull``: the image store validates, a restarted service serves,
and a second pull of the same image completes."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pallet.errors import NotFound
from pallet.image.store import ImageStore
from pallet.testing.images import validate_image
from pallet.testing.registry_server import pallet_registry

if TYPE_CHECKING:
    from conftest import ApiService

pytestmark = pytest.mark.root

#: layers of random bytes (incompressible), so the pull transfers this much per layer
_LAYER_MB = 20
_LAYERS = 3


def _make_layers(api: ApiService, target: str) -> None:
    """``target``: busybox plus ``_LAYERS`` layers of ``_LAYER_MB`` MB of random bytes, one commit each."""
    base = "busybox"
    for n in range(_LAYERS):
        api.docker_ok(
            "run", "--name", f"maker{n}", base,
            "dd", "if=/dev/urandom", f"of=/big{n}", "bs=1M", f"count={_LAYER_MB}",
        )  # fmt: skip
        api.docker_ok("commit", f"maker{n}", target)
        api.docker_ok("rm", f"maker{n}")
        base = target


def test_sigkill_during_pull_leaves_a_valid_store_and_a_second_pull_completes(
    api: ApiService, tmp_path: Path
) -> None:
    api.need_docker()
    with pallet_registry(api.env.argv(), tmp_path / "registry") as host:
        target = f"{host}/crash/big:v1"
        _make_layers(api, target)
        api.docker_ok("push", target)
        api.docker_ok("rmi", target)
        client = subprocess.Popen(
            ["/usr/local/bin/docker", "pull", target],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=api.docker_env(),
        )
        assert client.stdout is not None
        seen = []
        for line in client.stdout:  # the first layer's transfer has begun: kill the service now
            seen.append(line)
            if "Pulling fs layer" in line or "Downloading" in line:
                break
        api.kill()
        client.communicate(timeout=60)
        assert any("Pulling fs layer" in line for line in seen), seen
        with ImageStore.open(api.env.root) as store:
            validate_image(store, "busybox:latest")
            # the kill lands mid-transfer: the image is whole or not there, never half-stored
            with contextlib.suppress(NotFound):
                store.resolve(target)
                validate_image(store, target)
        api.start()
        assert api.request("GET", "/_ping")[0] == 200
        assert "busybox:latest" in api.docker_ok("images", "--format", "{{.Repository}}:{{.Tag}}").split()
        pulled = api.docker_ok("pull", target)
        assert f"Status: Downloaded newer image for {target}" in pulled or "Image is up to date" in pulled
        with ImageStore.open(api.env.root) as store:
            validate_image(store, target)
            validate_image(store, "busybox:latest")
        assert api.docker_ok("run", "--rm", target, "ls", "/big0", f"/big{_LAYERS - 1}").split() == [
            "/big0",
            f"/big{_LAYERS - 1}",
        ]
