"""Image metadata in SQLite (``<root>/images.db``): images, references, layers, snapshots, users.

The schema is versioned with ``PRAGMA user_version`` and brought up to date by
``MIGRATIONS``, applied in order, each in its own transaction; a database
written by a newer pallet is refused rather than guessed at. The database is
in WAL mode with a busy timeout, and every write runs in ``BEGIN IMMEDIATE``
(``transaction()``), so concurrent pallet processes serialise instead of
failing. Operations that touch files *and* rows also hold ``FileLock`` (see
``store``), because a SQLite transaction cannot cover the file system.

Counts such as a layer's users are computed by queries, never stored, so
they cannot drift after a crash.
"""

from __future__ import annotations

import fcntl
import os

from pallet.errors import FailedPrecondition, Unavailable

__all__ = ["MIGRATIONS", "FileLock", "MetadataDB", "migrate"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
else:  # the C module that sqlite3 re-exports: sqlite3's dbapi2 imports datetime (~3 ms) for adapters we never use
    import _sqlite3 as sqlite3
if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

#: how long a writer waits for another process's transaction, in milliseconds
BUSY_TIMEOUT_MS = 60_000

_V1 = """
CREATE TABLE images (
    id                  TEXT PRIMARY KEY,        -- config digest
    manifest_digest     TEXT NOT NULL,
    manifest_media_type TEXT NOT NULL,
    config_media_type   TEXT NOT NULL,
    index_digest        TEXT,                    -- the index / manifest list it was chosen from
    created             TEXT,                    -- from the config
    added               REAL NOT NULL,           -- unix time it was stored
    size                INTEGER NOT NULL,        -- sum of layer blob sizes
    os                  TEXT NOT NULL,
    architecture        TEXT NOT NULL,
    variant             TEXT
);
CREATE INDEX images_manifest ON images(manifest_digest);

CREATE TABLE refs (
    name       TEXT PRIMARY KEY,                 -- canonical: repo:tag or repo@digest
    repository TEXT NOT NULL,
    tag        TEXT,
    digest     TEXT,
    image_id   TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    added      REAL NOT NULL
);
CREATE INDEX refs_image ON refs(image_id);

CREATE TABLE layers (
    chain_id          TEXT PRIMARY KEY,
    diff_id           TEXT NOT NULL,
    parent            TEXT,                      -- parent chain id
    uncompressed_size INTEGER,                   -- known once unpacked
    snapshot_key      TEXT                       -- committed snapshot holding it, once unpacked
);

CREATE TABLE image_layers (
    image_id        TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,
    chain_id        TEXT NOT NULL REFERENCES layers(chain_id),
    blob_digest     TEXT NOT NULL,
    media_type      TEXT NOT NULL,
    compressed_size INTEGER NOT NULL,
    PRIMARY KEY (image_id, position)
);
CREATE INDEX image_layers_chain ON image_layers(chain_id);
CREATE INDEX image_layers_blob ON image_layers(blob_digest);

CREATE TABLE snapshots (
    key     TEXT PRIMARY KEY,
    parent  TEXT REFERENCES snapshots(key),
    kind    TEXT NOT NULL CHECK (kind IN ('committed', 'active')),
    path    TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX snapshots_parent ON snapshots(parent);

CREATE TABLE image_users (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    holder   TEXT NOT NULL,                      -- e.g. a container id
    PRIMARY KEY (image_id, holder)
);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- how many images use each layer: computed, so it cannot drift
CREATE VIEW layer_usage AS
    SELECT l.chain_id, count(il.image_id) AS images
    FROM layers l LEFT JOIN image_layers il ON il.chain_id = l.chain_id
    GROUP BY l.chain_id;
"""

#: ordered schema migrations; entry i takes the schema from version i to i + 1. Append, never edit.
MIGRATIONS: tuple[str, ...] = (_V1,)


def migrate(conn: sqlite3.Connection, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Bring the schema to ``len(migrations)``; returns the version found before. Safe to race.

    Each step runs in ``BEGIN IMMEDIATE`` and re-reads the version inside the
    transaction, so two processes opening a new store apply each step once.
    """
    target = len(migrations)
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > target:
        raise FailedPrecondition(
            f"the image database is at schema version {found}, newer than this pallet knows ({target}); "
            "upgrade pallet or use another --root"
        )
    if found == target:  # the usual case: no write lock taken on every open
        return int(found)
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version >= target:
                conn.execute("COMMIT")
                return int(found)
            for statement in _statements(migrations[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _statements(script: str) -> list[str]:
    """Split a migration into statements (``executescript`` would commit our transaction)."""
    out: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                out.append(current)
            current = ""
    if current.strip():
        out.append(current)
    return out


class MetadataDB:
    """A connection to the image database; one per process and thread."""

    def __init__(self, path: str | os.PathLike[str], migrations: Sequence[str] = MIGRATIONS) -> None:
        self.path = os.fspath(path)
        try:
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves
            self.conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.Error as e:
            raise Unavailable(f"cannot open the image database {path}: {e}") from None
        self.conn.row_factory = sqlite3.Row
        self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self._enable_wal()
        # NORMAL is safe in WAL mode against process crashes (kill -9); only power loss may drop the last commit
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA foreign_keys = ON")
        migrate(self.conn, migrations)

    def _enable_wal(self) -> None:
        """Switch a new database to WAL, once, whatever the number of processes opening it.

        The switch needs an exclusive lock that SQLite does not wait for, so
        concurrent first opens (30 ``pallet run`` at once on a new root) would
        fail with "database is locked": they take turns on a lock file instead,
        and a rare refusal from a reader at that moment is retried.
        """
        import time

        lock = FileLock(self.path + ".init-lock")
        lock.acquire()
        try:
            for _ in range(200):
                try:
                    self.conn.execute("PRAGMA journal_mode = WAL")
                    return
                except sqlite3.OperationalError as e:
                    if "locked" not in str(e):
                        raise
                    time.sleep(0.05)
            raise Unavailable(f"cannot switch {self.path} to WAL: the database stays locked")
        finally:
            lock.release()

    def close(self) -> None:
        self.conn.close()

    @property
    def version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def transaction(self) -> _Transaction:
        """A write transaction (``BEGIN IMMEDIATE``): committed on success, rolled back on any error.

        Use as ``with db.transaction() as conn:``. Nested use joins the outer transaction.
        """
        return _Transaction(self.conn)

    def query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def setting(self, name: str) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])


class _Transaction:
    """What ``MetadataDB.transaction`` returns (a class, not ``contextlib``: that import costs ~5 ms)."""

    __slots__ = ("_conn", "_outer")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._outer = False

    def __enter__(self) -> sqlite3.Connection:
        self._outer = not self._conn.in_transaction
        if self._outer:
            self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._outer:
            self._conn.execute("ROLLBACK" if kind is not None else "COMMIT")


class FileLock:
    """An fcntl lock on a file: exclusive for writers, shared for leases; re-entrant within one object.

    flock locks belong to the open file, so two ``FileLock`` objects on the
    same path exclude each other even inside one process. Re-entry keeps the
    mode first taken: use separate objects for shared and exclusive holds.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path
        self._fd: int | None = None
        self._depth = 0

    def acquire(self, *, shared: bool = False, blocking: bool = True) -> bool:
        """Take the lock; with ``blocking=False`` returns False instead of waiting."""
        if self._fd is not None:
            self._depth += 1
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        flags = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if blocking else fcntl.LOCK_NB)
        try:
            fcntl.flock(fd, flags)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._depth = 1
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        self._depth -= 1
        if self._depth == 0:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def held(self, *, shared: bool = False) -> _Held:
        """The lock as a context manager: ``with lock.held():``."""
        return _Held(self, shared)


class _Held:
    __slots__ = ("_lock", "_shared")

    def __init__(self, lock: FileLock, shared: bool) -> None:
        self._lock = lock
        self._shared = shared

    def __enter__(self) -> None:
        self._lock.acquire(shared=self._shared)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._lock.release()
