"""A pulled image records each layer's uncompressed size, as load does: ``images`` shows the same size."""

from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path

from pallet.image.store import ImageStore
from pallet.oci import mediatypes
from pallet.oci.reference import parse
from pallet.registry.client.pull import pull
from pallet.registry.client.transport import Transport
from pallet.testing.cli import run_pallet
from pallet.testing.registry import FakeRegistry

from .conftest import RecordingProgress, seed_image


def _load_like_pallet_load(root: Path, registry: FakeRegistry, manifest: bytes) -> str:
    """The same image put into another store as ``pallet load`` does it: ingest, add, unpack."""
    doc = json.loads(manifest)
    with ImageStore.open(root, snapshot_driver="copy") as store:
        with store.lease():
            for layer in doc["layers"]:
                store.content.ingest(io.BytesIO(registry.blobs[layer["digest"]]), layer["digest"])
            config = registry.blobs[doc["config"]["digest"]]
            record = store.add_image(
                manifest, config, manifest_media_type=mediatypes.OCI_MANIFEST, ref="loaded:v1"
            )
        store.unpack(record.id)
        return str(record.id)


def test_pulled_image_has_the_uncompressed_size_load_records(
    registry: FakeRegistry, store: ImageStore, transport: Transport, tmp_path: Path
) -> None:
    layers = [
        {"etc/one": b"1"},
        {"data/big": os.urandom(300_000), "etc/two": b"2"},
        {"zeros": bytes(500_000)},
    ]
    manifest, _ = seed_image(registry, "app", "v1", layers)
    result = pull(
        store,
        parse(f"{registry.host}/app:v1"),
        transport=transport,
        credentials=None,
        progress=RecordingProgress(),
    )
    pulled = store.layers(result.image.id)
    blobs = [registry.blobs[str(layer.blob.digest)] for layer in pulled]
    # the size of each layer's tar, not of its gzip'd blob
    assert [layer.uncompressed_size for layer in pulled] == [len(gzip.decompress(b)) for b in blobs]

    loaded_root = tmp_path / "loaded"
    image_id = _load_like_pallet_load(loaded_root, registry, manifest)
    assert image_id == str(result.image.id)
    with ImageStore.open(loaded_root) as loaded:
        assert [layer.uncompressed_size for layer in loaded.layers(image_id)] == [
            layer.uncompressed_size for layer in pulled
        ]
    size_pulled = run_pallet(tmp_path / "root", "image", "inspect", "--format", "{{.Size}}", image_id)
    size_loaded = run_pallet(loaded_root, "image", "inspect", "--format", "{{.Size}}", image_id)
    assert size_pulled.code == size_loaded.code == 0
    assert size_pulled.out == size_loaded.out
    assert int(size_pulled.out) > 800_000  # the zeros layer alone is 500 kB uncompressed, ~500 B gzip'd
