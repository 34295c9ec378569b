"""Container cgroups behind one small interface; the cgroup v1 driver.

``CgroupDriver`` is what the runtime needs: make the container's cgroup in
every hierarchy, put a process in it, list and signal its processes, remove it.
``V1Cgroups`` is the driver for v1 hierarchies (this machine); the v2 driver
is ``cgroup_v2.V2Cgroup``; ``cgroup_driver`` picks one for the host.

``linux.cgroupsPath`` is read as runc's cgroupfs driver does: absolute paths
are taken as they are under each hierarchy, relative ones below the runtime's
own cgroup in that hierarchy, an empty one is the container id. With
``--systemd-cgroup`` the form ``slice:prefix:name`` is converted the way runc's
systemd driver names it (``/a.slice/a-b.slice/prefix-name.scope``), and that
path is created with cgroupfs (there is no systemd here to ask).
"""

from __future__ import annotations

import os
import time
from errno import EBUSY

from pallet.errors import InvalidArgument, SystemError_, Unsupported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    from pallet.oci.runtime_spec import Resources

    class CgroupDriver(Protocol):
        paths: dict[str, str]

        def create(self) -> None: ...

        def join(self, pid: int) -> None: ...

        def pids(self) -> list[int]: ...

        def remove(self) -> None: ...

        def set(self, resources: Resources) -> None: ...

        def freeze(self, frozen: bool) -> None: ...

        def frozen(self) -> bool: ...


#: the cgroup v1 controllers (a named hierarchy such as name=systemd has none)
V1_CONTROLLERS = frozenset(
    [
        "cpu",
        "cpuacct",
        "cpuset",
        "memory",
        "devices",
        "freezer",
        "net_cls",
        "blkio",
        "perf_event",
        "net_prio",
        "hugetlb",
        "pids",
        "rdma",
        "misc",
    ]
)


def expand_slice(slice_name: str) -> str:
    """``a-b.slice`` -> ``/a.slice/a-b.slice`` (systemd's nesting of dashed slice names)."""
    if not slice_name.endswith(".slice") or "/" in slice_name:
        raise InvalidArgument(f"invalid slice name: {slice_name}")
    if slice_name == "-.slice":
        return "/"
    stem = slice_name[: -len(".slice")]
    if not stem or stem.startswith("-") or stem.endswith("-") or "--" in stem:
        raise InvalidArgument(f"invalid slice name: {slice_name}")
    path = ""
    prefix = ""
    for part in stem.split("-"):
        prefix = f"{prefix}-{part}" if prefix else part
        path += f"/{prefix}.slice"
    return path


def systemd_path(cgroups_path: str, container_id: str) -> str:
    """The cgroupfs path runc's systemd driver uses for ``slice:prefix:name``."""
    parts = cgroups_path.split(":") if cgroups_path else ["", "", ""]
    if len(parts) != 3:
        raise InvalidArgument(
            f'expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got "{cgroups_path}" instead'
        )
    slice_name, prefix, name = parts
    name = name or container_id
    slice_path = expand_slice(slice_name or "system.slice")
    unit = name if name.endswith(".slice") else f"{prefix}-{name}.scope" if prefix else f"{name}.scope"
    if unit.endswith(".slice"):
        return expand_slice(unit)
    return slice_path.rstrip("/") + "/" + unit


def relative_path(cgroups_path: str, container_id: str, systemd: bool) -> str:
    """``linux.cgroupsPath`` as both drivers read it, before placing it in a hierarchy.

    ``systemd``: converted from ``slice:prefix:name``; empty: the container id; ``..`` is refused.
    """
    relative = systemd_path(cgroups_path, container_id) if systemd else cgroups_path or container_id
    if ".." in relative.split("/"):
        raise InvalidArgument(f'linux.cgroupsPath: "{cgroups_path}" must not contain ".."')
    return relative


def v1_hierarchies(mountinfo: str = "/proc/self/mountinfo") -> dict[str, str]:
    """Each mounted cgroup v1 hierarchy: its name (``memory``, ``cpu,cpuacct``, ``name=systemd``) -> mount point."""
    found: dict[str, str] = {}
    with open(mountinfo) as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = right.split()
            if len(fields) < 3 or fields[0] != "cgroup":
                continue
            # the super options hold the controllers (and name=...) besides flags such as rw
            controllers = [o for o in fields[2].split(",") if o.startswith("name=") or o in V1_CONTROLLERS]
            if not controllers:
                continue
            mount_point = left.split()[4].replace("\\040", " ")
            found.setdefault(",".join(controllers), mount_point)
    return found


