"""A fake cgroupfs in a directory: the interface files a kernel shows, for cgroup v1 and v2.

Plain files stand in for the kernel's: drivers create directories and write
files as on a real host, and tests read back what was written. What a plain
directory cannot do by itself, ``sync()`` does, as the kernel would: it fills
every new cgroup directory with the interface files of the controllers it has
(v2: those its parent enables in ``cgroup.subtree_control``; v1: those of the
hierarchy), with the kernel's default values, and normalises
``cgroup.subtree_control`` writes (``+memory +pids`` -> ``memory pids``),
refusing a controller the parent does not offer, as the kernel does.

``snapshot()`` / ``changes(before)`` tell which files a driver wrote and with
which values. Files that take several writes (``devices.allow``, ``io.max``)
keep only the last one; plans are checked for those.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["FakeCgroupV1", "FakeCgroupV2", "changes", "snapshot"]

_V2_CORE = {
    "cgroup.procs": "",
    "cgroup.threads": "",
    "cgroup.type": "domain\n",
    "cgroup.events": "populated 0\nfrozen 0\n",
    "cgroup.freeze": "0\n",
    "cgroup.kill": "",
    "cgroup.max.depth": "max\n",
    "cgroup.max.descendants": "max\n",
    "cgroup.stat": "nr_descendants 0\nnr_dying_descendants 0\n",
    "cgroup.subtree_control": "",
    "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
}

_V2_FILES = {
    "memory": {
        "memory.current": "0\n",
        "memory.min": "0\n",
        "memory.low": "0\n",
        "memory.high": "max\n",
        "memory.max": "max\n",
        "memory.swap.current": "0\n",
        "memory.swap.max": "max\n",
        "memory.oom.group": "0\n",
        "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
        "memory.stat": "anon 0\nfile 0\n",
    },
    "cpu": {
        "cpu.weight": "100\n",
        "cpu.weight.nice": "0\n",
        "cpu.max": "max 100000\n",
        "cpu.max.burst": "0\n",
        "cpu.idle": "0\n",
    },
    "cpuset": {
        "cpuset.cpus": "\n",
        "cpuset.mems": "\n",
        "cpuset.cpus.effective": "0-1\n",
        "cpuset.mems.effective": "0\n",
        "cpuset.cpus.partition": "member\n",
    },
    "io": {"io.max": "", "io.weight": "default 100\n", "io.stat": ""},
    "pids": {"pids.max": "max\n", "pids.current": "0\n", "pids.events": "max 0\n"},
    "rdma": {"rdma.max": "", "rdma.current": ""},
    "misc": {"misc.max": "", "misc.current": ""},
}

_HUGEPAGE_SIZES = ("2MB", "1GB")


def _v2_controller_files(controller: str) -> dict[str, str]:
    if controller == "hugetlb":
        files = {}
        for size in _HUGEPAGE_SIZES:
            files.update(
                {
                    f"hugetlb.{size}.max": "max\n",
                    f"hugetlb.{size}.current": "0\n",
                    f"hugetlb.{size}.rsvd.max": "max\n",
                    f"hugetlb.{size}.events": "max 0\n",
                }
            )
        return files
    return dict(_V2_FILES.get(controller, {}))


def _fill(directory: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        path = directory / name
        if not path.exists():
            path.write_text(content)


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (path relative to it) -> its content."""
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            found[str(path.relative_to(root))] = path.read_text()
    return found


def changes(root: Path, before: dict[str, str]) -> dict[str, str]:
    """Files whose content differs from ``before`` (new files included): relative path -> content."""
    return {k: v for k, v in snapshot(root).items() if before.get(k) != v}


class FakeCgroupV2:
    """A unified hierarchy at ``root`` whose top offers ``controllers``."""

    def __init__(
        self, root: Path, controllers: tuple[str, ...] = ("cpuset", "cpu", "io", "memory", "hugetlb", "pids")
    ) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        top = {
            k: v for k, v in _V2_CORE.items() if k not in ("cgroup.events", "cgroup.freeze", "cgroup.kill")
        }
        top["cgroup.controllers"] = " ".join(controllers) + "\n"
        _fill(self.root, top)

    def mountinfo(self) -> str:
        """A ``/proc/self/mountinfo`` line for this hierarchy (a pure v2 host)."""
        return f"30 23 0:26 / {self.root} rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n"

    def mkdir(self, path: str, mode: int = 0o755) -> None:
        """mkdir as on cgroupfs: the new cgroup shows its interface files at once (``V2Cgroup.mkdir``)."""
        os.mkdir(path, mode)
        self.sync()

    def sync(self) -> None:
        """Do what the kernel does on mkdir and on writes to ``cgroup.subtree_control`` (idempotent)."""
        self._sync(self.root)

    def _sync(self, directory: Path) -> None:
        offered = set(self.read(directory, "cgroup.controllers").split())
        control = directory / "cgroup.subtree_control"
        enabled: list[str] = []
        for token in control.read_text().split():
            name = token.lstrip("+-")
            if name not in offered:
                raise OSError(errno.ENOENT, f"{control}: controller {name} is not available")
            if token.startswith("-"):
                enabled = [c for c in enabled if c != name]
            elif name not in enabled:
                enabled.append(name)
        control.write_text(" ".join(enabled) + ("\n" if enabled else ""))
        for child in sorted(p for p in directory.iterdir() if p.is_dir()):
            files = dict(_V2_CORE)
            files["cgroup.controllers"] = " ".join(enabled) + ("\n" if enabled else "")
            for controller in enabled:
                files.update(_v2_controller_files(controller))
            _fill(child, files)
            self._sync(child)

    @staticmethod
    def read(directory: Path | str, file: str) -> str:
        return (Path(directory) / file).read_text()


