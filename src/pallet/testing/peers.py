"""Peer OCI runtimes (runc, crun) for tests that run the same bundle through pallet-runtime and them.

``peer_binary`` finds one on ``PATH``; a test skips, naming the missing binary, when it is absent.
``fix_hybrid_cgroups`` is the one-time host fix crun 1.8 needs on a cgroup v1 hybrid host
(shared/bench/README.md): it refuses to run while the cgroup2 mount at
``/sys/fs/cgroup/unified`` owns a controller, so each such controller is mounted as a v1
hierarchy at ``/sys/fs/cgroup/<name>``. Idempotent; the mounts are left in place on purpose
(unmounting while cgroups exist hides the hierarchy).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["fix_hybrid_cgroups", "peer_binary"]


def peer_binary(name: str) -> str | None:
    """The absolute path of runtime ``name`` on ``PATH``, or None."""
    return shutil.which(name)


def fix_hybrid_cgroups() -> None:
    """Mount as v1 every controller the hybrid cgroup2 mount owns (nothing to do elsewhere)."""
    controllers = Path("/sys/fs/cgroup/unified/cgroup.controllers")
    if not controllers.exists():
        return
    mounted: set[str] = set()
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[2] == "cgroup":
            mounted.update(fields[3].split(","))
    for name in controllers.read_text().split():
        if name in mounted:
            continue
        target = Path(f"/sys/fs/cgroup/{name}")
        target.mkdir(exist_ok=True)
        subprocess.run(["mount", "-t", "cgroup", "-o", name, "cgroup", str(target)], check=False)
