"""Push to the in-process registry: HEAD skips, cross-repository mounts, chunked uploads, round trips."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pallet.image.store import ImageStore
from pallet.oci.reference import parse
from pallet.registry.client.credentials import Credentials
from pallet.registry.client.pull import pull
from pallet.registry.client.push import PushResult, push
from pallet.registry.client.sources import BlobSources
from pallet.registry.client.transport import Transport
from pallet.testing.registry import FakeRegistry

from .conftest import RecordingProgress, seed_image

BIG = os.urandom(200_000)


@pytest.fixture
def sources(store: ImageStore) -> BlobSources:
    s = BlobSources(store.root)
    yield s  # type: ignore[misc]
    s.close()


def _seeded(registry: FakeRegistry, store: ImageStore, transport: Transport, sources: BlobSources) -> str:
    """Pull an image from ``src/app`` so the store has one; returns its name."""
    seed_image(registry, "src/app", "v1", [{"a": b"a"}, {"big": BIG}])
    name = f"{registry.host}/src/app:v1"
    pull(
        store,
        parse(name),
        transport=transport,
        credentials=None,
        progress=RecordingProgress(),
        sources=sources,
    )
    return name


def _push(store: ImageStore, transport: Transport, image: str, target: str, **kw: object) -> PushResult:
    return push(
        store, image, parse(target), transport=transport, credentials=None, progress=RecordingProgress(), **kw
    )  # type: ignore[arg-type]


def test_push_uploads_blobs_then_manifest_with_the_same_digest(tmp_path: Path, transport: Transport) -> None:
    with (
        FakeRegistry() as src,
        FakeRegistry() as dst,
        ImageStore.open(tmp_path / "r", snapshot_driver="copy") as store,
    ):
        _, digest = seed_image(src, "app", "v1", [{"a": b"a"}, {"big": BIG}])
        pull(
            store,
            parse(f"{src.host}/app:v1"),
            transport=transport,
            credentials=None,
            progress=RecordingProgress(),
        )
        result = _push(store, transport, f"{src.host}/app:v1", f"{dst.host}/copy/app:v2")
        assert result.digest == digest
        assert dst.manifests[("copy/app", "v2")][0] == src.manifests[("app", "v1")][0]
        assert {how for _, how in result.blobs} == {"uploaded"}


def test_second_push_sends_no_blob_twice(tmp_path: Path, transport: Transport) -> None:
    with (
        FakeRegistry() as src,
        FakeRegistry() as dst,
        ImageStore.open(tmp_path / "r", snapshot_driver="copy") as store,
    ):
        seed_image(src, "app", "v1", [{"a": b"a"}, {"big": BIG}])
        pull(
            store,
            parse(f"{src.host}/app:v1"),
            transport=transport,
            credentials=None,
            progress=RecordingProgress(),
        )
        _push(store, transport, f"{src.host}/app:v1", f"{dst.host}/app:v1")
        uploads = dst.count("POST", "/blobs/uploads/")
        result = _push(store, transport, f"{src.host}/app:v1", f"{dst.host}/app:v1")
        assert dst.count("POST", "/blobs/uploads/") == uploads
        assert {how for _, how in result.blobs} == {"exists"}
        assert dst.count("HEAD", "/blobs/") == 6  # 3 blobs, twice


def test_blob_pulled_from_another_repository_is_mounted_not_uploaded(
    registry: FakeRegistry, store: ImageStore, transport: Transport, sources: BlobSources
) -> None:
    name = _seeded(registry, store, transport, sources)
    result = _push(store, transport, name, f"{registry.host}/dst/app:v1", sources=sources)
    assert {how for _, how in result.blobs} == {"mounted"}
    assert registry.count("PUT", "/blobs/uploads/") == 0
    assert registry.count("POST", "mount=") == 3
    manifest = json.loads(registry.manifests[("dst/app", "v1")][0])
    assert manifest["layers"][1]["digest"] in registry.repo_blobs["dst/app"]


def test_mount_needs_pull_access_to_the_source_and_falls_back_to_upload(
    tmp_path: Path, transport: Transport
) -> None:
    with (
        FakeRegistry(auth="bearer", users={"alice": "pw"}) as reg,
        ImageStore.open(tmp_path / "r", snapshot_driver="copy") as store,
    ):
        sources = BlobSources(store.root)
        seed_image(reg, "public/app", "v1", [{"a": b"a"}])
        pull(
            store,
            parse(f"{reg.host}/public/app:v1"),
            transport=transport,
            credentials=None,
            progress=RecordingProgress(),
            sources=sources,
        )
        alice = Credentials(username="alice", password="pw")
        result = push(
            store,
            f"{reg.host}/public/app:v1",
            parse(f"{reg.host}/alice/app:v1"),
            transport=transport,
            credentials=alice,
            progress=RecordingProgress(),
            sources=sources,
        )
        assert {how for _, how in result.blobs} == {"mounted"}
        scopes = [q.get("scope", []) for q in reg.token_requests]
        assert ["repository:alice/app:pull,push", "repository:public/app:pull"] in scopes
        sources.close()


def test_large_blob_is_uploaded_in_chunks(
    registry: FakeRegistry, store: ImageStore, transport: Transport, sources: BlobSources
) -> None:
    name = _seeded(registry, store, transport, sources)
    result = _push(
        store, transport, name, f"{registry.host}/chunked/app:v1", monolithic_max=64_000, chunk_size=64_000
    )
    assert registry.count("PATCH", "/blobs/uploads/") >= 3
    manifest = json.loads(registry.manifests[("chunked/app", "v1")][0])
    big = manifest["layers"][1]["digest"]
    assert big in registry.repo_blobs["chunked/app"]
    assert result.digest == registry.put_manifest("x", "y", registry.manifests[("chunked/app", "v1")][0], "")


def test_pushed_image_pulls_back_to_the_same_image_id(
    registry: FakeRegistry, store: ImageStore, transport: Transport, sources: BlobSources, tmp_path: Path
) -> None:
    name = _seeded(registry, store, transport, sources)
    _push(store, transport, name, f"{registry.host}/round/trip:v1")
    with ImageStore.open(tmp_path / "other", snapshot_driver="copy") as other:
        back = pull(
            other,
            parse(f"{registry.host}/round/trip:v1"),
            transport=transport,
            credentials=None,
            progress=RecordingProgress(),
        )
        assert back.image.id == store.resolve(name).id
