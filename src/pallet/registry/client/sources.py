"""Which repositories a blob is known to be in, so a push can mount it instead of uploading it.

docker keeps the same record ("v2 metadata"): every blob pulled from, or
pushed to, ``registry/repository`` is noted in ``<root>/distribution.db``
(SQLite, WAL). ``push`` asks for another repository of the *same* registry
holding the blob and tries a cross-repository mount from there. The record
is a hint, never trusted: a failed mount falls back to an upload.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

__all__ = ["BlobSources"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blob_sources (
    digest     TEXT NOT NULL,
    registry   TEXT NOT NULL,
    repository TEXT NOT NULL,
    seen       REAL NOT NULL,
    PRIMARY KEY (digest, registry, repository)
)
"""


class BlobSources:
    """The blob → repositories record under one pallet root."""

    def __init__(self, root: Path) -> None:
        self._db = sqlite3.connect(
            root / "distribution.db", timeout=60, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def note(self, digests: list[str], registry: str, repository: str) -> None:
        """Remember that ``registry/repository`` holds each of ``digests``."""
        now = time.time()
        with self._db:
            self._db.executemany(
                """INSERT INTO blob_sources(digest, registry, repository, seen) VALUES (?, ?, ?, ?)
                   ON CONFLICT DO UPDATE SET seen = excluded.seen""",
                [(d, registry, repository, now) for d in digests],
            )

    def other_repositories(self, digest: str, registry: str, repository: str) -> list[str]:
        """Repositories of ``registry`` other than ``repository`` known to hold ``digest``, newest first."""
        rows = self._db.execute(
            "SELECT repository FROM blob_sources WHERE digest = ? AND registry = ? AND repository != ? ORDER BY seen DESC",
            (digest, registry, repository),
        ).fetchall()
        return [r[0] for r in rows]
