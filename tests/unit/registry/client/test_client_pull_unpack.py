"""Pull unpacks through the image layer's one unpack path, streaming or from the store, with either driver."""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pallet.image.snapshots import COPY, OVERLAY
from pallet.image.store import ImageStore
from pallet.oci import mediatypes
from pallet.oci.digest import Digest
from pallet.oci.image_spec import chain_ids
from pallet.oci.reference import parse
from pallet.registry.client.errors import DigestMismatch
from pallet.registry.client.pull import pull
from pallet.registry.client.transport import Transport
from pallet.testing.registry import FakeRegistry

from .conftest import RecordingProgress, layer, seed_image

DRIVERS = [COPY, OVERLAY] if os.geteuid() == 0 else [COPY]
LAYERS = [{"a": b"1", "big": os.urandom(200_000)}, {"b": b"2"}, {"c": os.urandom(50_000)}, {"d": b"4"}]


@pytest.fixture(params=DRIVERS)
def driver_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ImageStore]:
    with ImageStore.open(tmp_path / "root", snapshot_driver=request.param) as s:
        yield s


def _pull(store: ImageStore, transport: Transport, ref: str) -> None:
    pull(store, parse(ref), transport=transport, credentials=None, progress=RecordingProgress())


def test_layers_already_stored_are_unpacked_on_their_parents_with_their_sizes(
    registry: FakeRegistry, driver_store: ImageStore, transport: Transport
) -> None:
    manifest, _ = seed_image(registry, "app", "v1", LAYERS)
    descs = json.loads(manifest)["layers"]
    with driver_store.lease():
        for d in descs:
            driver_store.content.ingest(io.BytesIO(registry.blobs[d["digest"]]), d["digest"])
    gets = registry.count("GET", "/blobs/sha256:")
    _pull(driver_store, transport, f"{registry.host}/app:v1")
    assert registry.count("GET", "/blobs/sha256:") == gets + 1  # the config only
    layers = driver_store.layers(f"{registry.host}/app:v1")
    assert [lay.uncompressed_size for lay in layers] == [
        len(gzip.decompress(registry.blobs[d["digest"]])) for d in descs
    ]
    snaps = {s.key: s for s in driver_store.snapshots.walk()}
    assert set(snaps) == {str(lay.chain_id) for lay in layers}  # no unpack snapshot left behind
    assert [snaps[str(lay.chain_id)].parent for lay in layers] == [
        None,
        *(str(lay.chain_id) for lay in layers[:-1]),
    ]


def test_a_layer_that_unpacks_to_another_diff_id_is_a_digest_mismatch_and_leaves_no_snapshot(
    registry: FakeRegistry, driver_store: ImageStore, transport: Transport
) -> None:
    blobs = [layer(files) for files in LAYERS[:2]]
    descs = [
        {"mediaType": mediatypes.OCI_LAYER_GZIP, "digest": registry.put_blob("app", b), "size": len(b)}
        for b, _ in blobs
    ]
    diff_ids = [blobs[0][1], "sha256:" + "0" * 64]  # the second is wrong
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    ).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "config": {
            "mediaType": mediatypes.OCI_CONFIG,
            "digest": registry.put_blob("app", config),
            "size": len(config),
        },
        "layers": descs,
    }
    registry.put_manifest("app", "v1", json.dumps(manifest).encode(), mediatypes.OCI_MANIFEST)
    with pytest.raises(DigestMismatch, match="does not match the image config"):
        _pull(driver_store, transport, f"{registry.host}/app:v1")
    keys = {s.key for s in driver_store.snapshots.walk()}
    assert keys <= {str(chain_ids([Digest(blobs[0][1])])[0])}  # at most the good bottom layer
