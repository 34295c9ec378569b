"""Bad configs and bad calls: exit 1, a clear message on stderr and in the --log file, nothing left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from pallet.oci.jsonfast import loads

from .conftest import Runtime, base_config, leftovers

pytestmark = pytest.mark.root


def test_invalid_config_fails_cleanly_and_logs_json(runtime: Runtime, tmp_path: Path) -> None:
    config = base_config(runtime.rootfs, "true")
    config["linux"]["namespaces"].append({"type": "bogus"})
    log = tmp_path / "log.json"
    cid = runtime.new_id()
    result = runtime(
        "--log", str(log), "--log-format=json", "create", "--bundle", str(runtime.bundle(config)), cid
    )
    assert result.rc == 1
    assert "linux.namespaces[" in result.err
    entries = [loads(line) for line in log.read_text().splitlines()]
    assert len(entries) == 1
    entry = entries[0]
    assert isinstance(entry, dict)
    assert list(entry) == ["level", "msg", "time"]
    assert entry["level"] == "error"
    assert entry["msg"] == result.err.strip()
    assert leftovers(runtime, cid) == []


def test_log_file_is_created_even_when_failing_before_any_work(runtime: Runtime, tmp_path: Path) -> None:
    log = tmp_path / "early.json"
    result = runtime("--log", str(log), "--log-format", "json", "start", "missing")
    assert result.rc == 1
    assert loads(log.read_text())["msg"] == 'container "missing" does not exist'  # type: ignore[index]


def test_a_failure_inside_the_container_setup_removes_state_cgroup_and_mounts(runtime: Runtime) -> None:
    config = base_config(runtime.rootfs, "true")
    config["mounts"].append(
        {"destination": "/mnt", "type": "bind", "source": "/does/not/exist", "options": ["bind"]}
    )
    config["linux"]["cgroupsPath"] = "/pallet-test-failed-create"
    cid = runtime.new_id()
    result = runtime("create", "--bundle", str(runtime.bundle(config)), cid)
    assert result.rc == 1
    assert "no such file or directory" in result.err
    assert leftovers(runtime, cid) == []
    assert not Path("/sys/fs/cgroup/memory/pallet-test-failed-create").exists()


def test_missing_bundle_config_is_reported(runtime: Runtime, tmp_path: Path) -> None:
    result = runtime("create", "--bundle", str(tmp_path / "nowhere"), runtime.new_id())
    assert (result.rc, "config.json: no such file or directory" in result.err) == (1, True)


def test_systemd_cgroup_path_is_converted_to_a_cgroupfs_path(runtime: Runtime) -> None:
    config = base_config(runtime.rootfs, "cat", "/proc/self/cgroup")
    config["linux"]["cgroupsPath"] = "pallettest.slice:pallet:abc"
    bundle = runtime.bundle(config)
    try:
        result = runtime("--systemd-cgroup", "run", "--bundle", str(bundle), runtime.new_id())
        assert "pids:/pallettest.slice/pallet-abc.scope" in result.out, result.err
        assert not Path("/sys/fs/cgroup/pids/pallettest.slice/pallet-abc.scope").exists()
    finally:
        # the slice is a parent that delete leaves, as runc does
        for slice_dir in Path("/sys/fs/cgroup").glob("*/pallettest.slice"):
            slice_dir.rmdir()
