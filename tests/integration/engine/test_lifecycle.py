"""Container lifecycle verbs end to end: create, start, stop, restart, kill, pause, rename, wait, inspect, rm, prune."""

from __future__ import annotations

import json
import time

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import PalletEnv

pytestmark = pytest.mark.root

# a PID 1 that exits on SIGTERM (a shell as PID 1 ignores signals it has no handler for)
TRAPPING = 'trap "echo got TERM; exit 42" TERM; echo ready; while true; do sleep 0.1; done'


def wait_for_log(env: PalletEnv, ref: str, text: str, count: int = 1) -> str:
    """Poll ``pallet logs`` until ``text`` appeared ``count`` times (a bounded wait, not a timing check)."""
    deadline = time.monotonic() + 60
    while True:
        out = env.ok("logs", ref)
        if out.count(text) >= count or time.monotonic() > deadline:
            return out
        time.sleep(0.05)


def state(env: PalletEnv, ref: str) -> str:
    return env.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", ref).strip()


def test_create_then_start_runs_the_command(pallet_env: PalletEnv) -> None:
    cid = pallet_env.ok("create", "--name", "later", "busybox", "sh", "-c", "echo started; exit 4").strip()
    assert state(pallet_env, "later") == "created 0"
    assert pallet_env.ok("ps", "-a", "--format", "{{.Status}}") == "Created\n"
    assert pallet_env.ok("start", "later") == "later\n"
    assert pallet_env.ok("wait", cid[:12]) == "4\n"
    assert pallet_env.ok("logs", "later") == "started\n"


def test_start_attached_streams_output_and_returns_status(pallet_env: PalletEnv) -> None:
    pallet_env.ok("create", "--name", "att", "busybox", "sh", "-c", "echo one; exit 2")
    done = pallet_env.pallet("start", "-a", "att")
    assert (done.returncode, done.stdout) == (2, "one\n")


def test_stop_sends_the_stop_signal_then_reports_the_exit(pallet_env: PalletEnv) -> None:
    pallet_env.ok("run", "-d", "--name", "trap", "busybox", "sh", "-c", TRAPPING)
    wait_for_log(pallet_env, "trap", "ready")
    assert pallet_env.ok("stop", "trap") == "trap\n"
    assert state(pallet_env, "trap") == "exited 42"
    assert "got TERM" in pallet_env.ok("logs", "trap")


def test_stop_timeout_escalates_to_sigkill(pallet_env: PalletEnv) -> None:
    pallet_env.ok("run", "-d", "--name", "stubborn", "busybox", "sleep", "300")
    pallet_env.ok("stop", "-t", "1", "stubborn")
    assert state(pallet_env, "stubborn") == "exited 137"


def test_kill_with_signal_and_restart_counts_again(pallet_env: PalletEnv) -> None:
    pallet_env.ok("run", "-d", "--name", "kk", "busybox", "sleep", "300")
    assert pallet_env.ok("kill", "kk") == "kk\n"
    assert state(pallet_env, "kk") == "exited 137"
    done = pallet_env.pallet("kill", "kk")
    assert done.returncode == 1
    assert "is not running" in done.stderr
    pallet_env.ok("restart", "-t", "0", "kk")
    assert state(pallet_env, "kk") == "running 0"


def test_pause_freezes_and_unpause_resumes(pallet_env: PalletEnv) -> None:
    pallet_env.ok("run", "-d", "--name", "pp", "--runtime", "runc", "busybox", "sleep", "300")
    pallet_env.ok("pause", "pp")
    assert pallet_env.ok("ps", "--format", "{{.State}}") == "paused\n"
    assert "(Paused)" in pallet_env.ok("ps", "--format", "{{.Status}}")
    pallet_env.ok("unpause", "pp")
    assert state(pallet_env, "pp") == "running 0"


def test_rename_changes_the_name_everywhere(pallet_env: PalletEnv) -> None:
    cid = pallet_env.ok("create", "--name", "old", "busybox", "true").strip()
    pallet_env.ok("rename", "old", "new")
    assert pallet_env.ok("inspect", "-f", "{{.Name}} {{.Id}}", "new") == f"/new {cid}\n"
    assert pallet_env.pallet("inspect", "old").returncode == 1
    pallet_env.ok("create", "--name", "other", "busybox", "true")
    done = pallet_env.pallet("rename", "other", "new")
    assert done.returncode == 1
    assert 'the container name "/new" is already in use' in done.stderr


