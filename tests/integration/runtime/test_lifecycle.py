"""create / start / state / kill / delete / run / list as engines drive them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pallet.oci.jsonfast import loads

from .conftest import RUNTIME, Runtime, base_config, leftovers

pytestmark = pytest.mark.root


def test_run_returns_the_exit_status_of_the_process(runtime: Runtime) -> None:
    result = runtime.run(base_config(runtime.rootfs, "sh", "-c", "echo out; echo err >&2; exit 3"))
    assert (result.rc, result.out, result.err) == (3, "out\n", "err\n")


def test_run_reports_a_signal_death_as_128_plus_the_signal(runtime: Runtime) -> None:
    config = base_config(runtime.rootfs, "sh", "-c", "kill -9 $$")
    # without a pid namespace: PID 1 of a namespace is immune to its own SIGKILL
    config["linux"]["namespaces"] = [ns for ns in config["linux"]["namespaces"] if ns["type"] != "pid"]
    result = runtime.run(config)
    assert result.rc == 137


def test_create_blocks_before_the_program_until_start(runtime: Runtime, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    config = base_config(runtime.rootfs, "sh", "-c", "echo started > /ran; sleep 30")
    config["mounts"].append(
        {"destination": "/ran", "type": "bind", "source": str(marker), "options": ["rbind"]}
    )
    marker.write_text("")
    bundle = runtime.bundle(config)
    cid = runtime.new_id()
    pid_file = tmp_path / "init.pid"
    created = runtime("create", "--bundle", str(bundle), "--pid-file", str(pid_file), cid)
    assert created.rc == 0, created.err
    assert (created.out, created.err) == ("", "")
    pid_text = pid_file.read_text()
    assert pid_text.isdigit()  # no trailing newline: containerd parses it untrimmed
    assert runtime.status(cid) == "created"
    assert marker.read_text() == ""
    state = loads(runtime("state", cid).out)
    assert isinstance(state, dict)
    assert state["pid"] == int(pid_text)
    assert state["bundle"] == str(bundle)
    # the init is already in its cgroup when create returns (containerd reads it right away)
    cgroup = Path(f"/proc/{pid_text}/cgroup").read_text()
    assert f"/{cid}\n" in cgroup
    assert runtime("start", cid).rc == 0
    assert runtime.status(cid) == "running"
    deadline = time.monotonic() + 10
    while marker.read_text() != "started\n" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert marker.read_text() == "started\n"
    second = runtime("start", cid)
    assert second.rc == 1


def test_kill_stops_a_running_container_and_delete_removes_everything(runtime: Runtime) -> None:
    bundle = runtime.bundle(base_config(runtime.rootfs, "sleep", "30"))
    cid = runtime.new_id()
    assert runtime("run", "--detach", "--bundle", str(bundle), cid).rc == 0
    assert runtime.status(cid) == "running"
    refused = runtime("delete", cid)
    assert refused.rc == 1
    assert f"cannot delete container {cid} that is not stopped: running" in refused.err
    assert runtime("kill", cid, "KILL").rc == 0
    assert runtime.wait_status(cid, "stopped") == "stopped"
    assert loads(runtime("state", cid).out)["pid"] == 0  # type: ignore[index]
    again = runtime("kill", cid, "9")
    assert (again.rc, again.err.strip()) == (1, "container not running")
    assert runtime("delete", cid).rc == 0
    assert leftovers(runtime, cid) == []
    gone = runtime("state", cid)
    assert (gone.rc, gone.err.strip()) == (1, f'container "{cid}" does not exist')


def test_delete_force_kills_a_running_container_and_ignores_unknown_ids(runtime: Runtime) -> None:
    bundle = runtime.bundle(base_config(runtime.rootfs, "sleep", "30"))
    cid = runtime.new_id()
    assert runtime("run", "-d", "-bundle", str(bundle), cid).rc == 0
    pid = loads(runtime("state", cid).out)["pid"]  # type: ignore[index]
    assert runtime("delete", "--force", cid).rc == 0
    assert (
        not os.path.exists(f"/proc/{pid}/cmdline") or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    )
    assert leftovers(runtime, cid) == []
    unknown = runtime("delete", "--force", "no-such-container")
    assert (unknown.rc, unknown.out, unknown.err) == (0, "", "")


def test_delete_of_a_created_container_kills_its_init(runtime: Runtime) -> None:
    bundle = runtime.bundle(base_config(runtime.rootfs, "sleep", "30"))
    cid = runtime.new_id()
    assert runtime("create", "--bundle", str(bundle), cid).rc == 0
    assert runtime("delete", cid).rc == 0
    assert leftovers(runtime, cid) == []


def test_kill_all_signals_every_process_in_the_cgroup(runtime: Runtime) -> None:
    bundle = runtime.bundle(
        base_config(runtime.rootfs, "sh", "-c", "trap '' TERM; sleep 30 & sleep 31 & wait")
    )
    cid = runtime.new_id()
    assert runtime("run", "--detach", "--bundle", str(bundle), cid).rc == 0
    assert runtime("kill", "--all", cid, "SIGKILL").rc == 0
    assert runtime.wait_status(cid, "stopped") == "stopped"


def test_duplicate_id_is_refused(runtime: Runtime) -> None:
    bundle = runtime.bundle(base_config(runtime.rootfs, "sleep", "30"))
    cid = runtime.new_id()
    assert runtime("create", "--bundle", str(bundle), cid).rc == 0
    second = runtime("create", "--bundle", str(bundle), cid)
    assert (second.rc, second.err.strip()) == (1, "container with given ID already exists")
    assert runtime.status(cid) == "created"


def test_unknown_ids_and_bad_ids_fail_with_runc_wording(runtime: Runtime) -> None:
    for verb in ("state", "start", "kill", "delete"):
        result = runtime(verb, "nope")
        assert (result.rc, result.err.strip()) == (1, 'container "nope" does not exist'), verb
    bad = runtime("state", "../x")
    assert bad.rc == 1
    assert "invalid container id" in bad.err


def test_a_process_that_exits_by_itself_is_stopped_even_as_a_zombie(runtime: Runtime, tmp_path: Path) -> None:
    # a subreaper that does not reap: the init stays a zombie, which must read as stopped
    bundle = runtime.bundle(base_config(runtime.rootfs, "true"))
    cid = runtime.new_id()
    script = f"""
