"""The cgroup v2 (unified hierarchy) driver, and which cgroup setup the host has.

``V2Cgroup`` implements the runtime's ``CgroupDriver`` (``cgroups.py``) for one
directory of the unified hierarchy; its ``paths`` is ``{"": directory}``, the
key runc uses for the unified hierarchy. ``linux.cgroupsPath`` is read as
runc's fs2 driver does: absolute paths below the mount point, relative ones
below the *parent* of the runtime's own cgroup (the runtime's own cgroup has
processes, so it could not delegate controllers: cgroup v2's "no internal
processes" rule), empty ones as the container id; ``slice:prefix:name`` with
``--systemd-cgroup`` as in ``cgroups.systemd_path``.

``create`` enables, in every ancestor below the mount point, the controllers the
parent offers (``cgroup.subtree_control``), as runc does, so the limit files
exist in the container's cgroup. ``set(resources)`` writes the limits planned by
``cgroup_limits.plan_v2`` and attaches the device program of ``cgroup_devices``.

``detect()`` tells v1, v2 and hybrid apart from ``/proc/self/mountinfo``: v2 is a
cgroup2 mount and no v1 controller hierarchy; hybrid is v1 controllers plus a
cgroup2 mount (this machine: ``/sys/fs/cgroup/unified``, holding only hugetlb),
which crun and systemd call hybrid. A hybrid host runs containers with the v1
driver.

On ``pallet-runtime``'s hot path: standard library and lower layers only.
"""

from __future__ import annotations

import os
import time
from errno import EBUSY

from pallet.errors import InvalidArgument, SystemError_
from pallet.oci.record import Record
from pallet.runtime.cgroupfile import write_file
from pallet.runtime.cgroups import V1_CONTROLLERS, relative_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pallet.oci.runtime_spec import Resources

__all__ = ["CgroupSetup", "V2Cgroup", "detect"]

_DEFAULT_MOUNT = "/sys/fs/cgroup"


class CgroupSetup(Record):
    """What the host mounts: ``mode`` is ``v1``, ``v2`` or ``hybrid``; ``unified`` the cgroup2 mount ("" if none)."""

    mode: str
    unified: str = ""


def detect(mountinfo: str = "/proc/self/mountinfo") -> CgroupSetup:
    """The host's cgroup setup, read from the mount table."""
    unified = ""
    v1 = False
    with open(mountinfo) as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = right.split()
            if not fields:
                continue
            mount_point = left.split()[4].replace("\\040", " ")
            if fields[0] == "cgroup2" and not unified:
                unified = mount_point
            elif (
                fields[0] == "cgroup"
                and len(fields) >= 3
                and not V1_CONTROLLERS.isdisjoint(fields[2].split(","))
            ):
                # (a named hierarchy alone, such as name=systemd, has no controller)
                v1 = True
    if v1:
        return CgroupSetup(mode="hybrid" if unified else "v1", unified=unified)
    if unified:
        return CgroupSetup(mode="v2", unified=unified)
    return CgroupSetup(mode="v1")


def _own_cgroup(pid: str = "self") -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].rstrip("\n") or "/"
    return "/"


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


