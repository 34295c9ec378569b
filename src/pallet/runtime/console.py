"""``terminal: true``: a pty opened in the container's devpts, its master sent over ``--console-socket``.

The engine listening on the socket receives the master with one ``sendmsg``
carrying ``SCM_RIGHTS`` (payload: the pts path, as runc sends); the slave
becomes the init's controlling terminal and its stdio.
"""

from __future__ import annotations

import fcntl
import os

from pallet.errors import SystemError_, Unavailable
from pallet.linux import flags as f

_SOL_SOCKET = 1
_SCM_RIGHTS = 1


def connect_console_socket(path: str) -> object:
    """A connected unix stream socket to ``path`` (``_socket``: ``socket`` imports enum)."""
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise Unavailable(
            f"connect to console socket {path}: {e.strerror.lower() if e.strerror else e}"
        ) from None
    return sock


def console_pair() -> tuple[object, object]:
    """A connected socket pair: the init sends the master on the first, ``run`` receives it on the second."""
    import _socket

    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)


def receive_master(sock: object) -> int:
    """The pty master fd sent over ``sock`` (one SCM_RIGHTS message)."""
    import _socket

    _, ancdata, _, _ = sock.recvmsg(256, _socket.CMSG_SPACE(4))  # type: ignore[attr-defined]
    for level, kind, data in ancdata:
        if level == _SOL_SOCKET and kind == _SCM_RIGHTS and len(data) >= 4:
            return int.from_bytes(data[:4], "little")
    raise Unavailable("the container init did not send its pty master")


def open_pty() -> tuple[int, str]:
    """Open ``/dev/ptmx`` of the current mount namespace: ``(master fd, slave path)``."""
    try:
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise SystemError_("open /dev/ptmx", e.errno or 0) from None
    fcntl.ioctl(master, f.TIOCSPTLCK, b"\0\0\0\0")
    number = int.from_bytes(fcntl.ioctl(master, f.TIOCGPTN, b"\0\0\0\0"), "little")
    return master, f"/dev/pts/{number}"


def send_master(sock: object, master: int, name: str) -> None:
    """Send ``master`` over the connected console socket, then close our copy."""
    try:
        sock.sendmsg(  # type: ignore[attr-defined]
            [name.encode()], [(_SOL_SOCKET, _SCM_RIGHTS, master.to_bytes(4, "little"))]
        )
    except OSError as e:
        raise SystemError_("send the pty master over the console socket", e.errno or 0) from None
    finally:
        sock.close()  # type: ignore[attr-defined]
    os.close(master)


def become_terminal_session(slave_path: str, height: int, width: int) -> None:
    """Make ``slave_path`` the controlling terminal (the caller already ran setsid) and stdio 0-2."""
    slave = os.open(slave_path, os.O_RDWR)
    fcntl.ioctl(slave, f.TIOCSCTTY, 0)
    if height or width:
        size = height.to_bytes(2, "little") + width.to_bytes(2, "little") + b"\0\0\0\0"
        fcntl.ioctl(slave, f.TIOCSWINSZ, size)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
