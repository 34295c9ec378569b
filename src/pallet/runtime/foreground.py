"""A runtime command in the foreground of its container's process (``run``, ``exec``): signals and reaping.

The command is a child subreaper, so the process (whose parent, an
intermediate of ours, exited) is its child: it relays the signals a
foreground program would get and returns the process's exit status.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False

#: SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM, SIGWINCH
_FORWARDED = (1, 2, 3, 10, 12, 15, 28)


def forward_signals(init_pid: int) -> None:
    """Relay the signals a foreground runtime gets (``_FORWARDED``) to ``init_pid``."""
    if TYPE_CHECKING:
        import signal as _signal  # the stubs; at run time the C module, without signal's enums
    else:
        import _signal

    def forward(signum: int, frame: object) -> None:
        try:  # noqa: SIM105 - contextlib costs ~7 ms at start
            os.kill(init_pid, signum)
        except OSError:
            pass

    for number in _FORWARDED:
        _signal.signal(number, forward)


def reap(init_pid: int, block: bool) -> int | None:
    """Reap children (orphans reparented to us too); the init's exit code once it is reaped."""
    while True:
        try:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return 255
        if pid == 0:
            return None
        if pid == init_pid:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code
