"""``linux.resources`` as cgroup file writes: planning for v1 and v2, and applying a plan.

Planning is pure: ``plan_v1(resources)`` and ``plan_v2(resources)`` return the
ordered list of ``Write(controller, file, value)`` that set the limits, the way
runc 1.1 writes them; only fields that are given produce writes, so ``update``
(``runc update -r``) reuses the same planning with a partial ``Resources``.
Invalid values raise ``SpecError`` naming the JSON path
(``linux.resources.memory.swap: must be at least the memory limit``).

Conventions of the spec kept here (as runc): for limits in bytes, ``0`` or
absent means "leave as is" and ``-1`` means unlimited (v1 writes ``-1``, v2
writes ``max``); ``pids.limit`` <= 0 is unlimited; v1's ``memory.swap`` is the
memory+swap total, converted for v2's swap-only ``memory.swap.max``; cpu shares
and blkio weights given for v1 are converted to v2's ``cpu.weight`` and
``io.weight`` scales with runc's formulas.

``apply(paths, writes)`` writes a plan into a container's cgroup: ``paths`` is
the driver's ``paths`` (v1: hierarchy name such as ``cpu,cpuacct`` ->
directory; v2: ``{"": directory}``, runc's key for the unified hierarchy).
Device rules are planned in ``cgroup_devices``.

On ``pallet-runtime``'s hot path: standard library and lower layers only.
"""

from __future__ import annotations

import os
from errno import EINVAL, ENOENT, EOPNOTSUPP

from pallet.errors import SpecError, SystemError_
from pallet.oci.record import Record
from pallet.runtime.cgroup_devices import v1_device_writes
from pallet.runtime.cgroupfile import write_file as _write_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from pallet.oci.runtime_spec import BlockIO, Cpu, Memory, Resources, ThrottleDevice

__all__ = [
    "Write",
    "apply",
    "blkio_weight_to_io_weight",
    "controllers_of",
    "cpu_shares_to_weight",
    "memory_swap_to_v2",
    "plan_v1",
    "plan_v2",
    "set_v1",
]

_UNLIMITED_V1 = 9223372036854771712  # what a v1 memory.limit_in_bytes reads when unlimited
_SWAPPINESS_UNSET = 2**64 - 1  # -1 written as an unsigned number: leave the kernel default
_PATH = "linux.resources"


class Write(Record):
    """One write of ``value`` to ``file`` in the cgroup directory of ``controller``.

    ``optional``: a missing file (or a kernel that no longer honours it, such as
    ``memory.kmem.limit_in_bytes``) is skipped, as runc does. ``fallback``: the
    file to write instead when ``file`` is missing (blkio weights under BFQ).
    ``retry_last``: on EINVAL, retry once after every other write (a cfs period
    the kernel rejects until the new quota is in place).
    """

    controller: str
    file: str
    value: str
    optional: bool = False
    fallback: str = ""
    retry_last: bool = False


def _limit(value: int | None) -> bool:
    return value is not None and value != 0


def _v2_number(value: int) -> str:
    return "max" if value == -1 else str(value)


