"""Roots of the previous store layout, for tests of its import into ``pallet.db``.

Until the store moved to one database, a root kept three SQLite files, each
versioned by ``PRAGMA user_version`` (1) and in WAL mode: ``images.db``,
``engine.db`` and ``volumes.db``. Their schemas are frozen here, verbatim as
pallet last wrote them (commit 2e994b6), so tests can make such roots without
the old code:

- ``write_old_files(root, rows)`` writes the three files from rows given per
  file and table;
- ``to_old_layout(root)`` turns a root of today's layout (made by the current
  code, with images, containers and volumes) into the previous layout: every
  row of ``pallet.db`` goes into its old file, and ``pallet.db`` is removed.
  No pallet process may use the root meanwhile (shims never open it).
"""

from __future__ import annotations

import os
import sqlite3

from pallet.database.migrations import statements

__all__ = ["OLD_FILES", "OLD_SCHEMAS", "to_old_layout", "write_old_files"]

IMAGES_V1 = """
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

ENGINE_V1 = """
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

VOLUMES_V1 = """
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

#: old file -> its schema (user_version 1)
OLD_SCHEMAS = {"images.db": IMAGES_V1, "engine.db": ENGINE_V1, "volumes.db": VOLUMES_V1}
#: old file -> the tables it held rows in, in an order that keeps foreign keys satisfied
OLD_FILES = {
    "images.db": ("images", "refs", "layers", "image_layers", "snapshots", "image_users", "settings"),
    "engine.db": ("containers", "settings"),
    "volumes.db": ("volumes", "volume_users"),
}


def write_old_files(
    root: str | os.PathLike[str], rows: dict[str, dict[str, list[dict[str, object]]]]
) -> None:
    """Write the three old files under ``root``; ``rows[file][table]`` lists the rows as column dicts."""
    for name, schema in OLD_SCHEMAS.items():
        conn = sqlite3.connect(os.path.join(root, name), isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("BEGIN IMMEDIATE")
            for statement in statements(schema):  # executescript would commit
                conn.execute(statement)
            for table, table_rows in rows.get(name, {}).items():
                for row in table_rows:
                    columns = ", ".join(row)
                    marks = ", ".join("?" for _ in row)
                    conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(row.values()))
            conn.execute("PRAGMA user_version = 1")
            conn.execute("COMMIT")
        finally:
            conn.close()


def _old_columns() -> dict[str, set[str]]:
    """The columns of each table of the old files (a table two files have: its columns in either)."""
    columns: dict[str, set[str]] = {}
    for schema in OLD_SCHEMAS.values():
        conn = sqlite3.connect(":memory:")
        try:
            for statement in statements(schema):
                conn.execute(statement)
            for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
                columns.setdefault(table, set()).update(
                    r[1] for r in conn.execute(f"PRAGMA table_info({table})")
                )
        finally:
            conn.close()
    return columns


def to_old_layout(root: str | os.PathLike[str]) -> None:
    """Move every row of ``<root>/pallet.db`` into the previous layout's three files; remove ``pallet.db``."""
    path = os.path.join(root, "pallet.db")
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        known = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        old = _old_columns()  # later schema steps added columns the old files never had
        rows = {
            name: {
                table: [
                    {k: v for k, v in dict(r).items() if k in old[table]}
                    for r in conn.execute(f"SELECT * FROM {table}")
                ]
                for table in tables
                if table in known and not (name == "engine.db" and table == "settings")
            }
            for name, tables in OLD_FILES.items()
        }
    finally:
        conn.close()
    write_old_files(root, rows)
    for suffix in ("-wal", "-shm", ".init-lock", ""):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)
