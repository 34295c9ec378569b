"""``events``: a container's resource statistics and OOM events, in ``runc events``' JSON shape.

``--stats`` prints one ``{"type":"stats","id":…,"data":{…}}`` line and exits.
Without it, a stats line every ``--interval`` and an ``{"type":"oom","id":…}``
line whenever the kernel's OOM killer acts in the container's memory cgroup
(v1: an eventfd registered on ``memory.oom_control`` through
``cgroup.event_control``; v2: the ``oom_kill`` count of ``memory.events``),
until the container stops.

The ``data`` fields follow runc's ``types.Stats`` with its ``omitempty`` rules:
cpu (ns), memory (bytes; ``raw`` is ``memory.stat``), pids, blkio, hugetlb.
"""

from __future__ import annotations

import os

from pallet.errors import FailedPrecondition, InvalidArgument
from pallet.oci.jsonfast import dumps
from pallet.runtime.containers import ContainerDir, status_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

_NS_PER_TICK = 10_000_000  # USER_HZ is 100: cpuacct.stat counts 10 ms ticks
_BLKIO_FILES = (
    ("ioServiceBytesRecursive", "blkio.throttle.io_service_bytes"),
    ("ioServicedRecursive", "blkio.throttle.io_serviced"),
    ("ioQueuedRecursive", "blkio.io_queued_recursive"),
    ("ioServiceTimeRecursive", "blkio.io_service_time_recursive"),
    ("ioWaitTimeRecursive", "blkio.io_wait_time_recursive"),
    ("ioMergedRecursive", "blkio.io_merged_recursive"),
    ("ioTimeRecursive", "blkio.time_recursive"),
    ("sectorsRecursive", "blkio.sectors_recursive"),
)


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _int(path: str) -> int:
    text = _read(path)
    if text is None:
        return 0
    text = text.strip()
    if text == "max":
        return 0
    try:
        return max(int(text), 0)
    except ValueError:
        return 0


