"""Snapshots: the directories a container's root filesystem is made of, in containerd's vocabulary.

A snapshot is a tree keyed by a string, of one of three kinds (containerd's):

- *committed*: read-only, keyed by its name (an unpacked layer's is its chain
  id, so a layer is unpacked once however many images share it); the only
  kind that can be a parent;
- *active*: writable, made by ``prepare(key, parent)``; ``commit(name, key)``
  turns it into the committed snapshot ``name`` (the key ``key`` goes);
- *view*: a read-only look at a committed parent, made by ``view(key, parent)``;
  never committed.

The snapshotter never mounts. ``prepare``, ``view`` and ``mounts`` return mount
descriptions (``Mount``); a caller applies them (``mount()`` below, or the
engine's rootfs setup), or writes into the directory a description names, as
containerd's applier writes a layer into an overlay ``upperdir`` directly
(``pallet.image.unpack`` does that).

``Snapshotter`` is the protocol; two drivers implement it:

- ``overlay``: a committed snapshot holds only its layer's files (whiteouts in
  overlayfs form); an active one has ``upper`` and ``work`` dirs, and its mount
  stacks the parent chain as ``lowerdir``. Layers do not contain their parents,
  so ``commit(..., onto=parent)`` may set the parent at commit time (containerd's
  "rebase"): layers can be unpacked in parallel. Mounting needs root.
- ``copy``: every snapshot holds a full tree (a copy of the parent plus the
  change), mounted with a bind mount. Works anywhere, costs disk.

Contracts, for both:

- ``prepare``, ``view``, ``commit`` and ``remove`` are atomic: a snapshot is
  built in ``snapshots/tmp/<owner>/`` and renamed into place inside the SQLite
  transaction that records it (removal renames it back into ``tmp`` first).
  Killed at any point, they leave at most a temp dir of a dead owner or a dir
  no row names; ``cleanup_leftovers`` removes both, and a later call with the
  same key succeeds.
- ``commit`` raises ``AlreadyExists`` if ``name`` is taken, and leaves the
  active snapshot as it was: the caller decides (an unpacker whose layer
  another process committed first removes its own and uses that one).
- ``remove`` raises ``Conflict`` while other snapshots build on the key. The
  caller makes sure nothing is mounted from it.
- ``usage`` counts what the snapshot itself holds (apparent size of its
  files, hard links once, and inodes): overlay's layer dir or ``upper``, the
  copy driver's full tree; a view holds nothing.

In the table a view is an ``active`` row whose directory lives under
``snapshots/view/`` (the ``kind`` column predates views).
"""

from __future__ import annotations

import os
import time
from errno import EINVAL, ENOENT

from pallet.errors import (
    AlreadyExists,
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    SystemError_,
    Unsupported,
)
from pallet.image import owners
from pallet.image.paths import normalise
from pallet.linux.trees import remove_tree
from pallet.oci.digest import Digest
from pallet.oci.record import Record

__all__ = [
    "COPY",
    "DRIVERS",
    "OVERLAY",
    "CopySnapshotter",
    "DirectorySnapshotter",
    "Mount",
    "OverlaySnapshotter",
    "SnapshotInfo",
    "Snapshotter",
    "Usage",
    "detect_driver",
    "is_mounted",
    "mount",
    "open_snapshotter",
    "unmount",
    "writable_dir",
]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterator
    from pathlib import Path

    from pallet.database import Database
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object  # ``typing`` costs ~2 ms and the run path never loads it; the protocol is for mypy

OVERLAY = "overlay"
COPY = "copy"
DRIVERS = (OVERLAY, COPY)
COMMITTED = "committed"
ACTIVE = "active"
VIEW = "view"
# the kernel takes at most a page of mount options
_MOUNT_DATA_MAX = 4000


class Mount(Record):
    """One mount to make, as containerd describes it: ``mount -t type -o options source target``."""

    type: str
    source: str
    options: tuple[str, ...] = ()


