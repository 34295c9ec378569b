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


def test_a_foreground_run_records_attach_between_create_and_start(pallet_env: PalletEnv) -> None:
    pallet_env.ok("run", "--name", "fg", "busybox", "true")
    cid = pallet_env.ok("inspect", "-f", "{{.Id}}", "fg").strip()
    pallet_env.ok("rm", "fg")
    found = wait_for(pallet_env, "destroy", f"container={cid}")
    assert [e["Action"] for e in found] == ["create", "attach", "start", "die", "destroy"]  # dockerd's order


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
    assert actions(pallet_env, "type=volume", "volume=evdata") == ["create", "mount", "unmount", "destroy"]


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
    assert lines[:3] == ["create live", "attach live", "start live"]
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


def of_container(env: PalletEnv, cid: str) -> list[dict[str, object]]:
    """The events of container ``cid``: its own, and its networks' and volumes' that name it."""
    return [
        e
        for e in recorded(env)
        if (e["Actor"]["ID"] if e["Type"] == "container" else e["Actor"]["Attributes"].get("container"))  # type: ignore[index, union-attr]
        == cid
    ]


def wait_for_container(env: PalletEnv, cid: str, last: str, count: int = 1) -> list[dict[str, object]]:
    """``of_container`` once its newest event is ``last`` ("type action"), the ``count``-th of its kind
    (a bounded wait, not a timing check)."""
    deadline = time.monotonic() + 60
    while True:
        found = of_container(env, cid)
        seen = kinds(found)
        if (seen[-1:] == [last] and seen.count(last) >= count) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def kinds(found: list[dict[str, object]]) -> list[str]:
    return [f"{e['Type']} {e['Action']}" for e in found]


def test_a_run_on_a_network_with_a_volume_is_recorded_in_dockerds_order(pallet_env: PalletEnv) -> None:
    net_id = pallet_env.ok("network", "create", "evnet").strip()
    pallet_env.ok("volume", "create", "evvol")
    cid = pallet_env.ok(
        "run", "-d", "--name", "evr", "--network", "evnet", "-v", "evvol:/data:ro", "busybox", "sleep", "60"
    ).strip()
    pallet_env.ok("stop", "-t", "1", "evr")
    pallet_env.ok("rm", "evr")
    found = wait_for_container(pallet_env, cid, "container destroy")
    # dockerd's order: connect and mount before the start; disconnect and unmount after the die
    assert kinds(found) == [
        "container create",
        "network connect",
        "volume mount",
        "container start",
        "container kill",
        "container kill",
        "container die",
        "network disconnect",
        "volume unmount",
        "container stop",
        "container destroy",
    ]
    connect, mount, disconnect, unmount = found[1], found[2], found[7], found[8]
    assert connect["Actor"] == {
        "ID": net_id,
        "Attributes": {"container": cid, "name": "evnet", "type": "bridge"},
    }
    assert disconnect["Actor"] == connect["Actor"]
    assert mount["Actor"] == {
        "ID": "evvol",
        "Attributes": {
            "container": cid,
            "destination": "/data",
            "driver": "local",
            "propagation": "",
            "read/write": "false",
        },
    }
    assert unmount["Actor"] == {"ID": "evvol", "Attributes": {"container": cid, "driver": "local"}}


def test_an_exit_nobody_watches_ends_its_attachments_under_its_new_name(pallet_env: PalletEnv) -> None:
    pallet_env.ok("volume", "create", "evown")
    cid = pallet_env.ok(
        "run", "-d", "--name", "before", "-v", "evown:/data", "-v", "/anon", "busybox",
        "sh", "-c", "until [ -e /data/go ]; do sleep 0.1; done; exit 3",
    ).strip()  # fmt: skip
    pallet_env.ok("rename", "before", "after")
    pallet_env.ok("exec", "after", "touch", "/data/go")
    # no pallet command touches the container when it exits: its shim records the die, then the rest
    found = wait_for_container(pallet_env, cid, "volume unmount", count=2)
    assert kinds(found)[-4:] == ["container die", "network disconnect", "volume unmount", "volume unmount"]
    die = found[-4]
    assert die["Actor"]["Attributes"]["name"] == "after"  # type: ignore[index]
    assert die["Actor"]["Attributes"]["exitCode"] == "3"  # type: ignore[index]
    mounted = sorted(str(e["Actor"]["ID"]) for e in found if e["Action"] == "mount")  # type: ignore[index]
    unmounted = sorted(str(e["Actor"]["ID"]) for e in found if e["Action"] == "unmount")  # type: ignore[index]
    assert mounted == unmounted
    assert len(mounted) == 2
    assert "evown" in mounted
    assert found[1]["Actor"]["Attributes"]["name"] == "bridge"  # type: ignore[index]
    pallet_env.ok("rm", "-v", "after")


def test_prunes_record_dockers_prune_events_after_their_removals(pallet_env: PalletEnv) -> None:
    cid = pallet_env.ok("create", "--name", "evpr", "busybox", "true").strip()
    pallet_env.ok("network", "create", "evprnet")
    pallet_env.ok("volume", "create", "evprvol")
    pallet_env.ok("container", "prune", "-f")
    pallet_env.ok("network", "prune", "-f")
    pallet_env.ok("volume", "prune", "-a", "-f")
    pallet_env.ok("image", "prune", "-f")
    found = [e for e in recorded(pallet_env) if e["Action"] in ("prune", "destroy")]
    assert [(e["Type"], e["Action"], e["Actor"]["ID"]) for e in found] == [  # type: ignore[index]
        ("container", "destroy", cid),
        ("container", "prune", ""),
        ("network", "destroy", found[2]["Actor"]["ID"]),  # type: ignore[index]
        ("network", "prune", ""),
        ("volume", "destroy", "evprvol"),
        ("volume", "prune", ""),
        ("image", "prune", ""),
    ]
    assert found[2]["Actor"]["Attributes"]["name"] == "evprnet"  # type: ignore[index]
    for prune in found[1::2] + found[-1:]:
        assert prune["Actor"]["Attributes"] == {"reclaimed": "0"}  # type: ignore[index]
    # docker's JSON: a prune's Actor has no ID, so no "id" (nor "from") on a container's
    assert "id" not in found[1]
    assert found[1]["status"] == "prune"


def test_a_restart_by_policy_connects_and_mounts_again_before_its_start(pallet_env: PalletEnv) -> None:
    cid = pallet_env.ok(
        "run", "-d", "--restart", "on-failure:1", "-v", "/anon", "busybox", "sh", "-c", "exit 1"
    ).strip()
    # the shim restarts it once, with no pallet command running: every event here is the shim's
    found = wait_for_container(pallet_env, cid, "volume unmount", count=2)
    run = ["network connect", "volume mount", "container start"]
    end = ["container die", "network disconnect", "volume unmount"]
    assert kinds(found) == ["container create", *run, *end, *run, *end]
    assert {e["Actor"]["ID"] for e in found if e["Type"] == "volume"} == {found[2]["Actor"]["ID"]}  # type: ignore[index]
    pallet_env.ok("rm", "-v", cid)
