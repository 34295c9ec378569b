"""Opening a path *inside* a directory tree that may hold hostile symlinks.

``open_in_root(root_fd, path, flags)`` resolves ``path`` as if ``root_fd`` were
``/``: ``..`` stops at the root and absolute symlinks restart from it, so no
component can lead outside (``openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)``,
Linux 5.6+). Where the kernel lacks openat2 (ENOSYS) or refuses it (EPERM from
a seccomp filter) the same resolution is done in user space, one component at a
time with ``O_NOFOLLOW``, reading symlinks ourselves and re-rooting them.

Contract: the returned fd refers to an object inside the tree rooted at
``root_fd`` at the time of resolution. Errors are ``OSError`` with the errno
of the failing step (ENOENT, ENOTDIR, ELOOP, ...): callers decide the message.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat

__all__ = ["RESOLVE_IN_ROOT", "RESOLVE_NO_MAGICLINKS", "has_openat2", "open_in_root"]

_SYS_OPENAT2 = 437  # the same number on every architecture (added after the syscall table unification)
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
_MAX_SYMLINKS = 40  # the kernel's MAXSYMLINKS


class _OpenHow(ctypes.Structure):
    _fields_ = (("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64))


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_syscall.argtypes = (ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(_OpenHow), ctypes.c_size_t)

# Filled by the first call: whether the kernel has openat2.
_probed: dict[str, bool] = {}


def _openat2(root_fd: int, path: bytes, flags: int, mode: int) -> int:
    # openat2 refuses a mode without O_CREAT/O_TMPFILE (EINVAL), unlike openat.
    # (O_TMPFILE includes the O_DIRECTORY bit, hence the full comparison.)
    mode = mode if flags & os.O_CREAT or flags & os.O_TMPFILE == os.O_TMPFILE else 0
    how = _OpenHow(flags | os.O_CLOEXEC, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    while True:
        fd = _syscall(_SYS_OPENAT2, root_fd, path, ctypes.byref(how), ctypes.sizeof(how))
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        if err not in (errno.EINTR, errno.EAGAIN):
            raise OSError(err, os.strerror(err), os.fsdecode(path))


def _walk(root_fd: int, path: bytes, flags: int, mode: int) -> int:
    """User-space RESOLVE_IN_ROOT: one component at a time, never following a link blindly."""
    stack = [c for c in path.split(b"/") if c and c != b"."]
    stack.reverse()
    trail: list[int] = []  # fds of the directories above the current one (for "..")
    cur = os.dup(root_fd)
    final = False  # cur was opened with the caller's flags (not an O_PATH step)
    links = 0
    try:
        while stack:
            name = stack.pop()
            final = False
            if name == b"..":
                if trail:
                    os.close(cur)
                    cur = trail.pop()
                continue
            last = not stack
            try:
                if last:
                    fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=cur)
                    if flags & os.O_PATH and not flags & os.O_NOFOLLOW and stat.S_ISLNK(os.fstat(fd).st_mode):
                        os.close(fd)  # O_PATH|O_NOFOLLOW opened the link itself: follow it like the kernel
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
                else:
                    fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur)
            except OSError as e:
                if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                try:
                    target = os.readlink(name, dir_fd=cur)
                except OSError:
                    raise e from None
                if last and flags & os.O_NOFOLLOW:
                    raise
                links += 1
                if links > _MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), os.fsdecode(path)) from None
                parts = [c for c in target.split(b"/") if c and c != b"."]
                stack.extend(reversed(parts))
                if target.startswith(b"/"):
                    for fd in trail:
                        os.close(fd)
                    trail.clear()
                    os.close(cur)
                    cur = os.dup(root_fd)
                continue
            if last:
                os.close(cur)
                cur = fd
                final = True
            else:
                trail.append(cur)
                cur = fd
        if not final:
            return _reopen(cur, flags)
        result, cur = cur, -1
        return result
    finally:
        for fd in trail:
            os.close(fd)
        if cur != -1:
            os.close(cur)


def _reopen(fd: int, flags: int) -> int:
    return os.open(".", (flags & ~(os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW)) | os.O_CLOEXEC, dir_fd=fd)


def has_openat2() -> bool:
    """Whether this kernel resolves paths with openat2 (probed once)."""
    known = _probed.get("openat2")
    if known is None:
        try:
            os.close(_openat2(-100, b"/", os.O_PATH, 0))  # AT_FDCWD
            known = True
        except OSError as e:
            known = e.errno not in (errno.ENOSYS, errno.EPERM)
        _probed["openat2"] = known
    return known


def open_in_root(root_fd: int, path: str | bytes, flags: int, mode: int = 0o644) -> int:
    """Open ``path`` relative to ``root_fd``, every component resolved inside that root."""
    raw = os.fsencode(path)
    if has_openat2():
        return _openat2(root_fd, raw or b".", flags, mode)
    return _walk(root_fd, raw, flags, mode)
