"""``docker update`` through ``pallet system service``: the running container's cgroup changes, inspect
shows the new values, the ``update`` event is recorded, and refusals carry dockerd's words."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import pytest

from pallet.testing.host import require_cgroup_v1_file

if TYPE_CHECKING:
    from conftest import ApiService

pytestmark = pytest.mark.root


@pytest.fixture
def api(api: ApiService) -> ApiService:
    api.need_docker()
    return api


def test_docker_update_changes_the_running_containers_limits(api: ApiService) -> None:
    require_cgroup_v1_file("memory", "memory.limit_in_bytes")
    api.docker_ok("run", "-d", "--name", "web", "busybox", "sleep", "300")
    out = api.docker_ok(
        "update",
        "--memory",
        "48m",
        "--memory-swap",
        "96m",
        "--cpu-shares",
        "256",
        "--restart",
        "always",
        "web",
    )
    assert out == "web\n"
    inside = api.docker_ok("exec", "web", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert inside.strip() == str(48 << 20)
    host = json.loads(api.docker_ok("inspect", "-f", "{{json .HostConfig}}", "web"))
    assert (host["Memory"], host["MemorySwap"], host["CpuShares"]) == (48 << 20, 96 << 20, 256)
    assert host["RestartPolicy"] == {"Name": "always", "MaximumRetryCount": 0}
    until = str(time.time() + 0.01)
    events = api.docker_ok(
        "events", "--since", "0", "--until", until, "--filter", "container=web", "--format", "{{.Action}}"
    )
    assert "update" in events.split()


def test_docker_update_refusals_carry_dockerds_words(api: ApiService) -> None:
    api.docker_ok("run", "-d", "--name", "web", "busybox", "sleep", "300")
    done = api.docker("update", "--memory", "1m", "web")
    assert done.returncode == 1
    assert "Cannot update container" in done.stderr
    assert "Minimum memory limit allowed is 6MB" in done.stderr
    done = api.docker("update", "--cpus", "0.5", "nosuch")
    assert done.returncode == 1
    assert "No such container: nosuch" in done.stderr
