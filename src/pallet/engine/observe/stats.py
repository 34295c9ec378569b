"""``pallet stats``: a container's resource use from its cgroups, computed as docker computes it.

The container's cgroups are found from its init process (``/proc/<pid>/cgroup``
read from the host names them as the host sees them, whatever cgroup
namespace the container has) and the host's cgroup mounts. Both cgroup v1
(this machine: one hierarchy per controller) and the unified v2 hierarchy are
read:

- memory: usage minus inactive file cache (docker's "MEM USAGE" since
  19.03), limit (the host's memory when unlimited), and their ratio;
- CPU %: the container's CPU time over the host's, between two samples,
  times the number of online CPUs (docker's ``calculateCPUPercentUnix``);
- block I/O: bytes read and written (v1 ``blkio.throttle.io_service_bytes``,
  v2 ``io.stat``);
- network: bytes received and sent on the container's interfaces other
  than loopback (``/proc/<pid>/net/dev``, its network namespace);
- pids: ``pids.current``.

Pure reads of ``/proc`` and ``/sys``; a container that exits meanwhile gives
zeros, never an error.
"""

from __future__ import annotations

import os
import time

from pallet.oci.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["Sample", "Usage", "cgroup_dirs", "cgroup_pids", "measure", "sample", "usage"]

_CGROUP_ROOT = "/sys/fs/cgroup"


class Sample(Record):
    """One reading of a container's counters."""

    cpu_ns: int = 0
    system_ns: int = 0
    online_cpus: int = 1
    memory: int = 0
    memory_limit: int = 0
    block_read: int = 0
    block_write: int = 0
    net_rx: int = 0
    net_tx: int = 0
    pids: int = 0


class Usage(Record):
    """What ``stats`` shows for one container (docker's ``StatsEntry``)."""

    cpu_percent: float = 0.0
    memory: int = 0
    memory_limit: int = 0
    memory_percent: float = 0.0
    block_read: int = 0
    block_write: int = 0
    net_rx: int = 0
    net_tx: int = 0
    pids: int = 0


def _mounts(mountinfo: str = "/proc/self/mountinfo") -> tuple[dict[str, str], str | None]:
    """The v1 hierarchies (each controller -> mount point) and the v2 mount point, if any."""
    v1: dict[str, str] = {}
    v2: str | None = None
    with open(mountinfo) as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = right.split()
            if len(fields) < 3:
                continue
            point = left.split()[4].replace("\\040", " ")
            if fields[0] == "cgroup2":
                v2 = v2 or point
            elif fields[0] == "cgroup":
                for option in fields[2].split(","):
                    v1.setdefault(option, point)
    return v1, v2


def cgroup_dirs(pid: int) -> dict[str, str]:
    """Controller (``memory``, ``cpuacct``, ``pids``, ``blkio``, ...; ``unified`` for v2) -> the
    directory of ``pid``'s cgroup. Empty if the process is gone."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    v1, v2 = _mounts()
    found: dict[str, str] = {}
    for line in lines:
        _, names, path = line.split(":", 2)
        if not names:
            if v2 is not None:
                found["unified"] = os.path.join(v2, path.lstrip("/"))
            continue
        for name in names.split(","):
            point = v1.get(name)
            if point is not None:
                found[name] = os.path.join(point, path.lstrip("/"))
    return found


def cgroup_pids(pid: int) -> list[int]:
    """Every process in ``pid``'s cgroup (the container's processes), sorted; [] if it is gone."""
    dirs = cgroup_dirs(pid)
    for controller in ("pids", "memory", "cpuacct", "unified", "name=systemd"):
        directory = dirs.get(controller)
        if directory is None:
            continue
        try:
            with open(os.path.join(directory, "cgroup.procs")) as f:
                return sorted(int(x) for x in f.read().split())
        except OSError:
            continue
    return []


def _read(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _int(path: str | None) -> int:
    text = _read(path)
    if text is None:
        return 0
    text = text.strip()
    return int(text) if text.isdigit() else 0


def _keyed(text: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


def _host_memory() -> int:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _system_ns() -> int:
    """Host CPU time of all CPUs in ns (``/proc/stat``'s ``cpu`` line), as docker's ``getSystemCPUUsage``."""
    for line in (_read("/proc/stat") or "").splitlines():
        if line.startswith("cpu "):
            ticks = sum(int(v) for v in line.split()[1:8])
            return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    return 0


def _network(pid: int) -> tuple[int, int]:
    rx = tx = 0
    for line in (_read(f"/proc/{pid}/net/dev") or "").splitlines()[2:]:
        name, _, counters = line.partition(":")
        values = counters.split()
        if name.strip() == "lo" or len(values) < 9:
            continue
        rx += int(values[0])
        tx += int(values[8])
    return rx, tx


def _file(dirs: Mapping[str, str], controller: str, name: str) -> str | None:
    """The path of a controller's file, None when the container has no such controller."""
    directory = dirs.get(controller)
    return os.path.join(directory, name) if directory is not None else None


def _blkio_v1(path: str | None) -> tuple[int, int]:
    read = write = 0
    for line in (_read(path) or "").splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2].isdigit():
            if fields[1] == "Read":
                read += int(fields[2])
            elif fields[1] == "Write":
                write += int(fields[2])
    return read, write


