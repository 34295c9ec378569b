"""Limits seen from inside and outside a container: memory (OOM kill + event), pids, the freezer, update."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from pallet.runtime.cgroup_v2 import detect
from pallet.runtime.cgroups import v1_hierarchies

from .conftest import RUNTIME, Runtime, base_config

pytestmark = pytest.mark.root


@pytest.fixture(autouse=True)
def _v1_host() -> None:
    if detect().mode == "v2":
        pytest.skip("these tests read cgroup v1 files; the v2 driver is tested against a fake cgroupfs")


def _cgroup_file(pid: int, controller: str, name: str) -> Path:
    """A file of ``pid``'s cgroup in the v1 hierarchy holding ``controller``, seen from the host."""
    mounts = v1_hierarchies()
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return Path(mounts[names] + path) / name
    raise AssertionError(f"{controller} hierarchy not found for {pid}")


def _with_tmpfs(config: dict[str, Any]) -> dict[str, Any]:
    # the shared busybox rootfs must stay untouched: the container writes to a tmpfs
    config["mounts"].append(
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}
    )
    return config


def _detached(runtime: Runtime, config: dict[str, Any]) -> tuple[str, int]:
    cid = runtime.new_id()
    result = runtime("run", "--detach", "--bundle", str(runtime.bundle(config)), cid)
    assert result.rc == 0, result.err
    return cid, int(json.loads(runtime("state", cid).out)["pid"])


