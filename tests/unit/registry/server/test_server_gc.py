"""``pallet registry garbage-collect``: mark from every repository's manifests, sweep the rest."""

from __future__ import annotations

import io
import json
import os
from typing import TYPE_CHECKING

import pytest

from pallet.cli.main import main
from pallet.oci import mediatypes
from pallet.oci.digest import Digest
from pallet.registry.server.storage import Storage

if TYPE_CHECKING:
    from pathlib import Path


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err, stdin=io.BytesIO(), stdout_binary=io.BytesIO())
    return code, out.getvalue(), err.getvalue()


def _blob(storage: Storage, repository: str, data: bytes) -> Digest:
    digest = storage.store_blob(data)
    storage.link_blob(repository, digest)
    return digest


def _descriptor(media_type: str, digest: Digest, size: int) -> dict[str, object]:
    return {"mediaType": media_type, "digest": str(digest), "size": size}


def _image(storage: Storage, repository: str, name: str, *, layers: list[bytes], tag: str | None) -> Digest:
    config = json.dumps({"name": name}).encode()
    body = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "config": _descriptor(mediatypes.OCI_CONFIG, _blob(storage, repository, config), len(config)),
        "layers": [
            _descriptor(mediatypes.OCI_LAYER_GZIP, _blob(storage, repository, layer), len(layer))
            for layer in layers
        ],
    }
    return storage.put_manifest(
        repository,
        json.dumps(body).encode(),
        mediatypes.OCI_MANIFEST,
        tags=[tag] if tag else [],
        subject=None,
        referrer=None,
    )


class Scene:
    """Repository ``a``: a tagged image, an untagged one and an upload no manifest names; ``b``: a
    tagged index whose only child is untagged and shares a layer with ``a``'s tagged image."""

    def __init__(self, root: Path) -> None:
        self.storage = s = Storage(str(root))
        self.tagged = _image(s, "a", "tagged", layers=[b"layer-1", b"shared"], tag="latest")
        self.untagged = _image(s, "a", "untagged", layers=[b"layer-2"], tag=None)
        self.orphan = _blob(s, "a", b"uploaded, never used")
        self.child = _image(s, "b", "child", layers=[b"shared"], tag=None)
        child_size = os.path.getsize(s.blob_path(self.child))
        index = {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_INDEX,
            "manifests": [_descriptor(mediatypes.OCI_MANIFEST, self.child, child_size)],
        }
        self.index = s.put_manifest(
            "b", json.dumps(index).encode(), mediatypes.OCI_INDEX, tags=["v1"], subject=None, referrer=None
        )
        self.layer2 = Digest.of_bytes(b"layer-2")
        self.config2 = Digest.of_bytes(json.dumps({"name": "untagged"}).encode())

    def blobs(self) -> set[Digest]:
        base = os.path.join(self.storage.root, "blobs", "sha256")
        return {Digest.parse(f"sha256:{name}") for name in os.listdir(base) if not name.startswith(".")}


@pytest.fixture
def scene(tmp_path: Path) -> Scene:
    return Scene(tmp_path / "storage")


def test_garbage_collect_deletes_only_what_no_manifest_references(scene: Scene) -> None:
    before = scene.blobs()
    code, out, err = run("registry", "garbage-collect", scene.storage.root)
    assert (code, err) == (0, "")
    assert scene.blobs() == before - {scene.orphan}
    assert f"blob eligible for deletion: {scene.orphan}" in out
    assert f"a: layer link eligible for deletion: {scene.orphan}" in out
    assert f"a: marking manifest {scene.untagged} " in out
    assert f"b: marking blob {scene.child}" in out  # the index's child, through the index
    assert "\n10 blobs marked, 1 blobs and 0 manifests eligible for deletion\n" in out
    assert scene.storage.blob_size("a", scene.orphan) is None
    assert scene.storage.resolve("a", "latest") == scene.tagged


