"""Snapshots: the directories a container's root filesystem is made of, as containerd's snapshotters keep them.

A *committed* snapshot holds one unpacked layer and is keyed by the layer's
chain id, so a layer is unpacked once however many images share it. An
*active* snapshot is a container's writable layer on top of a committed
parent. The snapshotter never mounts: ``mounts(key)`` returns mount
descriptions (``Mount``) that ``mount()`` below, or the engine, applies.

Two drivers:

- ``overlay``: a committed snapshot holds only its layer's files (whiteouts in
  overlayfs form); an active one has ``upper`` and ``work`` dirs, and its mount
  stacks the parent chain as ``lowerdir``. Needs root and kernel overlayfs.
- ``copy``: every snapshot holds a full tree (a copy of the parent plus the
  change), mounted with a bind mount. Works anywhere, costs disk.

Atomicity: a snapshot is built in ``snapshots/tmp/<owner>/`` and renamed into
place inside the same SQLite transaction that records it, so a crash never
leaves a half-made snapshot visible; leftovers are removed by
``cleanup_leftovers`` when the store opens. Removal renames the directory
back into ``tmp`` before deleting it, for the same reason.
"""

from __future__ import annotations

import os
import time

from pallet.errors import AlreadyExists, Conflict, InvalidArgument, NotFound, SystemError_, Unsupported
from pallet.image import owners
from pallet.image.paths import normalise
from pallet.linux.trees import remove_tree
from pallet.oci.digest import Digest
from pallet.oci.record import Record

__all__ = [
    "COPY",
    "DRIVERS",
    "OVERLAY",
    "Mount",
    "SnapshotInfo",
    "Snapshotter",
    "detect_driver",
    "is_mounted",
    "mount",
    "unmount",
]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

    from pallet.database import Database

OVERLAY = "overlay"
COPY = "copy"
DRIVERS = (OVERLAY, COPY)
COMMITTED = "committed"
ACTIVE = "active"
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
    kind: str
    #: the snapshot's directory
    location: str
    created: float

    @property
    def path(self) -> Path:
        """``location`` as a ``Path`` (imported on first use: ``pathlib`` costs ~20 ms, the run path never asks)."""
        from pathlib import Path

        return Path(self.location)


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