def test_inspect_is_docker_shaped(pallet_env: PalletEnv) -> None:
    cid = pallet_env.ok(
        "create", "--name", "shape", "-e", "A=1", "--restart", "on-failure:3", "busybox", "echo", "x"
    ).strip()
    (doc,) = json.loads(pallet_env.ok("inspect", "shape"))
    assert doc["Id"] == cid
    assert doc["Name"] == "/shape"
    assert (doc["Path"], doc["Args"]) == ("echo", ["x"])
    assert doc["State"]["Status"] == "created"
    assert doc["Image"].startswith("sha256:")
    assert "A=1" in doc["Config"]["Env"]
    assert doc["Config"]["Cmd"] == ["echo", "x"]
    assert doc["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert doc["LogPath"].endswith(f"{cid}-json.log")


def test_rm_of_a_running_container_needs_force(pallet_env: PalletEnv) -> None:
    cid = pallet_env.ok("run", "-d", "--name", "busy", "busybox", "sleep", "300").strip()
    done = pallet_env.pallet("rm", "busy")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        'pallet: cannot remove container "/busy": container is running: '
        "stop the container before removing or force remove"
    )
    assert state(pallet_env, "busy") == "running 0"
    assert pallet_env.ok("rm", "-f", "busy") == "busy\n"
    assert pallet_env.leftovers([cid]) == {}


def test_unknown_container_is_a_one_line_error(pallet_env: PalletEnv) -> None:
    for verb in ("start", "stop", "kill", "rm", "logs", "container inspect", "wait"):
        done = pallet_env.pallet(*verb.split(), "nosuch")
        assert done.returncode == 1, verb
        assert done.stderr.strip() == "pallet: No such container: nosuch", verb
    # docker's words for an object of no kind
    done = pallet_env.pallet("inspect", "nosuch")
    assert (done.returncode, done.stdout, done.stderr) == (1, "[]\n", "Error: No such object: nosuch\n")


def test_container_prune_removes_only_stopped_containers(pallet_env: PalletEnv) -> None:
    stopped = pallet_env.ok("create", "busybox", "true").strip()
    running = pallet_env.ok("run", "-d", "busybox", "sleep", "300").strip()
    out = pallet_env.ok("container", "prune", "-f")
    assert out == f"Deleted Containers:\n{stopped}\n\nTotal reclaimed space: 0B\n"
    assert pallet_env.ok("ps", "-a", "-q", "--no-trunc") == running + "\n"


def test_wait_blocks_until_exit(pallet_env: PalletEnv) -> None:
    pallet_env.ok("run", "-d", "--name", "ww", "busybox", "sh", "-c", "sleep 1; exit 9")
    assert pallet_env.ok("wait", "ww") == "9\n"


def test_attach_feeds_stdin_and_returns_the_exit_status(pallet_env: PalletEnv) -> None:
    pallet_env.ok(
        "run", "-d", "-i", "--name", "aa", "busybox", "sh", "-c", "read line; echo got $line; exit 5"
    )
    done = pallet_env.pallet("attach", "aa", input=b"hello\n")
    assert (done.returncode, done.stdout) == (5, "got hello\n")
    assert state(pallet_env, "aa") == "exited 5"


def test_attach_to_a_stopped_container_is_refused(pallet_env: PalletEnv) -> None:
    pallet_env.ok("create", "--name", "idle", "busybox", "true")
    done = pallet_env.pallet("attach", "idle")
    assert done.returncode == 1
    assert done.stderr.strip() == "pallet: You cannot attach to a stopped container, start it first"


def test_restart_policy_always_brings_the_container_back(pallet_env: PalletEnv) -> None:
    pallet_env.ok(
        "run", "-d", "--name", "again", "--restart", "always", "busybox", "sh", "-c", "echo run; exit 1"
    )
    assert wait_for_log(pallet_env, "again", "run\n", 3).count("run\n") >= 3
    assert int(pallet_env.ok("inspect", "-f", "{{.RestartCount}}", "again")) >= 1
    pallet_env.ok("stop", "-t", "0", "again")
    assert state(pallet_env, "again").startswith("exited")


def test_stop_of_a_paused_container_thaws_and_stops_it(pallet_env: PalletEnv) -> None:
    pallet_env.ok("run", "-d", "--name", "frozen", "--runtime", "runc", "busybox", "sh", "-c", TRAPPING)
    wait_for_log(pallet_env, "frozen", "ready")
    pallet_env.ok("pause", "frozen")
    pallet_env.ok("stop", "-t", "5", "frozen")
    assert state(pallet_env, "frozen") == "exited 42"
