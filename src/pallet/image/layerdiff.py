"""A layer from a directory diff, and the change list ``docker diff`` shows.

Two kinds of upper directory:

* ``overlay``: an overlayfs upper dir. It holds exactly what changed; deleted
  names are 0/0 character devices and replaced directories carry
  ``trusted.overlay.opaque=y``. ``lower`` (the merged lower rootfs), when
  given, only tells an addition (A) from a change (C).
* ``full``: a complete rootfs (a copying snapshot). It is compared with the
  complete ``lower`` rootfs, name by name: missing in upper is a deletion,
  missing in lower an addition, a different type, mode, owner, size, mtime,
  link target, device number or xattr set is a change (file contents are not
  read: a copy keeps mtimes, and a write changes them, as docker assumes).

Without ``lower`` every entry of ``upper`` is an addition (a base layer).

The tar is deterministic: entries in depth-first order with names sorted
(by code point), each directory before its children, names without a ``./`` prefix
(directories end with ``/``), no atime/ctime, empty user and group names;
hard links within the layer become link entries to the first name met; PAX
records carry long names, xattrs and sub-second mtimes (see ``tarstream``).
Contract: ``upper`` and ``lower`` are only read, never followed through a
symlink (files are opened ``O_NOFOLLOW``).
"""

from __future__ import annotations

import os
import stat

from pallet.errors import InvalidArgument
from pallet.image import whiteouts
from pallet.image.compression import GZIP, LayerWriter
from pallet.image.tarstream import BLK, CHR, DIR, FIFO, LNK, REG, SYM, TarEntry, TarWriter
from pallet.image.xattrs import read_xattrs
from pallet.oci.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection, Iterator

    from pallet.image.tarstream import Writable

    # A walk step: (change kind or "" for none, relative path, entry to write or None, source path).
    _Step = tuple[str, str, TarEntry | None, str]

__all__ = ["FULL", "OVERLAY", "Change", "LayerResult", "diff_changes", "write_layer"]

OVERLAY, FULL = "overlay", "full"
ADDED, CHANGED, DELETED = "A", "C", "D"


class Change(Record):
    """One line of ``docker diff``: ``kind`` is A, C or D; ``path`` is absolute in the container."""

    kind: str
    path: str

    def __str__(self) -> str:
        return f"{self.kind} {self.path}"


class LayerResult(Record):
    """A written layer: its digests, sizes and the changes it holds."""

    digest: str
    diff_id: str
    compressed_size: int
    size: int
    changes: tuple[Change, ...]


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _entry(name: str, path: str, st: os.stat_result) -> TarEntry | None:
    """The tar entry for ``path``; None for a socket (tar cannot hold one; docker skips them too)."""
    mode = st.st_mode
    if stat.S_ISSOCK(mode):
        return None
    entry = TarEntry(
        name,
        REG,
        mode=stat.S_IMODE(mode),
        uid=st.st_uid,
        gid=st.st_gid,
        mtime_ns=st.st_mtime_ns,
        xattrs=read_xattrs(path),
    )
    if stat.S_ISREG(mode):
        entry.size = st.st_size
    elif stat.S_ISDIR(mode):
        entry.type = DIR
        entry.name = name + "/"
    elif stat.S_ISLNK(mode):
        entry.type = SYM
        entry.linkname = os.readlink(path)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        entry.type = CHR if stat.S_ISCHR(mode) else BLK
        entry.devmajor = os.major(st.st_rdev)
        entry.devminor = os.minor(st.st_rdev)
    elif stat.S_ISFIFO(mode):
        entry.type = FIFO
    else:
        raise InvalidArgument(
            f"{path}: unknown file type {stat.S_IFMT(mode):o} cannot go into a layer; remove it"
        )
    return entry


def _same(path_a: str, a: os.stat_result, path_b: str, b: os.stat_result) -> bool:
    if (a.st_mode, a.st_uid, a.st_gid, a.st_mtime_ns) != (b.st_mode, b.st_uid, b.st_gid, b.st_mtime_ns):
        return False
    if stat.S_ISLNK(a.st_mode):
        if os.readlink(path_a) != os.readlink(path_b):
            return False
    elif stat.S_ISREG(a.st_mode):
        if a.st_size != b.st_size:
            return False
    elif (stat.S_ISCHR(a.st_mode) or stat.S_ISBLK(a.st_mode)) and a.st_rdev != b.st_rdev:
        return False
    return read_xattrs(path_a) == read_xattrs(path_b)


def _join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


def _added(rel: str, path: str, st: os.stat_result) -> Iterator[_Step]:
    """``rel`` and, for a directory, everything under it, all new."""
    yield ADDED, rel, _entry(rel, path, st), path
    if stat.S_ISDIR(st.st_mode):
        for name in sorted(os.listdir(path)):
            child = os.path.join(path, name)
            cst = os.lstat(child)
            yield from _added(_join(rel, name), child, cst)


