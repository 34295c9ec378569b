"""Foreground ``run`` of a ``terminal: true`` container: copy between our stdio and the pty master.

Without ``--console-socket`` (an interactive ``pallet-runtime run``), runc keeps
the pty master itself and relays: our stdin to the master, the master to our
stdout. When our stdin is a terminal it is put in raw mode (restored at the
end) and its window size follows SIGWINCH to the container's pty.
"""

from __future__ import annotations

import fcntl
import os

from pallet.linux import flags as f

TYPE_CHECKING = False

_TIOCGWINSZ = 0x5413
_SIGWINCH = 28


def _copy_size(master: int) -> None:
    try:
        size = fcntl.ioctl(0, _TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(master, f.TIOCSWINSZ, size)
    except OSError:
        pass  # stdin is not a terminal: keep the pty's size


def relay(master: int, init_pid: int, wait_status: object) -> int:
    """Relay until the init has exited and the master is drained; returns the init's exit code.

    ``wait_status`` is a callable ``(pid, block) -> exit code or None`` that reaps children.
    """
    import select

    if TYPE_CHECKING:
        import signal as _signal
    else:
        import _signal

    saved_mode = None
    if os.isatty(0):
        import termios
        import tty

        saved_mode = termios.tcgetattr(0)
        tty.setraw(0)
        _copy_size(master)
        _signal.signal(_SIGWINCH, lambda signum, frame: _copy_size(master))
    code: int | None = None
    stdin_open = True
    try:
        while True:
            watched = [master, 0] if stdin_open else [master]
            try:
                ready, _, _ = select.select(watched, [], [], 0.1)
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""  # EIO: every slave fd is closed
                if data:
                    os.write(1, data)
                elif code is not None:
                    break
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    os.write(master, data)
                else:
                    stdin_open = False
            if code is None:
                code = wait_status(init_pid, False)  # type: ignore[operator]
                if code is not None and master not in ready:
                    # exited: drain what is left without blocking, then stop
                    ready, _, _ = select.select([master], [], [], 0)
                    if not ready:
                        break
    finally:
        if saved_mode is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, saved_mode)
        os.close(master)
    return code if code is not None else 255