class Snapshotter:
    """Committed and active snapshots under ``<root>/snapshots``, recorded in the image database."""

    def __init__(self, root: str | os.PathLike[str], db: Database, driver: str) -> None:
        if driver not in DRIVERS:
            raise InvalidArgument(f'unknown snapshot driver "{driver}"; use one of {", ".join(DRIVERS)}')
        self.driver = driver
        self.db = db
        self._dir = os.path.join(normalise(root), "snapshots")
        self._tmp = os.path.join(self._dir, "tmp")
        for sub in (self._tmp, os.path.join(self._dir, COMMITTED), os.path.join(self._dir, ACTIVE)):
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

    def list_snapshots(self) -> list[SnapshotInfo]:
        rows = self.db.query("SELECT key, parent, kind, path, created FROM snapshots ORDER BY created")
        return [self._info(r) for r in rows]

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

    @staticmethod
    def _info(row: sqlite3.Row) -> SnapshotInfo:
        return SnapshotInfo(
            key=row["key"],
            parent=row["parent"],
            kind=row["kind"],
            location=row["path"],
            created=row["created"],
        )

    # --- committed snapshots (layers) -----------------------------------------------------------

    def begin(self, parent: str | None) -> Path:
        """A fresh temp dir whose ``fs/`` the caller fills with a layer, then passes to ``commit``.

        With the copy driver ``fs/`` starts as a copy of the parent's tree; with
        overlay it starts empty (the layer's own files only).
        """
        from pathlib import Path  # unpacking a layer, never an unpacked image's `pallet run`

        work = os.path.join(self._tmp, owners.owner_tag())
        os.makedirs(os.path.join(work, "fs"))
        if parent is not None and self.driver == COPY:
            _copy_tree(os.path.join(self.get(parent).location, "fs"), os.path.join(work, "fs"))
        return Path(work)

    def commit(self, key: str, parent: str | None, work: str | os.PathLike[str]) -> SnapshotInfo:
        """Make ``work`` (from ``begin``) the committed snapshot ``key``; atomic and idempotent.

        If another process committed the same key first, ``work`` is discarded
        and the existing snapshot returned: the content is the same layer.
        """
        final = os.path.join(self._dir, COMMITTED, _dir_name(key))
        with self.db.transaction() as conn:
            existing = self.stat(key)
            if existing is None:
                if parent is not None and self.stat(parent) is None:
                    raise NotFound(f'parent snapshot "{parent}" of "{key}" not found')
                remove_tree(final)  # a stray dir without a row is a leftover of a crash
                os.rename(work, final)
                conn.execute(
                    "INSERT INTO snapshots(key, parent, kind, path, created) VALUES (?, ?, ?, ?, ?)",
                    (key, parent, COMMITTED, final, time.time()),
                )
        if existing is not None:
            remove_tree(work)
            return existing
        return self.get(key)

    # --- active snapshots (containers) ----------------------------------------------------------

    def prepare(self, key: str, parent: str | None) -> list[Mount]:
        """Create the writable snapshot ``key`` on top of committed ``parent``; returns its mounts.

        ``AlreadyExists`` if ``key`` is taken. ``parent`` None gives an empty root.
        """
        if self.stat(key) is not None:
            raise AlreadyExists(f'snapshot "{key}" already exists')
        if parent is not None:
            info = self.get(parent)
            if info.kind != COMMITTED:
                raise InvalidArgument(f'snapshot "{parent}" is not committed and cannot be a parent')
        work = os.path.join(self._tmp, owners.owner_tag())
        try:
            if self.driver == OVERLAY:
                os.makedirs(os.path.join(work, "upper"))
                os.mkdir(os.path.join(work, "work"))
            else:
                os.makedirs(os.path.join(work, "fs"))
                if parent is not None:
                    _copy_tree(os.path.join(self.get(parent).location, "fs"), os.path.join(work, "fs"))
            final = os.path.join(self._dir, ACTIVE, _dir_name(key))
            with self.db.transaction() as conn:
                if self.stat(key) is not None:
                    raise AlreadyExists(f'snapshot "{key}" already exists')
                remove_tree(final)
                os.rename(work, final)
                conn.execute(
                    "INSERT INTO snapshots(key, parent, kind, path, created) VALUES (?, ?, ?, ?, ?)",
                    (key, parent, ACTIVE, final, time.time()),
                )
        except BaseException:
            remove_tree(work)
            raise
        return self.mounts(key)

    def mounts(self, key: str) -> list[Mount]:
        """How to mount snapshot ``key``: writable for an active one, read-only for a committed one."""
        info = self.get(key)
        options: tuple[str, ...]
        if self.driver == COPY:
            options = ("rbind", "rw" if info.kind == ACTIVE else "ro")
            return [Mount(type="bind", source=os.path.join(info.location, "fs"), options=options)]
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
            lowers = [os.path.join(p.location, "fs") for p in self.chain(key)]
            if len(lowers) == 1:
                return [Mount(type="bind", source=lowers[0], options=("rbind", "ro"))]
            options = (f"lowerdir={':'.join(lowers)}",)
        if len(",".join(options)) > _MOUNT_DATA_MAX:
            raise Unsupported(
                f"image has too many layers ({len(lowers)}) for one overlay mount here; "
                "squash the image or use the copy snapshot driver"
            )
        return [Mount(type="overlay", source="overlay", options=options)]

    # --- removal --------------------------------------------------------------------------------

    def remove(self, key: str) -> None:
        """Remove snapshot ``key`` and its files. ``Conflict`` while other snapshots build on it.

        The caller makes sure nothing is mounted from it.
        """
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
        """Remove temp dirs of writers that are gone, and snapshot dirs no row knows; returns how many."""
        removed = 0
        with os.scandir(self._tmp) as entries:
            for entry in entries:
                owner = owners.parse_owner(entry.name)
                if owner is not None and owners.is_alive(*owner):
                    continue
                remove_tree(entry.path)
                removed += 1
        doomed: list[str] = []
        # Inside a write transaction: commit/prepare rename a dir into place inside theirs, so a
        # dir without a row seen here really is a leftover, not a snapshot being made right now.
        with self.db.transaction():
            known = {os.path.basename(r[0]) for r in self.db.query("SELECT path FROM snapshots")}
            for kind in (COMMITTED, ACTIVE):
                with os.scandir(os.path.join(self._dir, kind)) as entries:
                    for entry in entries:
                        if entry.name not in known:
                            # renamed into place by a transaction that then rolled back (crash)
                            target = os.path.join(self._tmp, owners.owner_tag())
                            os.rename(entry.path, target)
                            doomed.append(target)
        for path in doomed:
            remove_tree(path)
        return removed + len(doomed)


# --- applying mounts (used by the engine and tests; needs root) --------------------------------


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
            if e.errno in (22, 2):  # EINVAL: not a mount point (any more); ENOENT: gone
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
