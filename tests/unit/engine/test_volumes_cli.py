"""``pallet volume ...``: what the commands print and their exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from pallet.engine.volumes import VolumeStore
from pallet.testing.cli import run_pallet


def test_create_ls_inspect_rm_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "root"
    created = run_pallet(root, "volume", "create", "--label", "app=web", "web1")
    assert (created.code, created.out) == (0, "web1\n")
    listed = run_pallet(root, "volume", "ls")
    assert listed.out.splitlines() == ["DRIVER    VOLUME NAME", "local     web1"]
    shown = json.loads(run_pallet(root, "volume", "inspect", "web1").out)
    assert shown[0]["Labels"] == {"app": "web"}
    assert shown[0]["Mountpoint"] == str(root / "volumes" / "web1" / "_data")
    assert run_pallet(root, "volume", "inspect", "-f", "{{.Driver}}", "web1").out == "local\n"
    removed = run_pallet(root, "volume", "rm", "web1")
    assert (removed.code, removed.out) == (0, "web1\n")
    assert run_pallet(root, "volume", "ls", "-q").out == ""


def test_ls_filter_and_quiet(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run_pallet(root, "volume", "create", "--label", "app=web", "web1")
    run_pallet(root, "volume", "create", "db1")
    assert run_pallet(root, "volume", "ls", "-q", "--filter", "label=app=web").out == "web1\n"
    assert (
        run_pallet(root, "volume", "ls", "--format", "{{.Name}} {{.Labels}}", "-f", "name=db").out == "db1 \n"
    )


def test_bad_filter_is_a_usage_error(tmp_path: Path) -> None:
    result = run_pallet(tmp_path / "root", "volume", "ls", "--filter", "colour=red")
    assert result.code == 125
    assert 'invalid filter "colour"' in result.err


def test_rm_in_use_fails_with_one_line_and_keeps_volume(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run_pallet(root, "volume", "create", "data")
    with VolumeStore.open(root) as store:
        store.use("data", "c" * 64)
    result = run_pallet(root, "volume", "rm", "data")
    assert result.code == 1
    assert result.err.count("\n") == 1
    assert "volume is in use" in result.err
    assert run_pallet(root, "volume", "ls", "-q").out == "data\n"


def test_rm_missing_volume_fails_unless_forced(tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = run_pallet(root, "volume", "rm", "nope")
    assert result.code == 1
    assert "no such volume: nope" in result.err
    assert run_pallet(root, "volume", "rm", "-f", "nope").code == 0


def test_invalid_name_fails_and_creates_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = run_pallet(root, "volume", "create", "a/b")
    assert result.code == 1
    assert "invalid characters" in result.err
    assert run_pallet(root, "volume", "ls", "-q").out == ""


def test_prune_asks_and_removes_only_when_confirmed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run_pallet(root, "volume", "create", "named")
    with VolumeStore.open(root) as store:
        anonymous = store.create().name
    declined = run_pallet(root, "volume", "prune", stdin=b"n\n")
    assert declined.code == 0
    assert "Are you sure" in declined.out
    assert len(run_pallet(root, "volume", "ls", "-q").out.split()) == 2
    done = run_pallet(root, "volume", "prune", "-f")
    assert done.out.startswith(f"Deleted Volumes:\n{anonymous}\n\nTotal reclaimed space: ")
    assert run_pallet(root, "volume", "ls", "-q").out == "named\n"
    assert "named" in run_pallet(root, "volume", "prune", "-a", "-f").out
    assert run_pallet(root, "volume", "ls", "-q").out == ""
