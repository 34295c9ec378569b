"""The engine's tables in ``<root>/pallet.db``: container records (``CONTAINERS``) and volumes (``VOLUMES``).

The engine owns these tables and declares them as two schemas (steps
appended, never edited); ``pallet.database`` applies them and imports
``engine.db`` and ``volumes.db`` of the previous layout. ``EngineDB`` opens
the root's database with the image layer's schema first, then these, so one
connection (and one transaction) can cover a container, the image it holds
and its volumes: the engine hands it to ``ImageStore.open`` and
``VolumeStore.open``.

Contracts:

- A container's name is unique (``UNIQUE`` index): two processes racing for
  one name cannot both win; the loser gets ``sqlite3.IntegrityError``.
- Removing a container releases its volumes (``VolumeStore.release``).
- States are docker's (``created``, ``running``, ``paused``, ``restarting``,
  ``exited``, ``dead``, ``removing``) plus ``creating``: a container still
  being made by the process named in ``owner`` (reconcile removes it when
  that process is gone).
- engine.db's ``settings`` table was never written; it is not imported.
"""

from __future__ import annotations

import os

from pallet.database import FILENAME, Database, Legacy, Schema
from pallet.image.metadata import SCHEMA as IMAGE_SCHEMA

__all__ = ["CONTAINERS", "VOLUMES", "EngineDB"]

_CONTAINERS_V1 = """
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
"""

_VOLUMES_V1 = """
CREATE TABLE volumes (
    name      TEXT PRIMARY KEY,
    driver    TEXT NOT NULL,
    created   TEXT NOT NULL,                    -- RFC 3339, UTC
    labels    TEXT NOT NULL,                    -- JSON object
    options   TEXT NOT NULL,                    -- JSON object (driver options)
    anonymous INTEGER NOT NULL
);

CREATE TABLE volume_users (
    name   TEXT NOT NULL REFERENCES volumes(name) ON DELETE CASCADE,
    holder TEXT NOT NULL,                       -- a container id
    PRIMARY KEY (name, holder)
);
CREATE INDEX volume_users_holder ON volume_users(holder);
"""

#: the container records; append steps, never edit one
CONTAINERS = Schema(
    owner="containers",
    steps=(_CONTAINERS_V1,),
    legacy=Legacy(file="engine.db", version=1, tables=("containers",)),
)
#: the volumes (``pallet.engine.volumes``); append steps, never edit one
VOLUMES = Schema(
    owner="volumes",
    steps=(_VOLUMES_V1,),
    legacy=Legacy(file="volumes.db", version=1, tables=("volumes", "volume_users")),
)


class EngineDB(Database):
    """``<root>/pallet.db`` with the image, container and volume tables; one per process and thread.

    Created on first open, with the previous layout's files imported.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        root = os.fspath(root)
        os.makedirs(root, exist_ok=True)
        super().__init__(os.path.join(root, FILENAME), (IMAGE_SCHEMA, CONTAINERS, VOLUMES))
