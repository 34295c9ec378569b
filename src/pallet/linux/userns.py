"""Which user namespace this process is in: the host's, or another (rootless engines and runtimes)."""

from __future__ import annotations

__all__ = ["in_user_namespace"]


def in_user_namespace() -> bool:
    """Whether this process is in a user namespace other than the host's (its uid_map is not the identity)."""
    try:
        with open("/proc/self/uid_map") as f:
            first = f.readline().split()
    except OSError:
        return False
    return first != ["0", "0", "4294967295"]
