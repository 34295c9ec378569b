"""Applying a layer tar to a directory, safely: nothing is ever written outside the target.

``apply_layer(target, stream, media_type=..., mode=...)`` reads a layer blob
(plain, gzip or zstd), unpacks it into ``target`` and returns ``LayerStats``
with the blob's digest and the layer's diff id, computed on the way.

Safety, the contract: every path is resolved relative to a directory fd of the
target, never as a string path.

* Entry names are cleaned lexically; absolute names are taken relative to the
  target; a name whose ``..`` climbs above the root rejects the layer.
* Parent directories are resolved with ``openat2(RESOLVE_IN_ROOT)`` (or the
  user-space walk in ``pallet.linux.openat2``): a symlink in a parent, even an
  absolute one or one full of ``..``, is followed *inside* the target. The final
  component is never followed: files are created with ``O_EXCL|O_NOFOLLOW``,
  metadata is set on the fd or with ``follow_symlinks=False``, and what is in
  the way is removed first (so a symlink planted by an earlier entry cannot
  redirect a write).
* Hard links are made with ``linkat`` between two fds inside the target, so
  their source is inside it too; whiteouts remove only inside it.
* Device nodes are created only with CAP_MKNOD; without it (rootless) they are
  skipped with a warning, as rootless engines do.

Modes: ``naive`` applies whiteouts by deleting (the target is a flattened
rootfs); ``overlay`` writes them as overlayfs expects in a lower directory
(0/0 character devices and ``trusted.overlay.opaque=y``).

Metadata: owners (when running as root), modes including setuid/setgid/sticky
(set after chown, which clears them), xattrs (after chown too, for
``security.capability``), then mtimes; directories get their mode and mtime
last, children first, so writing children does not disturb them.
"""

from __future__ import annotations

import errno
import os
import stat
import sys

from pallet.errors import InvalidArgument, PalletError, SystemError_, Unsupported
from pallet.image import whiteouts
from pallet.image.compression import LayerReader
from pallet.image.tarstream import BLK, CHR, CHUNK, DIR, FIFO, LNK, REG, SYM, TarEntry, TarReader
from pallet.linux.openat2 import open_in_root
from pallet.oci.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pallet.image.tarstream import Readable

__all__ = ["LayerStats", "apply_layer", "clean_name"]

NAIVE, OVERLAY = "naive", "overlay"
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_CACHED_DIRS = 1024
_ZEROS = bytes(CHUNK)


class LayerStats(Record):
    """What applying one layer did."""

    digest: str  # sha256 of the blob as read (compressed)
    diff_id: str  # sha256 of the uncompressed tar
    compressed_size: int
    size: int  # uncompressed tar bytes
    entries: int  # tar entries applied (whiteouts included)
    files: int  # regular files written
    bytes: int  # file data written
    warnings: tuple[str, ...] = ()


def clean_name(name: str) -> str:
    """The entry name as a relative path without ``.``/``..``/empty parts ("" is the root).

    Raises ``InvalidArgument`` when ``..`` would climb above the root.
    """
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise InvalidArgument(
                    f"layer entry {name!r} points outside the root with '..'; "
                    "the layer is malicious or corrupt, refusing to apply it"
                )
            parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]


