"""Bringing ``pallet.db`` up to date: schema steps, and the import of the previous layout's files.

Loaded only when ``Database.ensure`` finds something to do, never on an
up-to-date store.

``migrate`` runs everything missing in **one** ``BEGIN IMMEDIATE``
transaction, owners in the order given: for each owner it re-reads the
version inside the transaction (two processes opening a new store apply each
step once), applies the missing steps and records the new version in
``schema_versions``. A failing step rolls back every owner.

The previous layout (``images.db``, ``engine.db``, ``volumes.db``, one file
per owner, each versioned by ``PRAGMA user_version``) is imported, not
converted in place. Contracts:

- Atomic: the old files are attached and their rows copied inside the one
  transaction that creates their owners' tables, so ``pallet.db`` holds
  either all of an owner's old rows or nothing of that owner (and an engine
  open imports the three files together).
- The old files are removed only after that transaction commits (with
  ``synchronous = FULL``: durable before anything is deleted): ``-wal`` and
  ``-shm`` first, the file itself last.
- Idempotent: an old file beside an owner that ``pallet.db`` already has is
  the leftover of an import that was killed after its commit; it is removed,
  never imported again. A SIGKILL at any point therefore leaves either the old
  files (imported again by the next open) or a complete ``pallet.db`` with
  leftovers (removed by the next open).
- An old file at ``user_version`` 0 (made by an open that crashed before its
  first step) holds nothing and is removed; one newer than the layout this
  pallet knows is refused. Going back to a pallet of the previous layout is
  not supported: what it writes beside ``pallet.db`` is removed unread.
- Migrating processes take turns on a lock file (``pallet.db.init-lock``),
  so many first commands on an old root import it once, and none attaches an
  old file while another removes it.
- Rows are copied as they are, foreign keys off (the old files enforced them
  already), so an import never fails on data the previous layout accepted.

Tests may stop the process at a named point by setting
``PALLET_TEST_PAUSE_MIGRATION=<point>:<file>``: on reaching ``<point>`` the
process writes its pid to ``<file>`` and sleeps until it is killed. Points:
``before-commit``, ``after-commit``, ``after-removing-<old file name>``.
"""

from __future__ import annotations

import os

from pallet.errors import FailedPrecondition

__all__ = ["PAUSE_ENV", "migrate", "statements"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from pallet.database import Database, Schema
else:
    import _sqlite3 as sqlite3

#: the test hook's environment variable (see the module docstring)
PAUSE_ENV = "PALLET_TEST_PAUSE_MIGRATION"

_VERSIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_versions (
    owner   TEXT PRIMARY KEY,                 -- the layer's schema name: image, containers, volumes, ...
    version INTEGER NOT NULL                  -- how many of its steps have run
)
"""


def migrate(db: Database, schemas: Sequence[Schema]) -> dict[str, int]:
    """Apply every missing step of ``schemas`` and import their old files; returns every owner's version.

    Migrating processes take turns on ``<database>.init-lock``: no open
    attaches an old file while another removes it. Ordinary writers are not
    held up by it (they serialise with ``BEGIN IMMEDIATE`` as always).
    """
    import fcntl

    fd = os.open(db.path + ".init-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return _migrate(db, schemas)
    finally:
        os.close(fd)  # closing drops the flock


def _migrate(db: Database, schemas: Sequence[Schema]) -> dict[str, int]:
    conn = db.conn
    old = {s.owner: db.beside(s.legacy.file) for s in schemas if s.legacy is not None}
    attached: dict[str, str] = {}
    try:
        for index, (owner, path) in enumerate(old.items()):
            if os.path.exists(path):
                alias = f"legacy{index}"
                conn.execute(f"ATTACH DATABASE ? AS {alias}", (path,))
                attached[owner] = alias
        # neither pragma may change inside a transaction
        conn.execute("PRAGMA foreign_keys = OFF")
        if attached:
            conn.execute("PRAGMA synchronous = FULL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_VERSIONS_TABLE)
            versions = {
                str(r[0]): int(r[1]) for r in conn.execute("SELECT owner, version FROM schema_versions")
            }
            for schema in schemas:
                _bring_up(conn, schema, versions, attached.get(schema.owner))
            _pause("before-commit")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        for alias in attached.values():
            conn.execute(f"DETACH DATABASE {alias}")
    _pause("after-commit")
    for owner, path in old.items():
        if versions.get(owner, 0) > 0:  # committed: whatever the old file held is in pallet.db now
            _remove_old_file(path)
    return versions


def _bring_up(conn: sqlite3.Connection, schema: Schema, versions: dict[str, int], alias: str | None) -> None:
    """Inside the caller's transaction: ``schema`` to its latest version, its old file imported if new."""
    found = versions.get(schema.owner, 0)
    target = len(schema.steps)
    if found > target:
        raise FailedPrecondition(
            f"the {schema.owner} tables of the database are at schema version {found}, newer than this "
            f"pallet knows ({target}); upgrade pallet or use another --root"
        )
    version = found
    if version == 0 and alias is not None and schema.legacy is not None:
        legacy = schema.legacy
        old_version = int(conn.execute(f"PRAGMA {alias}.user_version").fetchone()[0])
        if old_version > legacy.version:
            raise FailedPrecondition(
                f"{legacy.file} is at schema version {old_version}, newer than this pallet imports "
                f"({legacy.version}); upgrade pallet or use another --root"
            )
        if old_version == legacy.version:
            for step in schema.steps[:old_version]:
                _apply(conn, step)
            for table in legacy.tables:
                _copy_table(conn, alias, table)
            version = old_version
    for step in schema.steps[version:]:
        _apply(conn, step)
    if target != found:
        conn.execute(
            "INSERT INTO schema_versions(owner, version) VALUES (?, ?)"
            " ON CONFLICT(owner) DO UPDATE SET version = excluded.version",
            (schema.owner, target),
        )
        versions[schema.owner] = target


def _copy_table(conn: sqlite3.Connection, alias: str, table: str) -> None:
    columns = [str(r[1]) for r in conn.execute(f"PRAGMA {alias}.table_info({table})")]
    if not columns:
        return  # the old file never had it
    names = ", ".join(f'"{c}"' for c in columns)
    conn.execute(f"INSERT INTO main.{table} ({names}) SELECT {names} FROM {alias}.{table}")


def _apply(conn: sqlite3.Connection, step: str) -> None:
    for statement in statements(step):
        conn.execute(statement)


def statements(script: str) -> list[str]:
    """Split a step into statements (``executescript`` would commit our transaction)."""
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


def _remove_old_file(path: str) -> None:
    """Remove an imported old file and its companions; idempotent. The file itself goes last:
    while it exists, the next open comes back here."""
    for extra in ("-wal", "-shm", ".init-lock"):
        try:
            os.unlink(path + extra)
        except FileNotFoundError:
            continue
    try:
        os.unlink(path)
    except FileNotFoundError:
        return  # a concurrent open removed it
    _pause(f"after-removing-{os.path.basename(path)}")


def _pause(point: str) -> None:
    """The test hook: stop here until killed when ``PALLET_TEST_PAUSE_MIGRATION`` names ``point``."""
    wanted = os.environ.get(PAUSE_ENV)
    if not wanted:
        return
    name, _, report = wanted.partition(":")
    if name != point or not report:
        return
    import time

    temp = f"{report}.{os.getpid()}.tmp"
    with open(temp, "w") as f:
        f.write(str(os.getpid()))
    os.rename(temp, report)
    while True:
        time.sleep(3600)
