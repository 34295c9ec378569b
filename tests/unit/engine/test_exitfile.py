"""The files a shim leaves for the engine: written atomically, read back, unreadable ones read as None."""

from __future__ import annotations

import os
from pathlib import Path

from pallet.engine.shim import exitfile
from pallet.engine.shim.exitfile import ExitStatus, InitStatus
from pallet.linux.atomicfile import write_atomic


def test_exit_status_round_trips(tmp_path: Path) -> None:
    status = ExitStatus(exit_code=137, finished_at="2026-11-28T02:01:07.5Z", oom_killed=True, restart_count=2)
    exitfile.write_exit(str(tmp_path), status)
    assert exitfile.read_exit(str(tmp_path)) == status
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]  # no temp file left behind


def test_init_status_round_trips(tmp_path: Path) -> None:
    status = InitStatus(pid=4242, started_at="2026-11-28T02:01:07Z", restart_count=1)
    exitfile.write_init(str(tmp_path), status)
    assert exitfile.read_init(str(tmp_path)) == status


def test_missing_torn_or_foreign_files_read_as_none(tmp_path: Path) -> None:
    assert exitfile.read_exit(str(tmp_path)) is None
    (tmp_path / "exit.json").write_text('{"exit_code": 1, "finis')
    assert exitfile.read_exit(str(tmp_path)) is None
    (tmp_path / "exit.json").write_text('{"exit_code": "1", "finished_at": "x"}')
    assert exitfile.read_exit(str(tmp_path)) is None
    (tmp_path / "init.json").write_text("[]")
    assert exitfile.read_init(str(tmp_path)) is None
    (tmp_path / "shim.pid").write_text("12a")
    assert exitfile.read_shim_pid(str(tmp_path)) is None


def test_stopped_by_user_flag_is_idempotent_both_ways(tmp_path: Path) -> None:
    assert not exitfile.stopped_by_user(str(tmp_path))
    exitfile.mark_stopped_by_user(str(tmp_path))
    exitfile.mark_stopped_by_user(str(tmp_path))
    assert exitfile.stopped_by_user(str(tmp_path))
    exitfile.clear_stopped_by_user(str(tmp_path))
    exitfile.clear_stopped_by_user(str(tmp_path))
    assert not exitfile.stopped_by_user(str(tmp_path))


def test_a_shorter_shim_pid_replaces_the_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "shim.pid"
    target.write_text("123456789")
    write_atomic(str(target), b"42")
    assert exitfile.read_shim_pid(str(tmp_path)) == 42
