"""The zygote's address names one run dir of one installation, and a forked shim's title fits."""

from __future__ import annotations

from pathlib import Path

from pallet.engine.shim import zygote


def test_each_run_dir_has_its_own_zygote_address(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = zygote.address(str(tmp_path / "a")), zygote.address(str(tmp_path / "b"))
    assert a != b
    assert a == zygote.address(str(tmp_path / "a"))
    assert a.startswith("\0pallet-shim-zygote/")
    assert len(a.encode()) < 108  # sun_path


def test_a_run_dir_made_anew_gets_a_new_address(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    before = zygote.address(str(run))
    run.rename(tmp_path / "old")
    run.mkdir()
    assert zygote.address(str(run)) != before  # the old zygote sees this and leaves
