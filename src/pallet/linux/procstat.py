"""What /proc says about a process: alive, zombie, and its start time (to detect pid reuse)."""

from __future__ import annotations


def read_stat(pid: int) -> tuple[str, int] | None:
    """``(state letter, start time in clock ticks)`` of ``pid``, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ")"
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return fields[0].decode(), int(fields[19])
    except (IndexError, ValueError):
        return None


def start_time(pid: int) -> int:
    """The start time of ``pid`` in clock ticks since boot, or 0 if it does not exist."""
    stat = read_stat(pid)
    return stat[1] if stat else 0


def running_start_time(pid: int) -> int | None:
    """The start time of ``pid`` if it runs (a zombie has exited: it only waits to be reaped); else None."""
    stat = read_stat(pid) if pid > 0 else None
    if stat is None or stat[0] in ("Z", "X", "x"):
        return None
    return stat[1]


def is_alive(pid: int, started: int) -> bool:
    """True if ``pid`` runs (not a zombie) and is the same process that started at ``started``."""
    if pid <= 0:
        return False
    stat = read_stat(pid)
    if stat is None:
        return False
    state, start = stat
    return state not in ("Z", "X", "x") and started in (0, start)