import ctypes, os, subprocess, time, json
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)
rt = [{RUNTIME!r}, "--root", {str(runtime.root)!r}]
subprocess.run(rt + ["create", "--bundle", {str(bundle)!r}, "--pid-file", {str(tmp_path / "pid")!r}, {cid!r}], check=True)
pid = int(open({str(tmp_path / "pid")!r}).read())
subprocess.run(rt + ["start", {cid!r}], check=True)
while open(f"/proc/{{pid}}/stat").read().split()[2] != "Z":
    time.sleep(0.01)
print(json.loads(subprocess.run(rt + ["state", {cid!r}], capture_output=True).stdout)["status"])
os.waitpid(pid, 0)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert out.stdout.strip() == "stopped", out.stderr


def test_list_shows_containers_as_table_and_json(runtime: Runtime) -> None:
    bundle = runtime.bundle(base_config(runtime.rootfs, "sleep", "30"))
    cid = runtime.new_id()
    assert runtime("create", "--bundle", str(bundle), cid).rc == 0
    table = runtime("list").out.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert table[1].split()[:3] == [cid, table[1].split()[1], "created"]
    rows = loads(runtime("list", "--format", "json").out)
    assert isinstance(rows, list)
    assert [(r["id"], r["status"]) for r in rows] == [(cid, "created")]
    assert runtime("list", "-q").out == f"{cid}\n"


def test_state_start_kill_delete_leave_no_child_holding_their_output(runtime: Runtime) -> None:
    bundle = runtime.bundle(base_config(runtime.rootfs, "sleep", "30"))
    cid = runtime.new_id()
    base = [RUNTIME, "--root", str(runtime.root)]
    subprocess.run(
        [*base, "create", "--bundle", str(bundle), cid],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    for args in (["start", cid], ["state", cid], ["kill", cid, "KILL"], ["delete", "--force", cid]):
        # communicate() returns only at EOF: a child keeping the pipes open would hang it
        proc = subprocess.run([*base, *args], capture_output=True, timeout=20, check=False)
        assert proc.returncode == 0, proc.stderr


def test_foreground_run_forwards_sigterm_to_the_container(runtime: Runtime, tmp_path: Path) -> None:
    config = base_config(runtime.rootfs, "sh", "-c", "trap 'exit 7' TERM; echo trapped; sleep 30 & wait")
    bundle = runtime.bundle(config)
    cid = runtime.new_id()
    out_path = tmp_path / "run.out"
    with open(out_path, "w") as out:
        proc = subprocess.Popen(
            [RUNTIME, "--root", str(runtime.root), "run", "--bundle", str(bundle), cid],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
        try:
            deadline = time.monotonic() + 20
            # the shell is PID 1 of its namespace: a signal it has no handler for is dropped
            while "trapped" not in out_path.read_text():
                assert time.monotonic() < deadline, "the container never set its trap"
                assert proc.poll() is None, out_path.read_text()
                time.sleep(0.02)
            proc.send_signal(15)
            assert proc.wait(timeout=20) == 7
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert leftovers(runtime, cid) == []
