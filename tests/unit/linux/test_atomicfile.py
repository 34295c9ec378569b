"""``write_atomic``: the old content or the new, the exact mode, nothing left behind."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from pallet.linux.atomicfile import write_atomic


def test_the_file_is_replaced_with_the_exact_mode_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_bytes(b"old")
    old = os.umask(0o077)
    try:
        write_atomic(str(path), b"new", mode=0o644)
    finally:
        os.umask(old)
    assert path.read_bytes() == b"new"
    assert path.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.json"]


def test_a_failed_write_leaves_the_old_content_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_bytes(b"old")

    with pytest.raises(TypeError):
        write_atomic(str(path), 42)  # type: ignore[arg-type]  # fails after the temp file exists
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.json"]


def test_a_rename_onto_a_directory_fails_and_removes_the_temp_file(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_bytes(b"")
    with pytest.raises(IsADirectoryError):
        write_atomic(str(tmp_path / "taken"), b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_parents_are_made_on_request_only(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b" / "c"
    with pytest.raises(FileNotFoundError):
        write_atomic(str(deep), b"x")
    write_atomic(str(deep), b"x", parents=True)
    assert deep.read_bytes() == b"x"


def test_threads_writing_one_file_never_leave_a_mix(tmp_path: Path) -> None:
    path = tmp_path / "tag"
    contents = [bytes([65 + n]) * 4096 for n in range(8)]
    threads = [
        threading.Thread(
            target=lambda data=data: [write_atomic(str(path), data, durable=False) for _ in range(20)]
        )
        for data in contents
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert path.read_bytes() in contents
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tag"]