def cpu_shares_to_weight(shares: int) -> int:
    """v1 ``cpu.shares`` [2, 262144] -> v2 ``cpu.weight`` [1, 10000] (runc 1.1's linear map); 0 stays 0 (unset)."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    """v1 ``blkio.weight`` [10, 1000] -> v2 ``io.weight`` [1, 10000] (runc's map); 0 stays 0 (unset)."""
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def memory_swap_to_v2(swap: int, memory: int, path: str = f"{_PATH}.memory.swap") -> int:
    """v1 memory+swap total -> v2 ``memory.swap.max`` (runc's ``ConvertMemorySwapToCgroupV2Value``).

    -1 is unlimited and 0 unset (both kept); unlimited memory with unset swap
    means unlimited swap too, as cgroup v1 behaves.
    """
    if memory == -1 and swap == 0:
        return -1
    if swap in (-1, 0):
        return swap
    if memory in (0, -1):
        raise SpecError(
            path, "cannot limit swap without a memory limit; set linux.resources.memory.limit too"
        )
    if memory < 0:
        raise SpecError(f"{_PATH}.memory.limit", f"invalid memory limit {memory}")
    if swap < memory:
        raise SpecError(path, f"must be at least the memory limit ({swap} < {memory}): it is memory+swap")
    return swap - memory


def _check_bytes(value: int | None, path: str) -> None:
    if value is not None and value < -1:
        raise SpecError(path, f"invalid value {value}: use a number of bytes, or -1 for unlimited")


def _check_memory(memory: Memory) -> None:
    base = f"{_PATH}.memory"
    for field, key in (
        ("limit", "limit"),
        ("reservation", "reservation"),
        ("swap", "swap"),
        ("kernel", "kernel"),
        ("kernel_tcp", "kernelTCP"),
    ):
        _check_bytes(getattr(memory, field), f"{base}.{key}")
    limit, swap = memory.limit or 0, memory.swap or 0
    if limit > 0 and swap > 0 and swap < limit:
        raise SpecError(
            f"{base}.swap", f"must be at least the memory limit ({swap} < {limit}): it is memory+swap"
        )


def _check_page_size(size: str, path: str) -> None:
    # the kernel names hugetlb files with sizes such as 2MB, 1GB, 64KB
    digits = size[:-2]
    if len(size) < 3 or size[-2:] not in ("KB", "MB", "GB") or not digits.isdigit() or digits.startswith("0"):
        raise SpecError(path, f'invalid page size "{size}" (want a size such as 2MB or 1GB)')


# ---------------------------------------------------------------------------
# cgroup v1


def _memory_v1(memory: Memory, current_limit: int | None) -> list[Write]:
    _check_memory(memory)
    limit, swap = memory.limit or 0, memory.swap or 0
    # runc: unlimited memory with unset swap means unlimited swap too
    if limit == -1 and swap == 0:
        swap = -1
    mem_write = Write(controller="memory", file="memory.limit_in_bytes", value=str(limit))
    swap_write = Write(
        controller="memory", file="memory.memsw.limit_in_bytes", value=str(swap), optional=swap == -1
    )
    writes: list[Write] = []
    # The kernel keeps memory.limit <= memsw.limit at every moment: when raising
    # past the current limit (or to unlimited) swap goes first, when lowering the
    # memory limit goes first (runc's setMemoryAndSwap reads the current limit).
    current = _UNLIMITED_V1 if current_limit is None else current_limit
    if limit != 0 and swap != 0 and (swap == -1 or current < swap):
        writes += [swap_write, mem_write]
    else:
        if limit != 0:
            writes.append(mem_write)
        if swap != 0:
            writes.append(swap_write)
    if _limit(memory.reservation):
        writes.append(
            Write(controller="memory", file="memory.soft_limit_in_bytes", value=str(memory.reservation))
        )
    # kernel memory accounting is gone from recent kernels: skipped where the file is
    # missing or refuses writes, as runc 1.1 ignores these settings
    if _limit(memory.kernel):
        writes.append(
            Write(
                controller="memory",
                file="memory.kmem.limit_in_bytes",
                value=str(memory.kernel),
                optional=True,
            )
        )
    if _limit(memory.kernel_tcp):
        writes.append(
            Write(
                controller="memory",
                file="memory.kmem.tcp.limit_in_bytes",
                value=str(memory.kernel_tcp),
                optional=True,
            )
        )
    if memory.disable_oom_killer:
        writes.append(Write(controller="memory", file="memory.oom_control", value="1"))
    if memory.swappiness is not None and memory.swappiness != _SWAPPINESS_UNSET:
        writes.append(Write(controller="memory", file="memory.swappiness", value=str(memory.swappiness)))
    return writes


def _check_shares(cpu: Cpu) -> None:
    shares = cpu.shares or 0
    if shares and not 2 <= shares <= 262144:
        raise SpecError(f"{_PATH}.cpu.shares", f"must be between 2 and 262144, got {shares}")


def _check_quota(cpu: Cpu) -> None:
    quota = cpu.quota or 0
    if quota < -1 or 0 < quota < 1000:
        raise SpecError(
            f"{_PATH}.cpu.quota", f"must be at least 1000 (microseconds) or -1 for unlimited, got {quota}"
        )
    period = cpu.period or 0
    if period and not 1000 <= period <= 1000000:
        raise SpecError(
            f"{_PATH}.cpu.period", f"must be between 1000 and 1000000 (microseconds), got {period}"
        )


def _cpu_v1(cpu: Cpu) -> list[Write]:
    _check_shares(cpu)
    _check_quota(cpu)
    writes: list[Write] = []
    if cpu.shares:
        writes.append(Write(controller="cpu", file="cpu.shares", value=str(cpu.shares)))
    if cpu.period:
        # a period shorter than the current one can be refused until the quota is set: retry last
        writes.append(
            Write(
                controller="cpu", file="cpu.cfs_period_us", value=str(cpu.period), retry_last=bool(cpu.quota)
            )
        )
    if cpu.quota:
        writes.append(Write(controller="cpu", file="cpu.cfs_quota_us", value=str(cpu.quota)))
    if cpu.burst is not None:
        writes.append(Write(controller="cpu", file="cpu.cfs_burst_us", value=str(cpu.burst)))
    # the realtime period first: the runtime must fit in it
    if cpu.realtime_period:
        writes.append(Write(controller="cpu", file="cpu.rt_period_us", value=str(cpu.realtime_period)))
    if cpu.realtime_runtime:
        writes.append(Write(controller="cpu", file="cpu.rt_runtime_us", value=str(cpu.realtime_runtime)))
    if cpu.idle is not None:
        writes.append(Write(controller="cpu", file="cpu.idle", value=str(cpu.idle), optional=True))
    return writes


def _cpuset(cpu: Cpu) -> list[Write]:
    writes = []
    if cpu.cpus:
        writes.append(Write(controller="cpuset", file="cpuset.cpus", value=cpu.cpus))
    if cpu.mems:
        writes.append(Write(controller="cpuset", file="cpuset.mems", value=cpu.mems))
    return writes


def _pids_value(limit: int) -> str:
    return str(limit) if limit > 0 else "max"


def _throttles(block_io: BlockIO) -> list[tuple[str, str, tuple[ThrottleDevice, ...]]]:
    return [
        ("throttle.read_bps_device", "rbps", block_io.throttle_read_bps_device),
        ("throttle.write_bps_device", "wbps", block_io.throttle_write_bps_device),
        ("throttle.read_iops_device", "riops", block_io.throttle_read_iops_device),
        ("throttle.write_iops_device", "wiops", block_io.throttle_write_iops_device),
    ]


def _check_weight(weight: int | None, path: str) -> None:
    if weight and not 10 <= weight <= 1000:
        raise SpecError(path, f"must be between 10 and 1000, got {weight}")


def _blkio_v1(block_io: BlockIO) -> list[Write]:
    base = f"{_PATH}.blockIO"
    _check_weight(block_io.weight, f"{base}.weight")
    _check_weight(block_io.leaf_weight, f"{base}.leafWeight")
    writes: list[Write] = []
    # CFQ's blkio.weight is gone with the legacy block layer; BFQ names it blkio.bfq.weight
    if block_io.weight:
        writes.append(
            Write(
                controller="blkio",
                file="blkio.weight",
                value=str(block_io.weight),
                fallback="blkio.bfq.weight",
            )
        )
    # leaf weights were CFQ's, which BFQ does not have: skipped where the kernel lacks them
    if block_io.leaf_weight:
        writes.append(
            Write(
                controller="blkio", file="blkio.leaf_weight", value=str(block_io.leaf_weight), optional=True
            )
        )
    for i, device in enumerate(block_io.weight_device):
        _check_weight(device.weight, f"{base}.weightDevice[{i}].weight")
        _check_weight(device.leaf_weight, f"{base}.weightDevice[{i}].leafWeight")
        if device.weight:
            value = f"{device.major}:{device.minor} {device.weight}"
            writes.append(
                Write(
                    controller="blkio",
                    file="blkio.weight_device",
                    value=value,
                    fallback="blkio.bfq.weight_device",
                )
            )
        if device.leaf_weight:
            value = f"{device.major}:{device.minor} {device.leaf_weight}"
            writes.append(
                Write(controller="blkio", file="blkio.leaf_weight_device", value=value, optional=True)
            )
    for file, _, throttled in _throttles(block_io):
        for limited in throttled:
            writes.append(
                Write(
                    controller="blkio",
                    file=f"blkio.{file}",
                    value=f"{limited.major}:{limited.minor} {limited.rate}",
                )
            )
    return writes


def _hugetlb(resources: Resources, suffix: str) -> list[Write]:
    writes = []
    for i, hugepage in enumerate(resources.hugepage_limits):
        _check_page_size(hugepage.page_size, f"{_PATH}.hugepageLimits[{i}].pageSize")
        file = f"hugetlb.{hugepage.page_size}.{suffix}"
        writes.append(Write(controller="hugetlb", file=file, value=str(hugepage.limit)))
    return writes


def _rdma(resources: Resources) -> list[Write]:
    writes = []
    for device, limit in sorted(resources.rdma.items()):
        parts = [device]
        if limit.hca_handles is not None:
            parts.append(f"hca_handle={limit.hca_handles}")
        if limit.hca_objects is not None:
            parts.append(f"hca_object={limit.hca_objects}")
        if len(parts) > 1:
            writes.append(Write(controller="rdma", file="rdma.max", value=" ".join(parts)))
    return writes


def plan_v1(resources: Resources, *, current_memory_limit: int | None = None) -> list[Write]:
    """The cgroup v1 writes for ``resources``, in order; raises ``SpecError`` on a bad value.

    ``current_memory_limit`` is the cgroup's ``memory.limit_in_bytes`` before the
    writes (None: a new cgroup, unlimited); it decides whether the memory limit
    or the memory+swap limit is written first.
    """
    if resources.unified:
        raise SpecError(f"{_PATH}.unified", "is for cgroup v2 only, and this host uses cgroup v1")
    writes: list[Write] = []
    if resources.devices:
        writes += [
            Write(controller="devices", file=f, value=v) for f, v in v1_device_writes(resources.devices)
        ]
    if resources.memory is not None:
        writes += _memory_v1(resources.memory, current_memory_limit)
    if resources.cpu is not None:
        writes += _cpu_v1(resources.cpu) + _cpuset(resources.cpu)
    if resources.pids is not None:
        writes.append(Write(controller="pids", file="pids.max", value=_pids_value(resources.pids.limit)))
    if resources.block_io is not None:
        writes += _blkio_v1(resources.block_io)
    writes += _hugetlb(resources, "limit_in_bytes")
    if resources.network is not None:
        if resources.network.class_id is not None:
            writes.append(
                Write(controller="net_cls", file="net_cls.classid", value=str(resources.network.class_id))
            )
        for prio in resources.network.priorities:
            writes.append(
                Write(controller="net_prio", file="net_prio.ifpriomap", value=f"{prio.name} {prio.priority}")
            )
    return writes + _rdma(resources)


# ---------------------------------------------------------------------------
# cgroup v2


def _memory_v2(memory: Memory) -> list[Write]:
    _check_memory(memory)
    limit, swap = memory.limit or 0, memory.swap or 0
    swap_v2 = memory_swap_to_v2(swap, limit)
    writes: list[Write] = []
    # swap.max before memory.max as runc; a host without swap accounting has no
    # memory.swap.max, which only matters when swap is limited to a real size
    if swap_v2 != 0 or swap > 0:
        value = _v2_number(swap_v2)
        writes.append(
            Write(controller="memory", file="memory.swap.max", value=value, optional=value in ("max", "0"))
        )
    if limit:
        writes.append(Write(controller="memory", file="memory.max", value=_v2_number(limit)))
    if _limit(memory.reservation):
        writes.append(
            Write(controller="memory", file="memory.low", value=_v2_number(memory.reservation or 0))
        )
    if memory.disable_oom_killer:
        raise SpecError(f"{_PATH}.memory.disableOOMKiller", "cgroup v2 has no way to disable the OOM killer")
    if memory.swappiness is not None and memory.swappiness != _SWAPPINESS_UNSET:
        raise SpecError(
            f"{_PATH}.memory.swappiness", "cgroup v2 has no per-cgroup swappiness; leave it unset"
        )
    return writes


def _cpu_v2(cpu: Cpu) -> list[Write]:
    _check_shares(cpu)
    _check_quota(cpu)
    if cpu.realtime_runtime or cpu.realtime_period:
        key = "realtimeRuntime" if cpu.realtime_runtime else "realtimePeriod"
        raise SpecError(f"{_PATH}.cpu.{key}", "cgroup v2 does not support realtime scheduling limits")
    writes: list[Write] = []
    if cpu.idle is not None:
        writes.append(Write(controller="cpu", file="cpu.idle", value=str(cpu.idle)))
    if cpu.shares:
        writes.append(Write(controller="cpu", file="cpu.weight", value=str(cpu_shares_to_weight(cpu.shares))))
    if cpu.quota or cpu.period:
        value = str(cpu.quota) if (cpu.quota or 0) > 0 else "max"
        if cpu.period:
            value += f" {cpu.period}"
        writes.append(Write(controller="cpu", file="cpu.max", value=value))
    if cpu.burst is not None:
        writes.append(Write(controller="cpu", file="cpu.max.burst", value=str(cpu.burst)))
    return writes


def _io_v2(block_io: BlockIO) -> list[Write]:
    base = f"{_PATH}.blockIO"
    _check_weight(block_io.weight, f"{base}.weight")
    writes: list[Write] = []
    if block_io.weight:
        writes.append(
            Write(controller="io", file="io.weight", value=str(blkio_weight_to_io_weight(block_io.weight)))
        )
    if block_io.leaf_weight:
        raise SpecError(f"{base}.leafWeight", "cgroup v2 has no leaf weights; leave it unset")
    for i, device in enumerate(block_io.weight_device):
        _check_weight(device.weight, f"{base}.weightDevice[{i}].weight")
        if device.leaf_weight:
            raise SpecError(
                f"{base}.weightDevice[{i}].leafWeight", "cgroup v2 has no leaf weights; leave it unset"
            )
        if device.weight:
            value = f"{device.major}:{device.minor} {blkio_weight_to_io_weight(device.weight)}"
            writes.append(Write(controller="io", file="io.weight", value=value))
    # one io.max line per device with every throttle of it; 0 (v1: no limit) is "max"
    per_device: dict[tuple[int, int], list[str]] = {}
    for _, key, throttled in _throttles(block_io):
        for limited in throttled:
            rate = str(limited.rate) if limited.rate else "max"
            per_device.setdefault((limited.major, limited.minor), []).append(f"{key}={rate}")
    for (major, minor), keys in per_device.items():
        writes.append(Write(controller="io", file="io.max", value=f"{major}:{minor} {' '.join(keys)}"))
    return writes


def controllers_of(file: str) -> str:
    """The controller a v2 interface file belongs to (``memory.max`` -> ``memory``)."""
    return file.partition(".")[0]


def _unified(unified: Mapping[str, str], controllers: frozenset[str] | None) -> list[Write]:
    writes = []
    for key, value in sorted(unified.items()):
        path = f"{_PATH}.unified.{key}"
        controller, dot, rest = key.partition(".")
        if "/" in key or not dot or not controller or not rest or key in (".", ".."):
            raise SpecError(path, "must be a file name of the form CONTROLLER.PARAMETER (e.g. memory.high)")
        if controller != "cgroup" and controllers is not None and controller not in controllers:
            available = " ".join(sorted(controllers)) or "none"
            raise SpecError(path, f'controller "{controller}" is not available here (available: {available})')
        writes.append(Write(controller=controller, file=key, value=value))
    return writes


def plan_v2(resources: Resources, *, controllers: frozenset[str] | None = None) -> list[Write]:
    """The cgroup v2 writes for ``resources``, in order; raises ``SpecError`` on a bad value.

    ``controllers``: the controllers available to the cgroup (the parent's
    ``cgroup.controllers``); keys of ``unified`` must belong to one of them
    (or be ``cgroup.*``). ``unified`` comes last so it overrides converted
    values. Devices are not files on v2 (see ``cgroup_devices``).
    """
    writes: list[Write] = []
    if resources.memory is not None:
        writes += _memory_v2(resources.memory)
    if resources.cpu is not None:
        writes += _cpu_v2(resources.cpu) + _cpuset(resources.cpu)
    if resources.pids is not None:
        writes.append(Write(controller="pids", file="pids.max", value=_pids_value(resources.pids.limit)))
    if resources.block_io is not None:
        writes += _io_v2(resources.block_io)
    writes += _hugetlb(resources, "max")
    if resources.network is not None and (
        resources.network.class_id is not None or resources.network.priorities
    ):
        raise SpecError(f"{_PATH}.network", "cgroup v2 has no net_cls/net_prio controllers; leave it unset")
    return writes + _rdma(resources) + _unified(resources.unified, controllers)


# ---------------------------------------------------------------------------
# applying a plan


def _directory(paths: Mapping[str, str], controller: str) -> str | None:
    if "" in paths:
        return paths[""]
    for hierarchy, directory in paths.items():
        if controller in hierarchy.split(","):
            return directory
    return None


def _write(directory: str, write: Write) -> None:
    path = os.path.join(directory, write.file)
    try:
        _write_file(path, write.value)
    except FileNotFoundError:
        if write.fallback:
            _write(directory, write.replace(file=write.fallback, fallback=""))
        elif not write.optional:
            raise SystemError_(f"write {path}", ENOENT) from None
    except OSError as e:
        if write.optional and e.errno in (EOPNOTSUPP, EINVAL):
            return
        raise SystemError_(f"write {path}", e.errno or 0) from None


def apply(paths: Mapping[str, str], writes: Iterable[Write]) -> None:
    """Write a plan into the cgroup, in order (not atomic: stops at the first refused write).

    A write whose controller has no hierarchy in ``paths`` fails, unless optional.
    """
    deferred: list[tuple[str, Write]] = []
    for write in writes:
        directory = _directory(paths, write.controller)
        if directory is None:
            if write.optional:
                continue
            raise SystemError_(
                f"write {write.file}: no {write.controller} cgroup hierarchy is mounted", ENOENT
            )
        try:
            _write(directory, write)
        except SystemError_ as e:
            if not (write.retry_last and e.errno == EINVAL):
                raise
            deferred.append((directory, write))
    for directory, write in deferred:
        _write(directory, write)


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def set_v1(paths: Mapping[str, str], resources: Resources) -> None:
    """Plan and apply ``resources`` on v1 (create and ``update``): reads the current memory limit first."""
    current = None
    directory = _directory(paths, "memory")
    if directory is not None and resources.memory is not None:
        current = _read_int(os.path.join(directory, "memory.limit_in_bytes"))
    apply(paths, plan_v1(resources, current_memory_limit=current))
