"""Limits on the host's real cgroup v1 hierarchies: a child moved into a temporary cgroup feels them.

Each test makes ``pallet-test-<random>`` below the test process's own cgroup in
every hierarchy (so nothing leaves the cgroups the test runs in) and removes it
in a finalizer after killing whatever is left in it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable, Iterator

import pytest

from pallet.errors import SystemError_
from pallet.oci.runtime_spec import Resources
from pallet.runtime.cgroup_devices import container_rules
from pallet.runtime.cgroup_limits import set_v1
from pallet.runtime.cgroup_v2 import detect
from pallet.runtime.cgroups import V1Cgroups
from pallet.testing.host import require_cgroup_v1_file, require_host_path

pytestmark = pytest.mark.root


@pytest.fixture
def cgroup() -> Iterator[V1Cgroups]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if detect().mode == "v2":
        pytest.skip("this host has no cgroup v1 hierarchies")
    name = f"pallet-test-{secrets.token_hex(4)}"
    cgroups = V1Cgroups.for_container(name, name, systemd=False)
    cgroups.create()
    try:
        yield cgroups
    finally:
        for pid in cgroups.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        cgroups.remove()


def res(**obj: object) -> Resources:
    return Resources.from_json(obj, "linux.resources")


def directory(cgroups: V1Cgroups, controller: str) -> str:
    return next(p for h, p in cgroups.paths.items() if controller in h.split(","))


def read(cgroups: V1Cgroups, controller: str, file: str) -> str:
    with open(os.path.join(directory(cgroups, controller), file)) as f:
        return f.read().strip()


def in_child(cgroups: V1Cgroups, work: Callable[[], bytes]) -> tuple[int, bytes]:
    """Fork, join the cgroup, run ``work``; returns the child's wait status and what ``work`` returned."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(reader)
            cgroups.join(0)
            os.write(writer, work())
        except BaseException:  # noqa: BLE001 - a forked child must never return into pytest
            code = 1
        finally:
            os._exit(code)
    os.close(writer)
    chunks = []
    while chunk := os.read(reader, 4096):
        chunks.append(chunk)
    os.close(reader)
    _, status = os.waitpid(pid, 0)
    return status, b"".join(chunks)


def test_pids_limit_makes_the_fifth_fork_fail_with_eagain(cgroup: V1Cgroups) -> None:
    set_v1(cgroup.paths, res(pids={"limit": 5}))
    assert read(cgroup, "pids", "pids.max") == "5"

    def fork_until_refused() -> bytes:
        hold_r, hold_w = os.pipe()
        children = []
        result = b"no failure"
        for _ in range(10):
            try:
                child = os.fork()
            except OSError as e:
                result = f"{len(children)} {errno.errorcode[e.errno or 0]} {read(cgroup, 'pids', 'pids.current')}".encode()
                break
            if child == 0:
                os.close(hold_w)
                os.read(hold_r, 1)  # hold the pid until the parent closes the pipe
                os._exit(0)
            children.append(child)
        os.close(hold_w)
        for child in children:
            os.waitpid(child, 0)
        return result

    status, out = in_child(cgroup, fork_until_refused)
    assert os.WIFEXITED(status)
    # the child itself is one of the 5 tasks: 4 forks succeed, the 5th is refused
    assert out == b"4 EAGAIN 5"


def test_memory_limit_gets_a_hungry_child_oom_killed(cgroup: V1Cgroups) -> None:
    limit = 32 << 20
    set_v1(cgroup.paths, res(memory={"limit": limit, "swap": limit}))
    assert read(cgroup, "memory", "memory.limit_in_bytes") == str(limit)

    def allocate() -> bytes:
        hog = b"\x01" * (128 << 20)  # touched pages, four times the limit
        return str(len(hog)).encode()

    status, out = in_child(cgroup, allocate)
    assert os.WIFSIGNALED(status)
    assert os.WTERMSIG(status) == 9
    assert out == b""
    # usage reached the limit and no further (this kernel leaves memory.failcnt at 0 for v1)
    assert read(cgroup, "memory", "memory.max_usage_in_bytes") == str(limit)
    oom = dict(line.split() for line in read(cgroup, "memory", "memory.oom_control").splitlines())
    assert int(oom["oom_kill"]) >= 1


def test_raising_and_lowering_memory_with_swap_in_the_right_order(cgroup: V1Cgroups) -> None:
    require_cgroup_v1_file("memory", "memory.memsw.limit_in_bytes")
    mib = 1 << 20
    for memory, swap in ((100 * mib, 200 * mib), (300 * mib, 400 * mib), (50 * mib, 60 * mib)):
        set_v1(cgroup.paths, res(memory={"limit": memory, "swap": swap}))
        assert read(cgroup, "memory", "memory.limit_in_bytes") == str(memory)
        assert read(cgroup, "memory", "memory.memsw.limit_in_bytes") == str(swap)
    set_v1(cgroup.paths, res(memory={"limit": -1}))
    assert read(cgroup, "memory", "memory.limit_in_bytes") == "9223372036854771712"
    assert read(cgroup, "memory", "memory.memsw.limit_in_bytes") == "9223372036854771712"


