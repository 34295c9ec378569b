"""Driver selection: v2 on a unified-only host, v1 otherwise; later commands rebuild the driver from saved paths."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from pallet.linux import procstat
from pallet.oci.runtime_spec import Resources
from pallet.runtime import cgroup_driver, lifecycle
from pallet.runtime.cgroup_v2 import CgroupSetup, V2Cgroup
from pallet.runtime.cgroups import V1Cgroups
from pallet.runtime.containers import ContainerDir, status_of
from pallet.runtime.savedstate import SavedState
from pallet.testing.fake_cgroupfs import FakeCgroupV2


@pytest.fixture
def fake(tmp_path: Path) -> FakeCgroupV2:
    return FakeCgroupV2(tmp_path / "unified")


def test_a_v2_host_gets_the_v2_driver_below_its_mount(fake: FakeCgroupV2) -> None:
    setup = CgroupSetup(mode="v2", unified=str(fake.root))
    driver = cgroup_driver.for_container("/pallet/c1", "c1", False, setup)
    assert isinstance(driver, V2Cgroup)
    assert driver.paths == {"": str(fake.root / "pallet/c1")}
    assert cgroup_driver.mounts(driver) == {}


@pytest.mark.parametrize("mode", ["v1", "hybrid"])
def test_v1_and_hybrid_hosts_get_the_v1_driver(mode: str) -> None:
    driver = cgroup_driver.for_container("/pallet/c1", "c1", False, CgroupSetup(mode=mode, unified=""))
    assert isinstance(driver, V1Cgroups)
    assert "" not in driver.paths


def test_saved_paths_rebuild_the_driver_they_came_from(fake: FakeCgroupV2) -> None:
    v2 = cgroup_driver.from_saved({"": str(fake.root / "pallet/c1")}, str(fake.root))
    assert isinstance(v2, V2Cgroup)
    assert v2.mount == str(fake.root)
    v1 = cgroup_driver.from_saved({"memory": "/sys/fs/cgroup/memory/c1", "pids": "/sys/fs/cgroup/pids/c1"})
    assert isinstance(v1, V1Cgroups)
    assert set(v1.paths) == {"memory", "pids"}
    assert cgroup_driver.from_saved({}) is None


def test_limits_reach_the_v2_files_through_the_selected_driver(fake: FakeCgroupV2) -> None:
    driver = cgroup_driver.for_container(
        "/pallet/c1", "c1", False, CgroupSetup(mode="v2", unified=str(fake.root))
    )
    assert isinstance(driver, V2Cgroup)
    driver.mkdir = fake.mkdir
    driver.create()
    fake.sync()
    driver.set(
        Resources.from_json({"memory": {"limit": 1 << 26}, "pids": {"limit": 9}, "cpu": {"shares": 1024}})
    )
    assert fake.read(driver.path, "memory.max") == str(1 << 26)
    assert fake.read(driver.path, "pids.max") == "9"
    assert fake.read(driver.path, "cpu.weight") == "39"  # shares 1024 -> weight, as runc converts


def _report_frozen(cgroup: Path) -> None:
    """What the kernel does once every task stopped: cgroup.events says frozen."""
    deadline = time.monotonic() + 5
    while (cgroup / "cgroup.freeze").read_text().strip() != "1" and time.monotonic() < deadline:
        time.sleep(0.001)
    (cgroup / "cgroup.events").write_text("populated 1\nfrozen 1\n")


def _running_container(root: Path, cgroup: str) -> ContainerDir:
    cdir = ContainerDir(str(root), "c1")
    cdir.claim()
    me = os.getpid()
    cdir.save(
        SavedState(
            id="c1", status="created", pid=me, init_start=procstat.start_time(me), cgroups={"": cgroup}
        )
    )
    return cdir


def test_pause_on_v2_writes_cgroup_freeze_and_state_reads_cgroup_events(
    fake: FakeCgroupV2, tmp_path: Path
) -> None:
    driver = V2Cgroup(str(fake.root / "c1"), str(fake.root))
    driver.mkdir = fake.mkdir
    driver.create()
    fake.sync()
    cdir = _running_container(tmp_path / "state", driver.path)
    assert status_of(cdir, cdir.load()) == "running"
    kernel = threading.Thread(target=_report_frozen, args=(Path(driver.path),), daemon=True)
    kernel.start()
    lifecycle.pause(str(tmp_path / "state"), "c1")
    kernel.join()
    assert fake.read(driver.path, "cgroup.freeze") == "1"
    assert status_of(cdir, cdir.load()) == "paused"


def test_kill_all_with_sigkill_on_v2_writes_cgroup_kill(fake: FakeCgroupV2, tmp_path: Path) -> None:
    driver = V2Cgroup(str(fake.root / "c1"), str(fake.root))
    driver.mkdir = fake.mkdir
    driver.create()
    fake.sync()
    _running_container(tmp_path / "state", driver.path)
    # the "init" is this test process: only the (fake) kernel file may be touched, no signal sent
    lifecycle.kill(str(tmp_path / "state"), "c1", "KILL", all_processes=True)
    assert fake.read(driver.path, "cgroup.kill") == "1"
