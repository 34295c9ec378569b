"""The engine's tables in pallet.db: one connection for containers, images and volumes, and name uniqueness."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from pallet.engine.containers.records import ContainerRecord, ContainerStore
from pallet.engine.db import CONTAINERS, VOLUMES, EngineDB
from pallet.engine.volumes import VolumeStore
from pallet.image.metadata import SCHEMA as IMAGE_SCHEMA
from pallet.image.snapshots import COPY
from pallet.image.store import ImageStore
from pallet.testing.images import add_to_store, random_image


def record(cid: str, name: str, *, image_id: str = "sha256:" + "e" * 64) -> ContainerRecord:
    return ContainerRecord(
        id=cid, name=name, image_id=image_id, image="busybox", created=1.0, state="created", runtime="runc"
    )


def test_a_new_database_has_the_image_container_and_volume_tables_at_their_latest_versions(
    tmp_path: Path,
) -> None:
    db = EngineDB(tmp_path / "root")
    try:
        assert sorted((tmp_path / "root").glob("*.db")) == [tmp_path / "root" / "pallet.db"]
        for schema in (IMAGE_SCHEMA, CONTAINERS, VOLUMES):
            assert db.version(schema.owner) == len(schema.steps)
        tables = {r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"containers", "images", "image_users", "settings", "volumes", "volume_users"} <= tables
    finally:
        db.close()


def test_reopening_keeps_the_rows(tmp_path: Path) -> None:
    db = EngineDB(tmp_path)
    ContainerStore(db).insert(record("a" * 64, "web"))
    db.close()
    again = EngineDB(tmp_path)
    try:
        assert ContainerStore(again).get("web").id == "a" * 64
    finally:
        again.close()


def test_a_container_its_image_and_its_volume_change_in_one_transaction(tmp_path: Path) -> None:
    db = EngineDB(tmp_path)
    try:
        containers = ContainerStore(db)
        with (
            ImageStore.open(tmp_path, snapshot_driver=COPY, db=db) as images,
            VolumeStore.open(tmp_path, db=db) as volumes,
        ):
            image = add_to_store(images, random_image(seed=5), "busybox")
            volumes.create("data")
            cid = "c" * 64

            def hold_all_then_fail() -> None:
                with db.transaction():
                    containers.insert(record(cid, "web", image_id=str(image.id)))
                    images.set_in_use(image.id, cid)
                    volumes.use("data", cid)
                    raise RuntimeError("interrupted")

            with pytest.raises(RuntimeError):
                hold_all_then_fail()
            assert (containers.list(), images.users(image.id), volumes.users("data")) == ([], [], [])
            with db.transaction():
                containers.insert(record(cid, "web", image_id=str(image.id)))
                images.set_in_use(image.id, cid)
                volumes.use("data", cid)
            assert [r.id for r in containers.list()] == [cid]
            assert (images.users(image.id), volumes.users("data")) == ([cid], [cid])
        # the stores left the shared connection open
        assert db.query("SELECT count(*) FROM containers")[0][0] == 1
    finally:
        db.close()


def _claim(root: str, index: int, queue: multiprocessing.Queue[str]) -> None:
    db = EngineDB(Path(root))
    try:
        with db.transaction() as conn:
            conn.execute(
                "INSERT INTO containers(id, name, image_id, image, created, state, runtime)"
                " VALUES (?, 'same', 'i', 'busybox', 0, 'created', 'runc')",
                (f"{index:064x}",),
            )
        queue.put("won")
    except sqlite3.IntegrityError:
        queue.put("lost")
    finally:
        db.close()


def test_one_name_is_won_by_exactly_one_of_many_processes(tmp_path: Path) -> None:
    EngineDB(tmp_path).close()
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[str] = context.Queue()
    procs = [context.Process(target=_claim, args=(str(tmp_path), i, queue)) for i in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    results = sorted(queue.get(timeout=5) for _ in procs)
    assert results == ["lost"] * 7 + ["won"]