class SnapshotInfo(Record):
    key: str
    parent: str | None
    #: ``committed``, ``active`` or ``view``
    kind: str
    #: the snapshot's directory
    location: str
    created: float

    @property
    def path(self) -> Path:
        """``location`` as a ``Path`` (imported on first use: ``pathlib`` costs ~20 ms, the run path never asks)."""
        from pathlib import Path

        return Path(self.location)


class Usage(Record):
    """What a snapshot holds on disk: bytes of its files (apparent size, hard links once) and inodes."""

    size: int
    inodes: int


class Snapshotter(Protocol):
    """containerd's snapshotter: trees keyed by key/parent that return mount descriptions and never mount.

    See the module docstring for the contracts every implementation keeps;
    ``pallet.testing.snapshotters`` checks them.
    """

    @property
    def driver(self) -> str:
        """The driver's name (``overlay``, ``copy``)."""
        ...

    @property
    def rebases(self) -> bool:
        """Whether ``commit(..., onto=parent)`` may give a snapshot another parent than it was prepared on."""
        ...

    def stat(self, key: str) -> SnapshotInfo | None:
        """Snapshot ``key``, or None if there is none."""
        ...

    def get(self, key: str) -> SnapshotInfo:
        """Snapshot ``key``; ``NotFound`` if there is none."""
        ...

    def prepare(self, key: str, parent: str | None) -> list[Mount]:
        """A new active (writable) snapshot ``key`` on committed ``parent`` (None: empty); its mounts.

        ``AlreadyExists`` if ``key`` is taken, ``NotFound`` for an unknown
        parent, ``InvalidArgument`` for a parent that is not committed.
        """
        ...

    def view(self, key: str, parent: str | None) -> list[Mount]:
        """A new read-only snapshot ``key`` showing committed ``parent``; its mounts. Errors as ``prepare``."""
        ...

    def commit(self, name: str, key: str, *, onto: str | None = None) -> SnapshotInfo:
        """Turn active snapshot ``key`` into committed, read-only ``name``; ``key`` is gone after.

        ``onto``: the committed parent to record instead of the one ``key``
        was prepared on (only where ``rebases``; ``Unsupported`` elsewhere).
        ``AlreadyExists`` if ``name`` is taken (``key`` is left as it was);
        ``FailedPrecondition`` if ``key`` is not active.
        """
        ...

    def remove(self, key: str) -> None:
        """Remove snapshot ``key`` and its files; ``Conflict`` while other snapshots build on it."""
        ...

    def walk(self) -> Iterator[SnapshotInfo]:
        """Every snapshot, oldest first."""
        ...

    def usage(self, key: str) -> Usage:
        """What snapshot ``key`` itself holds on disk."""
        ...

    def mounts(self, key: str) -> list[Mount]:
        """How to mount snapshot ``key``: writable if active, read-only if committed or a view."""
        ...

    def cleanup_leftovers(self) -> int:
        """Remove what killed calls left (temp dirs of dead owners, dirs no row names); returns how many."""
        ...


def _dir_name(key: str) -> str:
    # chain ids ("sha256:<hex>") keep their hex; any other key is hashed to a safe, fixed-length name
    algorithm, _, rest = key.partition(":")
    if algorithm == "sha256" and len(rest) == 64 and all(c in "0123456789abcdef" for c in rest):
        return rest
    return Digest.of_bytes(key.encode()).hex  # the sha256 hex digest


