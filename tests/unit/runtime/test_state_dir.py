"""Container ids, the state directory and the pid file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pallet.errors import AlreadyExists, InvalidArgument, NotFound
from pallet.runtime.containers import ContainerDir, status_of, validate_id, write_pid_file
from pallet.runtime.savedstate import SavedState


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a b", "é", "x;y"])
def test_ids_outside_runc_rules_are_refused(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        validate_id(bad)


def test_good_ids_pass() -> None:
    for good in ("abc", "a.b-c_d+e", "0123456789abcdef" * 4):
        validate_id(good)


def test_claim_is_exclusive_and_load_of_a_missing_container_is_not_found(tmp_path: Path) -> None:
    cdir = ContainerDir(str(tmp_path), "c1")
    with pytest.raises(NotFound, match='container "c1" does not exist'):
        cdir.load()
    cdir.claim()
    assert status_of(cdir, cdir.load()) == "creating"
    with pytest.raises(AlreadyExists, match="container with given ID already exists"):
        ContainerDir(str(tmp_path), "c1").claim()
    cdir.save(SavedState(id="c1", status="created", pid=999999999, init_start=1))
    assert status_of(cdir, cdir.load()) == "stopped"
    cdir.remove()
    assert not (tmp_path / "c1").exists()


def test_pid_file_has_no_trailing_newline(tmp_path: Path) -> None:
    write_pid_file(str(tmp_path / "init.pid"), 1234)
    assert (tmp_path / "init.pid").read_bytes() == b"1234"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["init.pid"]
