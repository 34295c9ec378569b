"""Container records: the rows of ``pallet.db`` and the ``container.json`` document beside each bundle.

The database row holds what changes (state, pids, exit code, name); the
``<root>/containers/<id>/container.json`` document holds what was decided at
create time, in docker's ``inspect`` shape (``Config``, ``HostConfig``,
``Path``, ``Args``, ``Mounts``), written atomically once.

Lookups follow docker: a full id, then an exact name (with or without the
leading ``/``), then a unique id prefix. An unknown reference is
``NotFound("No such container: x")``.
"""

from __future__ import annotations

import _json
import os

from pallet.errors import Conflict, InvalidArgument, NotFound
from pallet.linux.atomicfile import write_atomic
from pallet.oci.jsonfast import dumps, loads
from pallet.oci.record import EMPTY, Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
else:  # the C module that sqlite3 re-exports: sqlite3's dbapi2 imports datetime (~3 ms) for adapters we never use
    import _sqlite3 as sqlite3
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from pallet.engine.db import EngineDB

__all__ = [
    "ACTIVE_STATES",
    "ContainerRecord",
    "ContainerStore",
    "DocumentCache",
    "dumps_compact",
    "name_conflict",
    "read_document",
    "write_document",
]

#: states in which a shim is expected to be alive
ACTIVE_STATES = frozenset({"running", "paused", "restarting"})

_COLUMNS = (
    "id",
    "name",
    "image_id",
    "image",
    "created",
    "state",
    "owner",
    "runtime",
    "pid",
    "shim_pid",
    "shim_start",
    "exit_code",
    "started_at",
    "finished_at",
    "oom_killed",
    "restart_count",
    "labels",
)


class ContainerRecord(Record):
    """One container as ``pallet.db`` knows it."""

    id: str
    name: str
    image_id: str
    image: str
    created: float
    state: str
    owner: str | None = None
    runtime: str
    pid: int = 0
    shim_pid: int = 0
    shim_start: int = 0
    exit_code: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    oom_killed: bool = False
    restart_count: int = 0
    labels: Mapping[str, str] = EMPTY

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def running(self) -> bool:
        return self.state in ACTIVE_STATES


def name_conflict(name: str, holder: str) -> Conflict:
    """Docker's words for a taken name."""
    return Conflict(
        f'the container name "/{name}" is already in use by container "{holder}". '
        "You have to remove (or rename) that container to be able to reuse that name."
    )


