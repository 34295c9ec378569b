"""A recording ``Syscalls``: every call is appended to ``calls`` and nothing reaches the kernel.

Tests run rootfs, mount and namespace logic against it without root and assert
the recorded calls. ``fail`` makes a named call raise ``SystemError_`` with an
errno, to test error paths. ``mknod`` creates an empty regular file so that
code which chmods/chowns the node afterwards keeps working.
"""

from __future__ import annotations

from pallet.errors import SystemError_


class FakeSyscalls:
    """Records calls as tuples: ``("mount", source, target, fstype, flags, data)`` and so on."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.fail: dict[str, int] = {}
        self.caps = (0, 0, 0)

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
