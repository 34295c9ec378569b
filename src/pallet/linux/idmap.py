"""ID-mapped mounts (Linux 5.12+; overlayfs over idmapped layers since 5.19) and the user namespaces they take.

The new mount API: ``open_tree(OPEN_TREE_CLONE)`` detaches a copy of a mount,
``mount_setattr(MOUNT_ATTR_IDMAP)`` gives it a user namespace's mapping (a file
owned by ``u`` on disk shows as the host id ``u`` maps to), ``move_mount``
attaches it. A user namespace with a given mapping is made by a child that
unshares one and waits while the parent writes its maps (as root, any mapping
may be written) and opens ``/proc/<child>/ns/user``.

``mount_as`` mounts in a child whose fs ids are given ones, with its
capabilities raised again: overlayfs does its own work (the work dir, copy-up)
with the credentials of whoever mounted it, and through an idmapped upper
layer only ids inside the mapping can create files.

Mappings are ``(inside, outside, count)`` triples, as in ``/proc/PID/uid_map``.
"""

from __future__ import annotations

import _ctypes
import os

from pallet.errors import SystemError_

__all__ = ["Mapping", "fs_ids", "idmapped_clone", "mount_as", "user_namespace_fd"]

Mapping = tuple[tuple[int, int, int], ...]

# x86_64 syscall numbers (the same on every architecture for these new calls)
_SYS_OPEN_TREE = 428
_SYS_MOVE_MOUNT = 429
_SYS_MOUNT_SETATTR = 442
_SYS_SETFSUID = 122
_SYS_SETFSGID = 123
_SYS_CAPGET = 125
_SYS_CAPSET = 126
_CAP_VERSION_3 = 0x20080522
_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000
_OPEN_TREE_CLONE = 1
_OPEN_TREE_CLOEXEC = 0o2000000
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_MOUNT_ATTR_IDMAP = 0x00100000
_CLONE_NEWUSER = 0x10000000


class _Long(_ctypes._SimpleCData):  # type: ignore[type-arg]
    _type_ = "l"


class _Int(_ctypes._SimpleCData):  # type: ignore[type-arg]
    _type_ = "i"


