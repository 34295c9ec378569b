"""The ``Syscalls`` seam: every kernel call pallet makes beyond ``os``.

Runtime code takes a ``Syscalls`` argument instead of calling libc itself, so
rootfs, mount and namespace logic runs against the recording fake of
``pallet.testing.fake_syscalls`` in unit tests (no root needed) and against
``pallet.linux.libc.Libc`` for real. Every method raises
``pallet.errors.SystemError_(what, errno)`` when the kernel refuses, with
``what`` naming the call and its main argument (``mount /proc``).

The calls that give a container process its identity and limits (setrlimit,
setgroups, setresgid, setresuid, umask, chdir) go through the seam too,
although ``os`` offers most of them: their order is a security contract
(runc's: rlimits while privileged, groups before gid before uid, capabilities
kept across the uid change, then set), and the unit tests assert it on the
fake.

The protocol exists for type checkers only: importing ``typing`` costs
``pallet-runtime`` several milliseconds at start.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    class Syscalls(Protocol):
        def unshare(self, flags: int) -> None: ...

        def setns(self, fd: int, nstype: int) -> None: ...

        def mount(self, source: str, target: str, fstype: str, flags: int, data: str) -> None: ...

        def umount2(self, target: str, flags: int) -> None: ...

        def pivot_root(self, new_root: str, put_old: str) -> None: ...

        def sethostname(self, name: str) -> None: ...

        def setdomainname(self, name: str) -> None: ...

        def mknod(self, path: str, mode: int, device: int) -> None: ...

        def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int: ...

        def capset(self, effective: int, permitted: int, inheritable: int) -> None: ...

        def capget(self) -> tuple[int, int, int]:
            """(effective, permitted, inheritable) of the calling thread."""
            ...

        def setrlimit(self, resource: int, soft: int, hard: int) -> None:
            """The kernel's values: ``RLIM_INFINITY`` is 2**64-1."""
            ...

        def getrlimit(self, resource: int) -> tuple[int, int]:
            """(soft, hard), ``RLIM_INFINITY`` being 2**64-1."""
            ...

        def setgroups(self, gids: tuple[int, ...]) -> None: ...

        def setresgid(self, rgid: int, egid: int, sgid: int) -> None: ...

        def setresuid(self, ruid: int, euid: int, suid: int) -> None: ...

        def umask(self, mask: int) -> int:
            """Set the file mode creation mask; the previous one."""
            ...

        def chdir(self, path: str) -> None: ...


__all__ = ["Syscalls"]