_V1_FILES = {
    "memory": {
        "memory.limit_in_bytes": "9223372036854771712\n",
        "memory.soft_limit_in_bytes": "9223372036854771712\n",
        "memory.memsw.limit_in_bytes": "9223372036854771712\n",
        "memory.kmem.limit_in_bytes": "9223372036854771712\n",
        "memory.kmem.tcp.limit_in_bytes": "9223372036854771712\n",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        "memory.swappiness": "60\n",
        "memory.usage_in_bytes": "0\n",
        "memory.failcnt": "0\n",
        "memory.use_hierarchy": "1\n",
    },
    "cpu": {
        "cpu.shares": "1024\n",
        "cpu.cfs_period_us": "100000\n",
        "cpu.cfs_quota_us": "-1\n",
        "cpu.cfs_burst_us": "0\n",
        "cpu.rt_period_us": "1000000\n",
        "cpu.rt_runtime_us": "0\n",
        "cpu.idle": "0\n",
    },
    "cpuacct": {"cpuacct.usage": "0\n"},
    "cpuset": {"cpuset.cpus": "\n", "cpuset.mems": "\n", "cpuset.effective_cpus": "\n"},
    "devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm\n"},
    "freezer": {"freezer.state": "THAWED\n"},
    "blkio": {
        "blkio.weight": "500\n",
        "blkio.leaf_weight": "500\n",
        "blkio.weight_device": "",
        "blkio.leaf_weight_device": "",
        "blkio.throttle.read_bps_device": "",
        "blkio.throttle.write_bps_device": "",
        "blkio.throttle.read_iops_device": "",
        "blkio.throttle.write_iops_device": "",
    },
    "pids": {"pids.max": "max\n", "pids.current": "0\n"},
    "hugetlb": {f"hugetlb.{size}.limit_in_bytes": "9223372036854771712\n" for size in _HUGEPAGE_SIZES},
    "net_cls": {"net_cls.classid": "0\n"},
    "net_prio": {"net_prio.ifpriomap": "", "net_prio.prioidx": "1\n"},
}


class FakeCgroupV1:
    """v1 hierarchies under ``root``, one directory per hierarchy (``cpu,cpuacct`` names two controllers).

    ``bfq``: the block layer's weights are ``blkio.bfq.weight`` (modern kernels), not ``blkio.weight``.
    ``without``: file names the kernel does not have (``memory.memsw.limit_in_bytes`` without swap accounting).
    """

    def __init__(
        self,
        root: Path,
        hierarchies: tuple[str, ...] = (
            "cpu,cpuacct",
            "cpuset",
            "memory",
            "devices",
            "freezer",
            "blkio",
            "pids",
            "hugetlb",
            "net_cls,net_prio",
        ),
        bfq: bool = False,
        without: tuple[str, ...] = (),
    ) -> None:
        self.root = root
        self.hierarchies = hierarchies
        self.bfq = bfq
        self.without = without
        for hierarchy in hierarchies:
            (root / hierarchy).mkdir(parents=True, exist_ok=True)
            _fill(root / hierarchy, {"cgroup.procs": "", "tasks": "", "cgroup.clone_children": "0\n"})
        self.sync()

    def mountinfo(self) -> str:
        """``/proc/self/mountinfo`` lines for these hierarchies (a v1-only host)."""
        lines = [f"25 1 0:20 / {self.root} rw - tmpfs tmpfs rw,mode=755\n"]
        for i, hierarchy in enumerate(self.hierarchies):
            lines.append(
                f"{30 + i} 25 0:{40 + i} / {self.root / hierarchy} rw,relatime - cgroup cgroup rw,{hierarchy}\n"
            )
        return "".join(lines)

    def paths(self, relative: str) -> dict[str, str]:
        """A v1 driver's ``paths`` for the cgroup ``relative`` in every hierarchy."""
        return {h: str(self.root / h / relative.strip("/")) for h in self.hierarchies}

    def _files(self, hierarchy: str) -> dict[str, str]:
        files = {"cgroup.procs": "", "tasks": "", "notify_on_release": "0\n", "cgroup.clone_children": "0\n"}
        for controller in hierarchy.split(","):
            files.update(_V1_FILES.get(controller, {}))
        if self.bfq and "blkio.weight" in files:
            files["blkio.bfq.weight"] = files.pop("blkio.weight")
            files["blkio.bfq.weight_device"] = files.pop("blkio.weight_device")
        for name in self.without:
            files.pop(name, None)
        return files

    def sync(self) -> None:
        """Fill every cgroup directory below a hierarchy's top with its interface files (idempotent)."""
        for hierarchy in self.hierarchies:
            top = self.root / hierarchy
            for directory, _, _ in os.walk(top):
                if Path(directory) != top:
                    _fill(Path(directory), self._files(hierarchy))

    def read(self, relative: str, hierarchy: str, file: str) -> str:
        return (self.root / hierarchy / relative.strip("/") / file).read_text()
