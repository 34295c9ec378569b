"""The one layer-unpack path (``pallet.image.unpack``): verified, committed under the chain id, sized, atomic."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import signal
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pallet.errors import InvalidArgument
from pallet.image.archive import load, save
from pallet.image.importer import import_tarball
from pallet.image.snapshots import COPY, OVERLAY
from pallet.image.store import ImageStore
from pallet.image.unpack import LayerMismatch, UnpackedLayer, unpack_layer
from pallet.oci import mediatypes
from pallet.oci.digest import Digest
from pallet.oci.image_spec import Descriptor, chain_ids
from pallet.testing.images import MemoryImage, add_to_store, random_image

DRIVERS = [COPY, OVERLAY] if os.geteuid() == 0 else [COPY]


@pytest.fixture(params=DRIVERS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ImageStore]:
    with ImageStore.open(tmp_path / "root", snapshot_driver=request.param) as s:
        yield s


def _layer(files: dict[str, bytes]) -> tuple[bytes, Descriptor, Digest]:
    """A gzip'd layer of ``files``: (blob, descriptor, diff id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    blob = gzip.compress(raw.getvalue(), mtime=0)
    desc = Descriptor(media_type=mediatypes.OCI_LAYER_GZIP, digest=Digest.of_bytes(blob), size=len(blob))
    return blob, desc, Digest("sha256:" + hashlib.sha256(raw.getvalue()).hexdigest())


def _unpack(store: ImageStore, blob: bytes, desc: Descriptor, diff_id: Digest, **kw: object) -> UnpackedLayer:
    with store.lease():
        return unpack_layer(
            store.snapshots,
            store.db,
            io.BytesIO(blob),
            blob=desc,
            diff_id=diff_id,
            chain_id=diff_id,
            parent=None,
            remedy="fix it",
            **kw,  # type: ignore[arg-type]
        )


def _fs(store: ImageStore, key: str) -> Path:
    return store.snapshots.get(key).path / "fs"


def test_a_layer_is_committed_under_its_chain_id_with_its_size_recorded(store: ImageStore) -> None:
    blob, desc, diff_id = _layer({"etc/hostname": b"box\n"})
    unpacked = _unpack(store, blob, desc, diff_id)
    assert (_fs(store, str(diff_id)) / "etc/hostname").read_bytes() == b"box\n"
    row = store.db.query("SELECT uncompressed_size, snapshot_key FROM layers WHERE chain_id = ?", (diff_id,))[
        0
    ]
    assert tuple(row) == (len(gzip.decompress(blob)), str(diff_id))
    assert unpacked.fresh is True
    assert [s.key for s in store.snapshots.walk()] == [str(diff_id)]  # no unpack snapshot left behind


def test_a_layer_whose_diff_id_differs_from_the_config_leaves_no_snapshot(store: ImageStore) -> None:
    blob, desc, _ = _layer({"a": b"1"})
    wrong = Digest("sha256:" + "0" * 64)
    with pytest.raises(LayerMismatch, match=r"does not match the image config.*fix it"):
        _unpack(store, blob, desc, wrong)
    assert list(store.snapshots.walk()) == []
    assert store.db.query("SELECT count(*) FROM layers")[0][0] == 0


def test_a_blob_that_does_not_hash_to_its_digest_leaves_no_snapshot(store: ImageStore) -> None:
    blob, desc, diff_id = _layer({"a": b"1"})
    other = desc.replace(digest=Digest("sha256:" + "1" * 64))
    with pytest.raises(LayerMismatch, match="digest mismatch"):
        _unpack(store, blob, other, diff_id)
    assert list(store.snapshots.walk()) == []


def test_a_layer_escaping_its_directory_writes_nothing_outside_and_leaves_no_snapshot(
    store: ImageStore, tmp_path: Path
) -> None:
    blob, desc, diff_id = _layer({"../../../escaped": b"x"})
    with pytest.raises(InvalidArgument, match="points outside the root"):
        _unpack(store, blob, desc, diff_id)
    assert not list(tmp_path.rglob("escaped"))
    assert list(store.snapshots.walk()) == []


def test_a_layer_another_process_committed_first_is_reused(store: ImageStore, tmp_path: Path) -> None:
    blob, desc, diff_id = _layer({"a": b"1"})

    def race() -> None:  # another store on the same root unpacks the same layer meanwhile
        with ImageStore.open(tmp_path / "root") as other:
            _unpack(other, blob, desc, diff_id)

    unpacked = _unpack(store, blob, desc, diff_id, before_commit=race)
    assert unpacked.fresh is False
    assert [s.key for s in store.snapshots.walk()] == [str(diff_id)]
    assert (_fs(store, str(diff_id)) / "a").read_bytes() == b"1"


