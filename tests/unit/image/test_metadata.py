from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pallet.image.metadata import SCHEMA, FileLock, open_database, setting


def test_a_new_database_is_at_the_latest_version_in_wal_mode(tmp_path: Path) -> None:
    db = open_database(str(tmp_path))
    try:
        assert (tmp_path / "pallet.db").exists()
        assert db.version("image") == len(SCHEMA.steps)
        assert db.query("PRAGMA journal_mode")[0][0] == "wal"
        assert db.query("PRAGMA busy_timeout")[0][0] > 0
        tables = {r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"images", "refs", "layers", "image_layers", "snapshots", "image_users"} <= tables
    finally:
        db.close()


def test_a_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    db = open_database(str(tmp_path))
    try:

        def insert_then_fail() -> None:
            with db.transaction() as conn:
                conn.execute("INSERT INTO settings(name, value) VALUES ('a', 'b')")
                raise RuntimeError

        with pytest.raises(RuntimeError):
            insert_then_fail()
        assert setting(db, "a") is None
    finally:
        db.close()


_INCREMENTER = """
import sys
from pallet.image.metadata import open_database
db = open_database(sys.argv[1])
for _ in range(int(sys.argv[2])):
    with db.transaction() as conn:
        value = int(conn.execute("SELECT value FROM settings WHERE name = 'n'").fetchone()[0])
        conn.execute("UPDATE settings SET value = ? WHERE name = 'n'", (str(value + 1),))
db.close()
"""


def test_concurrent_writers_in_two_processes_lose_no_update(tmp_path: Path) -> None:
    path = tmp_path
    db = open_database(str(path))
    with db.transaction() as conn:
        conn.execute("INSERT INTO settings(name, value) VALUES ('n', '0')")
    n = 150
    procs = [subprocess.Popen([sys.executable, "-c", _INCREMENTER, str(path), str(n)]) for _ in range(2)]
    try:
        codes = [p.wait(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert codes == [0, 0]
    assert setting(db, "n") == str(2 * n)  # read-modify-write under BEGIN IMMEDIATE serialises
    db.close()


def test_file_locks_exclude_each_other_and_shared_ones_coexist(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    a, b, c = FileLock(path), FileLock(path), FileLock(path)
    assert a.acquire()
    assert not b.acquire(blocking=False)
    a.release()
    assert b.acquire(shared=True)
    assert c.acquire(shared=True, blocking=False)
    assert not a.acquire(blocking=False)
    b.release()
    c.release()
    assert a.acquire(blocking=False)
    a.release()


def test_file_lock_is_reentrant_within_one_object(tmp_path: Path) -> None:
    lock, other = FileLock(tmp_path / "x.lock"), FileLock(tmp_path / "x.lock")
    with lock.held(), lock.held():
        assert not other.acquire(blocking=False)
    assert other.acquire(blocking=False)
    other.release()


def test_many_processes_opening_a_new_database_at_once_all_succeed(tmp_path: Path) -> None:
    # 30 `pallet run` on a fresh root open pallet.db together; switching to WAL must not fail any
    failures = 0
    for round_ in range(4):
        path = str(tmp_path / f"new-{round_}")
        pids = []
        for _ in range(30):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    open_database(path).close()
                    code = 0
                finally:
                    os._exit(code)
            pids.append(pid)
        for pid in pids:
            failures += os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0
    assert failures == 0
