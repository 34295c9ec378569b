"""``pallet cp``: copying files between a container and the host, as tar streams, docker's rules.

Both sides are a *root* (a directory fd: the container's root, or the host's
``/``) and a path resolved inside it with ``openat2(RESOLVE_IN_ROOT)`` (see
``pallet.linux.openat2``): a symlink in the container, even ``/etc -> /``,
never leads out of the container's root. Below the resolved path every file
is opened relative to its parent's fd with ``O_NOFOLLOW``.

``archive`` writes a path as a tar stream (what ``pallet cp CTR:PATH -``
prints); ``extract`` unpacks a tar stream into a directory; ``copy`` does
both with docker's destination rules (docker's ``cp`` documentation):

- a file onto a missing path is saved under that name, onto a file
  overwrites it, into a directory keeps its base name; a destination ending
  in ``/`` must be an existing directory;
- a directory onto a missing path is created with its contents, into a
  directory is copied as a subdirectory, unless the source ends in ``/.``
  (then its contents are copied); onto a file is an error;
- a symlink is copied as a link unless ``follow_link`` (``-L``);
- extended attributes of regular files (``security.capability``, ``user.*``)
  go along where the target keeps them;
- owners: ``owner`` is the uid/gid every copy gets (the CLI passes the
  container's root 0:0 going in, the invoking user coming out), None keeps
  the source's (``-a``).

``container_root`` gives the root fd of a container: its own view
(``/proc/<pid>/root``, volumes included) while it runs, its volumes' host
directories and its root filesystem while it is stopped.

Extraction never writes outside the destination directory: entry names are
cleaned (``..`` climbing out is refused), parents are resolved inside the
destination, existing symlinks are replaced, never followed.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from contextlib import contextmanager

from pallet.errors import FailedPrecondition, InvalidArgument, NotFound, SystemError_
from pallet.image.extract import clean_name
from pallet.image.tarstream import BLK, CHR, DIR, FIFO, LNK, REG, SYM, TarEntry, TarReader, TarWriter
from pallet.image.xattrs import read_xattrs
from pallet.linux.openat2 import open_in_root
from pallet.oci.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from typing import Any

    from pallet.engine.containers.lifecycle import Engine
    from pallet.engine.containers.records import ContainerRecord
    from pallet.image.tarstream import Readable, Writable

__all__ = [
    "CopyResult",
    "PathInfo",
    "archive",
    "container_root",
    "copy",
    "extract",
    "split_source",
    "stat_path",
]

_DIR_PATH = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_CHUNK = 1 << 20


class PathInfo(Record):
    """What a path in a root is (docker's ``PathStat``)."""

    name: str
    mode: int
    size: int
    link_target: str = ""
    mtime_ns: int = 0

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)


class CopyResult(Record):
    """What ``copy`` wrote: bytes of file content and entries."""

    bytes: int = 0
    entries: int = 0


def split_source(path: str) -> tuple[str, bool, bool]:
    """``(cleaned path, contents_only, must_be_dir)`` of a cp source (``dir/.`` and ``dir/`` forms)."""
    contents_only = path.endswith(("/.", "/./")) or path == "."
    must_be_dir = path.endswith("/") or contents_only
    cleaned = posixpath.normpath("/" + path.lstrip("/"))
    return cleaned, contents_only, must_be_dir


def _errno_error(what: str, path: str, e: OSError) -> Exception:
    if e.errno == errno.ENOENT:
        return NotFound(f"{what} {path}: no such file or directory")
    if e.errno == errno.ENOTDIR:
        return InvalidArgument(f"{what} {path}: not a directory")
    return SystemError_(f"{what} {path}", e.errno or 0)


def _open(root_fd: int, path: str, *, follow_link: bool) -> int:
    flags = os.O_PATH | os.O_CLOEXEC | (0 if follow_link else os.O_NOFOLLOW)
    return open_in_root(root_fd, path.lstrip("/") or ".", flags)


def stat_path(root_fd: int, path: str, *, follow_link: bool = False) -> PathInfo:
    """Stat ``path`` inside the root (``NotFound`` in docker's words if it is not there)."""
    try:
        fd = _open(root_fd, path, follow_link=follow_link)
    except OSError as e:
        raise _errno_error("could not find the file", path, e) from None
    try:
        st = os.fstat(fd)
        target = ""
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink("", dir_fd=fd)  # readlinkat(fd, ""): the O_PATH link itself
        return PathInfo(
            name=posixpath.basename(path) or "/",
            mode=st.st_mode,
            size=st.st_size,
            link_target=target,
            mtime_ns=st.st_mtime_ns,
        )
    finally:
        os.close(fd)


