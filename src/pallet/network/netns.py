"""Named network namespaces: a file that keeps a namespace alive, as ``ip netns add`` makes one.

``create(path)`` unshares a new network namespace on the calling thread,
bind-mounts ``/proc/thread-self/ns/net`` onto ``path`` and returns the thread
to the namespace it was in; the bind mount keeps the namespace (and the
interfaces in it) alive with no process inside. The engine hands ``path`` to
the OCI runtime as the container's ``network`` namespace, so pallet-runtime,
runc and crun all join it the same way. ``remove(path)`` unmounts and
unlinks; when nothing else holds the namespace, the kernel destroys it with
its interfaces, which removes the host end of every veth pair it held.

Contracts:

- ``create`` is idempotent: a path that is already a namespace mount is left
  as it is. A file left empty by a process killed between ``open`` and
  ``mount`` is mounted over (a new namespace).
- ``remove`` is idempotent: not mounted, or missing, is fine.
- The calling thread's namespace is always restored: ``setns`` back to a
  saved descriptor in a ``finally``.

The kernel is reached through ``pallet.linux``'s ``Syscalls`` seam: every
function takes ``syscalls`` (``Libc()`` when omitted), so the logic runs
against the recording fake in unit tests.
"""

from __future__ import annotations

import os
from errno import EINVAL, ENOENT

from pallet.errors import SystemError_
from pallet.linux.flags import CLONE_NEWNET, MNT_DETACH, MS_BIND

__all__ = ["create", "entered", "is_netns", "remove"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.linux.syscalls import Syscalls

_SELF_NET = "/proc/thread-self/ns/net"


def _libc(syscalls: Syscalls | None) -> Syscalls:
    if syscalls is not None:
        return syscalls
    from pallet.linux.libc import Libc

    return Libc()


def is_netns(path: str) -> bool:
    """True if ``path`` is a mounted network namespace (its inode is an nsfs one, not the empty file's)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    # an nsfs inode lives on the nsfs device; the placeholder file lives on the run dir's file system
    return st.st_dev != os.stat(os.path.dirname(path) or ".").st_dev


def create(path: str, syscalls: Syscalls | None = None) -> None:
    """A new network namespace bound at ``path`` (its directory is made if missing). Idempotent."""
    if is_netns(path):
        return
    libc = _libc(syscalls)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o444)
    os.close(fd)
    saved = os.open(_SELF_NET, os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc.unshare(CLONE_NEWNET)
        try:
            libc.mount(_SELF_NET, path, "", MS_BIND, "")
        finally:
            libc.setns(saved, CLONE_NEWNET)
    finally:
        os.close(saved)


def remove(path: str, syscalls: Syscalls | None = None) -> None:
    """Unmount and unlink ``path``. Idempotent."""
    libc = _libc(syscalls)
    for _ in range(16):  # a path mounted twice (two racing creates) needs two unmounts
        try:
            libc.umount2(path, MNT_DETACH)
        except SystemError_ as e:
            if e.errno in (EINVAL, ENOENT):
                break
            raise
    try:  # noqa: SIM105 - contextlib costs the run path an import
        os.unlink(path)
    except FileNotFoundError:
        pass


class entered:  # noqa: N801 - used as a function: ``with entered(path):``
    """Run the block with the calling thread in the network namespace at ``path``, then return.

    Sockets created inside stay in that namespace after the block: that is
    how ``Netlink.open(netns=...)`` and tests' servers reach a container's
    namespace without a process inside it. A class, not ``contextlib``: that
    import costs ~5 ms.
    """

    __slots__ = ("_libc", "_path", "_saved")

    def __init__(self, path: str, syscalls: Syscalls | None = None) -> None:
        self._path = path
        self._libc = _libc(syscalls)
        self._saved = -1

    def __enter__(self) -> None:
        self._saved = os.open(_SELF_NET, os.O_RDONLY | os.O_CLOEXEC)
        try:
            target = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            os.close(self._saved)
            raise SystemError_(f"open network namespace {self._path}", ENOENT) from None
        try:
            self._libc.setns(target, CLONE_NEWNET)
        except BaseException:
            os.close(self._saved)
            raise
        finally:
            os.close(target)

    def __exit__(self, *exc: object) -> None:
        try:
            self._libc.setns(self._saved, CLONE_NEWNET)
        finally:
            os.close(self._saved)