def _keyed(path: str) -> dict[str, int]:
    """``key value`` lines (memory.stat, cpu.stat) as a mapping."""
    found: dict[str, int] = {}
    for line in (_read(path) or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            found[key] = int(value)
    return found


def _pruned(doc: dict[str, object], keep: tuple[str, ...] = ()) -> dict[str, object]:
    """Go's ``omitempty``: zero numbers, empty lists and empty objects go, except ``keep``."""
    return {k: v for k, v in doc.items() if k in keep or v not in (0, "", [], {}, None)}


def _directory(paths: Mapping[str, str], controller: str) -> str | None:
    for name, path in paths.items():
        if controller in name.split(","):
            return path
    return None


def _memory_entry(directory: str, prefix: str) -> dict[str, object]:
    return _pruned(
        {
            "limit": _int(f"{directory}/{prefix}limit_in_bytes"),
            "usage": _int(f"{directory}/{prefix}usage_in_bytes"),
            "max": _int(f"{directory}/{prefix}max_usage_in_bytes"),
            "failcnt": _int(f"{directory}/{prefix}failcnt"),
        },
        keep=("limit", "failcnt"),
    )


def stats_v1(paths: Mapping[str, str]) -> dict[str, object]:
    data: dict[str, object] = {}
    cpuacct = _directory(paths, "cpuacct")
    usage: dict[str, object] = {"kernel": 0, "user": 0}
    if cpuacct is not None:
        ticks = _keyed(f"{cpuacct}/cpuacct.stat")
        usage = {
            "total": _int(f"{cpuacct}/cpuacct.usage"),
            "percpu": [int(v) for v in (_read(f"{cpuacct}/cpuacct.usage_percpu") or "").split()],
            "kernel": ticks.get("system", 0) * _NS_PER_TICK,
            "user": ticks.get("user", 0) * _NS_PER_TICK,
        }
    cpu_dir = _directory(paths, "cpu")
    throttled = _keyed(f"{cpu_dir}/cpu.stat") if cpu_dir is not None else {}
    data["cpu"] = {
        "usage": _pruned(usage, keep=("kernel", "user")),
        "throttling": _pruned(
            {
                "periods": throttled.get("nr_periods", 0),
                "throttledPeriods": throttled.get("nr_throttled", 0),
                "throttledTime": throttled.get("throttled_time", 0),
            }
        ),
    }
    memory = _directory(paths, "memory")
    if memory is not None:
        raw = _keyed(f"{memory}/memory.stat")
        data["memory"] = _pruned(
            {
                "cache": raw.get("total_cache", raw.get("cache", 0)),
                "usage": _memory_entry(memory, "memory."),
                "swap": _memory_entry(memory, "memory.memsw."),
                "kernel": _memory_entry(memory, "memory.kmem."),
                "kernelTCP": _memory_entry(memory, "memory.kmem.tcp."),
                "raw": raw,
            }
        )
    pids = _directory(paths, "pids")
    if pids is not None:
        data["pids"] = _pruned({"current": _int(f"{pids}/pids.current"), "limit": _int(f"{pids}/pids.max")})
    blkio = _directory(paths, "blkio")
    data["blkio"] = _blkio(blkio) if blkio is not None else {}
    hugetlb = _directory(paths, "hugetlb")
    data["hugetlb"] = _hugetlb(hugetlb) if hugetlb is not None else {}
    return data


def _blkio(directory: str) -> dict[str, object]:
    found: dict[str, object] = {}
    for key, file in _BLKIO_FILES:
        entries: list[dict[str, object]] = []
        for line in (_read(f"{directory}/{file}") or "").splitlines():
            fields = line.split()
            if len(fields) < 2 or ":" not in fields[0]:
                continue  # the "Total N" line
            major, _, minor = fields[0].partition(":")
            op = fields[1] if len(fields) == 3 else ""
            value = fields[-1]
            if major.isdigit() and minor.isdigit() and value.isdigit():
                entries.append(
                    _pruned({"major": int(major), "minor": int(minor), "op": op, "value": int(value)})
                )
        if entries:
            found[key] = entries
    return found


def _hugetlb(directory: str) -> dict[str, object]:
    found: dict[str, object] = {}
    try:
        names = os.listdir(directory)
    except OSError:
        return found
    for name in sorted(names):
        if name.startswith("hugetlb.") and name.endswith(".usage_in_bytes") and ".rsvd." not in name:
            size = name[len("hugetlb.") : -len(".usage_in_bytes")]
            found[size] = _pruned(
                {
                    "usage": _int(f"{directory}/{name}"),
                    "max": _int(f"{directory}/hugetlb.{size}.max_usage_in_bytes"),
                    "failcnt": _int(f"{directory}/hugetlb.{size}.failcnt"),
                },
                keep=("failcnt",),
            )
    return found


def stats_v2(directory: str) -> dict[str, object]:
    cpu = _keyed(f"{directory}/cpu.stat")
    memory_stat = _keyed(f"{directory}/memory.stat")
    events = _keyed(f"{directory}/memory.events")
    return {
        "cpu": {
            "usage": _pruned(
                {
                    "total": cpu.get("usage_usec", 0) * 1000,
                    "kernel": cpu.get("system_usec", 0) * 1000,
                    "user": cpu.get("user_usec", 0) * 1000,
                },
                keep=("kernel", "user"),
            ),
            "throttling": _pruned(
                {
                    "periods": cpu.get("nr_periods", 0),
                    "throttledPeriods": cpu.get("nr_throttled", 0),
                    "throttledTime": cpu.get("throttled_usec", 0) * 1000,
                }
            ),
        },
        "memory": _pruned(
            {
                "cache": memory_stat.get("file", 0),
                "usage": _pruned(
                    {
                        "limit": _int(f"{directory}/memory.max"),
                        "usage": _int(f"{directory}/memory.current"),
                        "max": _int(f"{directory}/memory.peak"),
                        "failcnt": events.get("max", 0),
                    },
                    keep=("limit", "failcnt"),
                ),
                "swap": _pruned(
                    {
                        "limit": _int(f"{directory}/memory.swap.max"),
                        "usage": _int(f"{directory}/memory.swap.current"),
                    },
                    keep=("limit",),
                )
                | {"failcnt": 0},
                "raw": memory_stat,
            }
        ),
        "pids": _pruned(
            {"current": _int(f"{directory}/pids.current"), "limit": _int(f"{directory}/pids.max")}
        ),
        "blkio": {},
        "hugetlb": {},
    }


def stats(paths: Mapping[str, str]) -> dict[str, object]:
    """The ``data`` of a stats event for the container's cgroup ``paths`` (v1 hierarchies or v2 ``""``)."""
    if set(paths) == {""}:
        return stats_v2(paths[""])
    return stats_v1(paths)


class _OomWatch:
    """OOM kills in the container's memory cgroup: an eventfd on v1, ``memory.events`` on v2."""

    def __init__(self, paths: Mapping[str, str]) -> None:
        self.fd = -1
        self.events_file = ""
        self.seen = 0
        if set(paths) == {""}:
            self.events_file = os.path.join(paths[""], "memory.events")
            self.seen = _keyed(self.events_file).get("oom_kill", 0)
            return
        memory = _directory(paths, "memory")
        if memory is None:
            return
        control = os.open(os.path.join(memory, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
        try:
            self.fd = os.eventfd(0, os.EFD_CLOEXEC)
            with open(os.path.join(memory, "cgroup.event_control"), "w") as f:
                f.write(f"{self.fd} {control}")
        finally:
            os.close(control)

    def wait(self, timeout: float) -> int:
        """OOM events within ``timeout`` seconds (0 when it passed without one)."""
        import select

        if self.fd >= 0:
            ready, _, _ = select.select([self.fd], [], [], timeout)
            return os.eventfd_read(self.fd) if ready else 0
        import time

        time.sleep(timeout)
        if not self.events_file:
            return 0
        count = _keyed(self.events_file).get("oom_kill", 0)
        new, self.seen = count - self.seen, count
        return max(new, 0)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def parse_interval(text: str) -> float:
    """Go durations as runc's ``--interval`` takes them: ``5s``, ``500ms``, ``1m``, ``1.5s``."""
    for suffix, scale in (("ms", 0.001), ("us", 1e-6), ("ns", 1e-9), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(suffix):
            try:
                value = float(text[: -len(suffix)]) * scale
            except ValueError:
                break
            if value > 0:
                return value
            break
    raise InvalidArgument(f'invalid value "{text}" for flag -interval: a duration such as 5s is required')


def _emit(doc: dict[str, object]) -> None:
    import sys

    sys.stdout.write(dumps(doc) + "\n")
    sys.stdout.flush()


def events(root: str, container_id: str, once: bool, interval: str) -> int:
    seconds = parse_interval(interval)
    cdir = ContainerDir(root, container_id)
    saved = cdir.load()
    if status_of(cdir, saved) == "stopped":
        raise FailedPrecondition("container not running")
    paths = saved.cgroups
    if not paths:
        raise FailedPrecondition(f"container {container_id} has no cgroup to report on")
    if once:
        _emit({"type": "stats", "id": container_id, "data": stats(paths)})
        return 0
    watch = _OomWatch(paths)
    try:
        while status_of(cdir, saved) != "stopped":
            _emit({"type": "stats", "id": container_id, "data": stats(paths)})
            for _ in range(watch.wait(seconds)):
                _emit({"type": "oom", "id": container_id})
    except BrokenPipeError:
        return 0
    finally:
        watch.close()
    return 0