def _walk_full(rel: str, upper: str, lower: str) -> Iterator[_Step]:
    names = sorted(set(os.listdir(upper)) | set(os.listdir(lower)))
    for name in names:
        u_path, l_path = os.path.join(upper, name), os.path.join(lower, name)
        child = _join(rel, name)
        u, lo = _lstat(u_path), _lstat(l_path)
        if u is None:
            yield DELETED, child, TarEntry(_join(rel, whiteouts.whiteout_name(name))), ""
        elif lo is None:
            yield from _added(child, u_path, u)
        elif stat.S_IFMT(u.st_mode) != stat.S_IFMT(lo.st_mode):
            yield CHANGED, child, _entry(child, u_path, u), u_path
            if stat.S_ISDIR(u.st_mode):
                for grandchild in sorted(os.listdir(u_path)):
                    g_path = os.path.join(u_path, grandchild)
                    yield from _added(_join(child, grandchild), g_path, os.lstat(g_path))
        else:
            if not _same(u_path, u, l_path, lo):
                yield CHANGED, child, _entry(child, u_path, u), u_path
            if stat.S_ISDIR(u.st_mode):
                yield from _walk_full(child, u_path, l_path)


def _walk_overlay(rel: str, upper: str, lower: str | None) -> Iterator[_Step]:
    for name in sorted(os.listdir(upper)):
        u_path = os.path.join(upper, name)
        child = _join(rel, name)
        st = os.lstat(u_path)
        if whiteouts.is_overlay_whiteout(st):
            yield DELETED, child, TarEntry(_join(rel, whiteouts.whiteout_name(name))), ""
            continue
        l_path = os.path.join(lower, name) if lower is not None else None
        existed = l_path is not None and _lstat(l_path) is not None
        yield (CHANGED if existed else ADDED), child, _entry(child, u_path, st), u_path
        if stat.S_ISDIR(st.st_mode):
            if whiteouts.is_opaque_dir(u_path):
                yield "", child, TarEntry(_join(child, whiteouts.OPAQUE_MARKER)), ""
                yield from _walk_overlay(child, u_path, None)
            else:
                yield from _walk_overlay(child, u_path, l_path if existed else None)


def _steps(upper: str, lower: str | None, upper_kind: str) -> Iterator[_Step]:
    if upper_kind not in (OVERLAY, FULL):
        raise InvalidArgument(f"unknown upper directory kind {upper_kind!r}; use 'overlay' or 'full'")
    if not os.path.isdir(upper):
        raise InvalidArgument(f"{upper} is not a directory; give the upper directory of the diff")
    if lower is not None and not os.path.isdir(lower):
        raise InvalidArgument(f"{lower} is not a directory; give the lower rootfs of the diff (or none)")
    if lower is None and upper_kind == FULL:
        for name in sorted(os.listdir(upper)):
            path = os.path.join(upper, name)
            yield from _added(name, path, os.lstat(path))
    elif upper_kind == FULL:
        assert lower is not None
        yield from _walk_full("", upper, lower)
    else:
        yield from _walk_overlay("", upper, lower)


def _sorted_changes(changes: list[Change]) -> tuple[Change, ...]:
    return tuple(sorted(changes, key=lambda c: c.path))


def diff_changes(upper: str, *, lower: str | None = None, upper_kind: str = OVERLAY) -> tuple[Change, ...]:
    """What ``docker diff`` prints for this diff, sorted by path."""
    return _sorted_changes(
        [Change(kind=kind, path="/" + rel) for kind, rel, _, _ in _steps(upper, lower, upper_kind) if kind]
    )


def write_layer(
    out: Writable,
    upper: str,
    *,
    lower: str | None = None,
    upper_kind: str = OVERLAY,
    compression: str = GZIP,
    level: int | None = None,
    skip: Collection[str] = (),
    clamp_mtime_ns: int | None = None,
) -> LayerResult:
    """Write the layer tar of this diff to ``out`` (compressed as asked); return digests and changes.

    ``skip``: paths relative to the root (``etc/hosts``) left out of the layer, as docker leaves out
    its init layer (the mount points of a container's /etc files). ``clamp_mtime_ns``: no entry's
    mtime is later (``SOURCE_DATE_EPOCH``, as BuildKit's rewrite-timestamp): the same files give
    the same layer whenever they were written."""
    sink = LayerWriter(out, compression, level=level)
    tar = TarWriter(sink)
    links: dict[tuple[int, int], str] = {}
    changes: list[Change] = []
    for kind, rel, entry, source in _steps(upper, lower, upper_kind):
        if rel in skip:
            continue
        if kind:
            changes.append(Change(kind=kind, path="/" + rel))
        if entry is None:
            continue
        if clamp_mtime_ns is not None and entry.mtime_ns > clamp_mtime_ns:
            entry.mtime_ns = clamp_mtime_ns
        if entry.type != REG or not source:
            tar.add(entry)
            continue
        st = os.lstat(source)
        if st.st_nlink > 1:
            first = links.setdefault((st.st_dev, st.st_ino), entry.name)
            if first != entry.name:
                entry.type, entry.linkname, entry.size = LNK, first, 0
                tar.add(entry)
                continue
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with open(fd, "rb", buffering=0) as data:
            tar.add(entry, data)
    tar.close()
    sink.close()
    return LayerResult(
        digest=sink.digest,
        diff_id=sink.diff_id,
        compressed_size=sink.compressed_size,
        size=sink.size,
        changes=_sorted_changes(changes),
    )
