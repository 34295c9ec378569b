"""Writing one cgroup interface file, the way the kernel wants it: one ``write`` is one value.

Below both the cgroup drivers (``cgroups``, ``cgroup_v2``) and the limits they
apply (``cgroup_limits``), so neither imports the other for it.
"""

from __future__ import annotations

import os

__all__ = ["write_file"]


def write_file(path: str, value: str) -> None:
    """Write ``value`` to a cgroup interface file in one ``write`` (the kernel reads one write as one value)."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)
