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
    # the client's wait for the removal may return before the remover has written destroy (dockerd
    # too tells waiters before it logs the event): replay until it is there
    for _ in range(100):
        until = str(time.time() + 0.01)
        out = api.docker_ok(
            "events",
            "--since",
            "0",
            "--until",
            until,
            "--filter",
            "container=evrun",
            "--format",
            "{{.Action}}",
        )
        if out.split()[-1:] == ["destroy"]:
            break
        time.sleep(0.1)
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
    assert seen[:3] == ["create", "attach", "start"]  # dockerd's order for a foreground run
    assert "die" in seen
    assert api.alive()


def test_an_events_stream_whose_client_hangs_up_ends_while_nothing_happens(api: ApiService) -> None:
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(api.socket_path)
    sock.sendall(
        b"GET /v1.47/events?filters=%7B%22type%22%3A%5B%22volume%22%5D%7D HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
    sock.close()  # gone, and no event comes to find that out by writing
    deadline = time.monotonic() + 60
    while "GET /v1.47/events?filters" not in api.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "GET /v1.47/events?filters" in api.log()  # the request ended: its thread is free


def test_docker_events_show_attachments_in_dockerds_order_and_prunes(api: ApiService) -> None:
    need_docker()
    api.docker_ok("network", "create", "evapinet")
    cid = api.docker_ok(
        "run", "-d", "--name", "evapi", "--network", "evapinet", "-v", "evapivol:/data", "busybox", "true"
    ).strip()  # fmt: skip
    # it exits on its own: the disconnect and unmount come from its shim, after its die
    deadline = time.monotonic() + 60
    while True:
        lines = api.docker_ok(
            "events", "--since", "0", "--until", str(time.time()), "--filter", "event=connect",
            "--filter", "event=mount", "--filter", "event=start", "--filter", "event=die",
            "--filter", "event=disconnect", "--filter", "event=unmount", "--format", "{{json .}}",
        ).splitlines()  # fmt: skip
        out = [
            " ".join(
                (d["Type"], d["Action"], d["Actor"]["Attributes"].get("container", d["Actor"]["ID"][:12]))
            )
            for d in map(json.loads, lines)
        ]
        if out[-1:] == [f"volume unmount {cid}"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert out == [
        f"network connect {cid}",
        f"volume mount {cid}",
        f"container start {cid[:12]}",
        f"container die {cid[:12]}",
        f"network disconnect {cid}",
        f"volume unmount {cid}",
    ]
    api.docker_ok("rm", "evapi")
    assert "Total reclaimed space" in api.docker_ok("container", "prune", "-f")
    api.docker_ok("network", "prune", "-f")
    api.docker_ok("volume", "prune", "-a", "-f")
    pruned = api.docker_ok(
        "events", "--since", "0", "--until", str(time.time()), "--filter", "event=prune",
        "--format", "{{json .}}",
    ).splitlines()  # fmt: skip
    docs = [json.loads(line) for line in pruned]
    assert [(d["Type"], d["Actor"]["Attributes"]) for d in docs] == [
        ("container", {"reclaimed": "0"}),
        ("network", {"reclaimed": "0"}),
        ("volume", {"reclaimed": "0"}),
    ]
    assert "id" not in docs[0]
    assert docs[0]["status"] == "prune"
