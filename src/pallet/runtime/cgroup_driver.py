"""Which cgroup driver a container uses: v1 on v1 and hybrid hosts, v2 on a unified-only host.

The choice is made once, at ``create``, from the host's mounts
(``cgroup_v2.detect``), and recorded in the container's state as its
``cgroups`` paths: v1 maps each hierarchy to a directory, v2 has the single
key ``""`` (runc's key for the unified hierarchy). Later commands rebuild the
same driver from those paths, whatever the host mounts meanwhile.
"""

from __future__ import annotations

import os

from pallet.runtime.cgroups import V1Cgroups

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from pallet.runtime.cgroup_v2 import CgroupSetup, V2Cgroup

    Driver = V1Cgroups | V2Cgroup


def for_container(
    cgroups_path: str, container_id: str, systemd: bool, setup: CgroupSetup | None = None
) -> Driver:
    """The driver for a new container's cgroup (``setup``: the host's, detected if None)."""
    from pallet.runtime.cgroup_v2 import V2Cgroup, detect

    setup = setup or detect()
    if setup.mode == "v2":
        return V2Cgroup.for_container(cgroups_path, container_id, systemd, mount=setup.unified)
    return V1Cgroups.for_container(cgroups_path, container_id, systemd)


def from_saved(paths: Mapping[str, str], unified_mount: str | None = None) -> Driver | None:
    """The driver for the ``cgroups`` paths saved at create (None when there are none)."""
    if not paths:
        return None
    if set(paths) == {""}:
        # imported here: the v1 driver, which exec, kill and delete rebuild on a v1 host, needs none of it
        from pallet.runtime.cgroup_v2 import V2Cgroup, detect

        path = paths[""]
        if unified_mount is None:
            # only create() needs the mount (to delegate controllers); later commands use the path
            unified_mount = detect().unified
            if not unified_mount or not path.startswith(unified_mount.rstrip("/") + "/"):
                unified_mount = os.path.dirname(path)
        return V2Cgroup(path, unified_mount)
    return V1Cgroups(dict(paths))


def mounts(driver: Driver) -> dict[str, str]:
    """Hierarchy -> mount point for the container's ``cgroup`` mount (v1); empty for v2 (one cgroup2 bind)."""
    return driver.mounts if isinstance(driver, V1Cgroups) else {}
