"""The cgroup v2 driver against a fake unified hierarchy: paths, delegation, limits written, join, freeze, remove; detect()."""

from __future__ import annotations

from pathlib import Path

import pytest

from pallet.errors import InvalidArgument, SpecError, SystemError_
from pallet.oci.runtime_spec import Resources
from pallet.runtime.cgroup_v2 import V2Cgroup, detect
from pallet.testing.fake_cgroupfs import FakeCgroupV2, changes, snapshot


@pytest.fixture
def fake(tmp_path: Path) -> FakeCgroupV2:
    return FakeCgroupV2(tmp_path / "unified")


def created(fake: FakeCgroupV2, cgroups_path: str, own: str = "/user.slice/session-1.scope") -> V2Cgroup:
    cgroup = V2Cgroup.for_container(cgroups_path, "ctr1", mount=str(fake.root), own_cgroup=own)
    cgroup.mkdir = fake.mkdir
    cgroup.create()
    fake.sync()
    return cgroup


def test_absolute_path_is_below_the_mount(fake: FakeCgroupV2) -> None:
    cgroup = V2Cgroup.for_container("/pallet/ctr1", "x", mount=str(fake.root), own_cgroup="/a/b")
    assert cgroup.paths == {"": str(fake.root / "pallet/ctr1")}


def test_relative_path_is_below_the_parent_of_the_runtimes_cgroup(fake: FakeCgroupV2) -> None:
    cgroup = V2Cgroup.for_container(
        "pallet/ctr1", "x", mount=str(fake.root), own_cgroup="/user.slice/session-1.scope"
    )
    assert cgroup.path == str(fake.root / "user.slice/pallet/ctr1")
    at_top = V2Cgroup.for_container("", "ctr1", mount=str(fake.root), own_cgroup="/")
    assert at_top.path == str(fake.root / "ctr1")


def test_systemd_form_names_a_scope_in_its_slice(fake: FakeCgroupV2) -> None:
    cgroup = V2Cgroup.for_container("machine-x.slice:pallet:ctr1", "ctr1", systemd=True, mount=str(fake.root))
    assert cgroup.path == str(fake.root / "machine.slice/machine-x.slice/pallet-ctr1.scope")


def test_dotdot_in_cgroups_path_is_refused(fake: FakeCgroupV2) -> None:
    with pytest.raises(InvalidArgument, match=r"must not contain \"..\""):
        V2Cgroup.for_container("/a/../../etc", "x", mount=str(fake.root))


def test_create_delegates_controllers_down_to_the_parent_only(fake: FakeCgroupV2) -> None:
    created(fake, "/pallet/ctr1")
    assert fake.read(fake.root, "cgroup.subtree_control") == "cpuset cpu io memory hugetlb pids\n"
    assert fake.read(fake.root / "pallet", "cgroup.subtree_control") == "cpuset cpu io memory hugetlb pids\n"
    assert fake.read(fake.root / "pallet/ctr1", "cgroup.subtree_control") == ""
    assert (fake.root / "pallet/ctr1/memory.max").exists()


def test_create_is_idempotent(fake: FakeCgroupV2) -> None:
    cgroup = created(fake, "/pallet/ctr1")
    before = snapshot(fake.root)
    cgroup.create()
    assert changes(fake.root, before) == {}


def test_set_writes_converted_limits_to_the_containers_files(fake: FakeCgroupV2) -> None:
    cgroup = created(fake, "/pallet/ctr1")
    before = snapshot(fake.root)
    resources = Resources.from_json(
        {
            "memory": {"limit": 1 << 20, "swap": 3 << 20, "reservation": 1 << 19},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0"},
            "pids": {"limit": 10},
            "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 4096}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
            "unified": {"memory.high": "900000"},
        },
        "linux.resources",
    )
    cgroup.set(resources)
    assert changes(fake.root, before) == {
        "pallet/ctr1/memory.swap.max": "2097152",
        "pallet/ctr1/memory.max": "1048576",
        "pallet/ctr1/memory.low": "524288",
        "pallet/ctr1/memory.high": "900000",
        "pallet/ctr1/cpu.weight": "39",
        "pallet/ctr1/cpu.max": "50000 100000",
        "pallet/ctr1/cpuset.cpus": "0",
        "pallet/ctr1/pids.max": "10",
        "pallet/ctr1/io.weight": "4950",
        "pallet/ctr1/io.max": "8:0 rbps=4096",
        "pallet/ctr1/hugetlb.2MB.max": "4194304",
    }


