"""A recording ``Syscalls``: every call is appended to ``calls`` and nothing reaches the kernel.

Tests run rootfs, mount and namespace logic against it without root and assert
the recorded calls. ``fail`` makes a named call raise ``SystemError_`` with an
errno, to test error paths. ``mknod`` creates an empty regular file so that
code which chmods/chowns the node afterwards keeps working.

Resource limits follow the kernel's rules, so a test can reach its errors
without ``fail``: ``rlimits`` holds each limit (unlimited until set), a soft
limit above the hard one is EINVAL, and raising a hard limit is EPERM unless
``may_raise_hard_limits`` (CAP_SYS_RESOURCE). A refused call is recorded too.
"""

from __future__ import annotations

from errno import EINVAL, EPERM

from pallet.errors import SystemError_

#: RLIM_INFINITY as the kernel spells it
RLIM_INFINITY = (1 << 64) - 1


class FakeSyscalls:
    """Records calls as tuples: ``("mount", source, target, fstype, flags, data)`` and so on."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.fail: dict[str, int] = {}
        self.caps = (0, 0, 0)
        self.rlimits: dict[int, tuple[int, int]] = {}
        self.may_raise_hard_limits = True
        self.mask = 0o022

    def _record(self, *call: object) -> None:
        self.calls.append(call)
        name = str(call[0])
        if name in self.fail:
            raise SystemError_(name, self.fail[name])

    def named(self, name: str) -> list[tuple[object, ...]]:
        """The recorded calls of one syscall."""
        return [c for c in self.calls if c[0] == name]

    def unshare(self, flags: int) -> None:
        self._record("unshare", flags)

    def setns(self, fd: int, nstype: int) -> None:
        self._record("setns", fd, nstype)

    def mount(self, source: str, target: str, fstype: str, flags: int, data: str) -> None:
        self._record("mount", source, target, fstype, flags, data)

    def umount2(self, target: str, flags: int) -> None:
        self._record("umount2", target, flags)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self._record("pivot_root", new_root, put_old)

    def sethostname(self, name: str) -> None:
        self._record("sethostname", name)

    def setdomainname(self, name: str) -> None:
        self._record("setdomainname", name)

    def mknod(self, path: str, mode: int, device: int) -> None:
        self._record("mknod", path, mode, device)
        with open(path, "w"):
            pass

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        self._record("prctl", option, arg2, arg3, arg4, arg5)
        return 0

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        self._record("capset", effective, permitted, inheritable)
        self.caps = (effective, permitted, inheritable)

    def capget(self) -> tuple[int, int, int]:
        return self.caps

    def setrlimit(self, resource: int, soft: int, hard: int) -> None:
        self._record("setrlimit", resource, soft, hard)
        current_hard = self.rlimits.get(resource, (RLIM_INFINITY, RLIM_INFINITY))[1]
        if soft > hard:
            raise SystemError_(f"setrlimit {resource}", EINVAL)
        if hard > current_hard and not self.may_raise_hard_limits:
            raise SystemError_(f"setrlimit {resource}", EPERM)
        self.rlimits[resource] = (soft, hard)

    def getrlimit(self, resource: int) -> tuple[int, int]:
        return self.rlimits.get(resource, (RLIM_INFINITY, RLIM_INFINITY))

    def setgroups(self, gids: tuple[int, ...]) -> None:
        self._record("setgroups", tuple(gids))

    def setresgid(self, rgid: int, egid: int, sgid: int) -> None:
        self._record("setresgid", rgid, egid, sgid)

    def setresuid(self, ruid: int, euid: int, suid: int) -> None:
        self._record("setresuid", ruid, euid, suid)

    def umask(self, mask: int) -> int:
        self._record("umask", mask)
        previous, self.mask = self.mask, mask
        return previous

    def chdir(self, path: str) -> None:
        self._record("chdir", path)
