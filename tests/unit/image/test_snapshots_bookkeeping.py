from __future__ import annotations

from pathlib import Path

import pytest

from pallet.database import Database
from pallet.image import owners
from pallet.image.metadata import open_database
from pallet.image.snapshots import COPY, OVERLAY, DirectorySnapshotter, Mount, open_snapshotter, writable_dir

L1, L2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


@pytest.fixture
def db(tmp_path: Path) -> Database:
    d = open_database(str(tmp_path))
    yield d  # type: ignore[misc]
    d.close()


def _layer(snaps: DirectorySnapshotter, key: str, parent: str | None, files: dict[str, bytes]) -> Path:
    work = f"work-{key}"
    tree = Path(writable_dir(snaps.prepare(work, parent)))
    for name, data in files.items():
        (tree / name).write_bytes(data)
    return snaps.commit(key, work).path


def test_overlay_mounts_stack_the_parent_chain_top_first(tmp_path: Path, db: Database) -> None:
    snaps = open_snapshotter(tmp_path, db, OVERLAY)
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
    snaps = open_snapshotter(tmp_path, db, OVERLAY)
    (mount,) = snaps.prepare("scratch", None)
    assert mount == Mount(type="bind", source=f"{snaps.get('scratch').path}/upper", options=("rbind", "rw"))


def test_copy_snapshots_hold_the_full_tree(tmp_path: Path, db: Database) -> None:
    snaps = open_snapshotter(tmp_path, db, COPY)
    _layer(snaps, L1, None, {"a": b"1"})
    p2 = _layer(snaps, L2, L1, {"b": b"2"})
    assert sorted(p.name for p in (p2 / "fs").iterdir()) == ["a", "b"]
    (mount,) = snaps.prepare("ctr", L2)
    assert mount.type == "bind"
    assert mount.options == ("rbind", "rw")
    assert (Path(mount.source) / "a").read_bytes() == b"1"
    (Path(mount.source) / "a").write_bytes(b"changed")
    assert (p2 / "fs" / "a").read_bytes() == b"1"  # the container's copy is its own


def test_an_overlay_commit_keeps_the_upper_dir_as_the_layer_and_drops_the_work_dir(
    tmp_path: Path, db: Database
) -> None:
    snaps = open_snapshotter(tmp_path, db, OVERLAY)
    _layer(snaps, L1, None, {"a": b"1"})
    snaps.prepare("work", None)
    (Path(writable_dir(snaps.mounts("work"))) / "b").write_bytes(b"2")
    path = snaps.commit(L2, "work", onto=L1).path
    assert sorted(p.name for p in path.iterdir()) == ["fs"]
    assert (path / "fs" / "b").read_bytes() == b"2"
    assert path.parent.name == "committed"
    assert list(snaps.tmp.iterdir()) == []


def test_a_view_is_an_active_row_kept_under_the_view_dir(tmp_path: Path, db: Database) -> None:
    snaps = open_snapshotter(tmp_path, db, COPY)
    p1 = _layer(snaps, L1, None, {"a": b"1"})
    (mount,) = snaps.view("look", L1)
    assert mount == Mount(type="bind", source=f"{p1}/fs", options=("rbind", "ro"))  # no copy made
    assert db.query("SELECT kind FROM snapshots WHERE key = 'look'")[0][0] == "active"
    assert snaps.get("look").path.parent.name == "view"
    assert snaps.get("look").kind == "view"


def test_leftovers_of_dead_writers_and_unrecorded_dirs_are_removed(tmp_path: Path, db: Database) -> None:
    snaps = open_snapshotter(tmp_path, db, OVERLAY)
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
