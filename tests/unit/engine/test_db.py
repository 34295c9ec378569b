"""engine.db: schema versioning, and name uniqueness under concurrent writers from many processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

from pallet.engine.db import MIGRATIONS, EngineDB


def test_new_database_is_at_the_latest_schema(tmp_path: Path) -> None:
    db = EngineDB(tmp_path / "root")
    try:
        assert db.version == len(MIGRATIONS)
        assert (tmp_path / "root" / "engine.db").exists()
        tables = {r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"containers", "settings"} <= tables
    finally:
        db.close()


def test_reopening_keeps_the_rows(tmp_path: Path) -> None:
    db = EngineDB(tmp_path)
    with db.transaction() as conn:
        conn.execute("INSERT INTO settings(name, value) VALUES ('k', 'v')")
    db.close()
    again = EngineDB(tmp_path)
    try:
        assert again.setting("k") == "v"
    finally:
        again.close()


def _claim(root: str, index: int, queue: multiprocessing.Queue[str]) -> None:
    db = EngineDB(Path(root))
    try:
        with db.transaction() as conn:
            conn.execute(
                "INSERT INTO containers(id, name, image_id, image, created, state, runtime)"
                " VALUES (?, 'same', 'i', 'busybox', 0, 'created', 'runc')",
                (f"{index:064x}",),
            )
        queue.put("won")
    except sqlite3.IntegrityError:
        queue.put("lost")
    finally:
        db.close()


def test_one_name_is_won_by_exactly_one_of_many_processes(tmp_path: Path) -> None:
    EngineDB(tmp_path).close()
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[str] = context.Queue()
    procs = [context.Process(target=_claim, args=(str(tmp_path), i, queue)) for i in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    results = sorted(queue.get(timeout=5) for _ in procs)
    assert results == ["lost"] * 7 + ["won"]