def _io_v2(directory: str) -> tuple[int, int]:
    read = write = 0
    for line in (_read(os.path.join(directory, "io.stat")) or "").splitlines():
        for pair in line.split()[1:]:
            key, _, value = pair.partition("=")
            if key == "rbytes":
                read += int(value)
            elif key == "wbytes":
                write += int(value)
    return read, write


def sample(pid: int) -> Sample:
    """Read the counters of the container whose init is ``pid`` (zeros if it is gone)."""
    dirs = cgroup_dirs(pid)
    if not dirs:
        return Sample(system_ns=_system_ns(), online_cpus=os.cpu_count() or 1)
    host_memory = _host_memory()
    unified = dirs.get("unified")
    if "memory" in dirs or unified is None:
        stat = _keyed(_read(_file(dirs, "memory", "memory.stat")))
        usage = _int(_file(dirs, "memory", "memory.usage_in_bytes"))
        memory = max(0, usage - stat.get("total_inactive_file", 0))
        limit = _int(_file(dirs, "memory", "memory.limit_in_bytes"))
        cpu = _int(_file(dirs, "cpuacct", "cpuacct.usage"))
        block = _blkio_v1(_file(dirs, "blkio", "blkio.throttle.io_service_bytes"))
        pids = _int(_file(dirs, "pids", "pids.current"))
    else:
        stat = _keyed(_read(os.path.join(unified, "memory.stat")))
        usage = _int(os.path.join(unified, "memory.current"))
        memory = max(0, usage - stat.get("inactive_file", 0))
        limit = _int(os.path.join(unified, "memory.max"))  # "max" reads as 0: unlimited
        cpu = _keyed(_read(os.path.join(unified, "cpu.stat"))).get("usage_usec", 0) * 1000
        block = _io_v2(unified)
        pids = _int(os.path.join(unified, "pids.current"))
    if limit <= 0 or (host_memory and limit > host_memory):
        limit = host_memory
    rx, tx = _network(pid)
    return Sample(
        cpu_ns=cpu,
        system_ns=_system_ns(),
        online_cpus=os.cpu_count() or 1,
        memory=memory,
        memory_limit=limit,
        block_read=block[0],
        block_write=block[1],
        net_rx=rx,
        net_tx=tx,
        pids=pids,
    )


def usage(before: Sample, after: Sample) -> Usage:
    """Docker's numbers from two samples of one container."""
    cpu_delta = after.cpu_ns - before.cpu_ns
    system_delta = after.system_ns - before.system_ns
    cpu = 0.0
    if cpu_delta > 0 and system_delta > 0:
        cpu = cpu_delta / system_delta * after.online_cpus * 100.0
    memory_percent = after.memory / after.memory_limit * 100.0 if after.memory_limit else 0.0
    return Usage(
        cpu_percent=cpu,
        memory=after.memory,
        memory_limit=after.memory_limit,
        memory_percent=memory_percent,
        block_read=after.block_read,
        block_write=after.block_write,
        net_rx=after.net_rx,
        net_tx=after.net_tx,
        pids=after.pids,
    )


def measure(pids: Sequence[int], interval: float = 1.0) -> Mapping[int, Usage]:
    """Usage of several containers (by init pid) over one shared ``interval`` (docker waits ~1 s too)."""
    first = {pid: sample(pid) for pid in pids}
    if pids:
        time.sleep(interval)
    return {pid: usage(first[pid], sample(pid)) for pid in pids}