class _Extractor:
    """One layer applied into one target; owns the fds it opens."""

    def __init__(self, root_fd: int, mode: str, label: str) -> None:
        self.root_fd = root_fd
        self.mode = mode
        self.label = label
        self.privileged = os.geteuid() == 0
        self.dirs: dict[str, int] = {}
        self.retired: list[int] = []
        self.unpacked: set[str] = set()
        self.deferred_dirs: dict[str, tuple[int, int]] = {}  # path -> (mode, mtime_ns); the last entry wins
        self.warnings: list[str] = []
        self.entries = 0
        self.files = 0
        self.bytes = 0
        self.skipped_devices = 0

    # -- directory fds -------------------------------------------------------------------
    def close(self) -> None:
        self.forget_dirs()
        self.close_retired()

    def forget_dirs(self) -> None:
        """Drop cached dir fds: something was removed or replaced, they may be stale.

        They are closed only after the current entry (``close_retired``): the
        caller may still hold one of them as the entry's parent.
        """
        self.retired.extend(self.dirs.values())
        self.dirs.clear()

    def close_retired(self) -> None:
        for fd in self.retired:
            os.close(fd)
        self.retired.clear()

    def dir_fd(self, path: str, *, create: bool = True) -> int | None:
        """An O_PATH fd of directory ``path`` (resolved inside the root), created if missing."""
        if not path:
            return self.root_fd
        fd = self.dirs.get(path)
        if fd is not None:
            return fd
        parent, _, base = path.rpartition("/")
        pfd = self.dir_fd(parent, create=create)
        if pfd is None:
            return None
        try:
            fd = os.open(base, _DIR_FLAGS, dir_fd=pfd)
        except FileNotFoundError:
            if not create:
                return None
            os.mkdir(base, 0o755, dir_fd=pfd)
            fd = os.open(base, _DIR_FLAGS, dir_fd=pfd)
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            # A symlink (or not a directory): follow it, but only inside the root.
            try:
                fd = open_in_root(self.root_fd, path, os.O_PATH | os.O_DIRECTORY)
            except OSError as e2:
                if not create and e2.errno in (errno.ENOENT, errno.ENOTDIR):
                    return None
                raise InvalidArgument(
                    f"{self.label}: {path!r} is used as a directory but is not one "
                    f"({os.strerror(e2.errno or 0).lower()}); the layer does not fit the layers below it"
                ) from None
        if len(self.dirs) >= _MAX_CACHED_DIRS:
            self.forget_dirs()
        self.dirs[path] = fd
        return fd

    # -- removal -------------------------------------------------------------------------
    def remove(self, pfd: int, base: str) -> None:
        """Remove ``base`` in ``pfd`` whatever it is (a directory recursively); idempotent."""
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            import shutil

            self.forget_dirs()
            shutil.rmtree(base, dir_fd=pfd)
            return
        os.unlink(base, dir_fd=pfd)
        if stat.S_ISLNK(st.st_mode):
            # cached directory fds may have been reached through this symlink
            self.forget_dirs()

    # -- entries -------------------------------------------------------------------------
    def apply(self, entry: TarEntry, reader: TarReader) -> None:
        path = clean_name(entry.name)
        if not path:
            return  # the root's own metadata belongs to the snapshotter, not to a layer
        parent, _, base = path.rpartition("/")
        kind = whiteouts.parse(base)
        self.entries += 1
        if kind is not None:
            self.whiteout(parent, kind)
            return
        if self.mode == NAIVE:
            self.unpacked.add(path)  # what an opaque marker must keep
        pfd = self.dir_fd(parent)
        assert pfd is not None
        t = entry.type
        if t == REG:
            self.regular(pfd, base, entry, reader)
        elif t == DIR:
            self.directory(pfd, base, path, entry)
        elif t == SYM:
            self.create(lambda: os.symlink(entry.linkname, base, dir_fd=pfd), pfd, base)
            self.metadata(pfd, base, entry)
        elif t == LNK:
            self.hardlink(pfd, base, path, entry)
        elif t in (CHR, BLK, FIFO):
            self.special(pfd, base, entry)
        else:
            self.warnings.append(f"{entry.name!r}: tar entry type {t!r} is not a file type; skipped")

    def create(self, make: Callable[[], None], pfd: int, base: str) -> None:
        """Run ``make``; if the name is taken, remove what holds it and run it again."""
        try:
            make()
        except FileExistsError:
            self.remove(pfd, base)
            make()

    def regular(self, pfd: int, base: str, entry: TarEntry, reader: TarReader) -> None:
        try:
            fd = os.open(base, _FILE_FLAGS, 0o600, dir_fd=pfd)
        except FileExistsError:
            self.remove(pfd, base)
            fd = os.open(base, _FILE_FLAGS, 0o600, dir_fd=pfd)
        try:
            size = entry.size
            if entry.sparse is not None:
                for offset, length in entry.sparse:
                    os.lseek(fd, offset, os.SEEK_SET)
                    left = length
                    while left:
                        chunk = reader.read(min(left, CHUNK))
                        _write_all(fd, chunk)
                        left -= len(chunk)
                os.ftruncate(fd, size)
            elif size <= CHUNK:
                if size:
                    _write_all(fd, reader.read(size))
            else:
                hole = False
                for piece in reader.chunks():
                    # A whole chunk of zeros becomes a hole: same content, less disk.
                    if len(piece) == CHUNK and piece == _ZEROS:
                        os.lseek(fd, CHUNK, os.SEEK_CUR)
                        hole = True
                    else:
                        _write_all(fd, piece)
                if hole:
                    os.ftruncate(fd, size)
            self.files += 1
            self.bytes += size
            if self.privileged:
                os.fchown(fd, entry.uid, entry.gid)
            os.fchmod(fd, entry.mode)
            if entry.xattrs:
                self.xattrs(fd, entry)
            os.utime(fd, ns=(entry.mtime_ns, entry.mtime_ns))
        finally:
            os.close(fd)

    def directory(self, pfd: int, base: str, path: str, entry: TarEntry) -> None:
        try:
            os.mkdir(base, 0o700, dir_fd=pfd)
        except FileExistsError:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                self.remove(pfd, base)
                os.mkdir(base, 0o700, dir_fd=pfd)
        if self.privileged:
            os.chown(base, entry.uid, entry.gid, dir_fd=pfd, follow_symlinks=False)
        if entry.xattrs:
            fd = self.dir_fd(path)
            assert fd is not None
            self.xattrs(f"/proc/self/fd/{fd}", entry)
        self.deferred_dirs[path] = (entry.mode, entry.mtime_ns)

    def metadata(self, pfd: int, base: str, entry: TarEntry) -> None:
        """Owner, xattrs and mtime of a non-regular, non-directory entry (never following it)."""
        if self.privileged:
            os.chown(base, entry.uid, entry.gid, dir_fd=pfd, follow_symlinks=False)
        if entry.type != SYM:
            os.chmod(base, entry.mode, dir_fd=pfd)  # just created by us: a device or fifo
        if entry.xattrs:
            self.xattrs(f"/proc/self/fd/{pfd}/{base}", entry, follow=False)
        os.utime(base, ns=(entry.mtime_ns, entry.mtime_ns), dir_fd=pfd, follow_symlinks=False)

    def xattrs(self, target: int | str, entry: TarEntry, *, follow: bool = True) -> None:
        for key, value in entry.xattrs.items():
            try:
                os.setxattr(target, key, value, follow_symlinks=follow)
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EACCES):
                    raise
                self.warnings.append(f"{entry.name!r}: xattr {key} not set ({os.strerror(e.errno).lower()})")

    def hardlink(self, pfd: int, base: str, path: str, entry: TarEntry) -> None:
        source = clean_name(entry.linkname)
        if not source:
            raise InvalidArgument(
                f"{self.label}: hard link {entry.name!r} points at the root; the layer is corrupt"
            )
        if source == path:
            return  # a link to itself: nothing to do
        sparent, _, sbase = source.rpartition("/")
        spfd = self.dir_fd(sparent, create=False)
        if spfd is None:
            raise InvalidArgument(
                f"{self.label}: hard link {entry.name!r} points at {entry.linkname!r}, which does not exist"
            )

        def link() -> None:
            os.link(sbase, base, src_dir_fd=spfd, dst_dir_fd=pfd, follow_symlinks=False)

        try:
            self.create(link, pfd, base)
        except FileNotFoundError:
            raise InvalidArgument(
                f"{self.label}: hard link {entry.name!r} points at {entry.linkname!r}, which does not exist"
            ) from None
        except PermissionError:
            raise InvalidArgument(
                f"{self.label}: hard link {entry.name!r} points at {entry.linkname!r}, a directory"
            ) from None

    def special(self, pfd: int, base: str, entry: TarEntry) -> None:
        if entry.type == FIFO:
            self.create(lambda: os.mkfifo(base, 0o600, dir_fd=pfd), pfd, base)
        else:
            ftype = stat.S_IFCHR if entry.type == CHR else stat.S_IFBLK
            dev = os.makedev(entry.devmajor, entry.devminor)
            try:
                self.create(lambda: os.mknod(base, ftype | 0o600, dev, dir_fd=pfd), pfd, base)
            except PermissionError:
                self.skipped_devices += 1
                return
        self.metadata(pfd, base, entry)

    def whiteout(self, parent: str, kind: tuple[str, str]) -> None:
        what, name = kind
        if what == whiteouts.IGNORE:
            return
        if self.mode == OVERLAY:
            found = self.dir_fd(parent)
            assert found is not None
            ofd: int = found
            try:
                if what == whiteouts.OPAQUE:
                    whiteouts.mark_opaque(ofd)
                else:
                    self.create(lambda: whiteouts.make_overlay_whiteout(name, ofd), ofd, name)
            except PermissionError:
                raise Unsupported(
                    f"{self.label}: overlay whiteouts need CAP_MKNOD and CAP_SYS_ADMIN; "
                    "run as root or apply the layer in naive mode"
                ) from None
            return
        pfd = self.dir_fd(parent, create=False)
        if pfd is None:
            return  # nothing below to hide
        if what == whiteouts.DELETE:
            self.remove(pfd, name)
        else:
            self.clear_opaque(parent, pfd)

    def clear_opaque(self, parent: str, pfd: int) -> None:
        """Remove what ``parent`` holds from lower layers; keep what this layer put there."""
        keep: set[str] = set()
        for path in self.unpacked:
            while path:
                keep.add(path)
                path = path.rpartition("/")[0]
        own = os.open(".", _DIR_FLAGS, dir_fd=pfd)
        self.forget_dirs()  # removals below may invalidate cached fds (pfd among them); _clear uses its own
        self._clear(parent, own, keep)

    def _clear(self, path: str, fd: int, keep: set[str]) -> None:
        """Remove the children of ``fd`` not in ``keep``, recursing into kept directories; closes ``fd``."""
        try:
            for name in os.listdir(f"/proc/self/fd/{fd}"):
                child = f"{path}/{name}" if path else name
                if child not in keep:
                    self.remove(fd, name)
                    continue
                try:
                    cfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue  # kept, and not a directory (or a symlink): nothing below it
                self._clear(child, cfd, keep)
        finally:
            os.close(fd)

    def finish_dirs(self) -> None:
        """Directory modes and mtimes, deepest first, after all their children are written."""
        for path in sorted(self.deferred_dirs, key=lambda p: p.count("/"), reverse=True):
            mode, mtime_ns = self.deferred_dirs[path]
            try:
                fd = open_in_root(self.root_fd, path, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
            except OSError:
                continue  # removed or replaced by a later entry
            try:
                proc = f"/proc/self/fd/{fd}"
                os.chmod(proc, mode)
                os.utime(proc, ns=(mtime_ns, mtime_ns))
            finally:
                os.close(fd)


def apply_layer(
    target: str | os.PathLike[str],
    stream: Readable,
    *,
    media_type: str,
    mode: str = NAIVE,
    threaded: bool = True,
) -> LayerStats:
    """Unpack the layer blob ``stream`` into the directory ``target`` (see the module docstring).

    Not atomic: on an error the target is left partly written; callers unpack
    into a fresh snapshot directory and discard it on failure. Raises
    ``InvalidArgument`` for a corrupt or malicious layer, ``Unsupported`` for an
    unknown media type (or overlay whiteouts without privileges) and
    ``SystemError_`` when the kernel refuses a write.
    """
    if mode not in (NAIVE, OVERLAY):
        raise InvalidArgument(f"unknown layer apply mode {mode!r}; use 'naive' or 'overlay'")
    label = f"layer into {os.fspath(target)}"
    try:
        root_fd = os.open(target, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise SystemError_(f"open layer target {os.fspath(target)}", e.errno or 0) from None
    source = LayerReader(stream, media_type, threaded=threaded)
    ex = _Extractor(root_fd, mode, label)
    entry: TarEntry | None = None
    try:
        reader = TarReader(source)
        for entry in reader:
            ex.apply(entry, reader)
            if ex.retired:
                ex.close_retired()
        ex.finish_dirs()
        source.finish()
    except OSError as e:
        where = f"{label}: entry {entry.name!r}" if entry is not None else label
        raise SystemError_(where, e.errno or 0) from None
    finally:
        source.close()
        ex.close()
        os.close(root_fd)
    warnings = list(ex.warnings)
    if ex.skipped_devices:
        warnings.append(
            f"skipped {ex.skipped_devices} device node(s): creating them needs CAP_MKNOD (rootless)"
        )
    return LayerStats(
        digest=source.digest,
        diff_id=source.diff_id,
        compressed_size=source.compressed_size,
        size=source.size,
        entries=ex.entries,
        files=ex.files,
        bytes=ex.bytes,
        warnings=tuple(warnings),
    )


def _main(argv: list[str]) -> int:
    """``python -m pallet.image.extract [--overlay] [--per-layer] TARGET BLOB...``

    Applies the blobs in order into TARGET, or with ``--per-layer`` each into
    TARGET/<n> in parallel threads (one snapshot directory per layer, as an
    overlay snapshotter keeps them).
    """
    args = list(argv)
    mode = OVERLAY if "--overlay" in args else NAIVE
    per_layer = "--per-layer" in args
    args = [a for a in args if a not in ("--overlay", "--per-layer")]
    if len(args) < 2:
        print(_main.__doc__, file=sys.stderr)
        return 2
    target, blobs = args[0], args[1:]
    media_type = "application/vnd.oci.image.layer.v1.tar"  # compression is detected from the data

    def one(index: int, blob: str) -> LayerStats:
        into = os.path.join(target, str(index)) if per_layer else target
        os.makedirs(into, exist_ok=True)
        with open(blob, "rb", buffering=0) as f:
            return apply_layer(into, f, media_type=media_type, mode=mode, threaded=not per_layer)

    try:
        if per_layer:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
                results = list(pool.map(one, range(len(blobs)), blobs))
        else:
            results = [one(i, b) for i, b in enumerate(blobs)]
    except PalletError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e.filename or target}: {os.strerror(e.errno or 0).lower()}", file=sys.stderr)
        return 1
    for blob, r in zip(blobs, results, strict=True):
        print(f"{blob}: {r.diff_id} {r.files} files {r.bytes} bytes", *r.warnings, sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
