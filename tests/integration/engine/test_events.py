"""``pallet events``: what pallet commands and shims did, in docker's words, recorded for any reader."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import PalletEnv

pytestmark = pytest.mark.root


def recorded(env: PalletEnv, *filters: str) -> list[dict[str, object]]:
    """Every event recorded so far (``--since 0 --until now``: read, no follow), as docker's JSON."""
    args = ["events", "--since", "0", "--until", str(time.time()), "--format", "json"]
    for f in filters:
        args += ["--filter", f]
    return [json.loads(line) for line in env.ok(*args).splitlines()]


def actions(env: PalletEnv, *filters: str) -> list[str]:
    return [str(e["Action"]) for e in recorded(env, *filters)]


def wait_for(env: PalletEnv, action: str, *filters: str) -> list[dict[str, object]]:
    """Poll the recorded events until one with ``action`` is there (a bounded wait, not a timing check)."""
    deadline = time.monotonic() + 60
    while True:
        found = recorded(env, *filters)
        if any(e["Action"] == action for e in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_a_container_life_is_recorded_in_order_with_its_attributes(pallet_env: PalletEnv) -> None:
    cid = pallet_env.ok("run", "-d", "--name", "ev1", "--label", "tier=web", "busybox", "sleep", "60").strip()
    pallet_env.ok("pause", "ev1")
    pallet_env.ok("unpause", "ev1")
    pallet_env.ok("rename", "ev1", "ev2")
    pallet_env.ok("stop", "-t", "1", "ev2")
    pallet_env.ok("rm", "ev2")
    found = wait_for(pallet_env, "destroy", f"container={cid}")
    assert [e["Action"] for e in found] == [
        "create",
        "start",
        "pause",
        "unpause",
        "rename",
        "kill",
        "kill",
        "die",
        "stop",
        "destroy",
    ]
    first = found[0]
    assert first["Type"] == "container"
    assert first["id"] == cid
    assert first["Actor"] == {"ID": cid, "Attributes": {"tier": "web", "image": "busybox", "name": "ev1"}}
    # sleep as PID 1 ignores SIGTERM: the stop signal, then SIGKILL, as docker reports them
    assert [e["Actor"]["Attributes"]["signal"] for e in found if e["Action"] == "kill"] == ["15", "9"]  # type: ignore[index]
    die = next(e for e in found if e["Action"] == "die")
    assert die["Actor"]["Attributes"]["exitCode"] == "137"  # type: ignore[index]
    rename = next(e for e in found if e["Action"] == "rename")
    assert rename["Actor"]["Attributes"]["oldName"] == "/ev1"  # type: ignore[index]
    assert rename["Actor"]["Attributes"]["name"] == "ev2"  # type: ignore[index]


def test_an_exit_nobody_watches_is_recorded_by_the_shim(pallet_env: PalletEnv) -> None:
    cid = pallet_env.ok("run", "-d", "busybox", "sh", "-c", "sleep 0.5; exit 3").strip()
    # no pallet command touches the container: the die event comes from its shim
    found = wait_for(pallet_env, "die", f"container={cid}", "event=die")
    assert [e["Actor"]["Attributes"]["exitCode"] for e in found] == ["3"]  # type: ignore[index]


def test_exec_and_volume_events_are_recorded(pallet_env: PalletEnv) -> None:
    pallet_env.ok("volume", "create", "evdata")
    pallet_env.ok("run", "-d", "--name", "ex", "-v", "evdata:/data", "busybox", "sleep", "60")
    assert pallet_env.pallet("exec", "ex", "sh", "-c", "exit 5").returncode == 5
    execs = recorded(pallet_env, "container=ex", "event=exec_create", "event=exec_start", "event=exec_die")
    assert [e["Action"] for e in execs] == [
        "exec_create: sh -c exit 5",
        "exec_start: sh -c exit 5",
        "exec_die",
    ]
    assert execs[2]["Actor"]["Attributes"]["exitCode"] == "5"  # type: ignore[index]
    pallet_env.ok("rm", "-f", "ex")
    pallet_env.ok("volume", "rm", "evdata")
    assert actions(pallet_env, "type=volume", "volume=evdata") == ["create", "destroy"]


def test_events_follows_what_other_processes_do(pallet_env: PalletEnv) -> None:
    follower = subprocess.Popen(
        pallet_env.argv(
            "events", "--filter", "container=live", "--format", "{{.Status}} {{.Actor.Attributes.name}}"
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)  # let it reach the end of the file; events before it started are not shown
        pallet_env.ok("run", "--rm", "--name", "live", "busybox", "true")
        lines = []
        assert follower.stdout is not None
        for line in follower.stdout:
            lines.append(line.strip())
            if line.startswith("destroy"):
                break
    finally:
        follower.kill()
        follower.wait()
    assert lines[:2] == ["create live", "start live"]
    assert "die live" in lines
    assert lines[-1] == "destroy live"


def test_a_bad_filter_or_time_is_a_usage_error(pallet_env: PalletEnv) -> None:
    bad = pallet_env.pallet("events", "--filter", "colour=red")
    assert bad.returncode == 125
    assert "invalid filter 'colour'" in bad.stderr
    late = pallet_env.pallet("events", "--since", "yesterday-ish")
    assert late.returncode == 125
    assert 'invalid value for "since"' in late.stderr


def test_daemonless_image_commands_record_image_events(pallet_env: PalletEnv, tmp_path: Path) -> None:
    archive = tmp_path / "bb.tar"
    pallet_env.ok("tag", "busybox", "evcopy:v1")
    pallet_env.ok("save", "-o", str(archive), "evcopy:v1")
    pallet_env.ok("rmi", "evcopy:v1")
    pallet_env.ok("load", "-i", str(archive))
    image_id = pallet_env.ok("import", str(archive), "evimported:v1").strip()
    found = recorded(pallet_env, "type=image")
    assert [e["Action"] for e in found] == ["tag", "save", "untag", "load", "import"]
    assert found[0]["Actor"]["Attributes"]["name"] == "evcopy:v1"  # type: ignore[index]
    assert found[3]["Actor"]["ID"] == "evcopy:v1"
    assert found[4]["Actor"]["ID"] == image_id
