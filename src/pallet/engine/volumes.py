"""Volumes: named and anonymous data directories that outlive containers (``pallet volume ...``).

A volume is a row in ``<root>/pallet.db`` (the ``VOLUMES`` tables of
``pallet.engine.db``) and a directory
``<root>/volumes/<name>/_data`` that containers mount. Only the ``local``
driver exists; its data lives on the host's disk, as docker's does.

Contracts:

- ``use(name, container)`` records that a container mounts the volume and
  ``release(container)`` forgets it; a volume with users is never removed
  (``Conflict`` naming them). Usage rows are the truth; counts are computed.
- ``create`` is idempotent for a name: a second create returns the existing
  volume. The directory is made before the row is committed, so a row never
  points at a missing directory; a directory without a row (a crash between
  the two) is reused by the next create of that name.
- Removal deletes the row and renames the directory into
  ``<root>/volumes/.trash/`` inside one transaction, then deletes the files:
  a crash leaves only trash, which the next ``VolumeStore.open`` clears.
- ``seed(name, source)`` copies an image's files into a volume once, when the
  volume is still empty, keeping owners, modes, xattrs, links and device nodes
  (docker's "copy on first mount"); it holds a per-volume lock so two
  containers starting at once seed it once.
"""

from __future__ import annotations

import os
import time
import types

from pallet.engine import events
from pallet.engine.db import VOLUMES, EngineDB
from pallet.errors import Conflict, InvalidArgument, NotFound, SystemError_, Unsupported
from pallet.image import owners
from pallet.image.metadata import FileLock
from pallet.linux.trees import disk_usage
from pallet.oci.jsonfast import dumps, loads
from pallet.oci.record import EMPTY, Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterable, Mapping
    from typing import Self

    from pallet.database import Database

__all__ = [
    "ANONYMOUS_LABEL",
    "LOCAL",
    "Volume",
    "VolumeFilters",
    "VolumeStore",
    "check_driver",
    "check_name",
]

LOCAL = "local"
#: the label docker puts on volumes it makes for ``-v /path`` and image ``VOLUME``s
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def check_name(name: str) -> None:
    """Docker's rule for local volume names, with docker's wording."""
    if len(name) < 2 or name[0] not in _ALNUM or not set(name) <= _NAME_CHARS:
        raise InvalidArgument(
            f'create {name}: "{name}" includes invalid characters for a local volume name, '
            'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. '
            "If you intended to pass a host directory, use absolute path"
        )


def check_driver(driver: str, options: Mapping[str, str] | None) -> None:
    """Only the ``local`` driver, without options, exists here; docker's words otherwise."""
    if driver != LOCAL:
        raise NotFound(f'error looking up volume plugin {driver}: plugin "{driver}" not found')
    if options:
        # the local driver's options mount a device or tmpfs at each use; pallet has no such mounts yet
        raise Unsupported(
            f"volume driver options ({', '.join(sorted(options))}) are not supported by pallet's "
            "local driver; create the volume without --opt, or bind-mount a host directory with -v"
        )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Volume(Record):
    """A volume as ``pallet volume inspect`` shows it."""

    name: str
    driver: str = LOCAL
    mountpoint: str
    created_at: str
    labels: Mapping[str, str] = EMPTY
    options: Mapping[str, str] = EMPTY
    anonymous: bool = False
    #: ids of the containers that mount it
    users: tuple[str, ...] = ()

    @property
    def dangling(self) -> bool:
        return not self.users

    def to_inspect(self) -> dict[str, object]:
        """The docker-shaped ``volume inspect`` object."""
        return {
            "CreatedAt": self.created_at,
            "Driver": self.driver,
            "Labels": dict(self.labels),
            "Mountpoint": self.mountpoint,
            "Name": self.name,
            "Options": dict(self.options) if self.options else None,
            "Scope": "local",
        }


class VolumeFilters:
    """``--filter`` of ``volume ls``/``prune``: ``name=`` (substring), ``label=KEY[=VALUE]``,
    ``label!=KEY[=VALUE]``, ``dangling=true|false``, ``driver=``. Repeated keys: any may match;
    different keys: all must match (docker's rule)."""

    _KEYS = ("dangling", "driver", "label", "label!", "name")

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.by_key: dict[str, list[str]] = {}
        for value in values:
            key, sep, arg = value.partition("=")
            key = key.strip().lower()
            if not sep:
                raise InvalidArgument(f'bad format of filter "{value}" (expected name=value)')
            if key not in self._KEYS:
                raise InvalidArgument(f'invalid filter "{key}"; volume filters are {", ".join(self._KEYS)}')
            if key == "dangling" and arg.lower() not in ("true", "false", "1", "0"):
                raise InvalidArgument(f'invalid filter "dangling={arg}": use true or false')
            self.by_key.setdefault(key, []).append(arg)

    @staticmethod
    def _label_matches(labels: Mapping[str, str], want: str) -> bool:
        key, sep, value = want.partition("=")
        return key in labels and (not sep or labels[key] == value)

    def matches(self, volume: Volume) -> bool:
        for key, wanted in self.by_key.items():
            if key == "name":
                ok = any(w in volume.name for w in wanted)
            elif key == "driver":
                ok = volume.driver in wanted
            elif key == "dangling":
                ok = any(volume.dangling == (w.lower() in ("true", "1")) for w in wanted)
            elif key == "label":
                ok = all(self._label_matches(volume.labels, w) for w in wanted)
            else:  # label!
                ok = not any(self._label_matches(volume.labels, w) for w in wanted)
            if not ok:
                return False
        return True