def _set_xattrs(fd: int, xattrs: dict[str, bytes] | None) -> None:
    """Best effort, as docker's cp: a file system or a user that cannot keep one loses it."""
    for name, value in (xattrs or {}).items():
        try:
            os.setxattr(fd, name, value)
        except OSError as e:
            if e.errno not in (errno.ENOTSUP, errno.EPERM, errno.EACCES):
                raise


# --- writing a tar of a path --------------------------------------------------------------------


class _Archiver:
    """Writes one tree as tar entries, every file opened relative to its parent's fd."""

    def __init__(self, tar: TarWriter) -> None:
        self.tar = tar
        self.links: dict[tuple[int, int], str] = {}
        self.bytes = 0
        self.entries = 0

    def _entry(self, name: str, st: os.stat_result) -> TarEntry | None:
        mode = st.st_mode
        entry = TarEntry(
            name, REG, mode=stat.S_IMODE(mode), uid=st.st_uid, gid=st.st_gid, mtime_ns=st.st_mtime_ns
        )
        if stat.S_ISDIR(mode):
            entry.type, entry.name = DIR, name.rstrip("/") + "/"
        elif stat.S_ISLNK(mode):
            entry.type = SYM
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            entry.type = CHR if stat.S_ISCHR(mode) else BLK
            entry.devmajor, entry.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            entry.type = FIFO
        elif not stat.S_ISREG(mode):
            return None  # a socket: tar cannot hold one (docker skips them too)
        return entry

    def add(self, parent_fd: int, base: str, name: str) -> None:
        """Add ``base`` (in directory ``parent_fd``) as ``name``; directories recursively."""
        st = os.stat(base, dir_fd=parent_fd, follow_symlinks=False)
        entry = self._entry(name, st)
        if entry is None:
            return
        self.entries += 1
        if entry.type == SYM:
            entry.linkname = os.readlink(base, dir_fd=parent_fd)
            self.tar.add(entry)
        elif entry.type == DIR:
            fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
            try:
                self.tar.add(entry)
                for child in sorted(os.listdir(fd)):
                    self.add(fd, child, f"{entry.name}{child}" if name else child)
            finally:
                os.close(fd)
        elif entry.type == REG:
            if st.st_nlink > 1:
                first = self.links.setdefault((st.st_dev, st.st_ino), name)
                if first != name:
                    entry.type, entry.linkname = LNK, first
                    self.tar.add(entry)
                    return
            fd = os.open(base, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
            with open(fd, "rb", buffering=0) as data:
                # the size the header promised: a file growing meanwhile is cut there, as tar does
                entry.size = os.fstat(data.fileno()).st_size
                entry.xattrs = read_xattrs(data.fileno())
                self.tar.add(entry, data)
            self.bytes += entry.size
        else:
            self.tar.add(entry)


def archive(
    root_fd: int, path: str, out: Writable, *, follow_link: bool = False, rebase: str | None = None
) -> CopyResult:
    """Write ``path`` (inside the root) to ``out`` as a tar stream.

    Entries are named after the path's base name; a source ending in ``/.``
    contributes its contents only, named relative to it. ``rebase`` names the
    top entry (or the directory the contents go under) instead.
    """
    cleaned, contents_only, must_be_dir = split_source(path)
    info = stat_path(root_fd, cleaned, follow_link=follow_link)
    if must_be_dir and not info.is_dir:
        raise InvalidArgument(f"{path}: not a directory")
    try:
        fd = _open(root_fd, cleaned, follow_link=follow_link)
    except OSError as e:
        raise _errno_error("could not find the file", path, e) from None
    tar = TarWriter(out)
    archiver = _Archiver(tar)
    try:
        if info.is_dir:
            # the resolved object, reopened through its fd: a rename meanwhile cannot redirect us
            dir_fd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                base = rebase or ("" if contents_only else posixpath.basename(cleaned) or ".")
                if base:
                    archiver.entries += 1
                    tar.add(_dir_entry(base, os.fstat(dir_fd)))
                prefix = f"{base}/" if base else ""
                for child in sorted(os.listdir(dir_fd)):
                    archiver.add(dir_fd, child, prefix + child)
            finally:
                os.close(dir_fd)
        else:
            _add_single(archiver, fd, rebase or info.name)
    except OSError as e:
        raise SystemError_(f"copy {path}", e.errno or 0) from None
    finally:
        os.close(fd)
    tar.close()
    return CopyResult(bytes=archiver.bytes, entries=archiver.entries)


def _dir_entry(name: str, st: os.stat_result) -> TarEntry:
    return TarEntry(
        name.rstrip("/") + "/",
        DIR,
        mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
        mtime_ns=st.st_mtime_ns,
    )


def _add_single(archiver: _Archiver, fd: int, name: str) -> None:
    """The source is one non-directory (opened O_PATH as ``fd``): one entry."""
    st = os.fstat(fd)
    entry = archiver._entry(name, st)
    if entry is None:
        raise InvalidArgument(f"{name}: a socket cannot be copied")
    archiver.entries += 1
    if entry.type == SYM:
        entry.linkname = os.readlink("", dir_fd=fd)  # readlinkat(fd, ""): the O_PATH link itself
        archiver.tar.add(entry)
    elif entry.type == REG:
        data_fd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
        with open(data_fd, "rb", buffering=0) as data:
            entry.size = os.fstat(data_fd).st_size
            entry.xattrs = read_xattrs(data_fd)
            archiver.tar.add(entry, data)
        archiver.bytes += entry.size
    else:
        archiver.tar.add(entry)


# --- unpacking a tar into a directory ------------------------------------------------------------


class _Extractor:
    """Applies entries under one destination directory fd; every path resolved inside it."""

    def __init__(self, dest_fd: int, owner: tuple[int, int] | None) -> None:
        self.dest_fd = dest_fd
        self.owner = owner
        self.privileged = os.geteuid() == 0
        self.dirs: list[tuple[str, int, int]] = []  # (path, mode, mtime_ns), applied last
        self.bytes = 0
        self.entries = 0

    def parent(self, path: str) -> tuple[int, str]:
        parent, _, base = path.rpartition("/")
        if not parent:
            return os.dup(self.dest_fd), base
        try:
            return open_in_root(self.dest_fd, parent, _DIR_PATH), base
        except OSError as e:
            raise _errno_error("extract into", parent, e) from None

    def chown(self, base: str, pfd: int, entry: TarEntry) -> None:
        if not self.privileged:
            return
        uid, gid = self.owner if self.owner is not None else (entry.uid, entry.gid)
        os.chown(base, uid, gid, dir_fd=pfd, follow_symlinks=False)

    def clear(self, pfd: int, base: str, *, for_dir: bool) -> None:
        """Make room for a new entry: a non-directory in the way goes; a directory stays or is an error."""
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if not for_dir:
                raise FailedPrecondition(f"cannot overwrite directory {base!r} with non-directory")
            return
        if for_dir:
            raise FailedPrecondition(f"cannot overwrite non-directory {base!r} with directory")
        os.unlink(base, dir_fd=pfd)

    def apply(self, entry: TarEntry, reader: TarReader) -> None:
        path = clean_name(entry.name)
        if not path:
            return
        self.entries += 1
        pfd, base = self.parent(path)
        try:
            self.clear(pfd, base, for_dir=entry.type == DIR)
            if entry.type == DIR:
                if not os.path.lexists(f"/proc/self/fd/{pfd}/{base}"):
                    os.mkdir(base, 0o700, dir_fd=pfd)
                self.chown(base, pfd, entry)
                self.dirs.append((path, entry.mode, entry.mtime_ns))
                return
            if entry.type == REG:
                fd = os.open(
                    base,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                    0o600,
                    dir_fd=pfd,
                )
                try:
                    for chunk in reader.chunks():
                        view = memoryview(chunk)
                        while view:
                            view = view[os.write(fd, view) :]
                    self.bytes += entry.size
                    if self.privileged:
                        os.fchown(fd, *(self.owner if self.owner is not None else (entry.uid, entry.gid)))
                    os.fchmod(fd, entry.mode)
                    _set_xattrs(fd, entry.xattrs)  # after chown, which drops security.capability
                    os.utime(fd, ns=(entry.mtime_ns, entry.mtime_ns))
                finally:
                    os.close(fd)
                return
            if entry.type == SYM:
                os.symlink(entry.linkname, base, dir_fd=pfd)
            elif entry.type == LNK:
                source = clean_name(entry.linkname)
                spfd, sbase = self.parent(source)
                try:
                    os.link(sbase, base, src_dir_fd=spfd, dst_dir_fd=pfd, follow_symlinks=False)
                finally:
                    os.close(spfd)
                return
            elif entry.type in (CHR, BLK, FIFO):
                kind = {CHR: stat.S_IFCHR, BLK: stat.S_IFBLK, FIFO: stat.S_IFIFO}[entry.type]
                os.mknod(base, kind | entry.mode, os.makedev(entry.devmajor, entry.devminor), dir_fd=pfd)
                os.chmod(base, entry.mode, dir_fd=pfd)
            else:
                return  # another tar type (e.g. a volume label): nothing to make
            self.chown(base, pfd, entry)
            os.utime(base, ns=(entry.mtime_ns, entry.mtime_ns), dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(pfd)

    def finish(self) -> None:
        """Directory modes and mtimes last (deepest first), so writing children does not change them."""
        for path, mode, mtime_ns in sorted(self.dirs, key=lambda d: d[0].count("/"), reverse=True):
            try:
                fd = open_in_root(self.dest_fd, path, _DIR_PATH | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                os.chmod(f"/proc/self/fd/{fd}", mode)
                os.utime(f"/proc/self/fd/{fd}", ns=(mtime_ns, mtime_ns))
            finally:
                os.close(fd)


def extract(dest_fd: int, stream: Readable, *, owner: tuple[int, int] | None = None) -> CopyResult:
    """Unpack the tar ``stream`` into the directory ``dest_fd``; never writes outside it.

    ``owner`` is the uid/gid every file gets (None: the uid/gid in the tar).
    """
    ex = _Extractor(dest_fd, owner)
    entry: TarEntry | None = None
    try:
        reader = TarReader(stream)
        for entry in reader:
            ex.apply(entry, reader)
        ex.finish()
    except OSError as e:
        where = f"entry {entry.name!r}" if entry is not None else "the archive"
        raise SystemError_(f"extract {where}", e.errno or 0) from None
    return CopyResult(bytes=ex.bytes, entries=ex.entries)


# --- docker's cp rules ---------------------------------------------------------------------------


def _destination(
    dst_root: int, dst_path: str, source: PathInfo, contents_only: bool
) -> tuple[int, str | None]:
    """The directory fd to extract into and the name the source takes there (None: keep its own).

    Applies docker's rules for an existing or missing destination.
    """
    cleaned = posixpath.normpath("/" + dst_path.lstrip("/"))
    wants_dir = dst_path.endswith("/") or dst_path.endswith("/.")
    try:
        target = stat_path(dst_root, cleaned, follow_link=True)
    except NotFound:
        target = None
    if target is not None and target.is_dir:
        fd = open_in_root(dst_root, cleaned.lstrip("/") or ".", _DIR_PATH)
        if source.is_dir and contents_only:
            return fd, ""
        return fd, None
    if target is not None:  # an existing non-directory
        if source.is_dir:
            raise InvalidArgument(f"cannot copy a directory to a file: {dst_path}")
        if wants_dir:
            raise InvalidArgument(f"{dst_path}: not a directory")
    elif wants_dir and not source.is_dir:
        raise NotFound(f"destination directory {dst_path} must exist: no such directory")
    parent = posixpath.dirname(cleaned)
    try:
        fd = open_in_root(dst_root, parent.lstrip("/") or ".", _DIR_PATH)
    except OSError as e:
        raise _errno_error("could not find the destination's parent", parent, e) from None
    return fd, posixpath.basename(cleaned)


def copy(
    src_root: int,
    src_path: str,
    dst_root: int,
    dst_path: str,
    *,
    follow_link: bool = False,
    owner: tuple[int, int] | None = None,
) -> CopyResult:
    """Copy ``src_path`` of one root to ``dst_path`` of another with docker's rules (module docstring).

    ``owner`` is the uid/gid the copies get (None: keep the source's).
    """
    cleaned, contents_only, must_be_dir = split_source(src_path)
    source = stat_path(src_root, cleaned, follow_link=follow_link)
    if must_be_dir and not source.is_dir:
        raise InvalidArgument(f"{src_path}: not a directory")
    dest_fd, name = _destination(dst_root, dst_path, source, contents_only)
    try:
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        import threading

        failure: list[BaseException] = []

        def produce() -> None:
            try:
                with open(write_fd, "wb") as out:
                    archive(
                        src_root,
                        cleaned + ("/." if contents_only else ""),
                        out,
                        follow_link=follow_link,
                        rebase=name or None,
                    )
            except BrokenPipeError:
                pass  # the extractor failed first; its error is the one to report
            except BaseException as e:  # noqa: BLE001 - handed to the calling thread
                failure.append(e)

        writer = threading.Thread(target=produce, name="cp-archive", daemon=True)
        writer.start()
        try:
            with open(read_fd, "rb") as stream:
                result = extract(dest_fd, stream, owner=owner)
                while stream.read(_CHUNK):
                    pass  # let the writer finish
        finally:
            writer.join()
        if failure:
            raise failure[0]
        return result
    finally:
        os.close(dest_fd)


# --- reaching a container's files ----------------------------------------------------------------


def _mount_for(points: Sequence[Mapping[str, Any]], path: str) -> tuple[str, str] | None:
    """(host source, rest of the path) when ``path`` lies under one of a stopped container's
    volume or bind mounts (the deepest one wins); None when it is in the root filesystem."""
    best: tuple[str, str] | None = None
    depth = -1
    for point in points:
        source, destination = point.get("Source"), point.get("Destination")
        if not isinstance(source, str) or not source or not isinstance(destination, str):
            continue  # a tmpfs: nothing of it exists while the container is stopped
        destination = posixpath.normpath(destination)
        if (path == destination or path.startswith(destination + "/")) and len(destination) > depth:
            best, depth = (source, path[len(destination) :] or "/"), len(destination)
    return best


@contextmanager
def container_root(
    engine: Engine, record: ContainerRecord, path: str, *, unshifted: bool = False
) -> Iterator[tuple[int, str]]:
    """A root fd and the path in it where the container's ``path`` lives, for the block's duration.

    Running (or paused): the container's own view, ``/proc/<pid>/root``, with
    its volumes, binds and tmpfs mounts. Stopped: a path under a volume or
    bind mount is reached in the mount's host directory (matched on the path
    as written: a symlink leading into a volume is resolved in the root
    filesystem instead); anything else in the root filesystem, mounted for
    the block if the engine has not (the container's lock is held meanwhile).
    ``unshifted`` (reading): a ``--userns=remap`` container is read as if it
    were stopped, its root filesystem through a view with the owners as stored.
    """
    remapped = False
    if unshifted:
        from pallet.engine.userns import remap_of_bundle

        remapped = remap_of_bundle(engine.layout.bundle(record.id)) is not None
    if record.running and record.pid > 0 and not remapped:
        try:
            fd = os.open(f"/proc/{record.pid}/root", _DIR_PATH)
        except OSError:
            fd = -1  # it exited just now: fall back to the stopped container's files
        if fd != -1:
            try:
                yield fd, path
            finally:
                os.close(fd)
            return
    cleaned = posixpath.normpath("/" + path.lstrip("/"))
    found = _mount_for(engine.document(record).get("Mounts") or [], cleaned)
    if found is not None:
        source, rest = found
        if not os.path.isdir(source):  # a bind-mounted file: its directory is the root
            source, rest = os.path.dirname(source), "/" + os.path.basename(source)
        # keep the trailing "/" or "/." of the path as written: cp's rules depend on it
        suffix = "/." if path.endswith("/.") else "/" if path.endswith("/") else ""
        fd = os.open(source, _DIR_PATH)
        try:
            yield fd, rest.rstrip("/") + suffix if suffix else rest
        finally:
            os.close(fd)
        return
    from pallet.engine.filesystem.export import mounted_rootfs
    from pallet.engine.layout import snapshot_key

    with (
        engine.lock(record.id).held(),
        mounted_rootfs(
            engine.images, snapshot_key(record.id), engine.layout.rootfs(record.id), unshifted=remapped
        ) as rootfs,
    ):
        fd = os.open(rootfs, _DIR_PATH)
        try:
            yield fd, path
        finally:
            os.close(fd)
