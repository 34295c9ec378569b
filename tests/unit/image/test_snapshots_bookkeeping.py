from __future__ import annotations

from pathlib import Path

import pytest

from pallet.database import Database
from pallet.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from pallet.image import owners
from pallet.image.metadata import open_database
from pallet.image.snapshots import COPY, OVERLAY, Mount, Snapshotter

L1, L2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


@pytest.fixture
def db(tmp_path: Path) -> Database:
    d = open_database(str(tmp_path))
    yield d  # type: ignore[misc]
    d.close()


def _layer(snaps: Snapshotter, key: str, parent: str | None, files: dict[str, bytes]) -> Path:
    work = snaps.begin(parent)
    for name, data in files.items():
        (work / "fs" / name).write_bytes(data)
    return snaps.commit(key, parent, work).path


def test_overlay_mounts_stack_the_parent_chain_top_first(tmp_path: Path, db: Database) -> None:
    snaps = Snapshotter(tmp_path, db, OVERLAY)
    p1 = _layer(snaps, L1, None, {"a": b"1"})
    p2 = _layer(snaps, L2, L1, {"b": b"2"})
    assert sorted(p.name for p in (p2 / "fs").iterdir()) == ["b"]  # overlay layers hold only their own files
    (mount,) = snaps.prepare("ctr", L2)
    active = snaps.get("ctr").path
    assert mount == Mount(
        type="overlay",
        source="overlay",
        options=(f"workdir={active}/work", f"upperdir={active}/upper", f"lowerdir={p2}/fs:{p1}/fs"),
    )
    assert snaps.mounts(L2) == [
        Mount(type="overlay", source="overlay", options=(f"lowerdir={p2}/fs:{p1}/fs",))
    ]
    assert snaps.mounts(L1) == [Mount(type="bind", source=f"{p1}/fs", options=("rbind", "ro"))]


def test_an_active_snapshot_without_parent_is_a_bind_of_its_upper_dir(tmp_path: Path, db: Database) -> None:
    snaps = Snapshotter(tmp_path, db, OVERLAY)
    (mount,) = snaps.prepare("scratch", None)
    assert mount == Mount(type="bind", source=f"{snaps.get('scratch').path}/upper", options=("rbind", "rw"))


def test_copy_snapshots_hold_the_full_tree(tmp_path: Path, db: Database) -> None:
    snaps = Snapshotter(tmp_path, db, COPY)
    _layer(snaps, L1, None, {"a": b"1"})
    p2 = _layer(snaps, L2, L1, {"b": b"2"})
    assert sorted(p.name for p in (p2 / "fs").iterdir()) == ["a", "b"]
    (mount,) = snaps.prepare("ctr", L2)
    assert mount.type == "bind"
    assert mount.options == ("rbind", "rw")
    assert (Path(mount.source) / "a").read_bytes() == b"1"
    (Path(mount.source) / "a").write_bytes(b"changed")
    assert (p2 / "fs" / "a").read_bytes() == b"1"  # the container's copy is its own


def test_committing_a_key_twice_keeps_the_first_and_discards_the_second(tmp_path: Path, db: Database) -> None:
    snaps = Snapshotter(tmp_path, db, OVERLAY)
    first = _layer(snaps, L1, None, {"a": b"first"})
    second_work = snaps.begin(None)
    assert snaps.commit(L1, None, second_work).path == first
    assert not second_work.exists()
    assert (first / "fs" / "a").read_bytes() == b"first"


def test_prepare_refuses_taken_keys_and_bad_parents(tmp_path: Path, db: Database) -> None:
    snaps = Snapshotter(tmp_path, db, OVERLAY)
    _layer(snaps, L1, None, {})
    snaps.prepare("ctr", L1)
    with pytest.raises(AlreadyExists):
        snaps.prepare("ctr", L1)
    with pytest.raises(InvalidArgument, match="not committed"):
        snaps.prepare("ctr2", "ctr")
    with pytest.raises(NotFound):
        snaps.prepare("ctr3", L2)
    assert list(snaps.tmp.iterdir()) == []


def test_a_parent_cannot_be_removed_before_its_children(tmp_path: Path, db: Database) -> None:
    snaps = Snapshotter(tmp_path, db, OVERLAY)
    _layer(snaps, L1, None, {"a": b"1"})
    snaps.prepare("ctr", L1)
    with pytest.raises(Conflict, match="parent of 1 other snapshot"):
        snaps.remove(L1)
    active = snaps.get("ctr").path
    snaps.remove("ctr")
    snaps.remove(L1)
    assert snaps.list_snapshots() == []
    assert not active.exists()
    assert list(snaps.tmp.iterdir()) == []


def test_leftovers_of_dead_writers_and_unrecorded_dirs_are_removed(tmp_path: Path, db: Database) -> None:
    snaps = Snapshotter(tmp_path, db, OVERLAY)
    kept = _layer(snaps, L1, None, {"a": b"1"})
    dead = snaps.tmp / "1-1-deadbeef"  # pid 1 did not start at tick 1
    (dead / "fs").mkdir(parents=True)
    live = snaps.tmp / owners.owner_tag()
    live.mkdir()
    orphan = snaps.dir / "committed" / ("9" * 64)
    orphan.mkdir()
    assert snaps.cleanup_leftovers() == 2
    assert not dead.exists()
    assert not orphan.exists()
    assert live.exists()
    assert kept.exists()