def test_delete_untagged_removes_untagged_manifests_but_not_the_children_of_a_tagged_index(
    scene: Scene,
) -> None:
    code, out, _ = run("registry", "garbage-collect", "--delete-untagged", scene.storage.root)
    assert code == 0
    gone = {scene.orphan, scene.untagged, scene.layer2, scene.config2}
    assert not gone & scene.blobs()
    assert scene.storage.manifest_type("a", scene.untagged) is None
    assert scene.storage.manifest_type("b", scene.child) == mediatypes.OCI_MANIFEST
    assert f"manifest eligible for deletion: {scene.untagged}" in out
    assert "7 blobs marked, 4 blobs and 1 manifests eligible for deletion" in out
    assert scene.storage.resolve("b", "v1") == scene.index


def test_dry_run_prints_the_same_and_deletes_nothing(scene: Scene) -> None:
    before = scene.blobs()
    code, dry, _ = run("registry", "garbage-collect", "-m", "--dry-run", scene.storage.root)
    assert code == 0
    assert scene.blobs() == before
    assert scene.storage.manifest_type("a", scene.untagged) is not None
    assert scene.storage.blob_size("a", scene.orphan) is not None
    _, real, _ = run("registry", "garbage-collect", "-m", scene.storage.root)
    assert real == dry


def test_a_config_file_names_the_storage_directory(scene: Scene, tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: info\nstorage:\n  cache:\n    blobdescriptor: inmemory\n"
        f"  filesystem:\n    rootdirectory: {scene.storage.root}  # pallet's storage\n"
        "http:\n  addr: :5000\n"
    )
    code, _, _ = run("registry", "garbage-collect", str(config))
    assert code == 0
    assert scene.orphan not in scene.blobs()


def test_refuses_while_the_storage_is_served(scene: Scene) -> None:
    lock = scene.storage.lock()
    assert lock.acquire(shared=True, blocking=False)  # what a serving server holds
    try:
        code, _, err = run("registry", "garbage-collect", scene.storage.root)
    finally:
        lock.release()
    assert code != 0
    assert "being served" in err
    assert scene.orphan in scene.blobs()


@pytest.mark.parametrize(
    ("layout", "words"),
    [
        ("missing", "no such file or directory"),
        ("empty", "is not a registry storage directory"),
        ("docker", "docker-registry's own layout"),
        ("config", "no storage.filesystem.rootdirectory"),
    ],
)
def test_bad_storage_is_refused_naming_it(tmp_path: Path, layout: str, words: str) -> None:
    target = tmp_path / "target"
    if layout == "empty":
        target.mkdir()
    elif layout == "docker":
        (target / "docker" / "registry" / "v2").mkdir(parents=True)
    elif layout == "config":
        target.write_text("storage:\n  s3:\n    bucket: x\n")
    code, _, err = run("registry", "garbage-collect", str(target))
    assert code != 0
    assert words in err
    assert str(target) in err
    assert not (layout == "empty" and os.listdir(target))  # nothing created


def test_a_manifest_whose_blob_is_missing_stops_before_anything_is_deleted(scene: Scene) -> None:
    os.unlink(scene.storage.blob_path(scene.tagged))
    before = scene.blobs()
    code, _, err = run("registry", "garbage-collect", scene.storage.root)
    assert code != 0
    assert str(scene.tagged) in err
    assert "nothing was deleted" in err
    assert scene.blobs() == before


def test_a_server_does_not_start_serving_while_garbage_is_collected(scene: Scene) -> None:
    from pallet.errors import Unavailable
    from pallet.registry.server.serve import build_server
    from pallet.registry.server.serve import run as serve

    server = build_server(addr="127.0.0.1:0", storage_dir=scene.storage.root)
    lock = scene.storage.lock()
    assert lock.acquire(blocking=False)  # what garbage-collect holds
    try:
        with pytest.raises(Unavailable, match="garbage collection is running"):
            serve(server)
    finally:
        lock.release()
        server.server_close()