def _copy_tree(source: str, target: str) -> None:
    """Copy a full tree keeping owners, modes, xattrs, hard links and device nodes (``cp -a``)."""
    import subprocess  # the copy driver only

    result = subprocess.run(
        ["cp", "-a", "--reflink=auto", "--", f"{source}/.", target],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemError_(f"copy snapshot {source}: {result.stderr.strip()}", 5)


def _measure(top: str) -> Usage:
    """Apparent bytes of regular files (each inode once) and inodes under ``top``, ``top`` itself not counted."""
    import stat

    seen: set[tuple[int, int]] = set()
    size = 0
    pending = [top]
    while pending:
        try:
            entries = os.scandir(pending.pop())
        except FileNotFoundError:
            continue
        with entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                ident = (st.st_dev, st.st_ino)
                if ident in seen:
                    continue
                seen.add(ident)
                if stat.S_ISREG(st.st_mode):
                    size += st.st_size
                elif stat.S_ISDIR(st.st_mode):
                    pending.append(entry.path)
    return Usage(size=size, inodes=len(seen))


class DirectorySnapshotter:
    """What both drivers share: snapshots as directories under ``<root>/snapshots``, rows in the image database.

    Subclasses say what an active snapshot's directory holds (``_populate``),
    what committing changes in it (``_seal``), how it mounts (``mounts``) and
    which directory ``usage`` measures (``_own_dir``).
    """

    driver: str = ""
    rebases: bool = False

    def __init__(self, root: str | os.PathLike[str], db: Database) -> None:
        self.db = db
        self._dir = os.path.join(normalise(root), "snapshots")
        self._tmp = os.path.join(self._dir, "tmp")
        for sub in (self._tmp, *(os.path.join(self._dir, k) for k in (COMMITTED, ACTIVE, VIEW))):
            os.makedirs(sub, exist_ok=True)

    @property
    def dir(self) -> Path:
        """``<root>/snapshots`` (a ``Path``, imported on first use; the snapshotter itself keeps ``str``)."""
        from pathlib import Path

        return Path(self._dir)

    @property
    def tmp(self) -> Path:
        """Where snapshots are built and removed: ``<root>/snapshots/tmp``."""
        from pathlib import Path

        return Path(self._tmp)

    # --- queries --------------------------------------------------------------------------------

    def stat(self, key: str) -> SnapshotInfo | None:
        rows = self.db.query("SELECT key, parent, kind, path, created FROM snapshots WHERE key = ?", (key,))
        return self._info(rows[0]) if rows else None

    def get(self, key: str) -> SnapshotInfo:
        info = self.stat(key)
        if info is None:
            raise NotFound(f'snapshot "{key}" not found')
        return info

    def walk(self) -> Iterator[SnapshotInfo]:
        rows = self.db.query("SELECT key, parent, kind, path, created FROM snapshots ORDER BY created")
        return (self._info(r) for r in rows)

    def list_snapshots(self) -> list[SnapshotInfo]:
        """``walk()`` as a list."""
        return list(self.walk())

    def children(self, key: str) -> list[str]:
        return [r[0] for r in self.db.query("SELECT key FROM snapshots WHERE parent = ?", (key,))]

    def chain(self, key: str) -> list[SnapshotInfo]:
        """The snapshot and its ancestors, nearest first."""
        out = []
        current: str | None = key
        while current is not None:
            info = self.get(current)
            out.append(info)
            current = info.parent
        return out

    def usage(self, key: str) -> Usage:
        info = self.get(key)
        if info.kind == VIEW:
            return Usage(size=0, inodes=0)
        return _measure(self._own_dir(info))

    def _info(self, row: sqlite3.Row) -> SnapshotInfo:
        location: str = row["path"]
        kind: str = row["kind"]
        if kind == ACTIVE and os.path.basename(os.path.dirname(location)) == VIEW:
            kind = VIEW
        return SnapshotInfo(
            key=row["key"], parent=row["parent"], kind=kind, location=location, created=row["created"]
        )

    # --- making snapshots -----------------------------------------------------------------------

    def prepare(self, key: str, parent: str | None) -> list[Mount]:
        self._create(key, parent, ACTIVE)
        return self.mounts(key)

    def view(self, key: str, parent: str | None) -> list[Mount]:
        self._create(key, parent, VIEW)
        return self.mounts(key)

    def _create(self, key: str, parent: str | None, kind: str) -> None:
        if self.stat(key) is not None:
            raise AlreadyExists(f'snapshot "{key}" already exists')
        parent_info = self._committed_parent(parent, key) if parent is not None else None
        work = os.path.join(self._tmp, owners.owner_tag())
        try:
            os.mkdir(work)
            if kind == VIEW:
                os.mkdir(os.path.join(work, "fs"))  # what a view without a parent shows: nothing
            else:
                self._populate(work, parent_info)
            final = os.path.join(self._dir, kind, _dir_name(key))
            with self.db.transaction() as conn:
                if self.stat(key) is not None:
                    raise AlreadyExists(f'snapshot "{key}" already exists')
                if parent is not None:
                    self._committed_parent(parent, key)  # still there: a remove may have raced us
                remove_tree(final)  # a dir without a row is a leftover of a killed call
                os.rename(work, final)
                conn.execute(
                    "INSERT INTO snapshots(key, parent, kind, path, created) VALUES (?, ?, ?, ?, ?)",
                    (key, parent, ACTIVE, final, time.time()),
                )
        except BaseException:
            remove_tree(work)
            raise

    def _committed_parent(self, parent: str, key: str) -> SnapshotInfo:
        info = self.stat(parent)
        if info is None:
            raise NotFound(f'parent snapshot "{parent}" of "{key}" not found')
        if info.kind != COMMITTED:
            raise InvalidArgument(f'snapshot "{parent}" is not committed and cannot be a parent')
        return info

    def commit(self, name: str, key: str, *, onto: str | None = None) -> SnapshotInfo:
        info = self.get(key)
        if info.kind != ACTIVE:
            raise FailedPrecondition(
                f'snapshot "{key}" is {info.kind}, not active: only an active one is committed'
            )
        parent = info.parent
        if onto is not None and onto != parent:
            if not self.rebases:
                raise Unsupported(
                    f'the {self.driver} snapshot driver cannot commit "{key}" onto another parent ("{onto}")'
                )
            parent = onto
        final = os.path.join(self._dir, COMMITTED, _dir_name(name))
        with self.db.transaction() as conn:
            if self.stat(name) is not None:
                raise AlreadyExists(f'snapshot "{name}" already exists')
            current = self.stat(key)
            if current is None or current.kind != ACTIVE:
                raise NotFound(f'active snapshot "{key}" not found (removed meanwhile)')
            if parent is not None:
                self._committed_parent(parent, name)
            conn.execute(
                "UPDATE snapshots SET key = ?, parent = ?, kind = ?, path = ?, created = ? WHERE key = ?",
                (name, parent, COMMITTED, final, time.time(), key),
            )
            # renames last: if one fails, the transaction rolls back and the row still matches the dir
            remove_tree(final)  # a dir without a row is a leftover of a killed call
            self._seal(info.location)
            os.rename(info.location, final)
        self._sealed(final)
        return self.get(name)

    # --- removal --------------------------------------------------------------------------------

    def remove(self, key: str) -> None:
        info = self.get(key)
        doomed = os.path.join(self._tmp, owners.owner_tag())
        with self.db.transaction() as conn:
            kids = self.children(key)
            if kids:
                raise Conflict(
                    f'snapshot "{key}" is the parent of {len(kids)} other snapshot(s); remove them first'
                )
            conn.execute("DELETE FROM snapshots WHERE key = ?", (key,))
            if os.path.exists(info.location):
                os.rename(info.location, doomed)
        remove_tree(doomed)

    def cleanup_leftovers(self) -> int:
        removed = 0
        with os.scandir(self._tmp) as entries:
            for entry in entries:
                owner = owners.parse_owner(entry.name)
                if owner is not None and owners.is_alive(*owner):
                    continue
                remove_tree(entry.path)
                removed += 1
        doomed: list[str] = []
        # Inside a write transaction: every call renames a dir into place inside its own, so a
        # dir without a row seen here really is a leftover, not a snapshot being made right now.
        with self.db.transaction():
            known = {os.path.basename(r[0]) for r in self.db.query("SELECT path FROM snapshots")}
            for kind in (COMMITTED, ACTIVE, VIEW):
                with os.scandir(os.path.join(self._dir, kind)) as entries:
                    for entry in entries:
                        if entry.name not in known:
                            # renamed into place by a transaction that then rolled back (a kill)
                            target = os.path.join(self._tmp, owners.owner_tag())
                            os.rename(entry.path, target)
                            doomed.append(target)
        for path in doomed:
            remove_tree(path)
        return removed + len(doomed)

    # --- what a driver decides ------------------------------------------------------------------

    def mounts(self, key: str) -> list[Mount]:
        raise NotImplementedError

    def _populate(self, work: str, parent: SnapshotInfo | None) -> None:
        """Fill a new active snapshot's directory ``work``."""
        raise NotImplementedError

    def _seal(self, location: str) -> None:
        """Turn an active snapshot's directory into a committed one's (inside the commit transaction)."""

    def _sealed(self, location: str) -> None:
        """Tidy a just committed snapshot's directory (after the commit transaction)."""

    def _own_dir(self, info: SnapshotInfo) -> str:
        """The directory ``usage`` measures."""
        raise NotImplementedError


class OverlaySnapshotter(DirectorySnapshotter):
    """Layers as overlayfs lower dirs (``fs``), containers as ``upper``/``work`` over them."""

    driver = OVERLAY
    rebases = True

    def _populate(self, work: str, parent: SnapshotInfo | None) -> None:
        os.mkdir(os.path.join(work, "upper"))
        os.mkdir(os.path.join(work, "work"))

    def _seal(self, location: str) -> None:
        os.rename(os.path.join(location, "upper"), os.path.join(location, "fs"))

    def _sealed(self, location: str) -> None:
        remove_tree(os.path.join(location, "work"))

    def _own_dir(self, info: SnapshotInfo) -> str:
        return os.path.join(info.location, "upper" if info.kind == ACTIVE else "fs")

    def mounts(self, key: str) -> list[Mount]:
        info = self.get(key)
        options: tuple[str, ...]
        if info.kind == ACTIVE:
            lowers = [os.path.join(p.location, "fs") for p in self.chain(info.parent)] if info.parent else []
            if not lowers:
                return [
                    Mount(type="bind", source=os.path.join(info.location, "upper"), options=("rbind", "rw"))
                ]
            options = (
                f"workdir={os.path.join(info.location, 'work')}",
                f"upperdir={os.path.join(info.location, 'upper')}",
                f"lowerdir={':'.join(lowers)}",
            )
        else:
            if info.kind == VIEW and info.parent is None:
                return [Mount(type="bind", source=os.path.join(info.location, "fs"), options=("rbind", "ro"))]
            top = info.parent if info.kind == VIEW else key
            assert top is not None
            lowers = [os.path.join(p.location, "fs") for p in self.chain(top)]
            if len(lowers) == 1:
                return [Mount(type="bind", source=lowers[0], options=("rbind", "ro"))]
            options = (f"lowerdir={':'.join(lowers)}",)
        if len(",".join(options)) > _MOUNT_DATA_MAX:
            raise Unsupported(
                f"image has too many layers ({len(lowers)}) for one overlay mount here; "
                "squash the image or use the copy snapshot driver"
            )
        return [Mount(type="overlay", source="overlay", options=options)]


class CopySnapshotter(DirectorySnapshotter):
    """Every snapshot a full tree (``fs``): a copy of its parent plus its change, bind-mounted."""

    driver = COPY

    def _populate(self, work: str, parent: SnapshotInfo | None) -> None:
        os.mkdir(os.path.join(work, "fs"))
        if parent is not None:
            _copy_tree(os.path.join(parent.location, "fs"), os.path.join(work, "fs"))

    def _own_dir(self, info: SnapshotInfo) -> str:
        return os.path.join(info.location, "fs")

    def mounts(self, key: str) -> list[Mount]:
        info = self.get(key)
        if info.kind == VIEW:
            # committed trees are never written: a view binds its parent's (or its own empty) tree
            source = self.get(info.parent).location if info.parent is not None else info.location
            return [Mount(type="bind", source=os.path.join(source, "fs"), options=("rbind", "ro"))]
        options = ("rbind", "rw" if info.kind == ACTIVE else "ro")
        return [Mount(type="bind", source=os.path.join(info.location, "fs"), options=options)]


def open_snapshotter(root: str | os.PathLike[str], db: Database, driver: str) -> DirectorySnapshotter:
    """The ``driver`` snapshotter (``overlay`` or ``copy``) of the store at ``root``, rows in ``db``."""
    if driver == OVERLAY:
        return OverlaySnapshotter(root, db)
    if driver == COPY:
        return CopySnapshotter(root, db)
    raise InvalidArgument(f'unknown snapshot driver "{driver}"; use one of {", ".join(DRIVERS)}')


# --- the caller's side: applying mount descriptions (mount needs root) ---------------------------


def mount(mounts: list[Mount], target: str | os.PathLike[str]) -> None:
    """Mount ``mounts`` on ``target`` in order (needs CAP_SYS_ADMIN)."""
    from pallet.linux import flags
    from pallet.linux.libc import Libc

    libc = Libc()
    for m in mounts:
        options = [o for o in m.options if o not in ("rbind", "bind", "ro", "rw")]
        if m.type == "bind":
            libc.mount(m.source, str(target), "", flags.MS_BIND | flags.MS_REC, "")
            if "ro" in m.options:
                libc.mount("", str(target), "", flags.MS_BIND | flags.MS_REMOUNT | flags.MS_RDONLY, "")
        else:
            ro = flags.MS_RDONLY if "ro" in m.options else 0
            libc.mount(m.source, str(target), m.type, ro, ",".join(options))


def writable_dir(mounts: list[Mount]) -> str:
    """The directory a writable snapshot's changes go into, read from its mount description, unmounted.

    An overlay's ``upperdir``, or a writable bind mount's source: what
    containerd's applier writes a layer into without mounting. Changes made
    there are in the driver's form (an overlay deletion is a whiteout device
    the writer makes itself). ``Unsupported`` for any other description.
    """
    if len(mounts) == 1:
        (m,) = mounts
        if m.type == "bind" and "rw" in m.options:
            return m.source
        if m.type == "overlay":
            for option in m.options:
                if option.startswith("upperdir="):
                    return option.removeprefix("upperdir=")
    raise Unsupported(
        f"no writable directory in the mounts {mounts}: not a writable bind mount nor an overlay"
    )


def is_mounted(path: str | os.PathLike[str]) -> bool:
    """Whether something is mounted exactly on ``path`` in this mount namespace (binds included)."""
    wanted = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                point = line.split(" ", 5)[4]
                if "\\" in point:  # octal escapes of spaces and the like
                    point = point.encode().decode("unicode_escape")
                if point == wanted:
                    return True
    except OSError:
        return False
    return False


def unmount(target: str | os.PathLike[str]) -> None:
    """Unmount ``target`` (everything mounted there, lazily if busy); idempotent."""
    from pallet.linux import flags
    from pallet.linux.libc import Libc

    libc = Libc()
    while True:
        try:
            libc.umount2(str(target), flags.MNT_DETACH)
        except SystemError_ as e:
            if e.errno in (EINVAL, ENOENT):  # not a mount point (any more); gone
                return
            raise


def detect_driver(scratch: str | os.PathLike[str]) -> str:
    """``overlay`` if this process can mount overlayfs here (tried for real in ``scratch``), else ``copy``."""
    if os.geteuid() != 0:
        return COPY
    try:
        with open("/proc/filesystems") as f:
            if "overlay" not in f.read():
                return COPY
    except OSError:
        return COPY
    probe = os.path.join(normalise(scratch), f"probe-{owners.owner_tag()}")
    dirs = [os.path.join(probe, d) for d in ("lower1", "lower2", "upper", "work", "merged")]
    try:
        for d in dirs:
            os.makedirs(d)
        target = dirs[4]
        mounts = [
            Mount(
                type="overlay",
                source="overlay",
                options=(f"lowerdir={dirs[0]}:{dirs[1]}", f"upperdir={dirs[2]}", f"workdir={dirs[3]}"),
            )
        ]
        try:
            mount(mounts, target)
        except SystemError_:
            return COPY
        unmount(target)
        return OVERLAY
    finally:
        remove_tree(probe)
