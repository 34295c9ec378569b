"""The real ``Syscalls``: libc through ctypes (``CDLL(None)``: the already loaded libc, no lookup).

Only the runtime's container-side code imports this module: ``import ctypes``
costs ~5 ms, which commands such as ``state`` or ``kill`` do not pay.
"""

from __future__ import annotations

import ctypes
import os

from pallet.errors import SystemError_

_SYS_PIVOT_ROOT = 155  # x86_64
_SYS_CAPGET = 125
_SYS_CAPSET = 126
_CAP_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


_CapData = ctypes.c_uint32 * 6  # two {effective, permitted, inheritable} words


def _path(text: str) -> bytes:
    return os.fsencode(text)


class Libc:
    """``Syscalls`` over the process's libc."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.mount.argtypes = (
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_char_p,
        )
        self._libc.syscall.restype = ctypes.c_long
        self._libc.prctl.argtypes = (
            ctypes.c_int,
            ctypes.c_ulong,
            ctypes.c_ulong,
            ctypes.c_ulong,
            ctypes.c_ulong,
        )

    @staticmethod
    def _check(result: int, what: str) -> int:
        if result < 0:
            raise SystemError_(what, ctypes.get_errno())
        return result

    def unshare(self, flags: int) -> None:
        self._check(self._libc.unshare(flags), f"unshare {flags:#x}")

    def setns(self, fd: int, nstype: int) -> None:
        self._check(self._libc.setns(fd, nstype), f"setns {nstype:#x}")

    def mount(self, source: str, target: str, fstype: str, flags: int, data: str) -> None:
        result = self._libc.mount(
            _path(source) if source else None,
            _path(target),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        )
        self._check(result, f"mount {source or fstype} on {target}")

    def umount2(self, target: str, flags: int) -> None:
        self._check(self._libc.umount2(_path(target), flags), f"umount {target}")

    def pivot_root(self, new_root: str, put_old: str) -> None:
        result = self._libc.syscall(_SYS_PIVOT_ROOT, _path(new_root), _path(put_old))
        self._check(result, f"pivot_root {new_root}")

    def sethostname(self, name: str) -> None:
        data = name.encode()
        self._check(self._libc.sethostname(data, len(data)), f"sethostname {name}")

    def setdomainname(self, name: str) -> None:
        data = name.encode()
        self._check(self._libc.setdomainname(data, len(data)), f"setdomainname {name}")

    def mknod(self, path: str, mode: int, device: int) -> None:
        try:
            os.mknod(path, mode, device)
        except OSError as e:
            raise SystemError_(f"mknod {path}", e.errno or 0) from None

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        return self._check(self._libc.prctl(option, arg2, arg3, arg4, arg5), f"prctl {option}")

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        header = _CapHeader(_CAP_VERSION_3, 0)
        data = _CapData(
            effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF,
            effective >> 32, permitted >> 32, inheritable >> 32,
        )  # fmt: skip
        self._check(self._libc.syscall(_SYS_CAPSET, ctypes.byref(header), ctypes.byref(data)), "capset")

    def capget(self) -> tuple[int, int, int]:
        header = _CapHeader(_CAP_VERSION_3, 0)
        data = _CapData()
        self._check(self._libc.syscall(_SYS_CAPGET, ctypes.byref(header), ctypes.byref(data)), "capget")
        return (data[0] | data[3] << 32, data[1] | data[4] << 32, data[2] | data[5] << 32)
