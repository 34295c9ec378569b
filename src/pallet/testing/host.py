"""What this host's kernel offers, for tests that need a feature to be present.

Machines differ from one run to the next: the disk's io scheduler (only BFQ gives
blkio a weight file), swap accounting (``memory.memsw.*``), CFS bandwidth control,
which v1 hierarchies are mounted (net_cls, hugetlb, rdma are often absent),
``/proc/kcore`` and friends, whether root holds CAP_SYS_RESOURCE. A test that
needs one of these asks here first, and ``require_*`` skips it with a reason that
names what is missing and why, instead of failing on a machine that lacks it.
"""

from __future__ import annotations

import os

import pytest

from pallet.runtime.cgroups import v1_hierarchies

__all__ = [
    "cgroup_v1_file",
    "has_capability",
    "require_capability",
    "require_cgroup_v1_file",
    "require_host_path",
]

# from linux/capability.h; only the ones tests ask about
CAPABILITIES = {"CAP_SYS_ADMIN": 21, "CAP_SYS_RESOURCE": 24, "CAP_NET_ADMIN": 12, "CAP_MKNOD": 27}

# why a cgroup v1 file may be missing, for the skip reason
_WHY_MISSING = {
    "blkio.weight": "the disk's io scheduler is not BFQ (only BFQ offers a blkio weight)",
    "blkio.bfq.weight": "the disk's io scheduler is not BFQ (only BFQ offers a blkio weight)",
    "memory.memsw.limit_in_bytes": "swap accounting is off (swapaccount=1 / CONFIG_MEMCG_SWAP)",
    "cpu.cfs_quota_us": "the kernel has no CFS bandwidth control (CONFIG_CFS_BANDWIDTH)",
    "blkio.throttle.read_bps_device": "the kernel has no block throttling (CONFIG_BLK_DEV_THROTTLING)",
}


def cgroup_v1_file(controller: str, name: str) -> str | None:
    """The path of ``name`` at the root of the v1 hierarchy holding ``controller``, if both exist."""
    for hierarchy, mount_point in v1_hierarchies().items():
        if controller in hierarchy.split(","):
            path = os.path.join(mount_point, name)
            return path if os.path.exists(path) else None
    return None


def require_cgroup_v1_file(controller: str, *names: str) -> str:
    """The first of ``names`` this host's ``controller`` hierarchy has; skips the test if none."""
    if not any(controller in h.split(",") for h in v1_hierarchies()):
        pytest.skip(f"no cgroup v1 {controller} hierarchy is mounted on this host")
    for name in names:
        if cgroup_v1_file(controller, name) is not None:
            return name
    why = _WHY_MISSING.get(names[0], "this kernel lacks it")
    pytest.skip(f"the {controller} controller here has no {' or '.join(names)}: {why}")


def require_host_path(path: str, why: str = "") -> str:
    """``path`` if it exists on this host; skips the test otherwise."""
    if not os.path.lexists(path):
        pytest.skip(f"{path} does not exist on this host" + (f" ({why})" if why else ""))
    return path


def has_capability(name: str) -> bool:
    """Whether this process holds capability ``name`` (``CAP_SYS_RESOURCE``…) in its effective set."""
    with open("/proc/self/status") as f:
        effective = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    return bool(effective >> CAPABILITIES[name] & 1)


def require_capability(name: str, present: bool = True) -> None:
    """Skip the test unless this process holds (``present``) or lacks (not ``present``) capability ``name``."""
    if has_capability(name) != present:
        state = "lacks" if present else "holds"
        pytest.skip(f"this test process {state} {name}")
