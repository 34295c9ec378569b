"""The engine's database, ``<root>/engine.db``: the container records.

SQLite in WAL mode with a busy timeout; every write runs in ``BEGIN IMMEDIATE``
(``EngineDB.transaction()``), so concurrent ``pallet`` processes serialise
instead of failing. The schema is versioned with ``PRAGMA user_version`` and
migrated by the image database's generic helper (``pallet.image.metadata``).

Contracts:

- A container's name is unique (``UNIQUE`` index): two processes racing for
  one name cannot both win; the loser gets ``sqlite3.IntegrityError``.
- Volumes live in their own database (``pallet.engine.volumes``); removing a
  container releases its volumes there.
- States are docker's (``created``, ``running``, ``paused``, ``restarting``,
  ``exited``, ``dead``, ``removing``) plus ``creating``: a container still
  being made by the process named in ``owner`` (reconcile removes it when
  that process is gone).
"""

from __future__ import annotations

import os

from pallet.image.metadata import MetadataDB

TYPE_CHECKING = False
if TYPE_CHECKING:
    pass

__all__ = ["MIGRATIONS", "EngineDB"]

_V1 = """
CREATE TABLE containers (
    id            TEXT PRIMARY KEY,              -- 64 hex
    name          TEXT NOT NULL,                 -- without docker's leading "/"
    image_id      TEXT NOT NULL,                 -- config digest of the image
    image         TEXT NOT NULL,                 -- the image as the user named it
    created       REAL NOT NULL,                 -- unix time
    state         TEXT NOT NULL CHECK (state IN ('creating', 'created', 'running', 'paused',
                                                 'restarting', 'exited', 'dead', 'removing')),
    owner         TEXT,                          -- owner tag of the creating process, while 'creating'
    runtime       TEXT NOT NULL,                 -- runtime name (pallet-runtime, runc, crun)
    pid           INTEGER NOT NULL DEFAULT 0,    -- the container's init, as the host sees it
    shim_pid      INTEGER NOT NULL DEFAULT 0,
    shim_start    INTEGER NOT NULL DEFAULT 0,    -- start time of shim_pid (guards against pid reuse)
    exit_code     INTEGER,
    started_at    TEXT,                          -- RFC 3339 (UTC, nanoseconds)
    finished_at   TEXT,
    oom_killed    INTEGER NOT NULL DEFAULT 0,
    restart_count INTEGER NOT NULL DEFAULT 0,
    labels        TEXT NOT NULL DEFAULT '{}'     -- JSON object
);
CREATE UNIQUE INDEX containers_name ON containers(name);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

#: ordered schema migrations; entry i takes the schema from version i to i + 1. Append, never edit.
MIGRATIONS: tuple[str, ...] = (_V1,)


class EngineDB(MetadataDB):
    """A connection to ``<root>/engine.db``; one per process and thread. Created on first open."""

    def __init__(self, root: str) -> None:
        os.makedirs(root, exist_ok=True)
        super().__init__(os.path.join(root, "engine.db"), MIGRATIONS)