def own_cgroups(pid: str = "self") -> dict[str, str]:
    """Hierarchy name -> the cgroup of ``pid`` in it, from ``/proc/PID/cgroup``."""
    own: dict[str, str] = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, names, path = line.rstrip("\n").split(":", 2)
            if names:
                own[names] = path
    return own


class V1Cgroups:
    """The container's cgroup in every mounted v1 hierarchy (``paths``: hierarchy -> directory)."""

    def __init__(
        self, paths: dict[str, str], mounts: dict[str, str] | None = None, own_procs: str | None = None
    ) -> None:
        self.paths = paths
        #: hierarchy -> its mount point (known when made by ``for_container``)
        self.mounts = mounts or {}
        #: the ``cgroup.procs`` of the caller's own cgroup (``own_procs_file``; by ``for_container``)
        self.own_procs = own_procs

    @classmethod
    def for_container(cls, cgroups_path: str, container_id: str, systemd: bool) -> V1Cgroups:
        relative = relative_path(cgroups_path, container_id, systemd)
        own = own_cgroups() if not relative.startswith("/") else {}
        paths: dict[str, str] = {}
        mounts = v1_hierarchies()
        for name, mount_point in mounts.items():
            base = relative if relative.startswith("/") else own.get(name, "/").rstrip("/") + "/" + relative
            paths[name] = os.path.normpath(mount_point + "/" + base.lstrip("/"))
        own_procs = None
        for name, path in (own or own_cgroups()).items():
            if name in mounts:
                own_procs = os.path.join(mounts[name] + path, "cgroup.procs")
                break
        return cls(paths, mounts, own_procs)

    def create(self) -> None:
        """Make the directories (idempotent); a new cpuset gets its parent's cpus and mems."""
        for name, path in self.paths.items():
            try:
                os.makedirs(path, exist_ok=True)
            except OSError as e:
                raise SystemError_(f"create cgroup {path}", e.errno or 0) from None
            if "cpuset" in name.split(","):
                _fill_cpuset(path)

    def join(self, pid: int) -> None:
        """Move ``pid`` (0: the caller) into the cgroup in every hierarchy."""
        for path in self.paths.values():
            try:
                with open(os.path.join(path, "cgroup.procs"), "w") as f:
                    f.write(str(pid))
            except OSError as e:
                raise SystemError_(f"join cgroup {path}", e.errno or 0) from None

    def join_self(self) -> None:
        """Move the calling thread into the cgroup in every hierarchy: for a single-threaded
        process (a freshly forked child), the process.

        Writing ``0`` to ``tasks`` moves the writer alone, and for that the kernel takes
        neither the global threadgroup lock nor its RCU grace period (~0.1 ms, where a
        ``cgroup.procs`` write after a quiet spell waits ~6 ms: see ``warm_up_attach``).
        """
        for path in self.paths.values():
            try:
                fd = os.open(os.path.join(path, "tasks"), os.O_WRONLY | os.O_CLOEXEC)
                try:
                    os.write(fd, b"0")
                finally:
                    os.close(fd)
            except OSError as e:
                raise SystemError_(f"join cgroup {path}", e.errno or 0) from None

    def pids(self) -> list[int]:
        """Every process in the cgroup (read from one hierarchy; all hold the same processes)."""
        seen: set[int] = set()
        for path in self.paths.values():
            try:
                fd = os.open(os.path.join(path, "cgroup.procs"), os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                # plain reads: a buffered text file costs several calls more (delete reads all hierarchies)
                data = b""
                while chunk := os.read(fd, 65536):
                    data += chunk
            except OSError:
                continue
            finally:
                os.close(fd)
            seen.update(int(line) for line in data.split())
        return sorted(seen)

    def set(self, resources: Resources) -> None:
        """Write ``resources`` (create and ``update``), planned by ``cgroup_limits``."""
        from pallet.runtime.cgroup_limits import set_v1

        set_v1(self.paths, resources)

    def freeze(self, frozen: bool, timeout: float = 5.0) -> None:
        """Freeze (pause) or thaw (resume) every process with the v1 freezer; waits until it is done.

        ``FREEZING`` is transient: the kernel retries while a task is in an
        uninterruptible call; writing FROZEN again nudges it, as runc does.
        """
        directory = self._freezer()
        want = "FROZEN" if frozen else "THAWED"
        state_file = os.path.join(directory, "freezer.state")
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(state_file, "w") as f:
                    f.write(want)
                with open(state_file) as f:
                    if f.read().strip() == want:
                        return
            except OSError as e:
                raise SystemError_(f"write {state_file}", e.errno or 0) from None
            if time.monotonic() > deadline:
                raise SystemError_(f"cgroup {directory} did not become {want} within {timeout:g}s", EBUSY)
            time.sleep(0.001)

    def frozen(self) -> bool:
        """Whether the freezer says FROZEN (FREEZING counts as not yet)."""
        try:
            with open(os.path.join(self._freezer(), "freezer.state")) as f:
                return f.read().strip() == "FROZEN"
        except OSError:
            return False

    def _freezer(self) -> str:
        for name, path in self.paths.items():
            if "freezer" in name.split(","):
                return path
        raise Unsupported("pause needs the cgroup v1 freezer controller, which is not mounted here")

    def remove(self, timeout: float = 2.0) -> None:
        """Remove the directories; retries while exiting processes still hold them (idempotent)."""
        deadline = time.monotonic() + timeout
        for path in self.paths.values():
            while True:
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != 16 or time.monotonic() > deadline:  # EBUSY: tasks still leaving
                        raise SystemError_(f"remove cgroup {path}", e.errno or 0) from None
                    time.sleep(0.01)


def warm_up_attach(procs_file: str | None = None, *, by_child: bool = False) -> None:
    """Start moving this process into the cgroup it is already in (a no-op), in a thread.

    Why: every write to ``cgroup.procs`` takes the kernel's cgroup threadgroup
    lock, and the first writer after a quiet period waits for an RCU grace
    period (~10 ms on this VM; runc and crun pay it too). For a while after a
    writer, the next one does not wait. ``create`` calls this before it
    prepares and forks, so that the init's real move is quick. The thread only
    blocks in ``write`` (no Python lock held), which a forked child does not
    inherit. The write holds the cgroup mutex: call it after making cgroup
    directories. Errors are ignored: this only saves time.

    ``by_child``: a forked child makes the write (moving itself), for a
    long-lived caller such as the engine's shim, where a thread's stack would
    stay resident. The caller reaps it (a shim reaps every child).

    ``procs_file``: the caller's own ``cgroup.procs`` when it knows it (``V1Cgroups.own_procs``),
    else ``own_procs_file`` finds it.
    """
    path = procs_file or own_procs_file()
    if path is None:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    if by_child:
        try:
            if os.fork() == 0:  # pragma: no cover - the child: one write, then gone
                try:
                    os.write(fd, str(os.getpid()).encode())
                finally:
                    os._exit(0)
        except OSError:
            pass  # no fork: no warm-up, only the time it would have saved
        finally:
            os.close(fd)
        return
    import _thread
    import time

    _thread.start_new_thread(_write_and_close, (fd, str(os.getpid()).encode()))
    # hand the GIL over now: the thread then waits in the kernel, not for us
    time.sleep(0.0002)


def own_procs_file() -> str | None:
    """The ``cgroup.procs`` of our own cgroup in the first v1 hierarchy (None on a v2-only host):
    writing our pid there moves nothing and warms the kernel's attach lock (``warm_up_attach``)."""
    try:
        hierarchies = v1_hierarchies()
        for name, path in own_cgroups().items():
            mount_point = hierarchies.get(name)
            if mount_point:
                return os.path.join(mount_point + path, "cgroup.procs")
    except (OSError, ValueError):
        return None
    return None


def _write_and_close(fd: int, data: bytes) -> None:
    try:
        os.write(fd, data)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fill_cpuset(path: str) -> None:
    # a v1 cpuset cgroup accepts no task until cpus and mems are set: copy them
    # down from the nearest ancestor, creating level by level
    for key in ("cpuset.cpus", "cpuset.mems"):
        chain = []
        current = path
        while True:
            try:
                with open(os.path.join(current, key)) as f:
                    value = f.read().strip()
            except OSError:
                return
            if value:
                break
            chain.append(current)
            parent = os.path.dirname(current)
            if parent == current:
                return
            current = parent
        for directory in reversed(chain):
            with open(os.path.join(directory, key), "w") as f:
                f.write(value)