def test_set_refuses_unified_keys_of_controllers_the_cgroup_lacks(tmp_path: Path) -> None:
    fake = FakeCgroupV2(tmp_path / "unified", controllers=("hugetlb",))
    cgroup = created(fake, "/pallet/ctr1")
    assert cgroup.controllers() == frozenset({"hugetlb"})
    with pytest.raises(SpecError, match='controller "memory" is not available here'):
        cgroup.set(Resources.from_json({"unified": {"memory.high": "1"}}, "linux.resources"))


def test_missing_controller_file_is_named_in_the_error(tmp_path: Path) -> None:
    fake = FakeCgroupV2(tmp_path / "unified", controllers=("hugetlb",))
    cgroup = created(fake, "/pallet/ctr1")
    with pytest.raises(SystemError_, match=r"^write .*/pallet/ctr1/pids.max: no such file or directory$"):
        cgroup.set(Resources.from_json({"pids": {"limit": 3}}, "linux.resources"))


def test_join_writes_the_pid_and_pids_reads_descendants(fake: FakeCgroupV2) -> None:
    cgroup = created(fake, "/pallet/ctr1")
    cgroup.join(4242)
    assert fake.read(cgroup.path, "cgroup.procs") == "4242"
    (Path(cgroup.path) / "sub").mkdir()
    fake.sync()
    (Path(cgroup.path) / "sub/cgroup.procs").write_text("7\n8\n")
    assert cgroup.pids() == [7, 8, 4242]


def test_freeze_writes_cgroup_freeze_and_waits_for_the_event(fake: FakeCgroupV2) -> None:
    cgroup = created(fake, "/pallet/ctr1")
    events = Path(cgroup.path) / "cgroup.events"
    events.write_text("populated 1\nfrozen 1\n")
    cgroup.freeze(True)
    assert fake.read(cgroup.path, "cgroup.freeze") == "1"
    assert cgroup.frozen()
    with pytest.raises(SystemError_, match="did not become thawed"):
        cgroup.freeze(False, timeout=0.01)


def test_kill_writes_cgroup_kill(fake: FakeCgroupV2) -> None:
    cgroup = created(fake, "/pallet/ctr1")
    assert cgroup.kill()
    assert fake.read(cgroup.path, "cgroup.kill") == "1"


def test_remove_is_idempotent_and_leaves_the_parent(tmp_path: Path) -> None:
    # rmdir on a real cgroupfs removes a directory that shows files; plain directories must be empty
    cgroup = V2Cgroup(str(tmp_path / "mnt/pallet/ctr1/sub"), str(tmp_path / "mnt"))
    (tmp_path / "mnt/pallet/ctr1/sub").mkdir(parents=True)
    V2Cgroup(str(tmp_path / "mnt/pallet/ctr1"), str(tmp_path / "mnt")).remove()
    assert not (tmp_path / "mnt/pallet/ctr1").exists()
    assert (tmp_path / "mnt/pallet").exists()
    cgroup.remove()


def test_a_path_outside_the_mount_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="is not below the cgroup2 mount"):
        V2Cgroup(str(tmp_path / "elsewhere"), str(tmp_path / "mnt"))


@pytest.mark.parametrize(
    ("mounts", "mode", "unified"),
    [
        (
            "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
            "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n"
            "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
            "hybrid",
            "/sys/fs/cgroup/unified",
        ),
        ("30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n", "v2", "/sys/fs/cgroup"),
        (
            "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
            "30 23 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
            "v2",
            "/sys/fs/cgroup/unified",
        ),
        ("35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", "v1", ""),
    ],
)
def test_detect_tells_v1_v2_and_hybrid_apart(tmp_path: Path, mounts: str, mode: str, unified: str) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n" + mounts)
    setup = detect(str(mountinfo))
    assert (setup.mode, setup.unified) == (mode, unified)


def test_fake_mountinfo_reads_as_a_v2_host(fake: FakeCgroupV2, tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(fake.mountinfo())
    assert detect(str(mountinfo)).mode == "v2"
