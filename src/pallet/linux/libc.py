"""The real ``Syscalls``: libc through ``_ctypes`` (``dlopen(NULL)``: the already loaded libc, no lookup).

``_ctypes``, not ``ctypes``: the package's ``__init__`` defines every C type
and helper class, and costs ~2 ms more at each ``pallet-runtime`` start than
the five simple types and one function-pointer class below (the calls are
the same: libffi through ``_ctypes.CFuncPtr``). Only the runtime's
container-side code, ``run`` and ``exec`` import this module.
"""

from __future__ import annotations

import _ctypes
import os

from pallet.errors import SystemError_

_SYS_PIVOT_ROOT = 155  # x86_64
_SYS_CAPGET = 125
_SYS_CAPSET = 126
_CAP_VERSION_3 = 0x20080522


# the C types the signatures below need, as ctypes defines them
class _Int(_ctypes._SimpleCData):  # type: ignore[type-arg]
    _type_ = "i"


class _Long(_ctypes._SimpleCData):  # type: ignore[type-arg]
    _type_ = "l"


class _ULong(_ctypes._SimpleCData):  # type: ignore[type-arg]
    _type_ = "L"


class _UInt(_ctypes._SimpleCData):  # type: ignore[type-arg]
    _type_ = "I"


class _CharP(_ctypes._SimpleCData):  # type: ignore[type-arg]
    _type_ = "z"


class _Function(_ctypes.CFuncPtr):
    """A libc function returning ``int``, with ``errno`` saved for ``_ctypes.get_errno`` (``CDLL(use_errno=True)``)."""

    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = _Int


class _Process:
    """The handle ``CFuncPtr((name, library))`` looks symbols up in: the process itself (libc is loaded)."""

    _handle = _ctypes.dlopen(None, 0)  # type: ignore[arg-type]  # NULL: the main program and its libraries


_PROCESS = _Process()
_CapHeader = _UInt * 2  # struct __user_cap_header_struct {u32 version; int pid}
_CapData = _UInt * 6  # two {effective, permitted, inheritable} words
_Rlimit = _ULong * 2  # struct rlimit {rlim_t rlim_cur; rlim_t rlim_max}


def _function(name: str, *argtypes: type) -> _Function:
    function = _Function((name, _PROCESS))  # type: ignore[arg-type]  # any object with a _handle
    if argtypes:
        function.argtypes = argtypes
    return function


def _path(text: str) -> bytes:
    return os.fsencode(text)


class Libc:
    """``Syscalls`` over the process's libc."""

    def __init__(self) -> None:
        self._unshare = _function("unshare")
        self._setns = _function("setns")
        self._mount = _function("mount", _CharP, _CharP, _CharP, _ULong, _CharP)
        self._umount2 = _function("umount2")
        self._syscall = _function("syscall")
        self._syscall.restype = _Long
        self._sethostname = _function("sethostname")
        self._setdomainname = _function("setdomainname")
        self._prctl = _function("prctl", _Int, _ULong, _ULong, _ULong, _ULong)
        # prlimit(0, ...), not setrlimit(2) through the resource module: its errors keep their errno
        # (resource turns EPERM and EINVAL into ValueError)
        self._prlimit = _function("prlimit")

    @staticmethod
    def _check(result: int, what: str) -> int:
        if result < 0:
            raise SystemError_(what, _ctypes.get_errno())
        return result

    def unshare(self, flags: int) -> None:
        self._check(self._unshare(flags), f"unshare {flags:#x}")

    def setns(self, fd: int, nstype: int) -> None:
        self._check(self._setns(fd, nstype), f"setns {nstype:#x}")

    def mount(self, source: str, target: str, fstype: str, flags: int, data: str) -> None:
        result = self._mount(
            _path(source) if source else None,
            _path(target),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        )
        self._check(result, f"mount {source or fstype} on {target}")

    def umount2(self, target: str, flags: int) -> None:
        self._check(self._umount2(_path(target), flags), f"umount {target}")

    def pivot_root(self, new_root: str, put_old: str) -> None:
        result = self._syscall(_SYS_PIVOT_ROOT, _path(new_root), _path(put_old))
        self._check(result, f"pivot_root {new_root}")

    def sethostname(self, name: str) -> None:
        data = name.encode()
        self._check(self._sethostname(data, len(data)), f"sethostname {name}")

    def setdomainname(self, name: str) -> None:
        data = name.encode()
        self._check(self._setdomainname(data, len(data)), f"setdomainname {name}")

    def mknod(self, path: str, mode: int, device: int) -> None:
        try:
            os.mknod(path, mode, device)
        except OSError as e:
            raise SystemError_(f"mknod {path}", e.errno or 0) from None

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        return self._check(self._prctl(option, arg2, arg3, arg4, arg5), f"prctl {option}")

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        header = _CapHeader(_CAP_VERSION_3, 0)
        data = _CapData(
            effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF,
            effective >> 32, permitted >> 32, inheritable >> 32,
        )  # fmt: skip
        self._check(self._syscall(_SYS_CAPSET, _ctypes.byref(header), _ctypes.byref(data)), "capset")

    def capget(self) -> tuple[int, int, int]:
        header = _CapHeader(_CAP_VERSION_3, 0)
        data = _CapData()
        self._check(self._syscall(_SYS_CAPGET, _ctypes.byref(header), _ctypes.byref(data)), "capget")
        return (data[0] | data[3] << 32, data[1] | data[4] << 32, data[2] | data[5] << 32)

    def setrlimit(self, resource: int, soft: int, hard: int) -> None:
        limit = _Rlimit(soft, hard)
        self._check(self._prlimit(0, resource, _ctypes.byref(limit), None), f"setrlimit {resource}")

    def getrlimit(self, resource: int) -> tuple[int, int]:
        limit = _Rlimit()
        self._check(self._prlimit(0, resource, None, _ctypes.byref(limit)), f"getrlimit {resource}")
        return limit[0], limit[1]

    def setgroups(self, gids: tuple[int, ...]) -> None:
        try:
            os.setgroups(gids)
        except OSError as e:
            raise SystemError_("setgroups", e.errno or 0) from None

    def setresgid(self, rgid: int, egid: int, sgid: int) -> None:
        try:
            os.setresgid(rgid, egid, sgid)
        except OSError as e:
            raise SystemError_(f"setresgid {egid}", e.errno or 0) from None

    def setresuid(self, ruid: int, euid: int, suid: int) -> None:
        try:
            os.setresuid(ruid, euid, suid)
        except OSError as e:
            raise SystemError_(f"setresuid {euid}", e.errno or 0) from None

    def umask(self, mask: int) -> int:
        return os.umask(mask)

    def chdir(self, path: str) -> None:
        try:
            os.chdir(path)
        except OSError as e:
            raise SystemError_(f"chdir {path}", e.errno or 0) from None
