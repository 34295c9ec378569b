"""Volumes: create, list with filters, inspect, users, removal rules, prune, seeding."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pallet.engine.volumes import ANONYMOUS_LABEL, VolumeFilters, VolumeStore, check_name
from pallet.errors import Conflict, InvalidArgument, NotFound, Unsupported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def store(tmp_path: Path) -> Iterator[VolumeStore]:
    with VolumeStore.open(tmp_path / "root") as s:
        yield s


def test_create_makes_data_dir_and_inspect_shape(store: VolumeStore) -> None:
    volume = store.create("data", labels={"team": "a"})
    assert Path(volume.mountpoint).is_dir()
    assert volume.mountpoint.endswith("/volumes/data/_data")
    shown = volume.to_inspect()
    assert shown["Name"] == "data"
    assert shown["Driver"] == "local"
    assert shown["Labels"] == {"team": "a"}
    assert shown["Scope"] == "local"
    assert shown["Options"] is None
    assert str(shown["CreatedAt"]).endswith("Z")


def test_create_twice_returns_the_same_volume(store: VolumeStore) -> None:
    first = store.create("data")
    (Path(first.mountpoint) / "keep").write_text("x")
    second = store.create("data", labels={"ignored": "1"})
    assert second.created_at == first.created_at
    assert (Path(second.mountpoint) / "keep").read_text() == "x"


def test_anonymous_volume_has_hex_name_and_label(store: VolumeStore) -> None:
    volume = store.create()
    assert len(volume.name) == 64
    assert all(c in "0123456789abcdef" for c in volume.name)
    assert volume.anonymous
    assert ANONYMOUS_LABEL in volume.labels


@pytest.mark.parametrize("name", ["a", "-x", "a/b", "has space", "ü1"])
def test_invalid_names_are_refused_with_dockers_wording(name: str) -> None:
    with pytest.raises(InvalidArgument, match="includes invalid characters for a local volume name"):
        check_name(name)


def test_other_drivers_and_options_are_refused(store: VolumeStore) -> None:
    with pytest.raises(NotFound, match="plugin"):
        store.create("x1", driver="nfs")
    with pytest.raises(Unsupported, match="--opt"):
        store.create("x1", options={"type": "tmpfs"})
    assert store.list_volumes() == []


def test_get_missing_volume_is_not_found(store: VolumeStore) -> None:
    with pytest.raises(NotFound, match="no such volume: nope"):
        store.get("nope")


def test_volume_in_use_cannot_be_removed_until_released(store: VolumeStore) -> None:
    store.create("data")
    store.use("data", "c1")
    with pytest.raises(Conflict, match=r"volume is in use - \[c1\]"):
        store.remove("data")
    assert store.get("data").users == ("c1",)
    store.release("c1")
    store.remove("data")
    assert not (Path(store.dir) / "data").exists()
    with pytest.raises(NotFound):
        store.get("data")


def test_use_of_missing_volume_is_not_found(store: VolumeStore) -> None:
    with pytest.raises(NotFound):
        store.use("nope", "c1")


def test_remove_force_ignores_missing(store: VolumeStore) -> None:
    store.remove("nope", force=True)
    with pytest.raises(NotFound):
        store.remove("nope")


def test_release_with_remove_anonymous_keeps_named_and_shared(store: VolumeStore) -> None:
    named = store.create("named")
    mine = store.create()
    shared = store.create()
    for v in (named, mine, shared):
        store.use(v.name, "c1")
    store.use(shared.name, "c2")
    removed = store.release("c1", remove_anonymous=True)
    assert removed == [mine.name]
    assert {v.name for v in store.list_volumes()} == {named.name, shared.name}
    assert not Path(mine.mountpoint).exists()


def test_filters_match_like_docker(store: VolumeStore) -> None:
    store.create("web-data", labels={"app": "web", "tier": "front"})
    store.create("db-data", labels={"app": "db"})
    store.use("db-data", "c1")

    def names(*f: str) -> list[str]:
        return [v.name for v in store.list_volumes(VolumeFilters(f))]

    assert names("name=data") == ["db-data", "web-data"]
    assert names("name=web") == ["web-data"]
    assert names("label=app") == ["db-data", "web-data"]
    assert names("label=app=db") == ["db-data"]
    assert names("label=app", "label=tier=front") == ["web-data"]
    assert names("label!=app=db") == ["web-data"]
    assert names("dangling=true") == ["web-data"]
    assert names("dangling=false") == ["db-data"]
    assert names("driver=local", "name=db") == ["db-data"]


@pytest.mark.parametrize("bad", ["nokey", "color=red", "dangling=maybe"])
def test_bad_filters_are_invalid(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        VolumeFilters([bad])


def test_prune_removes_unused_anonymous_only_unless_all(store: VolumeStore) -> None:
    store.create("named")
    unused = store.create()
    used = store.create()
    store.use(used.name, "c1")
    (Path(unused.mountpoint) / "f").write_bytes(b"x" * 10000)
    removed, freed = store.prune()
    assert removed == [unused.name]
    assert freed >= 10000
    removed, _ = store.prune(all=True)
    assert removed == ["named"]
    assert [v.name for v in store.list_volumes()] == [used.name]


def test_prune_with_label_filter(store: VolumeStore) -> None:
    store.create("keep1", labels={"keep": "1"})
    store.create("drop1")
    removed, _ = store.prune(all=True, filters=VolumeFilters(["label!=keep"]))
    assert removed == ["drop1"]


def test_seed_copies_into_empty_volume_once_keeping_modes(store: VolumeStore, tmp_path: Path) -> None:
    source = tmp_path / "image-dir"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "file").write_text("hello")
    os.chmod(source / "sub" / "file", 0o600)
    os.symlink("sub/file", source / "link")
    os.chmod(source, 0o750)
    store.create("data")
    assert store.seed("data", str(source))
    data = Path(store.data_path("data"))
    assert (data / "sub" / "file").read_text() == "hello"
    assert (data / "sub" / "file").stat().st_mode & 0o777 == 0o600
    assert os.readlink(data / "link") == "sub/file"
    assert data.stat().st_mode & 0o777 == 0o750
    (source / "new").write_text("later")
    assert not store.seed("data", str(source))
    assert not (data / "new").exists()


def test_crashed_removal_leftovers_are_cleared_on_open(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with VolumeStore.open(root) as store:
        leftover = Path(store.trash) / "999999999-1-deadbeef"
        (leftover / "_data").mkdir(parents=True)
    with VolumeStore.open(root):
        assert not leftover.exists()


def test_volumes_survive_reopen(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with VolumeStore.open(root) as store:
        store.create("data", labels={"a": "b"})
        store.use("data", "c1")
    with VolumeStore.open(root) as store:
        volume = store.get("data")
        assert dict(volume.labels) == {"a": "b"}
        assert volume.users == ("c1",)
        assert store.used_by("c1") == ["data"]