def test_cpu_limits_read_back_from_the_kernel(cgroup: V1Cgroups) -> None:
    require_cgroup_v1_file("cpu", "cpu.cfs_quota_us")
    set_v1(cgroup.paths, res(cpu={"shares": 512, "quota": 20000, "period": 50000, "cpus": "0", "mems": "0"}))
    assert read(cgroup, "cpu", "cpu.shares") == "512"
    assert read(cgroup, "cpu", "cpu.cfs_quota_us") == "20000"
    assert read(cgroup, "cpu", "cpu.cfs_period_us") == "50000"
    assert read(cgroup, "cpuset", "cpuset.cpus") == "0"

    def affinity() -> bytes:
        return ",".join(str(c) for c in sorted(os.sched_getaffinity(0))).encode()

    status, out = in_child(cgroup, affinity)
    assert os.WIFEXITED(status)
    assert out == b"0"


def test_device_rules_deny_what_is_not_allowed(cgroup: V1Cgroups) -> None:
    require_host_path("/dev/kmsg", "the denied device the child tries to open")
    set_v1(
        cgroup.paths,
        res(
            devices=[
                r.to_json() for r in container_rules(res(devices=[{"allow": False, "access": "rwm"}]).devices)
            ]
        ),
    )
    assert "c 1:3 rwm" in read(cgroup, "devices", "devices.list").splitlines()

    def open_devices() -> bytes:
        results = []
        for path in ("/dev/null", "/dev/kmsg"):
            try:
                os.close(os.open(path, os.O_RDONLY))
                results.append("ok")
            except OSError as e:
                results.append(errno.errorcode[e.errno or 0])
        return " ".join(results).encode()

    status, out = in_child(cgroup, open_devices)
    assert os.WIFEXITED(status)
    assert out == b"ok EPERM"


def test_a_refused_value_names_the_file_go_style(cgroup: V1Cgroups) -> None:
    with pytest.raises(SystemError_) as e:
        set_v1(cgroup.paths, res(cpu={"cpus": "zero"}))
    path = os.path.join(directory(cgroup, "cpuset"), "cpuset.cpus")
    assert str(e.value) == f"write {path}: invalid argument"


def _block_device() -> tuple[int, int]:
    for name in sorted(os.listdir("/sys/block")):
        if not name.startswith(("loop", "zram", "ram")):
            with open(f"/sys/block/{name}/dev") as f:
                major, minor = f.read().strip().split(":")
            return int(major), int(minor)
    pytest.skip("no disk block device to throttle")


def test_blkio_weight_reads_back(cgroup: V1Cgroups) -> None:
    weight_file = require_cgroup_v1_file("blkio", "blkio.weight", "blkio.bfq.weight")
    set_v1(cgroup.paths, res(blockIO={"weight": 300, "leafWeight": 200}))
    assert read(cgroup, "blkio", weight_file).split()[-1] == "300"


def test_blkio_weight_without_a_weight_file_is_refused_naming_the_file(cgroup: V1Cgroups) -> None:
    blkio = directory(cgroup, "blkio")
    if any(os.path.exists(os.path.join(blkio, f)) for f in ("blkio.weight", "blkio.bfq.weight")):
        pytest.skip("this host's blkio controller has a weight file (BFQ or an old CFQ kernel)")
    with pytest.raises(SystemError_) as e:
        set_v1(cgroup.paths, res(blockIO={"weight": 300}))
    assert str(e.value) == f"write {os.path.join(blkio, 'blkio.bfq.weight')}: no such file or directory"


def test_blkio_throttle_reads_back(cgroup: V1Cgroups) -> None:
    require_cgroup_v1_file("blkio", "blkio.throttle.read_bps_device")
    major, minor = _block_device()
    set_v1(
        cgroup.paths,
        res(blockIO={"throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1 << 20}]}),
    )
    assert read(cgroup, "blkio", "blkio.throttle.read_bps_device") == f"{major}:{minor} {1 << 20}"


def test_hugetlb_limit_reads_back(cgroup: V1Cgroups) -> None:
    require_cgroup_v1_file("hugetlb", "hugetlb.2MB.limit_in_bytes")
    set_v1(cgroup.paths, res(hugepageLimits=[{"pageSize": "2MB", "limit": 4 << 20}]))
    assert read(cgroup, "hugetlb", "hugetlb.2MB.limit_in_bytes") == str(4 << 20)