def _copy_tree(source: str, target: str) -> None:
    """``cp -a source/. target``: contents and the top directory's owner and mode, links kept as links."""
    import subprocess  # only when seeding: keeps ``pallet run``'s imports small

    result = subprocess.run(
        ["cp", "-a", "--", f"{source}/.", target],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemError_(
            "copy image content into volume "
            f"{os.path.basename(os.path.dirname(target))}: {result.stderr.strip()}",
            5,
        )


class VolumeStore:
    """The volumes under one pallet root. Open with ``VolumeStore.open(root)``; use as a context manager.

    Paths are strings (``root``, ``dir``, ``trash``, ``data_path``): ``pathlib``
    costs ~20 ms on every ``pallet run``, which opens this store.
    """

    def __init__(self, root: str | os.PathLike[str], db: Database, *, owns_db: bool = True) -> None:
        self.root = os.fspath(root)
        self.dir = os.path.join(self.root, "volumes")
        self.trash = os.path.join(self.dir, ".trash")
        self.db = db
        self._owns_db = owns_db

    @classmethod
    def open(cls, root: str | os.PathLike[str], *, db: Database | None = None) -> Self:
        """Open (creating if needed) the volumes of ``root``, clearing what crashed removals left.

        ``db``: the root's database already open (the engine's), shared rather
        than opened again and left open by ``close``.
        """
        root = os.fspath(root)
        volumes = os.path.join(root, "volumes")
        os.makedirs(os.path.join(volumes, ".trash"), exist_ok=True)
        os.chmod(volumes, 0o701)  # others may traverse to a mounted _data, not list names
        owns_db = db is None
        if db is None:
            db = EngineDB(root)
        else:
            db.ensure(VOLUMES)
        store = cls(root, db, owns_db=owns_db)
        try:
            store._clear_trash()
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        if self._owns_db:
            self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- paths ---------------------------------------------------------------------------------

    def data_path(self, name: str) -> str:
        """The directory containers mount (``Mountpoint``)."""
        return os.path.join(self.dir, name, "_data")

    # --- creating ------------------------------------------------------------------------------

    def create(
        self,
        name: str | None = None,
        *,
        driver: str = LOCAL,
        labels: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
    ) -> Volume:
        """Create a volume (a random 64-hex name if ``name`` is None: anonymous); idempotent per name."""
        check_driver(driver, options)
        anonymous = name is None
        if name is None:
            name = os.urandom(32).hex()
            labels = {ANONYMOUS_LABEL: "", **(labels or {})}
        check_name(name)
        existing = self._find(name)
        if existing is not None:
            return existing
        os.makedirs(self.data_path(name), exist_ok=True)
        with self.db.transaction() as conn:
            made = conn.execute(
                """INSERT OR IGNORE INTO volumes(name, driver, created, labels, options, anonymous)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                (name, driver, _now(), dumps(dict(labels or {})), "{}", int(anonymous)),
            ).rowcount
        if made:  # not when a concurrent create of the same name won
            events.append(self.root, "volume", "create", name, {"driver": driver})
        return self.get(name)

    def seed(self, name: str, source: str) -> bool:
        """Copy the directory ``source`` into the volume if the volume is empty; True if copied.

        ``source`` is a trusted host path (the caller resolved it inside the
        container's root, e.g. ``/proc/self/fd/N`` of an fd opened with
        ``open_in_root``). Copying is ``cp -a``: owners, modes, xattrs,
        symlinks as symlinks, hard links and device nodes are kept.
        """
        volume = self.get(name)
        data = volume.mountpoint
        with FileLock(os.path.join(self.dir, name, "seed.lock")).held():
            if os.listdir(data):
                return False
            _copy_tree(source, data)
        return True

    # --- looking up ----------------------------------------------------------------------------

    def _find(self, name: str) -> Volume | None:
        rows = self.db.query("SELECT * FROM volumes WHERE name = ?", (name,))
        return self._volume(rows[0]) if rows else None

    def get(self, name: str) -> Volume:
        """The volume ``name``; ``NotFound`` says ``no such volume: NAME``."""
        found = self._find(name)
        if found is None:
            raise NotFound(f"no such volume: {name}")
        return found

    def list_volumes(self, filters: VolumeFilters | None = None) -> list[Volume]:
        """Every volume matching ``filters``, by name."""
        found = [self._volume(r) for r in self.db.query("SELECT * FROM volumes ORDER BY name")]
        return [v for v in found if filters is None or filters.matches(v)]

    def users(self, name: str) -> list[str]:
        rows = self.db.query("SELECT holder FROM volume_users WHERE name = ? ORDER BY holder", (name,))
        return [r[0] for r in rows]

    def used_by(self, container: str) -> list[str]:
        """Names of the volumes ``container`` uses."""
        rows = self.db.query("SELECT name FROM volume_users WHERE holder = ? ORDER BY name", (container,))
        return [r[0] for r in rows]

    def _volume(self, row: sqlite3.Row) -> Volume:
        return Volume(
            name=row["name"],
            driver=row["driver"],
            mountpoint=self.data_path(row["name"]),
            created_at=row["created"],
            labels=types.MappingProxyType(loads(row["labels"])),  # type: ignore[arg-type]  # a JSON object
            options=types.MappingProxyType(loads(row["options"])),  # type: ignore[arg-type]  # a JSON object
            anonymous=bool(row["anonymous"]),
            users=tuple(self.users(row["name"])),
        )

    # --- users (containers) --------------------------------------------------------------------

    def use(self, name: str, container: str) -> None:
        """Record that ``container`` mounts volume ``name``; idempotent. ``NotFound`` if no such volume."""
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM volumes WHERE name = ?", (name,)).fetchone() is None:
                raise NotFound(f"no such volume: {name}")
            conn.execute("INSERT OR IGNORE INTO volume_users(name, holder) VALUES (?, ?)", (name, container))

    def release(self, container: str, *, remove_anonymous: bool = False) -> list[str]:
        """``container`` mounts no volume any more; idempotent. Returns the volumes removed.

        With ``remove_anonymous`` (``rm -v``), its anonymous volumes that no
        other container uses are removed too, as docker does; named ones stay.
        """
        doomed: list[str] = []
        removed: list[str] = []
        with self.db.transaction() as conn:
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM volume_users WHERE holder = ? ORDER BY name", (container,)
                )
            ]
            conn.execute("DELETE FROM volume_users WHERE holder = ?", (container,))
            if remove_anonymous:
                for name in names:
                    row = conn.execute(
                        """SELECT anonymous, (SELECT count(*) FROM volume_users u WHERE u.name = v.name)
                           FROM volumes v WHERE name = ?""",
                        (name,),
                    ).fetchone()
                    if row is not None and row[0] and row[1] == 0:
                        doomed.append(self._unlink(conn, name))
                        removed.append(name)
        self._destroyed(removed)
        self._delete(doomed)
        return removed

    # --- removing ------------------------------------------------------------------------------

    def remove(self, name: str, *, force: bool = False) -> None:
        """Remove volume ``name`` and its data. ``Conflict`` while a container uses it.

        ``force`` only makes a missing volume not an error, as ``docker volume rm -f``.
        """
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM volumes WHERE name = ?", (name,)).fetchone() is None:
                if force:
                    return
                raise NotFound(f"no such volume: {name}")
            users = [
                r[0]
                for r in conn.execute(
                    "SELECT holder FROM volume_users WHERE name = ? ORDER BY holder", (name,)
                )
            ]
            if users:
                raise Conflict(
                    f"remove {name}: volume is in use - [{', '.join(users)}]; "
                    "remove the container(s) first (pallet rm)"
                )
            doomed = self._unlink(conn, name)
        self._destroyed([name])
        self._delete([doomed])

    def prune(self, *, all: bool = False, filters: VolumeFilters | None = None) -> tuple[list[str], int]:
        """Remove unused volumes (anonymous ones only, unless ``all``); returns (names, bytes freed)."""
        doomed: list[str] = []
        removed: list[str] = []
        freed = 0
        with self.db.transaction() as conn:
            for volume in self.list_volumes(filters):
                if volume.users or (not all and not volume.anonymous):
                    continue
                freed += disk_usage(volume.mountpoint)
                doomed.append(self._unlink(conn, volume.name))
                removed.append(volume.name)
        self._destroyed(removed)
        self._delete(doomed)
        events.prune_event(self.root, "volume", freed)
        return removed, freed

    def _unlink(self, conn: sqlite3.Connection, name: str) -> str:
        """Inside a transaction: drop the row and move the directory to the trash; returns the trash path."""
        conn.execute("DELETE FROM volumes WHERE name = ?", (name,))
        target = os.path.join(self.trash, owners.owner_tag())
        try:  # noqa: SIM105 - contextlib.suppress would import contextlib on ``pallet run``
            os.rename(os.path.join(self.dir, name), target)
        except FileNotFoundError:
            pass
        return target

    def _destroyed(self, names: list[str]) -> None:
        """docker's ``destroy`` events, once the removals are committed."""
        for name in names:
            events.append(self.root, "volume", "destroy", name, {"driver": LOCAL})

    def _delete(self, paths: list[str]) -> None:
        if not paths:
            return
        import shutil  # only when something is removed: ``pallet run`` opens this store

        for path in paths:
            shutil.rmtree(path, ignore_errors=True)

    def _clear_trash(self) -> None:
        with os.scandir(self.trash) as entries:
            for entry in entries:
                owner = owners.parse_owner(entry.name)
                if owner is not None and owners.is_alive(*owner):
                    continue  # a removal in progress in another process
                import shutil  # only with trash left by a crash: ``pallet run`` opens this store

                shutil.rmtree(entry.path, ignore_errors=True)
