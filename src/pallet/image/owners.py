"""Naming temporary files and dirs after the process that writes them, so leftovers can be told apart.

A crashed (even SIGKILLed) writer cannot clean up after itself. Its temp files
carry ``<pid>-<start time>-<random>`` in their name; a later process removes
those whose writer no longer runs. The start time (from ``/proc/<pid>/stat``)
guards against pid reuse.
"""

from __future__ import annotations

import os

__all__ = ["is_alive", "owner_tag", "parse_owner"]


def _start_time(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # field 22 (starttime), counted after the ")" that ends the command name
    fields = stat.rpartition(b")")[2].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def owner_tag() -> str:
    """``<pid>-<start time>-<8 random hex>``: unique, and names this process."""
    pid = os.getpid()
    return f"{pid}-{_start_time(pid) or 0}-{os.urandom(4).hex()}"


def parse_owner(name: str) -> tuple[int, int] | None:
    """The (pid, start time) a temp name was made by, or None if it is not one of ours."""
    parts = name.split("-", 2)
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), int(parts[1])


def is_alive(pid: int, start_time: int) -> bool:
    """Whether the process that made a temp name still runs."""
    current = _start_time(pid)
    return current is not None and current == start_time
