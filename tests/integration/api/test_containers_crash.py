"""SIGKILL of the service: containers run on with their logs; a restarted service lists and follows them."""

from __future__ import annotations

import subprocess
import time
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import ApiService

pytestmark = pytest.mark.root

_TICKER = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"


def _docker_process(api: ApiService, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["/usr/local/bin/docker", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=api.docker_env(),
    )


def _state(api: ApiService, name: str) -> str:
    """What the daemonless CLI says of the container (the service may be down)."""
    return api.env.ok("inspect", "-f", "{{.State.Status}}", name).strip()


def test_sigkill_during_run_d_leaves_a_usable_container(api: ApiService) -> None:
    api.need_docker()
    client = _docker_process(api, "run", "-d", "--name", "bg", "busybox", "sh", "-c", _TICKER)
    deadline = time.monotonic() + 60
    while "containers/create" not in api.log() and time.monotonic() < deadline:
        time.sleep(0.005)
    api.kill()  # mid-run: after the create arrived, around the start
    client.communicate(timeout=60)
    api.start()
    listed = api.docker_ok("ps", "-a", "--format", "{{.Names}} {{.State}}").split("\n")
    names = dict(line.split() for line in listed if line)
    if "bg" not in names:  # the create never committed: nothing half-made is left behind
        assert api.env.container_ids() == []
        return
    if names["bg"] == "created":  # the kill came before the start: it starts now
        api.docker_ok("start", "bg")
    assert _state(api, "bg") == "running"
    follow = _docker_process(api, "logs", "-f", "bg")
    assert follow.stdout is not None
    assert follow.stdout.readline().startswith("tick")
    follow.kill()
    follow.wait(timeout=30)


def test_sigkill_during_logs_follow_keeps_the_container_and_a_new_service_follows_it(api: ApiService) -> None:
    api.need_docker()
    api.docker_ok("run", "-d", "--name", "ticker", "busybox", "sh", "-c", _TICKER)
    follow = _docker_process(api, "logs", "-f", "ticker")
    assert follow.stdout is not None
    assert follow.stdout.readline().startswith("tick")
    api.kill()
    follow.communicate(timeout=60)  # its stream ends with the service
    assert _state(api, "ticker") == "running"
    before = api.env.ok("logs", "ticker").count("tick")
    api.start()
    assert api.docker_ok("ps", "--format", "{{.Names}}") == "ticker\n"
    again = _docker_process(api, "logs", "-f", "ticker")
    assert again.stdout is not None
    seen = []
    for _ in range(before + 100):  # the old ticks, then ticks written after the kill, live
        line = again.stdout.readline()
        seen.append(line)
        if not line or int(line.split()[1]) > before:
            break
    again.kill()
    again.wait(timeout=30)
    assert int(seen[-1].split()[1]) > before, seen[-3:]
    assert _state(api, "ticker") == "running"


def test_a_client_that_goes_away_ends_its_follow_and_attach_and_the_container_runs_on(
    api: ApiService,
) -> None:
    api.need_docker()
    api.docker_ok("run", "-d", "--name", "quiet", "busybox", "sleep", "300")
    clients = [_docker_process(api, "logs", "-f", "quiet"), _docker_process(api, "attach", "quiet")]
    time.sleep(2)  # both requests are being served (the service logs a request once it is over)
    deadline = time.monotonic() + 30
    for client in clients:
        client.kill()
        client.wait(timeout=30)

    def ended() -> bool:  # the service logs a request when its answer is over
        lines = api.log().splitlines()
        return any("/logs?follow=1" in line and " 200 " in line for line in lines) and any(
            "quiet/attach" in line and " 101 " in line for line in lines
        )

    while not ended() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ended(), api.log()
    assert _state(api, "quiet") == "running"
