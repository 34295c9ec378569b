"""The store's one SQLite database, ``<root>/pallet.db``: opening it, its pragmas, its schema versions.

Every layer that keeps rows (image, engine; network and IPAM later) keeps
them in this one file, so a container, the image it holds and its volumes can
change in one transaction. Each layer still owns its tables: it declares them
as a ``Schema`` (an owner name and that owner's ordered steps; append, never
edit) next to the code that uses them, and this module, below every such
layer, opens the file and brings the schemas it is handed up to date.

One sequence, per-owner positions. The file records how far each owner's
steps have run in a table ``schema_versions(owner, version)``, not in one
``PRAGMA user_version``. A single global list would need whoever opens the
file to know every layer's steps: the image layer, usable on its own
(``ImageStore.open``), cannot know the engine's, and must not import it.
Instead, the opener applies the owners it is given in the order given —
lower layers first (``EngineDB`` hands image, containers, volumes) — so the
whole is still one ordered sequence: a step may use the tables of an owner
listed before it, never after. Owners never named in one open are simply not
created yet; a later open that names them adds them.

Opening (``Database(path, schemas)``):

- The connection is in WAL mode with a busy timeout; every write runs in
  ``BEGIN IMMEDIATE`` (``transaction()``), so concurrent pallet processes
  serialise instead of failing. ``synchronous = NORMAL``, foreign keys on.
- The schema check is one read of ``schema_versions`` and one ``stat`` per
  old-layout file: an up-to-date database takes no write lock (the
  ``pallet run`` hot path). Anything else — a new file, missing steps, or a
  file of the previous layout still beside it — goes to
  ``pallet.database.migrations`` (imported only then), which applies every
  missing step and imports the previous layout's files in one transaction.
- A database whose owner is at a version newer than the steps given is
  refused (``FailedPrecondition``) rather than guessed at.

Operations that touch files *and* rows also hold a file lock (the image
store's ``FileLock``), because a SQLite transaction cannot cover the file
system.
"""

from __future__ import annotations

import os

from pallet.errors import Unavailable

__all__ = ["BUSY_TIMEOUT_MS", "FILENAME", "Database", "Legacy", "Schema"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
else:  # the C module that sqlite3 re-exports: sqlite3's dbapi2 imports datetime (~3 ms) for adapters we never use
    import _sqlite3 as sqlite3
if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

#: the database's name under a pallet root
FILENAME = "pallet.db"
#: how long a writer waits for another process's transaction, in milliseconds
BUSY_TIMEOUT_MS = 60_000


class Legacy:
    """Where an owner's rows lived in the previous layout: its own file beside ``pallet.db``.

    ``file`` (a name in the same directory) at ``PRAGMA user_version``
    ``version``, whose schema is the owner's first ``version`` steps; the
    ``tables`` listed are copied, in that order, when the owner is created.
    """

    __slots__ = ("file", "tables", "version")

    def __init__(self, *, file: str, version: int, tables: tuple[str, ...]) -> None:
        self.file = file
        self.version = version
        self.tables = tables


class Schema:
    """One owner's tables: its name and its ordered steps (step i takes version i to i + 1)."""

    __slots__ = ("legacy", "owner", "steps")

    def __init__(self, *, owner: str, steps: tuple[str, ...], legacy: Legacy | None = None) -> None:
        self.owner = owner
        self.steps = steps
        self.legacy = legacy


class Database:
    """A connection to one pallet database; one per process and thread (several stores may share it)."""

    def __init__(self, path: str | os.PathLike[str], schemas: Sequence[Schema] = ()) -> None:
        self.path = os.fspath(path)
        try:
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves
            self.conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.Error as e:
            raise Unavailable(f"cannot open the database {self.path}: {e}") from None
        self.conn.row_factory = sqlite3.Row
        try:
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self._enable_wal()
            # NORMAL is safe in WAL mode against process crashes (kill -9); only power loss may drop the last commit
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self._versions: dict[str, int] | None = None
            self.ensure(*schemas)
        except BaseException:
            self.conn.close()
            raise

    @classmethod
    def at(cls, root: str, schemas: Sequence[Schema] = ()) -> Database:
        """The database of the pallet root ``root`` (created with the directory if missing)."""
        os.makedirs(root, exist_ok=True)
        return cls(os.path.join(root, FILENAME), schemas)

    def ensure(self, *schemas: Schema) -> None:
        """Bring ``schemas`` (lower layers first) up to date; without a write lock when they are.

        Idempotent and safe to race: the migration re-reads every version
        inside its write transaction.
        """
        versions = self._versions
        if versions is None:
            versions = self._versions = self._read_versions()
        for schema in schemas:
            if versions.get(schema.owner, 0) != len(schema.steps):
                break
            if schema.legacy is not None and os.path.exists(self.beside(schema.legacy.file)):
                break  # an old-layout file left by an import that crashed before removing it
        else:
            return
        from pallet.database.migrations import migrate

        self._versions = migrate(self, schemas)

    def _read_versions(self) -> dict[str, int]:
        try:
            rows = self.conn.execute("SELECT owner, version FROM schema_versions").fetchall()
        except sqlite3.OperationalError:
            return {}  # a new file: the migration creates the table (and reports any other error)
        return {str(owner): int(version) for owner, version in rows}

    def version(self, owner: str) -> int:
        """How many of ``owner``'s steps this database has (0: none, or unknown owner)."""
        if self._versions is None:
            self._versions = self._read_versions()
        return self._versions.get(owner, 0)

    def beside(self, name: str) -> str:
        """The path of ``name`` in the database's directory."""
        return os.path.join(os.path.dirname(self.path), name)

    def _enable_wal(self) -> None:
        """Switch a new database to WAL, once, whatever the number of processes opening it.

        The switch needs an exclusive lock that SQLite does not wait for, so
        concurrent first opens (30 ``pallet run`` at once on a new root) would
        fail with "database is locked": they take turns on a lock file instead,
        and a rare refusal from a reader at that moment is retried.
        """
        import fcntl
        import time

        fd = os.open(self.path + ".init-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
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
            os.close(fd)  # closing drops the flock

    def close(self) -> None:
        self.conn.close()

    def transaction(self) -> _Transaction:
        """A write transaction (``BEGIN IMMEDIATE``): committed on success, rolled back on any error.

        Use as ``with db.transaction() as conn:``. Nested use joins the outer
        transaction, so stores sharing this connection change together.
        """
        return _Transaction(self.conn)

    def query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()


class _Transaction:
    """What ``Database.transaction`` returns (a class, not ``contextlib``: that import costs ~5 ms)."""

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
