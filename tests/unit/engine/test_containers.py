"""Container records in pallet.db: insert, lookups as docker resolves them, updates, renames, documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pallet.engine.containers.records import ContainerRecord, ContainerStore, read_document, write_document
from pallet.engine.db import EngineDB
from pallet.errors import Conflict, InvalidArgument, NotFound


def record(cid: str, name: str, *, created: float = 1.0, **extra: object) -> ContainerRecord:
    values: dict[str, object] = {
        "id": cid,
        "name": name,
        "image_id": "sha256:" + "e" * 64,
        "image": "busybox",
        "created": created,
        "state": "created",
        "runtime": "runc",
    }
    values.update(extra)
    return ContainerRecord(**values)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> ContainerStore:
    db = EngineDB(tmp_path)
    yield ContainerStore(db)  # type: ignore[misc]
    db.close()


def test_insert_then_get_by_id_name_and_prefix(store: ContainerStore) -> None:
    cid = "ab" * 32
    store.insert(record(cid, "web", labels={"a": "b"}))
    for ref in (cid, "web", "/web", cid[:5]):
        found = store.get(ref)
        assert (found.id, found.name, dict(found.labels)) == (cid, "web", {"a": "b"})


def test_unknown_reference_is_not_found_in_dockers_words(store: ContainerStore) -> None:
    with pytest.raises(NotFound) as caught:
        store.get("nosuch")
    assert caught.value.message == "No such container: nosuch"


def test_taken_name_is_a_conflict_naming_the_holder(store: ContainerStore) -> None:
    store.insert(record("a" * 64, "web"))
    with pytest.raises(Conflict) as caught:
        store.insert(record("b" * 64, "web"))
    assert caught.value.message.startswith(
        f'the container name "/web" is already in use by container "{"a" * 64}"'
    )
    assert [r.id for r in store.list()] == ["a" * 64]


def test_ambiguous_prefix_is_refused(store: ContainerStore) -> None:
    store.insert(record("ab" + "1" * 62, "one"))
    store.insert(record("ab" + "2" * 62, "two"))
    with pytest.raises(InvalidArgument):
        store.get("ab")
    assert store.get("ab1").name == "one"


def test_exact_id_wins_over_a_name_that_looks_like_it(store: ContainerStore) -> None:
    store.insert(record("c" * 64, "d" * 64))
    store.insert(record("d" * 64, "other"))
    assert store.get("d" * 64).name == "other"


def test_update_changes_columns_and_refuses_unknown_ones(store: ContainerStore) -> None:
    store.insert(record("a" * 64, "web"))
    updated = store.update("a" * 64, state="exited", exit_code=3, oom_killed=True)
    assert (updated.state, updated.exit_code, updated.oom_killed) == ("exited", 3, True)
    with pytest.raises(InvalidArgument):
        store.update("a" * 64, nonsense=1)
    with pytest.raises(NotFound):
        store.update("b" * 64, state="exited")


def test_rename_moves_the_name_and_conflicts_keep_both(store: ContainerStore) -> None:
    store.insert(record("a" * 64, "one"))
    store.insert(record("b" * 64, "two"))
    store.rename("a" * 64, "uno")
    assert store.get("uno").id == "a" * 64
    assert store.find("one") is None
    with pytest.raises(Conflict):
        store.rename("a" * 64, "two")
    assert store.get("uno").id == "a" * 64


def test_list_is_newest_first_and_delete_is_idempotent(store: ContainerStore) -> None:
    store.insert(record("a" * 64, "old", created=1.0))
    store.insert(record("b" * 64, "new", created=2.0))
    assert [r.name for r in store.list()] == ["new", "old"]
    store.delete("a" * 64)
    store.delete("a" * 64)
    assert [r.name for r in store.list()] == ["new"]


def test_bad_state_is_refused_by_the_schema(store: ContainerStore) -> None:
    import sqlite3

    with pytest.raises(sqlite3.IntegrityError):
        store.insert(record("a" * 64, "web", state="sleeping"))


def test_document_round_trips_and_a_missing_one_reads_empty(tmp_path: Path) -> None:
    path = tmp_path / "container.json"
    assert read_document(path) == {}
    write_document(path, {"Id": "x", "Config": {"Env": ["A=1"]}})
    assert read_document(path) == {"Id": "x", "Config": {"Env": ["A=1"]}}
    assert json.loads(path.read_text())["Id"] == "x"
    assert [p.name for p in tmp_path.iterdir()] == ["container.json"]
