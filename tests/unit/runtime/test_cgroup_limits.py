"""linux.resources -> cgroup v1/v2 writes: every field, conversions, ordering, validation; apply() on a fake v1 tree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pallet.errors import SpecError, SystemError_
from pallet.oci.runtime_spec import Resources
from pallet.runtime.cgroup_limits import (
    Write,
    apply,
    blkio_weight_to_io_weight,
    cpu_shares_to_weight,
    memory_swap_to_v2,
    plan_v1,
    plan_v2,
    set_v1,
)
from pallet.testing.fake_cgroupfs import FakeCgroupV1, changes, snapshot

UNLIMITED = 9223372036854771712


def res(**obj: Any) -> Resources:
    return Resources.from_json(obj, "linux.resources")


def files(writes: list[Write]) -> list[tuple[str, str]]:
    return [(w.file, w.value) for w in writes]


# --- v1 memory


def test_v1_memory_limit_reservation_swappiness_and_oom_killer() -> None:
    writes = plan_v1(
        res(memory={"limit": 1 << 20, "reservation": 1 << 19, "swappiness": 10, "disableOOMKiller": True})
    )
    assert files(writes) == [
        ("memory.limit_in_bytes", "1048576"),
        ("memory.soft_limit_in_bytes", "524288"),
        ("memory.oom_control", "1"),
        ("memory.swappiness", "10"),
    ]
    assert {w.controller for w in writes} == {"memory"}


def test_v1_new_cgroup_writes_memory_before_swap() -> None:
    writes = plan_v1(res(memory={"limit": 100, "swap": 200}))
    assert files(writes) == [("memory.limit_in_bytes", "100"), ("memory.memsw.limit_in_bytes", "200")]


def test_v1_raising_memory_above_current_limit_writes_swap_first() -> None:
    writes = plan_v1(res(memory={"limit": 300, "swap": 400}), current_memory_limit=100)
    assert files(writes) == [("memory.memsw.limit_in_bytes", "400"), ("memory.limit_in_bytes", "300")]


def test_v1_lowering_memory_writes_memory_first() -> None:
    writes = plan_v1(res(memory={"limit": 100, "swap": 150}), current_memory_limit=300)
    assert files(writes) == [("memory.limit_in_bytes", "100"), ("memory.memsw.limit_in_bytes", "150")]


def test_v1_unlimited_memory_makes_swap_unlimited_too_and_swap_goes_first() -> None:
    writes = plan_v1(res(memory={"limit": -1}))
    assert files(writes) == [("memory.memsw.limit_in_bytes", "-1"), ("memory.limit_in_bytes", "-1")]
    assert writes[0].optional  # hosts without swap accounting have no memsw file


def test_v1_zero_and_absent_memory_fields_write_nothing() -> None:
    assert plan_v1(res(memory={"limit": 0, "swap": 0, "reservation": 0})) == []
    assert plan_v1(res()) == []


def test_v1_swappiness_minus_one_as_unsigned_is_left_alone() -> None:
    assert plan_v1(res(memory={"swappiness": 2**64 - 1})) == []


def test_v1_kernel_memory_writes_are_optional() -> None:
    writes = plan_v1(res(memory={"kernel": 1 << 20, "kernelTCP": 1 << 19}))
    assert files(writes) == [
        ("memory.kmem.limit_in_bytes", "1048576"),
        ("memory.kmem.tcp.limit_in_bytes", "524288"),
    ]
    assert all(w.optional for w in writes)


def test_swap_below_memory_limit_is_a_spec_error_naming_the_field() -> None:
    with pytest.raises(SpecError) as e:
        plan_v1(res(memory={"limit": 200, "swap": 100}))
    assert e.value.path == "linux.resources.memory.swap"
    assert str(e.value).startswith("linux.resources.memory.swap: must be at least the memory limit")


def test_negative_memory_below_minus_one_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"linux.resources.memory.limit: invalid value -2"):
        plan_v1(res(memory={"limit": -2}))


# --- v1 cpu, cpuset, pids


def test_v1_cpu_fields_in_kernel_order() -> None:
    writes = plan_v1(
        res(
            cpu={
                "shares": 512,
                "quota": 50000,
                "period": 100000,
                "burst": 1000,
                "realtimeRuntime": 950,
                "realtimePeriod": 1000,
                "cpus": "0-1",
                "mems": "0",
            }
        )
    )
    assert files(writes) == [
        ("cpu.shares", "512"),
        ("cpu.cfs_period_us", "100000"),
        ("cpu.cfs_quota_us", "50000"),
        ("cpu.cfs_burst_us", "1000"),
        ("cpu.rt_period_us", "1000"),
        ("cpu.rt_runtime_us", "950"),
        ("cpuset.cpus", "0-1"),
        ("cpuset.mems", "0"),
    ]
    assert writes[1].retry_last  # the period is retried after the quota on EINVAL
    assert [w.controller for w in writes[-2:]] == ["cpuset", "cpuset"]


def test_v1_unlimited_quota_is_minus_one() -> None:
    assert files(plan_v1(res(cpu={"quota": -1}))) == [("cpu.cfs_quota_us", "-1")]


@pytest.mark.parametrize(
    ("cpu", "path"),
    [
        ({"shares": 1}, "linux.resources.cpu.shares"),
        ({"shares": 262145}, "linux.resources.cpu.shares"),
        ({"quota": 999}, "linux.resources.cpu.quota"),
        ({"quota": -5}, "linux.resources.cpu.quota"),
        ({"period": 999}, "linux.resources.cpu.period"),
        ({"period": 1000001}, "linux.resources.cpu.period"),
    ],
)
def test_out_of_range_cpu_values_are_spec_errors(cpu: dict[str, int], path: str) -> None:
    for plan in (plan_v1, plan_v2):
        with pytest.raises(SpecError) as e:
            plan(res(cpu=cpu))
        assert e.value.path == path


@pytest.mark.parametrize(("limit", "value"), [(5, "5"), (-1, "max"), (0, "max")])
def test_pids_limit_zero_or_negative_is_max(limit: int, value: str) -> None:
    assert files(plan_v1(res(pids={"limit": limit}))) == [("pids.max", value)]
    assert files(plan_v2(res(pids={"limit": limit}))) == [("pids.max", value)]


# --- v1 blkio, hugetlb, network, rdma, devices, unified


def test_v1_blkio_weights_and_throttles() -> None:
    writes = plan_v1(
        res(
            blockIO={
                "weight": 300,
                "leafWeight": 200,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 400, "leafWeight": 100}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2000}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 30}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 40}],
            }
        )
    )
    assert files(writes) == [
        ("blkio.weight", "300"),
        ("blkio.leaf_weight", "200"),
        ("blkio.weight_device", "8:0 400"),
        ("blkio.leaf_weight_device", "8:0 100"),
        ("blkio.throttle.read_bps_device", "8:0 1000"),
        ("blkio.throttle.write_bps_device", "8:0 2000"),
        ("blkio.throttle.read_iops_device", "8:16 30"),
        ("blkio.throttle.write_iops_device", "8:16 40"),
    ]
    assert writes[0].fallback == "blkio.bfq.weight"


def test_blkio_weight_out_of_range_is_a_spec_error() -> None:
    with pytest.raises(
        SpecError, match=r"^linux.resources.blockIO.weightDevice\[0\].weight: must be between 10 and 1000"
    ):
        plan_v1(res(blockIO={"weightDevice": [{"major": 8, "minor": 0, "weight": 5}]}))


def test_hugepage_limits_use_each_versions_file_name() -> None:
    r = res(hugepageLimits=[{"pageSize": "2MB", "limit": 4 << 21}, {"pageSize": "1GB", "limit": 0}])
    assert files(plan_v1(r)) == [
        ("hugetlb.2MB.limit_in_bytes", "8388608"),
        ("hugetlb.1GB.limit_in_bytes", "0"),
    ]
    assert files(plan_v2(r)) == [("hugetlb.2MB.max", "8388608"), ("hugetlb.1GB.max", "0")]


@pytest.mark.parametrize("size", ["2M", "2mb", "MB", "02MB", "2 MB", "2MB/x"])
def test_bad_hugepage_size_is_a_spec_error(size: str) -> None:
    with pytest.raises(SpecError) as e:
        plan_v2(res(hugepageLimits=[{"pageSize": size, "limit": 1}]))
    assert e.value.path == "linux.resources.hugepageLimits[0].pageSize"


def test_v1_network_classid_and_priorities() -> None:
    writes = plan_v1(res(network={"classID": 0x100001, "priorities": [{"name": "eth0", "priority": 5}]}))
    assert [(w.controller, w.file, w.value) for w in writes] == [
        ("net_cls", "net_cls.classid", "1048577"),
        ("net_prio", "net_prio.ifpriomap", "eth0 5"),
    ]


def test_rdma_limits_are_one_line_per_device() -> None:
    r = res(rdma={"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "mlx4_0": {"hcaHandles": 2}})
    expected = [("rdma.max", "mlx4_0 hca_handle=2"), ("rdma.max", "mlx5_1 hca_handle=3 hca_object=10000")]
    assert files(plan_v1(r)) == expected
    assert files(plan_v2(r)) == expected


def test_v1_devices_deny_everything_then_apply_rules() -> None:
    writes = plan_v1(
        res(
            devices=[
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
            ]
        )
    )
    assert [(w.controller, w.file, w.value) for w in writes] == [
        ("devices", "devices.deny", "a"),
        ("devices", "devices.deny", "a *:* rwm"),
        ("devices", "devices.allow", "c 1:3 rw"),
    ]


def test_unified_on_v1_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"^linux\.resources\.unified: is for cgroup v2 only"):
        plan_v1(res(unified={"memory.high": "100"}))


# --- v2


def test_v2_memory_converts_swap_to_swap_only_and_writes_it_first() -> None:
    writes = plan_v2(res(memory={"limit": 100, "swap": 300, "reservation": 50}))
    assert files(writes) == [("memory.swap.max", "200"), ("memory.max", "100"), ("memory.low", "50")]


def test_v2_swap_equal_to_memory_disables_swap() -> None:
    assert files(plan_v2(res(memory={"limit": 100, "swap": 100}))) == [
        ("memory.swap.max", "0"),
        ("memory.max", "100"),
    ]


def test_v2_unlimited_memory_and_swap_are_max() -> None:
    writes = plan_v2(res(memory={"limit": -1}))
    assert files(writes) == [("memory.swap.max", "max"), ("memory.max", "max")]
    assert writes[0].optional  # no swap accounting: "max" needs no file
    assert files(plan_v2(res(memory={"limit": 100, "swap": -1}))) == [
        ("memory.swap.max", "max"),
        ("memory.max", "100"),
    ]


def test_v2_swap_without_memory_limit_is_a_spec_error() -> None:
    with pytest.raises(
        SpecError, match=r"^linux\.resources\.memory\.swap: cannot limit swap without a memory limit"
    ):
        plan_v2(res(memory={"swap": 300}))


@pytest.mark.parametrize(
    ("swap", "memory", "expected"),
    [(0, 0, 0), (0, -1, -1), (-1, 100, -1), (0, 100, 0), (300, 100, 200), (100, 100, 0)],
)
def test_memory_swap_conversion_matches_runc(swap: int, memory: int, expected: int) -> None:
    assert memory_swap_to_v2(swap, memory) == expected


def test_v2_rejects_v1_only_memory_knobs() -> None:
    with pytest.raises(SpecError, match="disableOOMKiller"):
        plan_v2(res(memory={"disableOOMKiller": True}))
    with pytest.raises(SpecError, match="swappiness"):
        plan_v2(res(memory={"swappiness": 10}))


@pytest.mark.parametrize(("shares", "weight"), [(2, 1), (1024, 39), (262144, 10000), (0, 0)])
def test_cpu_shares_to_weight_matches_runc(shares: int, weight: int) -> None:
    assert cpu_shares_to_weight(shares) == weight


@pytest.mark.parametrize(("blkio", "io"), [(10, 1), (500, 4950), (1000, 10000), (0, 0)])
def test_blkio_weight_to_io_weight_matches_runc(blkio: int, io: int) -> None:
    assert blkio_weight_to_io_weight(blkio) == io


def test_v2_cpu_weight_max_burst_idle_and_cpuset() -> None:
    writes = plan_v2(
        res(
            cpu={
                "shares": 1024,
                "quota": 50000,
                "period": 100000,
                "burst": 500,
                "idle": 0,
                "cpus": "1",
                "mems": "0",
            }
        )
    )
    assert files(writes) == [
        ("cpu.idle", "0"),
        ("cpu.weight", "39"),
        ("cpu.max", "50000 100000"),
        ("cpu.max.burst", "500"),
        ("cpuset.cpus", "1"),
        ("cpuset.mems", "0"),
    ]


@pytest.mark.parametrize(
    ("cpu", "value"),
    [
        ({"quota": -1}, "max"),
        ({"period": 50000}, "max 50000"),
        ({"quota": -1, "period": 20000}, "max 20000"),
        ({"quota": 3000}, "3000"),
    ],
)
def test_v2_cpu_max_forms(cpu: dict[str, int], value: str) -> None:
    assert files(plan_v2(res(cpu=cpu))) == [("cpu.max", value)]


def test_v2_realtime_is_refused() -> None:
    with pytest.raises(
        SpecError, match=r"^linux\.resources\.cpu\.realtimeRuntime: cgroup v2 does not support realtime"
    ):
        plan_v2(res(cpu={"realtimeRuntime": 100}))


def test_v2_io_weight_and_one_io_max_line_per_device() -> None:
    writes = plan_v2(
        res(
            blockIO={
                "weight": 500,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 1000}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 0}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 30}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 40}],
            }
        )
    )
    assert files(writes) == [
        ("io.weight", "4950"),
        ("io.weight", "8:0 10000"),
        ("io.max", "8:0 rbps=1000 wbps=max wiops=40"),
        ("io.max", "8:16 riops=30"),
    ]


def test_v2_network_is_refused() -> None:
    with pytest.raises(SpecError, match=r"^linux\.resources\.network: cgroup v2 has no net_cls"):
        plan_v2(res(network={"classID": 1}))


def test_v2_unified_comes_last_and_overrides() -> None:
    writes = plan_v2(
        res(memory={"limit": 100}, unified={"memory.max": "200", "cgroup.max.depth": "3"}),
        controllers=frozenset({"memory"}),
    )
    assert files(writes) == [("memory.max", "100"), ("cgroup.max.depth", "3"), ("memory.max", "200")]


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("memory", "must be a file name of the form CONTROLLER.PARAMETER"),
        ("../memory.max", "must be a file name"),
        ("memory/x.max", "must be a file name"),
        ("io.max", 'controller "io" is not available here (available: memory pids)'),
    ],
)
def test_v2_bad_unified_keys_are_spec_errors(key: str, problem: str) -> None:
    with pytest.raises(SpecError) as e:
        plan_v2(res(unified={key: "1"}), controllers=frozenset({"memory", "pids"}))
    assert e.value.path == f"linux.resources.unified.{key}"
    assert problem in e.value.problem


# --- apply on a fake v1 tree


@pytest.fixture
def v1(tmp_path: Path) -> FakeCgroupV1:
    fake = FakeCgroupV1(tmp_path / "cgroup")
    for hierarchy in fake.hierarchies:
        (fake.root / hierarchy / "ctr").mkdir()
    fake.sync()
    return fake


def test_set_v1_writes_each_file_in_its_hierarchy(v1: FakeCgroupV1) -> None:
    before = snapshot(v1.root)
    set_v1(
        v1.paths("ctr"),
        res(
            memory={"limit": 1 << 20, "swap": 2 << 20}, cpu={"shares": 512, "quota": 20000}, pids={"limit": 5}
        ),
    )
    assert changes(v1.root, before) == {
        "memory/ctr/memory.limit_in_bytes": "1048576",
        "memory/ctr/memory.memsw.limit_in_bytes": "2097152",
        "cpu,cpuacct/ctr/cpu.shares": "512",
        "cpu,cpuacct/ctr/cpu.cfs_quota_us": "20000",
        "pids/ctr/pids.max": "5",
    }


def test_set_v1_reads_current_limit_to_order_swap(v1: FakeCgroupV1, monkeypatch: pytest.MonkeyPatch) -> None:
    (v1.root / "memory/ctr/memory.limit_in_bytes").write_text("100\n")
    order: list[str] = []
    import pallet.runtime.cgroup_limits as limits

    real = limits._write_file
    monkeypatch.setattr(
        limits, "_write_file", lambda path, value: (order.append(Path(path).name), real(path, value))
    )
    set_v1(v1.paths("ctr"), res(memory={"limit": 300, "swap": 400}))
    assert order == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]


def test_apply_uses_bfq_weight_when_blkio_weight_is_missing(tmp_path: Path) -> None:
    fake = FakeCgroupV1(tmp_path / "cgroup", hierarchies=("blkio",), bfq=True)
    (fake.root / "blkio/ctr").mkdir()
    fake.sync()
    apply(fake.paths("ctr"), plan_v1(res(blockIO={"weight": 300})))
    assert fake.read("ctr", "blkio", "blkio.bfq.weight") == "300"


def test_apply_skips_optional_files_the_kernel_lacks(tmp_path: Path) -> None:
    fake = FakeCgroupV1(
        tmp_path / "cgroup",
        hierarchies=("memory",),
        without=("memory.memsw.limit_in_bytes", "memory.kmem.limit_in_bytes"),
    )
    (fake.root / "memory/ctr").mkdir()
    fake.sync()
    set_v1(fake.paths("ctr"), res(memory={"limit": -1, "kernel": 100}))
    assert fake.read("ctr", "memory", "memory.limit_in_bytes") == "-1"
    assert not (fake.root / "memory/ctr/memory.memsw.limit_in_bytes").exists()


def test_apply_names_the_file_when_a_required_one_is_missing(tmp_path: Path) -> None:
    fake = FakeCgroupV1(
        tmp_path / "cgroup", hierarchies=("memory",), without=("memory.memsw.limit_in_bytes",)
    )
    (fake.root / "memory/ctr").mkdir()
    fake.sync()
    with pytest.raises(SystemError_) as e:
        set_v1(fake.paths("ctr"), res(memory={"limit": 100, "swap": 200}))
    path = fake.root / "memory/ctr/memory.memsw.limit_in_bytes"
    assert str(e.value) == f"write {path}: no such file or directory"


def test_apply_fails_clearly_when_a_controller_is_not_mounted(tmp_path: Path) -> None:
    fake = FakeCgroupV1(tmp_path / "cgroup", hierarchies=("memory",))
    with pytest.raises(SystemError_, match=r"write pids\.max: no pids cgroup hierarchy is mounted"):
        apply(fake.paths("ctr"), plan_v1(res(pids={"limit": 3})))


def test_apply_retries_a_refused_period_after_the_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCgroupV1(tmp_path / "cgroup", hierarchies=("cpu,cpuacct",))
    (fake.root / "cpu,cpuacct/ctr").mkdir()
    fake.sync()
    import pallet.runtime.cgroup_limits as limits

    real = limits._write_file
    order: list[str] = []

    def refuse_period_once(path: str, value: str) -> None:
        name = Path(path).name
        order.append(name)
        if name == "cpu.cfs_period_us" and order.count(name) == 1:
            raise OSError(22, "Invalid argument")
        real(path, value)

    monkeypatch.setattr(limits, "_write_file", refuse_period_once)
    apply(fake.paths("ctr"), plan_v1(res(cpu={"quota": 5000, "period": 10000})))
    assert order == ["cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.cfs_period_us"]
    assert fake.read("ctr", "cpu,cpuacct", "cpu.cfs_period_us") == "10000"


def test_apply_reports_kernel_refusal_go_style(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCgroupV1(tmp_path / "cgroup", hierarchies=("memory",))
    (fake.root / "memory/ctr").mkdir()
    fake.sync()
    import pallet.runtime.cgroup_limits as limits

    def refuse(path: str, value: str) -> None:
        raise OSError(16, "Device or resource busy")

    monkeypatch.setattr(limits, "_write_file", refuse)
    with pytest.raises(SystemError_) as e:
        apply(fake.paths("ctr"), plan_v1(res(memory={"limit": 100})))
    assert str(e.value) == f"write {fake.root}/memory/ctr/memory.limit_in_bytes: device or resource busy"
    assert e.value.errno == 16