def test_an_unpack_killed_before_its_commit_is_cleaned_when_the_store_opens(
    store: ImageStore, tmp_path: Path
) -> None:
    blob, desc, diff_id = _layer({"a": b"1"})
    pid = os.fork()
    if pid == 0:
        try:
            with ImageStore.open(tmp_path / "root") as child:
                _unpack(
                    child, blob, desc, diff_id, before_commit=lambda: os.kill(os.getpid(), signal.SIGKILL)
                )
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status)
    assert [s.key.split("/")[0] for s in store.snapshots.walk()] == ["unpack"]
    with ImageStore.open(tmp_path / "root") as later:
        assert list(later.snapshots.walk()) == []
        _unpack(later, blob, desc, diff_id)  # and the same layer unpacks again
        assert [s.key for s in later.snapshots.walk()] == [str(diff_id)]


def test_unpack_layers_stacks_layers_on_their_parents_and_reuses_what_is_there(store: ImageStore) -> None:
    layers = [_layer({"a": b"1", "b": b"2"}), _layer({"c": b"3"})]
    for blob, _, _ in layers:
        store.content.ingest(io.BytesIO(blob))
    descs, diff_ids = [d for _, d, _ in layers], [i for _, _, i in layers]
    top = store.unpack_layers(descs, diff_ids)
    chains = chain_ids(diff_ids)
    assert top == str(chains[1])
    assert store.snapshots.get(top).parent == str(chains[0])
    assert store.unpack_layers(descs[:1], diff_ids[:1]) == str(chains[0])
    assert len(list(store.snapshots.walk())) == 2


def _saved(tmp_path: Path, layers: int) -> tuple[bytes, MemoryImage]:
    image = random_image(seed=5, layers=layers)
    with ImageStore.open(tmp_path / "source", snapshot_driver=COPY) as source:
        add_to_store(source, image, "app:1")
        out = io.BytesIO()
        save(source, ["app:1"], out)
    return out.getvalue(), image


def test_a_loaded_image_is_unpacked_through_the_one_path_when_first_used(
    store: ImageStore, tmp_path: Path
) -> None:
    # load only stores and checks the blobs (as fast as a copy); run's first unpack extracts
    archive, image = _saved(tmp_path, 3)
    (loaded,) = load(store, io.BytesIO(archive))
    assert list(store.snapshots.walk()) == []
    top = store.unpack(str(loaded.image.id))
    layers = store.layers(loaded.image.id)
    assert top == str(layers[-1].chain_id)
    assert [layer.snapshot_key for layer in layers] == [str(layer.chain_id) for layer in layers]
    assert all(layer.uncompressed_size for layer in layers)
    files = image.final_files()
    if store.snapshots.driver == COPY:  # the top snapshot holds the whole tree
        fs = _fs(store, str(layers[-1].chain_id))
        assert {str(p.relative_to(fs)): p.read_bytes() for p in fs.rglob("*") if p.is_file()} == files


def test_an_imported_layer_is_unpacked_through_the_one_path(store: ImageStore) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    record = import_tarball(store, io.BytesIO(raw.getvalue()), ref="imported:1")
    store.unpack(str(record.id))
    (layer,) = store.layers(record.id)
    assert layer.snapshot_key == str(layer.chain_id)
    assert layer.uncompressed_size == len(raw.getvalue())
    assert (_fs(store, str(layer.chain_id)) / "hello").read_bytes() == b"hi"


def _docker_archive(layer: bytes, diff_id: str) -> bytes:
    """A classic ``docker save`` archive of one image, ``bad:1``, whose config names ``diff_id``."""
    import json

    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    ).encode()
    config_name = f"{Digest.of_bytes(config).hex}.json"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": ["bad:1"], "Layers": ["l1/layer.tar"]}]
    ).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in ((config_name, config), ("l1/layer.tar", layer), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_a_load_whose_layer_does_not_unpack_to_its_diff_id_adds_no_image(store: ImageStore) -> None:
    blob, _, diff_id = _layer({"a": b"1"})
    (loaded,) = load(store, io.BytesIO(_docker_archive(gzip.decompress(blob), str(diff_id))))
    store.unpack(str(loaded.image.id))
    assert [layer.snapshot_key for layer in store.layers(loaded.image.id)] == [str(diff_id)]
    store.remove_image("bad:1")
    store.gc()
    with pytest.raises(InvalidArgument, match=r"does not match the image config.*the archive is corrupt"):
        load(store, io.BytesIO(_docker_archive(gzip.decompress(blob), "sha256:" + "0" * 64)))
    assert store.list_images() == []
    assert list(store.snapshots.walk()) == []