def _wait_for(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_memory_limit_oom_kills_the_program_with_exit_137_and_an_oom_event(runtime: Runtime) -> None:
    config = base_config(runtime.rootfs, "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
    config["linux"]["resources"] = {"memory": {"limit": 16 << 20, "swap": 16 << 20}}
    cid = runtime.new_id()
    assert runtime("create", "--bundle", str(runtime.bundle(config)), cid).rc == 0
    events = subprocess.Popen(
        [RUNTIME, "--root", str(runtime.root), "events", "--interval", "1s", cid],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert events.stdout is not None
        first = json.loads(events.stdout.readline())  # the OOM eventfd is registered by now
        assert first["type"] == "stats"
        assert first["data"]["memory"]["usage"]["limit"] == 16 << 20
        pid = int(json.loads(runtime("state", cid).out)["pid"])
        oom_control = _cgroup_file(pid, "memory", "memory.oom_control")
        assert runtime("start", cid).rc == 0
        out, _ = events.communicate(timeout=30)
    finally:
        if events.poll() is None:
            events.kill()
            events.wait()
    kinds = [json.loads(line)["type"] for line in out.splitlines()]
    assert "oom" in kinds
    assert "oom_kill 1" in oom_control.read_text().splitlines()  # from outside: the kernel's count


def test_memory_limit_makes_run_exit_137(runtime: Runtime) -> None:
    config = base_config(runtime.rootfs, "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
    config["linux"]["resources"] = {"memory": {"limit": 16 << 20, "swap": 16 << 20}}
    assert runtime.run(config).rc == 137


def test_pids_limit_makes_fork_fail_inside_and_is_counted_outside(runtime: Runtime) -> None:
    script = (
        # a failed fork ends busybox's shell: fork in a subshell, report from the main one
        "exec >/tmp/log 2>&1; (for i in 1 2 3 4 5 6 7 8 9 10; do sleep 300 & done); "
        "cat /sys/fs/cgroup/pids/pids.max; echo forked-all; sleep 300"
    )
    config = _with_tmpfs(base_config(runtime.rootfs, "sh", "-c", script))
    config["linux"]["resources"] = {"pids": {"limit": 6}}
    cid, pid = _detached(runtime, config)
    log = Path(f"/proc/{pid}/root/tmp/log")
    _wait_for(lambda: log.exists() and "forked-all" in log.read_text())
    inside = log.read_text()
    assert "can't fork" in inside
    assert "6\nforked-all" in inside
    assert _cgroup_file(pid, "pids", "pids.max").read_text().strip() == "6"
    assert int(_cgroup_file(pid, "pids", "pids.current").read_text()) <= 6
    failures = _cgroup_file(pid, "pids", "pids.events").read_text().split()
    assert failures[0] == "max"
    assert int(failures[1]) > 0
    assert runtime("delete", "--force", cid).rc == 0


def _counter(pid: int) -> str:
    """The loop's last value (empty while it rewrites the file)."""
    return Path(f"/proc/{pid}/root/tmp/n").read_text()


def test_paused_container_is_frozen_and_resumes(runtime: Runtime) -> None:
    config = _with_tmpfs(
        base_config(runtime.rootfs, "sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; done")
    )
    cid, pid = _detached(runtime, config)
    _wait_for(lambda: Path(f"/proc/{pid}/root/tmp/n").exists())
    assert runtime("pause", cid).rc == 0
    assert runtime.status(cid) == "paused"
    assert _cgroup_file(pid, "freezer", "freezer.state").read_text().strip() == "FROZEN"
    frozen_at = _counter(pid)
    time.sleep(0.3)
    assert _counter(pid) == frozen_at
    assert runtime("resume", cid).rc == 0
    assert runtime.status(cid) == "running"
    _wait_for(lambda: _counter(pid) not in ("", frozen_at))


def test_kill_and_force_delete_work_on_a_paused_container(runtime: Runtime) -> None:
    cid, _pid = _detached(runtime, base_config(runtime.rootfs, "sleep", "300"))
    assert runtime("pause", cid).rc == 0
    assert runtime("kill", cid, "KILL").rc == 0
    assert runtime.wait_status(cid, "stopped") == "stopped"
    other, _ = _detached(runtime, base_config(runtime.rootfs, "sleep", "300"))
    assert runtime("pause", other).rc == 0
    assert runtime("delete", "--force", other).rc == 0
    assert runtime("state", other).rc == 1


def test_update_changes_limits_seen_inside_and_outside(runtime: Runtime) -> None:
    cid, pid = _detached(runtime, base_config(runtime.rootfs, "sleep", "300"))
    flags = runtime("update", "--memory", "64m", "--pids-limit", "20", cid)
    assert flags.rc == 0, flags.err
    piped = runtime("update", "--resources", "-", cid, stdin=json.dumps({"cpu": {"shares": 512}}))
    assert piped.rc == 0, piped.err
    assert _cgroup_file(pid, "memory", "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
    assert _cgroup_file(pid, "pids", "pids.max").read_text().strip() == "20"
    assert _cgroup_file(pid, "cpu", "cpu.shares").read_text().strip() == "512"
    inside = runtime(
        "exec", cid, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/pids/pids.max"
    )
    assert inside.out.split() == [str(64 << 20), "20"]
    saved = json.loads((runtime.root / cid / "state.json").read_text())
    assert saved["resources"] == {
        "memory": {"limit": 64 << 20},
        "pids": {"limit": 20},
        "cpu": {"shares": 512},
    }


def test_update_refuses_a_bad_value_and_changes_nothing(runtime: Runtime) -> None:
    cid, pid = _detached(runtime, base_config(runtime.rootfs, "sleep", "300"))
    before = _cgroup_file(pid, "memory", "memory.limit_in_bytes").read_text()
    result = runtime("update", "--memory", "lots", cid)
    assert result.rc == 1
    assert "--memory" in result.err
    assert _cgroup_file(pid, "memory", "memory.limit_in_bytes").read_text() == before


def test_ps_lists_the_containers_processes(runtime: Runtime) -> None:
    cid, pid = _detached(runtime, base_config(runtime.rootfs, "sh", "-c", "sleep 300 & sleep 301; true"))
    _wait_for(lambda: len(json.loads(runtime("ps", "--format", "json", cid).out)) == 3)
    pids = json.loads(runtime("ps", "--format", "json", cid).out)
    assert pid in pids
    assert all(Path(f"/proc/{p}").exists() for p in pids)
    table = runtime("ps", cid).out.splitlines()
    assert table[0].split()[:2] == ["UID", "PID"]
    assert sorted(int(line.split()[1]) for line in table[1:]) == sorted(pids)
    assert any(line.endswith("sleep 301") for line in table[1:])


def test_events_stats_reports_cpu_memory_and_pids_in_runc_shape(runtime: Runtime) -> None:
    config = base_config(runtime.rootfs, "sleep", "300")
    config["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 30}}
    cid, _ = _detached(runtime, config)
    result = runtime("events", "--stats", cid)
    assert result.rc == 0, result.err
    event = json.loads(result.out)
    assert (event["type"], event["id"]) == ("stats", cid)
    data = event["data"]
    assert data["cpu"]["usage"]["total"] > 0
    assert {"kernel", "user"} <= set(data["cpu"]["usage"])
    assert data["memory"]["usage"]["limit"] == 64 << 20
    assert data["memory"]["usage"]["usage"] > 0
    assert "rss" in data["memory"]["raw"] or "total_rss" in data["memory"]["raw"]
    assert data["pids"] == {"current": 1, "limit": 30}


def test_checkpoint_is_refused_as_not_supported(runtime: Runtime) -> None:
    result = runtime("checkpoint", "whatever")
    assert result.rc == 1
    assert "not supported" in result.err
    assert os.path.exists(RUNTIME)
