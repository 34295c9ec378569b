"""pallet.db: per-owner schema steps in one sequence, the fast check, and the import of the previous layout."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pallet
import pallet.database
from pallet.database import FILENAME, Database, Schema
from pallet.database.migrations import PAUSE_ENV
from pallet.engine.db import CONTAINERS, VOLUMES, EngineDB
from pallet.errors import FailedPrecondition
from pallet.image.metadata import SCHEMA as IMAGE_SCHEMA
from pallet.image.metadata import open_database
from pallet.testing.old_layout import write_old_files

OLD = ("images.db", "engine.db", "volumes.db")
IMAGE = "sha256:" + "1" * 64
CHAIN = "sha256:" + "2" * 64
CID_UP, CID_DOWN = "a" * 64, "b" * 64

#: a little of everything the previous layout held, per file and table
OLD_ROWS: dict[str, dict[str, list[dict[str, object]]]] = {
    "images.db": {
        "images": [
            {
                "id": IMAGE, "manifest_digest": "sha256:" + "3" * 64,
                "manifest_media_type": "application/vnd.oci.image.manifest.v1+json",
                "config_media_type": "application/vnd.oci.image.config.v1+json", "index_digest": None,
                "created": "2026-01-01T00:00:00Z", "added": 1.5, "size": 10, "os": "linux",
                "architecture": "amd64", "variant": None,
            }
        ],
        "refs": [
            {"name": "docker.io/library/busybox:latest", "repository": "docker.io/library/busybox",
             "tag": "latest", "digest": None, "image_id": IMAGE, "added": 1.5}
        ],
        "layers": [
            {"chain_id": CHAIN, "diff_id": CHAIN, "parent": None, "uncompressed_size": 20, "snapshot_key": CHAIN}
        ],
        "image_layers": [
            {"image_id": IMAGE, "position": 0, "chain_id": CHAIN, "blob_digest": "sha256:" + "4" * 64,
             "media_type": "application/vnd.oci.image.layer.v1.tar+gzip", "compressed_size": 10}
        ],
        "snapshots": [
            {"key": CHAIN, "parent": None, "kind": "committed", "path": "snapshots/2", "created": 2.0},
            {"key": "container-" + CID_DOWN, "parent": CHAIN, "kind": "active", "path": "snapshots/b", "created": 3.0},
        ],
        "image_users": [{"image_id": IMAGE, "holder": CID_UP}, {"image_id": IMAGE, "holder": CID_DOWN}],
        "settings": [{"name": "snapshot_driver", "value": "copy"}],
    },
    "engine.db": {
        "containers": [
            {"id": CID_UP, "name": "up", "image_id": IMAGE, "image": "busybox", "created": 4.0,
             "state": "running", "runtime": "pallet-runtime", "pid": 1234, "shim_pid": 1233, "shim_start": 99,
             "started_at": "2026-01-01T00:00:01Z", "labels": '{"a": "b"}'},
            {"id": CID_DOWN, "name": "down", "image_id": IMAGE, "image": "busybox", "created": 5.0,
             "state": "exited", "runtime": "pallet-runtime", "exit_code": 3,
             "finished_at": "2026-01-01T00:00:02Z"},
        ],
    },
    "volumes.db": {
        "volumes": [
            {"name": "data", "driver": "local", "created": "2026-01-01T00:00:00Z", "labels": "{}",
             "options": "{}", "anonymous": 0},
            {"name": "c" * 64, "driver": "local", "created": "2026-01-01T00:00:00Z",
             "labels": '{"com.docker.volume.anonymous": ""}', "options": "{}", "anonymous": 1},
        ],
        "volume_users": [{"name": "data", "holder": CID_UP}, {"name": "c" * 64, "holder": CID_DOWN}],
    },
}  # fmt: skip


def _rows(path: Path, table: str, like: Path | None = None) -> list[tuple[object, ...]]:
    """The rows of ``table``; with ``like``, only the columns that file's table has (later schema
    steps may add columns)."""
    columns = "*"
    if like is not None:
        other = sqlite3.connect(like)
        try:
            columns = ", ".join(r[1] for r in other.execute(f"PRAGMA table_info({table})"))
        finally:
            other.close()
    conn = sqlite3.connect(path)
    try:
        return sorted(tuple(r) for r in conn.execute(f"SELECT {columns} FROM {table}"))
    finally:
        conn.close()


def _assert_imported(root: Path, files: tuple[str, ...] = OLD) -> None:
    """Every row of ``files`` is in pallet.db, as the old files themselves returned it; the files are gone."""
    expected = root.parent / f"expected-{root.name}"  # the same rows in old files: their defaults filled in
    if not expected.exists():
        expected.mkdir()
        write_old_files(expected, OLD_ROWS)
    for name in files:
        for table in OLD_ROWS[name]:
            assert _rows(root / FILENAME, table, like=expected / name) == _rows(expected / name, table), table
        assert not [p.name for p in root.iterdir() if p.name.startswith(name)], f"{name} left behind"


def _old_root(tmp_path: Path, name: str = "root") -> Path:
    root = tmp_path / name
    root.mkdir()
    write_old_files(root, OLD_ROWS)
    return root


# --- the sequence ------------------------------------------------------------------------------


def test_a_new_database_is_in_wal_mode_with_each_owner_at_its_version(tmp_path: Path) -> None:
    a = Schema(owner="a", steps=("CREATE TABLE a1 (x);", "CREATE TABLE a2 (x);"))
    b = Schema(owner="b", steps=("CREATE TABLE b1 (x REFERENCES a1(x));",))
    db = Database(tmp_path / FILENAME, (a, b))
    try:
        assert (db.version("a"), db.version("b"), db.version("unknown")) == (2, 1, 0)
        assert db.query("PRAGMA journal_mode")[0][0] == "wal"
        assert db.query("PRAGMA foreign_keys")[0][0] == 1
        assert [tuple(r) for r in db.query("SELECT * FROM schema_versions ORDER BY owner")] == [
            ("a", 2),
            ("b", 1),
        ]
    finally:
        db.close()


def test_steps_apply_in_order_and_only_the_missing_ones(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    first = Schema(owner="t", steps=("CREATE TABLE t (a INTEGER);\nINSERT INTO t VALUES (1);",))
    Database(path, (first,)).close()
    second = Schema(
        owner="t", steps=(*first.steps, "ALTER TABLE t ADD COLUMN b TEXT;\nUPDATE t SET b = 'migrated';")
    )
    db = Database(path, (second,))
    try:
        assert db.version("t") == 2
        assert [tuple(r) for r in db.query("SELECT a, b FROM t")] == [(1, "migrated")]  # step 1 ran once
    finally:
        db.close()


def test_a_later_open_adds_an_owner_and_leaves_the_others_alone(tmp_path: Path) -> None:
    image_only = open_database(str(tmp_path))
    try:
        assert (image_only.version("image"), image_only.version("containers")) == (len(IMAGE_SCHEMA.steps), 0)
        with image_only.transaction() as conn:
            conn.execute("INSERT INTO settings(name, value) VALUES ('k', 'v')")
        engine = EngineDB(tmp_path)  # a second connection, naming more owners
        try:
            assert [engine.version(s.owner) for s in (IMAGE_SCHEMA, CONTAINERS, VOLUMES)] == [
                len(s.steps) for s in (IMAGE_SCHEMA, CONTAINERS, VOLUMES)
            ]
            assert engine.query("SELECT value FROM settings WHERE name = 'k'")[0][0] == "v"
        finally:
            engine.close()
        image_only.ensure(VOLUMES)  # already there: nothing to do, nothing lost
        assert image_only.query("SELECT count(*) FROM volumes")[0][0] == 0
    finally:
        image_only.close()


def test_a_failing_step_rolls_back_every_owner(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    good = Schema(owner="a", steps=("CREATE TABLE t (a INTEGER);",))
    Database(path, (good,)).close()
    grown = Schema(owner="a", steps=(*good.steps, "CREATE TABLE u (x);"))
    broken = Schema(owner="b", steps=("CREATE TABLE v (x);\nINSERT INTO missing VALUES (1);",))
    with pytest.raises(sqlite3.OperationalError):
        Database(path, (grown, broken))
    db = Database(path, (good,))
    try:
        assert (db.version("a"), db.version("b")) == (1, 0)
        assert not db.query("SELECT name FROM sqlite_master WHERE name IN ('u', 'v')")
    finally:
        db.close()


def test_a_database_from_a_newer_pallet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    Database(path, (Schema(owner="a", steps=("CREATE TABLE t (a);", "CREATE TABLE u (a);")),)).close()
    with pytest.raises(FailedPrecondition, match="newer than this pallet knows"):
        Database(path, (Schema(owner="a", steps=("CREATE TABLE t (a);",)),))


def test_an_up_to_date_database_opens_while_another_process_holds_the_write_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    EngineDB(tmp_path).close()
    monkeypatch.setattr(pallet.database, "BUSY_TIMEOUT_MS", 100)
    writer = sqlite3.connect(tmp_path / FILENAME, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        EngineDB(tmp_path).close()  # the check is a read: it never waits for the writer
        grown = Schema(owner="volumes", steps=(*VOLUMES.steps, "CREATE TABLE later (x);"))
        with pytest.raises(sqlite3.OperationalError, match="locked"):  # a missing step does need the lock
            Database(tmp_path / FILENAME, (grown,))
        writer.execute("ROLLBACK")
    finally:
        writer.close()


# --- the previous layout -----------------------------------------------------------------------


def test_an_old_layout_root_is_imported_whole_and_its_files_removed(tmp_path: Path) -> None:
    root = _old_root(tmp_path)
    EngineDB(root).close()
    _assert_imported(root)
    db = EngineDB(root)
    try:
        assert [db.version(s.owner) for s in (IMAGE_SCHEMA, CONTAINERS, VOLUMES)] == [
            len(s.steps) for s in (IMAGE_SCHEMA, CONTAINERS, VOLUMES)
        ]
    finally:
        db.close()


def test_the_image_layer_alone_imports_only_its_own_file(tmp_path: Path) -> None:
    root = _old_root(tmp_path)
    open_database(str(root)).close()
    _assert_imported(root, ("images.db",))
    assert (root / "engine.db").exists()
    assert (root / "volumes.db").exists()
    EngineDB(root).close()
    _assert_imported(root)


def test_many_processes_opening_an_old_layout_root_at_once_import_it_once(tmp_path: Path) -> None:
    root = _old_root(tmp_path)
    pids = []
    for index in range(12):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                (open_database(str(root)) if index % 3 == 0 else EngineDB(root)).close()
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    assert codes == [0] * len(pids)
    _assert_imported(root)


def test_rows_only_in_an_old_files_wal_are_imported(tmp_path: Path) -> None:
    # an old pallet killed after its commit: the row is in images.db-wal, never checkpointed
    root = _old_root(tmp_path)
    pid = os.fork()
    if pid == 0:
        try:
            conn = sqlite3.connect(root / "images.db", isolation_level=None)
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute("INSERT INTO settings(name, value) VALUES ('only-in-wal', 'yes')")
        finally:
            os._exit(0)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert (root / "images.db-wal").stat().st_size > 0
    EngineDB(root).close()
    assert ("only-in-wal", "yes") in _rows(root / FILENAME, "settings")
    assert not (root / "images.db-wal").exists()


def test_old_files_beside_a_complete_database_are_removed_not_imported_again(tmp_path: Path) -> None:
    root = _old_root(tmp_path)
    EngineDB(root).close()
    ghost = {**OLD_ROWS["engine.db"]["containers"][0], "id": "f" * 64, "name": "ghost"}
    write_old_files(root, {"engine.db": {"containers": [ghost]}})
    EngineDB(root).close()
    assert sorted(r[1] for r in _rows(root / FILENAME, "containers")) == ["down", "up"]
    assert not [p for p in root.iterdir() if p.name.startswith(OLD)]


def test_an_empty_old_file_imports_nothing_and_is_removed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    sqlite3.connect(root / "engine.db").close()  # user_version 0: a first open that died early
    EngineDB(root).close()
    assert _rows(root / FILENAME, "containers") == []
    assert not (root / "engine.db").exists()


def test_an_old_file_newer_than_known_is_refused_and_kept(tmp_path: Path) -> None:
    root = _old_root(tmp_path)
    conn = sqlite3.connect(root / "volumes.db")
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    with pytest.raises(FailedPrecondition, match=r"volumes\.db is at schema version 2"):
        EngineDB(root)
    assert all((root / name).exists() for name in OLD)  # one transaction: nothing imported, nothing removed
    image_only = open_database(str(root))  # the image layer alone still opens, and imports its file
    try:
        assert image_only.version("image") == len(IMAGE_SCHEMA.steps)
    finally:
        image_only.close()


_OPEN = "import sys\nfrom pallet.engine.db import EngineDB\nEngineDB(sys.argv[1]).close()\n"


@pytest.mark.parametrize(
    ("point", "committed"),
    [
        ("before-commit", False),
        ("after-commit", True),
        ("after-removing-images.db", True),
        ("after-removing-engine.db", True),
    ],
)
def test_a_sigkill_during_the_import_is_recovered_by_the_next_open(
    tmp_path: Path, point: str, committed: bool
) -> None:
    root = _old_root(tmp_path)
    report = tmp_path / "paused"
    src = str(Path(pallet.__file__).parent.parent)
    env = {**os.environ, PAUSE_ENV: f"{point}:{report}", "PYTHONPATH": src}
    child = subprocess.Popen([sys.executable, "-c", _OPEN, str(root)], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not report.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert report.exists(), (
            f"the migration never reached {point}: {child.stderr.read() if child.stderr else ''!r}"
        )
        assert int(report.read_text()) == child.pid
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stderr is not None:
            child.stderr.close()
    owners = _rows(root / FILENAME, "schema_versions") if committed else []
    assert len(owners) == (3 if committed else 0)
    assert (root / "images.db").exists() == (point in ("before-commit", "after-commit"))
    EngineDB(root).close()
    _assert_imported(root)
