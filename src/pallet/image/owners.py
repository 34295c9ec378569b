"""Naming temporary files and dirs after the process that writes them, so leftovers can be told apart.

A crashed (even SIGKILLed) writer cannot clean up after itself. Its temp files
carry ``<pid>-<start time>-<random>`` in their name; a later process removes
those whose writer no longer runs. The start time (from ``/proc/<pid>/stat``)
guards against pid reuse.
"""

from __future__ import annotations

import os

from pallet.linux import procstat

__all__ = ["is_alive", "owner_tag", "parse_owner"]


def owner_tag() -> str:
    """``<pid>-<start time>-<8 random hex>``: unique, and names this process."""
    pid = os.getpid()
    return f"{pid}-{procstat.start_time(pid)}-{os.urandom(4).hex()}"


def parse_owner(name: str) -> tuple[int, int] | None:
    """The (pid, start time) a temp name was made by, or None if it is not one of ours."""
    parts = name.split("-", 2)
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), int(parts[1])


def is_alive(pid: int, start_time: int) -> bool:
    """Whether the process that made a temp name still runs."""
    current = procstat.start_time(pid)
    return current != 0 and current == start_time
