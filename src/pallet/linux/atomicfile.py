"""Replacing a small file atomically: a reader sees the old content or the new, never a part.

The one way pallet writes the documents it keeps in files: the runtime's
``state.json`` and pid files, its seccomp cache, the engine's
``container.json``, ``/etc/hosts`` and friends, the shim's exit file, the
registry server's links and tags, the credentials in ``config.json``. The
bytes go to a temp file beside ``path`` (same directory, so the rename cannot
cross a file system), which is renamed over ``path``; a failure removes the
temp file and leaves ``path`` as it was.

``durable``: the content is fsynced before the rename, so a crash of the
machine leaves the old content or the new, not an empty file. Files that
only live as long as a boot (under ``/run``) skip it: it costs milliseconds.

Standard library only and nothing at import time: ``pallet-runtime`` imports
it on every call.
"""

from __future__ import annotations

import os
from _thread import get_ident

__all__ = ["write_atomic"]


def write_atomic(
    path: str, data: bytes, *, mode: int = 0o644, durable: bool = True, parents: bool = False
) -> None:
    """Replace ``path`` with ``data`` atomically; ``mode`` exactly (the umask does not apply).

    ``parents``: make the missing directories above ``path`` first. Safe between
    threads and processes: each writer has its own temp file (pid and thread in
    its name), and the last rename wins.
    """
    directory, name = os.path.split(path)
    if parents and directory:
        os.makedirs(directory, exist_ok=True)
    temp = os.path.join(directory, f".{name}.{os.getpid()}-{get_ident()}.tmp")
    # O_TRUNC, not O_EXCL: a temp with this pid and thread can only be a dead namesake's
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, path)
    except BaseException:
        try:  # noqa: SIM105 - contextlib costs pallet-runtime an import
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
