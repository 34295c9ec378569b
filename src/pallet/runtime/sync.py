"""The messages ``create`` and its container-side processes exchange over two pipes.

One channel per direction, shared by the intermediate process (C1) and the
container init (C2), which never talk at the same time. A message is a 4-byte
little-endian length, one kind byte, then UTF-8 text. The sequence:

    C1 -> parent  USERNS       (only with a new user namespace) write my uid/gid maps
    parent -> C1  USERNS_DONE
    C1 -> parent  PID <pid>    the init's pid in the host pid namespace; C1 exits (no C1,
                               no message: the parent forked the init and knows its pid)
    parent -> C2  CGROUP_DONE  the init is in the container's cgroup (the parent moved it
                               while the init built the rootfs: the first cgroup.procs
                               write waits for an RCU grace period, ~10 ms here); or, for
                               an init forked by the parent into v1 cgroups, the limits are
                               written and the init moves itself (no such wait)
    C2 -> parent  HOOKS        the mounts exist: run prestart + createRuntime hooks
    parent -> C2  HOOKS_DONE <state json>   (the state createContainer hooks get)
    C2 -> parent  READY        blocked before the user program; create may return
    C1/C2 -> parent  ERROR <message>   at any point instead; the sender then exits

End of file before READY means the init died without saying why.
"""

from __future__ import annotations

import os

from pallet.errors import UNKNOWN, PalletError, errno_text

CGROUP_DONE = "c"
USERNS = "u"
USERNS_DONE = "U"
PID = "p"
HOOKS = "h"
HOOKS_DONE = "H"
READY = "r"
ERROR = "e"


class ChannelClosed(PalletError):
    """The other side closed the pipe before sending what was expected."""

    category = UNKNOWN  # the other process died without saying why


def send(fd: int, kind: str, text: str = "") -> None:
    body = kind.encode() + text.encode()
    data = len(body).to_bytes(4, "little") + body
    while data:
        data = data[os.write(fd, data) :]


def _read_exact(fd: int, size: int) -> bytes:
    chunks = b""
    while len(chunks) < size:
        chunk = os.read(fd, size - len(chunks))
        if not chunk:
            raise ChannelClosed("the container process exited before it was ready")
        chunks += chunk
    return chunks


def receive(fd: int) -> tuple[str, str]:
    """The next message as ``(kind, text)``; ``ChannelClosed`` at end of file."""
    size = int.from_bytes(_read_exact(fd, 4), "little")
    body = _read_exact(fd, size)
    return chr(body[0]), body[1:].decode()


def fail(fd: int, error: BaseException) -> None:
    """Send ``error`` as one ERROR message, then exit 1: how a container-side process reports (never returns)."""
    if isinstance(error, PalletError):
        message = error.message
    elif isinstance(error, OSError):
        message = f"{error.filename or 'system call'}: {errno_text(error.errno or 0)}"
    else:
        message = f"internal error: {type(error).__name__}: {error}"
    try:
        send(fd, ERROR, message)
    finally:
        os._exit(1)
