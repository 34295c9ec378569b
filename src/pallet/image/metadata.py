"""The image layer's tables in ``<root>/pallet.db``: images, references, layers, snapshots, users, settings.

The image layer owns these tables and declares them as ``SCHEMA`` (owner
``image``, steps appended, never edited); ``pallet.database`` opens the one
database file and applies the steps, and imports ``images.db`` of the
previous layout. ``open_database(root)`` opens it for the image layer alone;
the engine opens it once with its own schemas too and hands the connection to
``ImageStore.open(root, db=...)``. Every write runs in ``BEGIN IMMEDIATE``
(``Database.transaction()``); operations that touch files *and* rows also
hold ``FileLock`` (see ``store``), because a SQLite transaction cannot cover
the file system.

Counts such as a layer's users are computed by queries, never stored, so
they cannot drift after a crash.
"""

from __future__ import annotations

import fcntl
import os

from pallet.database import Database, Legacy, Schema

__all__ = ["SCHEMA", "FileLock", "open_database", "setting"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType

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

# the image a build step was made on (docker's Parent): an untagged image with children is an
# intermediate image, which ``images`` hides without ``-a`` and ``image prune`` takes with its child
_V2 = """
ALTER TABLE images ADD COLUMN parent TEXT;
CREATE INDEX images_parent ON images(parent);
"""

#: the image layer's schema; append steps, never edit one
SCHEMA = Schema(
    owner="image",
    steps=(_V1, _V2),
    legacy=Legacy(
        file="images.db",
        version=1,
        tables=("images", "refs", "layers", "image_layers", "snapshots", "image_users", "settings"),
    ),
)


def open_database(root: str) -> Database:
    """``<root>/pallet.db`` with the image tables up to date (created if missing)."""
    return Database.at(root, (SCHEMA,))


def setting(db: Database, name: str) -> str | None:
    """A store-wide setting (the ``settings`` table), None if unset."""
    row = db.conn.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
    return None if row is None else str(row[0])


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
