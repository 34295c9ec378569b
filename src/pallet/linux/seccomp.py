"""The kernel side of seccomp: load a compiled BPF program with ``seccomp(2)``, pass a listener fd.

Compiling a profile is libseccomp's job (``pallet.runtime.seccomp``); this
module only hands the finished program to the kernel, so the container init
pays for ``ctypes`` and one system call, nothing more. It also asks libseccomp
for its version (``dlopen`` of the soname; never ``ctypes.util``), which keys
the compiled-program cache.
"""

from __future__ import annotations

import ctypes
import sys
from errno import EACCES, EBUSY, EFAULT, EINVAL, ESRCH

from pallet.errors import FailedPrecondition, InvalidArgument, SystemError_, Unsupported

__all__ = [
    "FILTER_FLAGS",
    "FILTER_FLAG_NEW_LISTENER",
    "FILTER_FLAG_TSYNC",
    "FILTER_FLAG_TSYNC_ESRCH",
    "flag_supported",
    "libseccomp_version",
    "load_filter",
    "receive_fd",
    "send_fd",
]

_SYS_SECCOMP = 317  # x86_64
_SECCOMP_SET_MODE_FILTER = 1
_PR_GET_NO_NEW_PRIVS = 39
_BPF_MAXINSNS = 4096

FILTER_FLAG_TSYNC = 1
FILTER_FLAG_NEW_LISTENER = 8
FILTER_FLAG_TSYNC_ESRCH = 16

#: the spec's ``linux.seccomp.flags`` -> the seccomp(2) filter flag (linux/seccomp.h)
FILTER_FLAGS: dict[str, int] = {
    "SECCOMP_FILTER_FLAG_TSYNC": FILTER_FLAG_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_char_p))


class _ScmpVersion(ctypes.Structure):
    _fields_ = (("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint))


def libseccomp_version() -> str:
    """``major.minor.micro`` of the libseccomp this process would compile with."""
    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        raise Unsupported(
            "linux.seccomp: libseccomp is not installed on this host; install it (apt-get install libseccomp2)"
        ) from None
    lib.seccomp_version.restype = ctypes.POINTER(_ScmpVersion)
    version = lib.seccomp_version().contents
    return f"{version.major}.{version.minor}.{version.micro}"


def flag_supported(flag: int) -> bool:
    """Whether this kernel knows a filter flag, probed as runc does (changes nothing).

    ``seccomp(SECCOMP_SET_MODE_FILTER, flag, NULL)`` fails with EINVAL for an
    unknown flag and with EFAULT (reading the NULL program) for a known one.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    result = libc.syscall(
        ctypes.c_long(_SYS_SECCOMP), ctypes.c_ulong(_SECCOMP_SET_MODE_FILTER), ctypes.c_ulong(flag), None
    )
    return result < 0 and ctypes.get_errno() == EFAULT


def load_filter(program: bytes, flags: int) -> int:
    """Attach ``program`` (``struct sock_filter`` array) to the calling thread.

    Returns the notification fd when ``flags`` has ``FILTER_FLAG_NEW_LISTENER``,
    else 0. Without no_new_privs the kernel requires CAP_SYS_ADMIN (in the
    current user namespace): the error then says so.
    """
    count = len(program) // 8
    if not program or len(program) % 8 or count > _BPF_MAXINSNS:
        raise InvalidArgument(
            f"seccomp: not a loadable BPF program ({len(program)} bytes, at most 4096 instructions)"
        )
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    buffer = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(count, ctypes.cast(buffer, ctypes.c_char_p))
    result = libc.syscall(
        ctypes.c_long(_SYS_SECCOMP),
        ctypes.c_ulong(_SECCOMP_SET_MODE_FILTER),
        ctypes.c_ulong(flags),
        ctypes.byref(prog),
    )
    if result >= 0:
        return int(result)
    errno = ctypes.get_errno()
    if errno == EACCES and not libc.prctl(_PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0):
        raise FailedPrecondition(
            "load seccomp filter: permission denied: the process has neither no_new_privs nor "
            "CAP_SYS_ADMIN; load the filter before dropping capabilities, or set process.noNewPrivileges"
        )
    if errno == EINVAL and flags & ~(FILTER_FLAG_TSYNC | FILTER_FLAG_NEW_LISTENER | FILTER_FLAG_TSYNC_ESRCH):
        raise Unsupported(
            f"load seccomp filter: invalid argument: this kernel rejects the filter flags {flags:#x}; "
            "remove the newer ones from linux.seccomp.flags"
        )
    if errno == EBUSY and flags & FILTER_FLAG_NEW_LISTENER:
        raise FailedPrecondition(
            "load seccomp filter: device or resource busy: a filter with a listener is already attached"
        )
    if errno == ESRCH and flags & FILTER_FLAG_TSYNC:
        raise FailedPrecondition("load seccomp filter: another thread could not be synchronised (TSYNC)")
    raise SystemError_("load seccomp filter", errno)


def send_fd(sock: int, payload: bytes, fd: int) -> None:
    """Send ``payload`` with ``fd`` attached (SCM_RIGHTS) on the connected unix socket ``sock``."""
    import _socket

    # the socket object only borrows the descriptor: detach, never close it here
    conn = _socket.socket(fileno=sock)
    try:
        rights = fd.to_bytes(4, sys.byteorder)
        conn.sendmsg([payload], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
    except OSError as e:
        raise SystemError_("send seccomp listener fd", e.errno or 0) from None
    finally:
        conn.detach()


def receive_fd(sock: int, *, wait: bool) -> int:
    """The one fd the peer sent with ``send_fd`` on ``sock``; -1 when none is there (``wait=False``)."""
    import _socket

    conn = _socket.socket(fileno=sock)
    try:
        _, ancillary, _, _ = conn.recvmsg(64, _socket.CMSG_SPACE(4), 0 if wait else _socket.MSG_DONTWAIT)
    except BlockingIOError:
        return -1
    except OSError as e:
        raise SystemError_("receive seccomp listener fd", e.errno or 0) from None
    finally:
        conn.detach()
    for level, kind, data in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS and len(data) >= 4:
            return int.from_bytes(data[:4], sys.byteorder)
    return -1
