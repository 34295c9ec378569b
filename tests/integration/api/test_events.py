"""``GET /events`` through the docker CLI: what the service and daemonless ``pallet`` commands did."""

from __future__ import annotations

import json
import subprocess
import time
from typing import TYPE_CHECKING

import pytest

from pallet.testing.host import require_host_path

if TYPE_CHECKING:
    from conftest import ApiService

pytestmark = pytest.mark.root


def need_docker() -> None:
    require_host_path("/usr/local/bin/docker", "the docker CLI")


def test_docker_events_replays_with_filters_and_times(api: ApiService) -> None:
    need_docker()
    api.docker_ok("run", "--rm", "--name", "evrun", "busybox", "true")
    api.docker_ok("volume", "create", "evvol")
    until = str(time.time() + 0.01)
    out = api.docker_ok(
        "events", "--since", "0", "--until", until, "--filter", "container=evrun", "--format", "{{.Action}}"
    )
    assert out.split()[:2] == ["create", "attach"] or out.split()[:2] == ["create", "start"]
    assert out.split()[-1] == "destroy"
    assert "die" in out.split()
    volumes = api.docker_ok(
        "events", "--since", "0", "--until", until, "--filter", "type=volume", "--format", "json"
    )
    assert [json.loads(line)["Actor"]["ID"] for line in volumes.splitlines()] == ["evvol"]
    bad = api.docker("events", "--filter", "colour=red", "--until", until)
    assert bad.returncode != 0
    assert "invalid filter 'colour'" in bad.stderr


def test_docker_events_follows_what_a_daemonless_command_does(api: ApiService) -> None:
    need_docker()
    since = str(time.time())  # from now on, live: nothing is missed while the stream opens
    follower = subprocess.Popen(
        [
            "/usr/local/bin/docker",
            "events",
            "--since",
            since,
            "--filter",
            "container=fromcli",
            "--format",
            "{{.Status}}",
        ],
        env=api.docker_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        api.env.ok("run", "--rm", "--name", "fromcli", "busybox", "true")  # no service involved
        seen = []
        assert follower.stdout is not None
        for line in follower.stdout:
            seen.append(line.strip())
            if line.startswith("destroy"):
                break
    finally:
        follower.kill()
        follower.wait()
    assert seen[:2] == ["create", "start"]
    assert "die" in seen
    assert api.alive()