class V2Cgroup:
    """The container's cgroup in the unified hierarchy mounted at ``mount``."""

    def __init__(self, path: str, mount: str = _DEFAULT_MOUNT) -> None:
        self.mount = os.path.normpath(mount)
        self.path = os.path.normpath(path)
        if self.path != self.mount and not self.path.startswith(self.mount + "/"):
            raise InvalidArgument(f"cgroup {path} is not below the cgroup2 mount {mount}")
        self.paths = {"": self.path}
        #: how directories are made: a seam for the fake cgroupfs, which fills a new
        #: directory with interface files as the kernel does
        self.mkdir: Callable[[str, int], None] = os.mkdir

    @classmethod
    def for_container(
        cls,
        cgroups_path: str,
        container_id: str,
        systemd: bool = False,
        mount: str = _DEFAULT_MOUNT,
        own_cgroup: str | None = None,
    ) -> V2Cgroup:
        """The cgroup named by ``linux.cgroupsPath`` (``own_cgroup``: the runtime's, read from /proc if None)."""
        relative = relative_path(cgroups_path, container_id, systemd)
        if not relative.startswith("/"):
            own = _own_cgroup() if own_cgroup is None else own_cgroup
            relative = os.path.dirname(own.rstrip("/") or "/").rstrip("/") + "/" + relative
        return cls(os.path.normpath(mount + "/" + relative.lstrip("/")), mount)

    # -- the CgroupDriver interface

    def create(self) -> None:
        """Make the directory and its missing ancestors, delegating controllers on the way (idempotent)."""
        relative = os.path.relpath(self.path, self.mount)
        parts = [] if relative == "." else relative.split("/")
        current = self.mount
        for part in parts:
            self._enable_controllers(current)
            current = os.path.join(current, part)
            try:
                self.mkdir(current, 0o755)
            except FileExistsError:
                pass
            except OSError as e:
                raise SystemError_(f"create cgroup {current}", e.errno or 0) from None

    def join(self, pid: int) -> None:
        """Move ``pid`` (0: the caller) into the cgroup."""
        path = os.path.join(self.path, "cgroup.procs")
        try:
            write_file(path, str(pid))
        except OSError as e:
            raise SystemError_(f"join cgroup {self.path}", e.errno or 0) from None

    def pids(self) -> list[int]:
        """Every process in the cgroup and its descendants (empty if the cgroup is gone)."""
        seen: set[int] = set()
        for directory, _, _ in os.walk(self.path):
            try:
                seen.update(int(p) for p in _read(os.path.join(directory, "cgroup.procs")).split())
            except (OSError, ValueError):
                continue
        return sorted(seen)

    def remove(self, timeout: float = 2.0) -> None:
        """Remove the cgroup and any sub-cgroups the container made, deepest first (idempotent).

        Retries while exiting processes still hold a directory (EBUSY) until
        ``timeout``; the caller kills the processes first.
        """
        deadline = time.monotonic() + timeout
        directories = [d for d, _, _ in os.walk(self.path)]
        for directory in reversed(directories):
            while True:
                try:
                    os.rmdir(directory)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != EBUSY or time.monotonic() > deadline:
                        raise SystemError_(f"remove cgroup {directory}", e.errno or 0) from None
                    time.sleep(0.01)

    # -- beyond the interface: limits, freezer, kill

    def controllers(self) -> frozenset[str]:
        """The controllers available in this cgroup (its ``cgroup.controllers``)."""
        try:
            return frozenset(_read(os.path.join(self.path, "cgroup.controllers")).split())
        except OSError as e:
            raise SystemError_(f"read {self.path}/cgroup.controllers", e.errno or 0) from None

    def set(self, resources: Resources) -> None:
        """Write ``resources`` (create and ``update``); device rules become the cgroup's BPF device program."""
        from pallet.runtime.cgroup_limits import apply, plan_v2

        apply(self.paths, plan_v2(resources, controllers=self.controllers()))
        if resources.devices:
            from pallet.runtime.cgroup_devices import attach_program

            attach_program(self.path, resources.devices)

    def freeze(self, frozen: bool, timeout: float = 5.0) -> None:
        """Freeze (pause) or thaw (resume) every process; waits until ``cgroup.events`` says it is done."""
        want = "1" if frozen else "0"
        try:
            write_file(os.path.join(self.path, "cgroup.freeze"), want)
        except OSError as e:
            raise SystemError_(f"write {self.path}/cgroup.freeze", e.errno or 0) from None
        deadline = time.monotonic() + timeout
        while self._event("frozen") != want:
            if time.monotonic() > deadline:
                state = "frozen" if frozen else "thawed"
                raise SystemError_(f"cgroup {self.path} did not become {state} within {timeout:g}s", EBUSY)
            time.sleep(0.001)

    def frozen(self) -> bool:
        """Whether the cgroup is frozen (``cgroup.events``)."""
        return self._event("frozen") == "1"

    def kill(self) -> bool:
        """SIGKILL every process through ``cgroup.kill`` (kernel 5.14+); False where the file is missing."""
        try:
            write_file(os.path.join(self.path, "cgroup.kill"), "1")
        except FileNotFoundError:
            return False
        except OSError as e:
            raise SystemError_(f"write {self.path}/cgroup.kill", e.errno or 0) from None
        return True

    def _event(self, key: str) -> str:
        try:
            text = _read(os.path.join(self.path, "cgroup.events"))
        except OSError as e:
            raise SystemError_(f"read {self.path}/cgroup.events", e.errno or 0) from None
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return value.strip()
        return ""

    def _enable_controllers(self, directory: str) -> None:
        # Offer the children every controller this level has. All in one write
        # first; if the kernel refuses (a controller busy or not delegable), one
        # by one, keeping what it accepts: a missing controller shows later as
        # a missing limit file, naming the file.
        try:
            available = _read(os.path.join(directory, "cgroup.controllers")).split()
            enabled = set(_read(os.path.join(directory, "cgroup.subtree_control")).split())
        except OSError as e:
            raise SystemError_(f"read {directory}/cgroup.controllers", e.errno or 0) from None
        missing = [c for c in available if c not in enabled]
        if not missing:
            return
        control = os.path.join(directory, "cgroup.subtree_control")
        try:
            write_file(control, " ".join(f"+{c}" for c in missing))
        except OSError:
            missing_one_by_one = missing
        else:
            return
        for controller in missing_one_by_one:
            try:
                write_file(control, f"+{controller}")
            except OSError:
                continue