def _from_row(row: sqlite3.Row) -> ContainerRecord:
    return ContainerRecord(
        id=row["id"],
        name=row["name"],
        image_id=row["image_id"],
        image=row["image"],
        created=row["created"],
        state=row["state"],
        owner=row["owner"],
        runtime=row["runtime"],
        pid=row["pid"],
        shim_pid=row["shim_pid"],
        shim_start=row["shim_start"],
        exit_code=row["exit_code"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        oom_killed=bool(row["oom_killed"]),
        restart_count=row["restart_count"],
        labels=loads(row["labels"]),  # type: ignore[arg-type]  # written by insert: an object of strings
    )


class ContainerStore:
    """Container rows of one ``pallet.db``; every write is one ``BEGIN IMMEDIATE`` transaction."""

    def __init__(self, db: EngineDB) -> None:
        self.db = db

    def insert(self, record: ContainerRecord) -> None:
        """Add a new container; ``Conflict`` (docker's wording) if its name is taken."""
        values = [getattr(record, c) for c in _COLUMNS]
        values[_COLUMNS.index("labels")] = dumps(dict(sorted(record.labels.items())))
        values[_COLUMNS.index("oom_killed")] = int(record.oom_killed)
        try:
            with self.db.transaction() as conn:
                conn.execute(
                    f"INSERT INTO containers({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                    values,
                )
        except sqlite3.IntegrityError:
            holder = self.db.query("SELECT id FROM containers WHERE name = ?", (record.name,))
            if holder:
                raise name_conflict(record.name, holder[0][0]) from None
            raise

    def update(self, container_id: str, **fields: object) -> ContainerRecord:
        """Change some columns of a container; returns the new record. ``NotFound`` if it is gone."""
        for key in fields:
            if key not in _COLUMNS or key in ("id", "name"):
                raise InvalidArgument(f"cannot update container column {key!r}")
        values = [int(v) if isinstance(v, bool) else v for v in fields.values()]
        with self.db.transaction() as conn:
            done = conn.execute(
                f"UPDATE containers SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
                (*values, container_id),
            )
            if done.rowcount == 0:
                raise NotFound(f"No such container: {container_id}")
        return self.by_id(container_id)

    def rename(self, container_id: str, new_name: str) -> None:
        """Give a container another name; ``Conflict`` if it is taken."""
        try:
            with self.db.transaction() as conn:
                conn.execute("UPDATE containers SET name = ? WHERE id = ?", (new_name, container_id))
        except sqlite3.IntegrityError:
            holder = self.db.query("SELECT id FROM containers WHERE name = ?", (new_name,))
            if holder:
                raise name_conflict(new_name, holder[0][0]) from None
            raise

    def delete(self, container_id: str) -> None:
        """Forget a container (its volume usages go with it); idempotent."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM containers WHERE id = ?", (container_id,))

    def name_taken(self, name: str) -> bool:
        return bool(self.db.query("SELECT 1 FROM containers WHERE name = ?", (name,)))

    def by_id(self, container_id: str) -> ContainerRecord:
        rows = self.db.query("SELECT * FROM containers WHERE id = ?", (container_id,))
        if not rows:
            raise NotFound(f"No such container: {container_id}")
        return _from_row(rows[0])

    def find(self, ref: str) -> ContainerRecord | None:
        """The container ``ref`` names (full id, name, unique id prefix), or None."""
        text = ref[1:] if ref.startswith("/") else ref
        if not text:
            return None
        rows = self.db.query("SELECT * FROM containers WHERE id = ? OR name = ?", (text, text))
        if rows:
            # an exact id wins over a name that happens to look like one
            rows.sort(key=lambda r: r["id"] != text)
            return _from_row(rows[0])
        if all(c in "0123456789abcdef" for c in text):
            rows = self.db.query(
                "SELECT * FROM containers WHERE substr(id, 1, ?) = ? LIMIT 2", (len(text), text)
            )
            if len(rows) > 1:
                raise InvalidArgument(
                    f'multiple containers found with provided prefix "{text}"; give more characters'
                )
            if rows:
                return _from_row(rows[0])
        return None

    def get(self, ref: str) -> ContainerRecord:
        found = self.find(ref)
        if found is None:
            raise NotFound(f"No such container: {ref}")
        return found

    def list(self) -> list[ContainerRecord]:
        """Every container, newest first (as ``ps`` lists them)."""
        return [_from_row(r) for r in self.db.query("SELECT * FROM containers ORDER BY created DESC, id")]


def _not_serializable(obj: object) -> object:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


# What json.dumps(obj, separators=(",", ":")) runs: the C encoder, ASCII escapes,
# no indent, unsorted, NaN allowed (pallet.oci.jsonfast offers only the default separators).
_encode_compact = _json.make_encoder(
    {}, _not_serializable, _json.encode_basestring_ascii, None, ":", ",", False, False, True
)


def dumps_compact(document: object) -> str:
    """``json.dumps(document, separators=(",", ":"))`` without importing ``json`` (and ``re``)."""
    return "".join(_encode_compact(document, 0))


def write_document(path: str, document: Mapping[str, Any]) -> None:
    """Write ``container.json`` atomically (temp file, fsync, rename)."""
    write_atomic(path, dumps_compact(document).encode())


def read_document(path: str) -> dict[str, Any]:
    """The ``container.json`` of a container (empty if missing: a half-created container)."""
    try:
        with open(path, "rb") as f:
            found = loads(f.read())
    except FileNotFoundError:
        return {}
    return found if isinstance(found, dict) else {}


class DocumentCache:
    """``container.json`` documents kept while their file is unchanged (same inode, size and mtime;
    ``write_document`` renames a new file in): a long-lived reader, the API service listing
    containers, reads each once and then only stats it. What ``read`` returns is shared: read only.
    Safe across threads (single dict operations under the GIL)."""

    #: entries kept at most; past it the cache starts over (containers come and go)
    LIMIT = 4096

    def __init__(self) -> None:
        self._entries: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}

    def read(self, path: str) -> Mapping[str, Any]:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return {}
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        hit = self._entries.get(path)
        if hit is not None and hit[0] == key:
            return hit[1]
        # a file replaced between the stat and this read is cached under the old key: the next stat misses
        document = read_document(path)
        if len(self._entries) >= self.LIMIT:
            self._entries.clear()
        self._entries[path] = (key, document)
        return document
