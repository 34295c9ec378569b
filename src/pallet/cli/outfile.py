"""A command's output file (``save -o FILE``): written beside its name, renamed into place, never left half.

``atomic_output(target)`` yields a binary file with no name (``O_TMPFILE``) in
``target``'s directory; when the block completes it is linked as
``.<name>.pallet-<pid>.tmp`` and at once renamed onto ``target``. A writer
killed while it writes, even with SIGKILL, so leaves nothing behind: the
kernel frees a file that never had a name.

Where the file system has no ``O_TMPFILE``, and for the instant between link
and rename, the temp file has its name, held under an exclusive ``flock``
while it is written, and is removed when the block fails. A writer killed then
cannot remove it: the next ``atomic_output`` into the same directory does
(``sweep``), but only a temp it can prove abandoned:

- nobody holds its lock: the kernel drops a ``flock`` when the process that
  held it dies, whatever killed it;
- and no process has the pid in its name: a writer creates its file before it
  takes the lock, and its pid covers that instant (a reused pid only makes
  the sweep keep a temp it could have removed).

Idempotent and safe between processes: two sweeps racing over one temp both
lock it first, and the loser finds it gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
from errno import EINVAL, EISDIR, EOPNOTSUPP

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO

__all__ = ["atomic_output", "sweep", "temp_name"]

_TEMP = re.compile(r"\..+\.pallet-(\d+)\.tmp")


def temp_name(target: str, pid: int | None = None) -> str:
    """The temp file that a writer with ``pid`` (default: this process) uses for ``target``."""
    directory, name = os.path.split(os.path.abspath(target))
    return os.path.join(directory, f".{name}.pallet-{os.getpid() if pid is None else pid}.tmp")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def sweep(directory: str) -> list[str]:
    """Remove the temp files in ``directory`` whose writers are gone; returns the paths removed."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    removed: list[str] = []
    for name in names:
        found = _TEMP.fullmatch(name)
        if found is None:
            continue
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue  # gone meanwhile, a symlink, or not ours to read
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a writer holds it
            if _running(int(found.group(1))):
                continue
            with contextlib.suppress(FileNotFoundError):
                if os.stat(path, follow_symlinks=False).st_ino == st.st_ino:  # still the file we locked
                    os.unlink(path)
                    removed.append(path)
        finally:
            os.close(fd)
    return removed


def _unnamed(directory: str) -> int | None:
    """A new file without a name in ``directory`` (``O_TMPFILE``); None where the file system has none."""
    try:
        return os.open(directory, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o666)
    except OSError as e:
        if e.errno in (EOPNOTSUPP, EISDIR, EINVAL):  # EISDIR/EINVAL: kernels or file systems without it
            return None
        raise


@contextlib.contextmanager
def atomic_output(target: str) -> Iterator[BinaryIO]:
    """A file to write ``target``'s content to; ``target`` appears only once the block completes."""
    temp = temp_name(target)
    sweep(os.path.dirname(temp))
    fd = _unnamed(os.path.dirname(temp))
    if fd is not None:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            # named only now; a dead namesake's temp (same pid) is in the way of the link
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            directory = os.open(os.path.dirname(temp), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:  # with a dir fd os.link is linkat(AT_SYMLINK_FOLLOW), which names the file, not /proc's link
                os.link(
                    f"/proc/self/fd/{fd}", os.path.basename(temp), dst_dir_fd=directory, follow_symlinks=True
                )
            finally:
                os.close(directory)
            try:
                os.rename(temp, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
                raise
        return
    # O_TRUNC, not O_EXCL: a temp with this process's pid can only be a dead namesake's
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    out = os.fdopen(fd, "wb")
    try:
        fcntl.flock(out.fileno(), fcntl.LOCK_EX)  # blocks only while a sweep looks at this file
        yield out
        out.flush()
        # renamed while still locked; not fsynced, like docker's and skopeo's archives: an export, not a store
        os.rename(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    finally:
        out.close()
