"""SIGKILL of ``pallet`` (and of a shim) at many points never stops a container or loses its status.

Each test kills a real ``pallet`` process part-way (after a range of delays,
which only choose *where* it dies; nothing asserts on time), then checks that
the next commands see the truth: a container whose shim was launched runs and
is listed as running, a half-made one is cleaned away, exit codes are kept,
and ``rm -f`` leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import PalletEnv

pytestmark = [pytest.mark.root, pytest.mark.slow]


def kill_after(env: PalletEnv, delay: float, *args: str) -> None:
    """Start ``pallet ARGS`` and SIGKILL it after ``delay`` seconds (or let it finish first)."""
    proc = subprocess.Popen(env.argv(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def shim_running_for(env: PalletEnv, container_id: str) -> bool:
    return env.shim_of(container_id) is not None


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sigkill_of_run_at_any_point_leaves_consistent_state(pallet_env: PalletEnv) -> None:
    # a `run -d` takes ~0.1-0.3 s here (longer under load): dense early, then sparse
    delays = [i * 0.01 for i in range(26)] + [0.3, 0.35, 0.4, 0.5, 0.6, 0.8, 1.0]
    for i, delay in enumerate(delays):
        kill_after(
            pallet_env,
            delay,
            "run",
            "-d",
            "--name",
            f"kp{i}",
            "busybox",
            "sh",
            "-c",
            f"echo alive{i}; sleep 300",
        )
    rows = [
        json.loads(line) for line in pallet_env.ok("ps", "-a", "--no-trunc", "--format", "json").splitlines()
    ]
    assert rows, "at least the runs that were not killed created their containers"
    for row in rows:
        cid = row["ID"]
        if shim_running_for(pallet_env, cid):
            # the shim was launched: the container outlived the killed CLI and is reported running
            assert row["State"] == "running", row
            pid = int(pallet_env.ok("inspect", "-f", "{{.State.Pid}}", cid))
            assert alive(pid)
            n = row["Names"][2:]
            deadline = time.monotonic() + 30
            while f"alive{n}" not in pallet_env.ok("logs", cid) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert pallet_env.ok("logs", cid) == f"alive{n}\n"
        else:
            assert row["State"] == "created", row
    # nothing half-made is left on disk beyond what ps shows
    assert sorted(pallet_env.container_ids()) == sorted(r["ID"] for r in rows)
    ids = [r["ID"] for r in rows]
    pallet_env.ok("rm", "-f", *ids)
    assert pallet_env.leftovers(ids) == {}
    assert pallet_env.processes() == []


def test_sigkill_of_stop_keeps_the_exit_status_and_no_restart(pallet_env: PalletEnv) -> None:
    script = 'trap "sleep 1; exit 3" TERM; echo ready; while true; do sleep 0.1; done'
    cid = pallet_env.ok("run", "-d", "--restart", "always", "busybox", "sh", "-c", script).strip()
    deadline = time.monotonic() + 30
    while "ready" not in pallet_env.ok("logs", cid) and time.monotonic() < deadline:
        time.sleep(0.05)
    kill_after(pallet_env, 0.3, "stop", cid)
    assert pallet_env.ok("wait", cid) == "3\n"
    assert pallet_env.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", cid) == "exited 3\n"
    assert not shim_running_for(pallet_env, cid)


def test_sigkill_of_exec_leaves_the_container_running(pallet_env: PalletEnv) -> None:
    cid = pallet_env.ok("run", "-d", "--runtime", "runc", "busybox", "sleep", "300").strip()
    for delay in (0.05, 0.2, 0.5):
        kill_after(pallet_env, delay, "exec", cid, "sleep", "5")
        assert pallet_env.ok("inspect", "-f", "{{.State.Status}}", cid) == "running\n"
    assert pallet_env.ok("exec", cid, "echo", "still here") == "still here\n"


def test_killed_shim_leaves_the_container_running_and_removable(pallet_env: PalletEnv) -> None:
    cid = pallet_env.ok("run", "-d", "--runtime", "runc", "busybox", "sleep", "300").strip()
    pid = int(pallet_env.ok("inspect", "-f", "{{.State.Pid}}", cid))
    shim = pallet_env.shim_of(cid)
    assert shim is not None
    os.kill(shim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while alive(shim) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert alive(pid)
    assert pallet_env.ok("ps", "--format", "{{.State}}") == "running\n"
    pallet_env.ok("rm", "-f", cid)
    assert not alive(pid)
    assert pallet_env.leftovers([cid]) == {}


def test_sigkill_of_rm_is_finished_by_the_next_command(pallet_env: PalletEnv) -> None:
    delays = [0.1, 0.3, 0.4, 0.5, 0.6, 0.8]
    ids = [pallet_env.ok("run", "-d", "busybox", "sleep", "300").strip() for _ in delays]
    for cid, delay in zip(ids, delays, strict=True):
        kill_after(pallet_env, delay, "rm", "-f", cid)
    rows = pallet_env.ok("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.State}}").splitlines()
    # an interrupted removal is finished, or not yet begun: never half done
    for line in rows:
        cid, listed_state = line.split()
        if pallet_env.shim_of(cid) is not None:
            assert listed_state == "running"
        else:
            assert listed_state in ("exited", "created")
    assert sorted(pallet_env.container_ids()) == sorted(line.split()[0] for line in rows)
    left = [line.split()[0] for line in rows]
    if left:
        pallet_env.ok("rm", "-f", *left)
    assert pallet_env.leftovers(ids) == {}
    assert pallet_env.processes() == []
