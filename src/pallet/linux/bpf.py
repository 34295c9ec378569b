"""The ``bpf(2)`` system call, for cgroup device programs: load, attach, query, detach.

Only what a runtime needs to put a ``BPF_PROG_TYPE_CGROUP_DEVICE`` program on a
cgroup v2 directory, over ctypes on the process's libc (``syscall``). Program
fds returned here are owned by the caller, who closes them; once attached, the
kernel keeps the program alive as long as the cgroup holds it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import struct

from pallet.errors import SystemError_

__all__ = [
    "BPF_CGROUP_DEVICE",
    "BPF_F_ALLOW_MULTI",
    "BPF_PROG_TYPE_CGROUP_DEVICE",
    "attach",
    "close",
    "detach",
    "load_program",
    "program_fd_by_id",
    "query",
]

_SYS_BPF = 321  # x86_64
_BPF_PROG_LOAD = 5
_BPF_PROG_ATTACH = 8
_BPF_PROG_DETACH = 9
_BPF_PROG_GET_FD_BY_ID = 13
_BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6  # the attach type
BPF_F_ALLOW_MULTI = 2
_ATTR_SIZE = 128  # larger than every command's part of union bpf_attr used here; the rest stays zero
_LOG_SIZE = 65536

_libc: ctypes.CDLL | None = None


def _bpf(command: int, attr: ctypes.Array[ctypes.c_char], what: str) -> int:
    global _libc  # noqa: PLW0603 - the process-wide libc handle, opened once
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    result = int(_libc.syscall(_SYS_BPF, command, ctypes.byref(attr), _ATTR_SIZE))
    if result < 0:
        raise SystemError_(what, ctypes.get_errno())
    return result


def _attr(layout: str, *values: object) -> ctypes.Array[ctypes.c_char]:
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into(layout, attr, 0, *values)
    return attr


def load_program(instructions: bytes, license: str = "Apache", name: str = "pallet_devices") -> int:
    """Load a cgroup device program (``instructions``: raw ``struct bpf_insn``); returns its fd.

    The verifier's log is put in the error when the kernel rejects the program.
    """
    if len(instructions) % 8:
        raise ValueError("BPF instructions are 8 bytes each")
    insns = ctypes.create_string_buffer(instructions, len(instructions))
    license_buf = ctypes.create_string_buffer(license.encode())
    log = ctypes.create_string_buffer(_LOG_SIZE)
    # prog_type, insn_cnt, insns, license, log_level, log_size, log_buf, kern_version, prog_flags, prog_name[16]
    attr = _attr(
        "=IIQQIIQII16s",
        BPF_PROG_TYPE_CGROUP_DEVICE,
        len(instructions) // 8,
        ctypes.addressof(insns),
        ctypes.addressof(license_buf),
        1,
        _LOG_SIZE,
        ctypes.addressof(log),
        0,
        0,
        name.encode()[:15],
    )
    try:
        return _bpf(_BPF_PROG_LOAD, attr, "load cgroup device program")
    except SystemError_ as e:
        text = log.value.decode(errors="replace").strip()
        if text:
            raise SystemError_(
                f"load cgroup device program (verifier: {text.splitlines()[-1]})", e.errno
            ) from None
        raise


def attach(cgroup_fd: int, program_fd: int, flags: int = BPF_F_ALLOW_MULTI) -> None:
    """Attach a device program to the cgroup directory open as ``cgroup_fd``."""
    # target_fd, attach_bpf_fd, attach_type, attach_flags
    attr = _attr("=IIII", cgroup_fd, program_fd, BPF_CGROUP_DEVICE, flags)
    _bpf(_BPF_PROG_ATTACH, attr, "attach cgroup device program")


def detach(cgroup_fd: int, program_fd: int) -> None:
    """Detach one device program from the cgroup."""
    attr = _attr("=III", cgroup_fd, program_fd, BPF_CGROUP_DEVICE)
    _bpf(_BPF_PROG_DETACH, attr, "detach cgroup device program")


def query(cgroup_fd: int, capacity: int = 64) -> list[int]:
    """The ids of the device programs attached to the cgroup itself (not inherited ones)."""
    ids = (ctypes.c_uint32 * capacity)()
    # target_fd, attach_type, query_flags, attach_flags, prog_ids, prog_cnt
    attr = _attr("=IIIIQI", cgroup_fd, BPF_CGROUP_DEVICE, 0, 0, ctypes.addressof(ids), capacity)
    _bpf(_BPF_PROG_QUERY, attr, "query cgroup device programs")
    (count,) = struct.unpack_from("=I", attr, 24)
    return list(ids[: min(count, capacity)])


def program_fd_by_id(program_id: int) -> int:
    """An fd for the loaded program ``program_id`` (to detach it)."""
    return _bpf(_BPF_PROG_GET_FD_BY_ID, _attr("=I", program_id), f"open bpf program {program_id}")


def close(fd: int) -> None:
    """Close a program fd (``os.close`` that ignores an fd already closed)."""
    with contextlib.suppress(OSError):
        os.close(fd)