class _Function(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = _Long


class _Process:
    _handle = _ctypes.dlopen(None, 0)  # type: ignore[arg-type]


class _U64(_ctypes._SimpleCData):  # type: ignore[type-arg]
    _type_ = "Q"


class _U32(_ctypes._SimpleCData):  # type: ignore[type-arg]
    _type_ = "I"


_MountAttr = _U64 * 4  # struct mount_attr {attr_set, attr_clr, propagation, userns_fd}
_CapHeader = _U32 * 2
_CapData = _U32 * 6


def _syscall(*args: object) -> int:
    function = _Function(("syscall", _Process()))  # type: ignore[arg-type]
    return int(function(*args))


def _check(result: int, what: str) -> int:
    if result < 0:
        raise SystemError_(what, _ctypes.get_errno())
    return result


def user_namespace_fd(uid_map: Mapping, gid_map: Mapping) -> int:
    """An fd of a new user namespace with these mappings (no process stays in it). Needs root."""
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(go_w)
            unshare = _Function(("unshare", _Process()))  # type: ignore[arg-type]
            code = 0 if unshare(_CLONE_NEWUSER) == 0 else 2
        finally:
            try:
                os.read(go_r, 1)  # until the parent is done with our namespace
            finally:
                os._exit(code)
    os.close(go_r)
    try:
        ns = _wait_for_userns(pid)
        try:
            for name, mapping in (("uid_map", uid_map), ("gid_map", gid_map)):
                text = "".join(f"{inside} {outside} {count}\n" for inside, outside, count in mapping)
                with open(f"/proc/{pid}/{name}", "w") as f:
                    f.write(text)
        except OSError as e:
            os.close(ns)
            raise SystemError_(f"write the {name} of a new user namespace", e.errno or 0) from None
        return ns
    finally:
        os.close(go_w)
        os.waitpid(pid, 0)


def _wait_for_userns(pid: int) -> int:
    """The child's user namespace, once it has left ours (it unshares right after the fork)."""
    own = os.stat("/proc/self/ns/user").st_ino
    for _ in range(100000):
        try:
            fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise SystemError_("open the new user namespace", e.errno or 0) from None
        if os.fstat(fd).st_ino != own:
            return fd
        os.close(fd)
        if os.waitpid(pid, os.WNOHANG)[0]:
            break
        os.sched_yield()
    raise SystemError_("unshare a user namespace (is user.max_user_namespaces 0?)", 1)


def idmapped_clone(source: str, target: str, userns_fd: int) -> None:
    """Mount a copy of the tree at ``source`` on ``target``, its owners shifted by ``userns_fd``'s mapping."""
    fd = _check(
        _syscall(_SYS_OPEN_TREE, _Int(_AT_FDCWD), os.fsencode(source), _OPEN_TREE_CLONE | _OPEN_TREE_CLOEXEC),
        f"open_tree {source}",
    )
    try:
        attr = _MountAttr(_MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
        _check(
            _syscall(_SYS_MOUNT_SETATTR, _Int(fd), b"", _AT_EMPTY_PATH, _ctypes.byref(attr), 32),
            f"make an idmapped mount of {source}",
        )
        _check(
            _syscall(
                _SYS_MOVE_MOUNT, _Int(fd), b"", _Int(_AT_FDCWD), os.fsencode(target), _MOVE_MOUNT_F_EMPTY_PATH
            ),
            f"move_mount onto {target}",
        )
    finally:
        os.close(fd)


def mount_as(ids: tuple[int, int], source: str, target: str, fstype: str, data: str) -> None:
    """``mount`` done by a child with fs uid and gid ``ids`` and every capability it had."""
    uid, gid = ids
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        errno = 0
        try:
            os.close(err_r)
            _syscall(_SYS_SETFSGID, gid)
            _syscall(_SYS_SETFSUID, uid)
            # a non-zero fsuid clears the effective file capabilities: take them back
            header = _CapHeader(_CAP_VERSION_3, 0)
            data_ = _CapData()
            if _syscall(_SYS_CAPGET, _ctypes.byref(header), _ctypes.byref(data_)) == 0:
                data_[0], data_[3] = data_[1], data_[4]
                _syscall(_SYS_CAPSET, _ctypes.byref(header), _ctypes.byref(data_))
            mount = _Function(("mount", _Process()))  # type: ignore[arg-type]
            if mount(source.encode(), os.fsencode(target), fstype.encode(), 0, data.encode()) < 0:
                errno = _ctypes.get_errno()
        except BaseException:  # noqa: BLE001 - the child reports, whatever happened
            errno = errno or 5
        finally:
            os.write(err_w, str(errno).encode())
            os._exit(0)
    os.close(err_w)
    try:
        answer = os.read(err_r, 16)
    finally:
        os.close(err_r)
        os.waitpid(pid, 0)
    errno = int(answer or b"5")
    if errno:
        raise SystemError_(f"mount {fstype} on {target}", errno)


class fs_ids:  # noqa: N801 - used as a function: ``with fs_ids(uid, gid):``
    """The calling thread's fs uid and gid for the block, its capabilities kept (threads it starts
    meanwhile get them too); back to 0 after, which gives the fs capabilities back by itself.

    Files it makes through an idmapped mount then map back to the disk's ids,
    as the container's root's do.
    """

    __slots__ = ("_gid", "_uid")

    def __init__(self, uid: int, gid: int) -> None:
        self._uid, self._gid = uid, gid

    def __enter__(self) -> None:
        _syscall(_SYS_SETFSGID, self._gid)
        _syscall(_SYS_SETFSUID, self._uid)
        header = _CapHeader(_CAP_VERSION_3, 0)
        data = _CapData()
        _check(_syscall(_SYS_CAPGET, _ctypes.byref(header), _ctypes.byref(data)), "capget")
        data[0], data[3] = data[1], data[4]  # a non-zero fsuid cleared the fs capabilities
        _check(_syscall(_SYS_CAPSET, _ctypes.byref(header), _ctypes.byref(data)), "capset")

    def __exit__(self, *exc: object) -> None:
        _syscall(_SYS_SETFSUID, 0)
        _syscall(_SYS_SETFSGID, 0)
