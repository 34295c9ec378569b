"""Pull from the in-process registry: platform choice, resume, digest checks, unpack."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from pallet.image.store import ImageStore
from pallet.oci import mediatypes
from pallet.oci.image_spec import Platform
from pallet.oci.reference import parse
from pallet.registry.client.errors import DigestMismatch, ManifestUnknown
from pallet.registry.client.pull import pull
from pallet.registry.client.transport import Transport
from pallet.testing.registry import FakeRegistry

from .conftest import RecordingProgress, seed_image

BIG = os.urandom(300_000)  # incompressible: the gzip'd layer stays ~300 kB


def _pull(store: ImageStore, transport: Transport, ref: str, **kw: object):  # type: ignore[no-untyped-def]
    return pull(store, parse(ref), transport=transport, credentials=None, progress=RecordingProgress(), **kw)  # type: ignore[arg-type]


def _rootfs(store: ImageStore, name: str) -> Path:
    key = store.unpack(store.resolve(name).id)
    assert key is not None
    return store.snapshots.get(key).path / "fs"


def test_pull_stores_tags_and_unpacks_every_layer(
    registry: FakeRegistry, store: ImageStore, transport: Transport
) -> None:
    seed_image(registry, "app", "v1", [{"etc/one": b"1"}, {"etc/two": b"2", "data/big": BIG}])
    result = _pull(store, transport, f"{registry.host}/app:v1")
    assert store.resolve(f"{registry.host}/app:v1").id == result.image.id
    fs = _rootfs(store, f"{registry.host}/app:v1")
    assert (fs / "etc/one").read_bytes() == b"1"
    assert (fs / "data/big").read_bytes() == BIG
    assert result.fresh


def test_second_pull_downloads_no_blob_again(
    registry: FakeRegistry, store: ImageStore, transport: Transport
) -> None:
    seed_image(registry, "app", "v1", [{"a": b"a"}, {"b": b"b"}])
    _pull(store, transport, f"{registry.host}/app:v1")
    gets = registry.count("GET", "/blobs/sha256:")
    result = _pull(store, transport, f"{registry.host}/app:v1")
    assert registry.count("GET", "/blobs/sha256:") == gets + 1  # the config only
    assert not result.fresh


def test_unknown_tag_is_manifest_unknown_with_docker_wording(
    registry: FakeRegistry, store: ImageStore, transport: Transport
) -> None:
    seed_image(registry, "busybox", "latest", [{"a": b"a"}])
    with pytest.raises(ManifestUnknown) as err:
        _pull(store, transport, f"{registry.host}/busybox:nope")
    assert str(err.value) == f"manifest for {registry.host}/busybox:nope not found: manifest unknown"
    assert err.value.exit_code == 66


def test_platform_flag_picks_that_manifest_from_an_index(
    registry: FakeRegistry, store: ImageStore, transport: Transport
) -> None:
    entries = []
    for arch in ("amd64", "arm64"):
        manifest, digest = seed_image(
            registry, "multi", None, [{f"arch-{arch}": arch.encode()}], architecture=arch
        )
        platform = {"os": "linux", "architecture": arch, **({"variant": "v8"} if arch == "arm64" else {})}
        entries.append(
            {
                "mediaType": mediatypes.OCI_MANIFEST,
                "digest": digest,
                "size": len(manifest),
                "platform": platform,
            }
        )
    index = json.dumps({"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": entries}).encode()
    registry.put_manifest("multi", "latest", index, mediatypes.OCI_INDEX)

    arm = _pull(
        store, transport, f"{registry.host}/multi", platform=Platform(os="linux", architecture="arm64")
    )
    assert arm.image.platform.architecture == "arm64"
    assert (_rootfs(store, arm.image.id) / "arch-arm64").exists()
    host = _pull(
        store, transport, f"{registry.host}/multi", platform=Platform(os="linux", architecture="amd64")
    )
    assert host.image.platform.architecture == "amd64"


def test_platform_missing_from_index_names_what_it_offers(
    registry: FakeRegistry, store: ImageStore, transport: Transport
) -> None:
    manifest, digest = seed_image(registry, "multi", None, [{"a": b"a"}])
    entry = {
        "mediaType": mediatypes.OCI_MANIFEST,
        "digest": digest,
        "size": len(manifest),
        "platform": {"os": "linux", "architecture": "amd64"},
    }
    registry.put_manifest(
        "multi",
        "latest",
        json.dumps({"schemaVersion": 2, "manifests": [entry]}).encode(),
        mediatypes.OCI_INDEX,
    )
    with pytest.raises(ManifestUnknown, match="linux/amd64"):
        _pull(store, transport, f"{registry.host}/multi", platform=Platform(os="linux", architecture="s390x"))


def test_connection_cut_mid_blob_is_resumed_with_range(
    registry: FakeRegistry, store: ImageStore, transport: Transport
) -> None:
    manifest, _ = seed_image(registry, "app", "v1", [{"data/big": BIG}])
    layer_digest = json.loads(manifest)["layers"][0]["digest"]
    registry.cut_once[layer_digest] = 100_000
    _pull(store, transport, f"{registry.host}/app:v1")
    assert any(m == "GET" and p.endswith(" bytes=100000-") for m, p, _, _ in registry.requests)
    assert (_rootfs(store, f"{registry.host}/app:v1") / "data/big").read_bytes() == BIG


def test_partial_file_of_a_killed_pull_is_resumed_not_restarted(
    registry: FakeRegistry, store: ImageStore, transport: Transport
) -> None:
    manifest, _ = seed_image(registry, "app", "v1", [{"data/big": BIG}])
    layer_digest = json.loads(manifest)["layers"][0]["digest"]
    blob = registry.blobs[layer_digest]
    partial = store.content.root / "partial" / layer_digest.replace(":", "-")
    partial.parent.mkdir(exist_ok=True)
    partial.write_bytes(blob[:123_456])  # what a SIGKILLed pull leaves
    _pull(store, transport, f"{registry.host}/app:v1")
    assert any(p.endswith(" bytes=123456-") for _, p, _, _ in registry.requests)
    assert store.content.path(layer_digest).read_bytes() == blob
    assert not partial.exists()


def test_registry_ignoring_range_still_gives_the_right_blob(
    registry: FakeRegistry, store: ImageStore, transport: Transport
) -> None:
    manifest, _ = seed_image(registry, "app", "v1", [{"data/big": BIG}])
    layer_digest = json.loads(manifest)["layers"][0]["digest"]
    registry.cut_once[layer_digest] = 50_000
    registry.ignore_range = True
    _pull(store, transport, f"{registry.host}/app:v1")
    assert store.content.path(layer_digest).read_bytes() == registry.blobs[layer_digest]


def test_corrupt_blob_is_rejected_and_nothing_is_stored(
    registry: FakeRegistry, store: ImageStore, transport: Transport
) -> None:
    manifest, _ = seed_image(registry, "app", "v1", [{"data/big": BIG}])
    layer_digest = json.loads(manifest)["layers"][0]["digest"]
    registry.corrupt.add(layer_digest)
    with pytest.raises(DigestMismatch) as err:
        _pull(store, transport, f"{registry.host}/app:v1")
    assert err.value.exit_code == 65
    assert not store.content.has(layer_digest)
    assert list((store.content.root / "partial").iterdir()) == []
    assert store.snapshots.list_snapshots() == []
    with pytest.raises(Exception, match="not found"):
        store.resolve(f"{registry.host}/app:v1")


def test_corrupt_blob_is_rejected_when_downloaded_before_unpacking(
    registry: FakeRegistry, tmp_path: Path, transport: Transport
) -> None:
    # the copy driver unpacks layer 2 from the store after downloading it, when layer 1 is not in yet
    manifest, _ = seed_image(registry, "app", "v1", [{"a": BIG}, {"b": BIG[:1000]}])
    second = json.loads(manifest)["layers"][1]["digest"]
    registry.corrupt.add(second)
    with ImageStore.open(tmp_path / "r2", snapshot_driver="copy") as store, pytest.raises(DigestMismatch):
        _pull(store, transport, f"{registry.host}/app:v1", parallel=1)
    with ImageStore.open(tmp_path / "r2") as store:
        assert not store.content.has(second)


def test_pull_by_digest_records_name_at_digest(
    registry: FakeRegistry, store: ImageStore, transport: Transport
) -> None:
    _, digest = seed_image(registry, "app", "v1", [{"a": b"a"}])
    result = _pull(store, transport, f"{registry.host}/app@{digest}")
    assert str(result.reference) == f"{registry.host}/app@{digest}"
    assert store.resolve(f"{registry.host}/app@{digest}").id == result.image.id


def test_image_repeating_one_layer_blob_pulls_and_unpacks(
    registry: FakeRegistry, store: ImageStore, transport: Transport
) -> None:
    seed_image(registry, "app", "v1", [{"same": b"x"}, {"other": b"y"}, {"same": b"x"}])
    _pull(store, transport, f"{registry.host}/app:v1", parallel=3)
    fs = _rootfs(store, f"{registry.host}/app:v1")
    assert (fs / "same").read_bytes() == b"x"
    assert (fs / "other").read_bytes() == b"y"


def test_failed_middle_layer_stops_the_layers_waiting_on_it(
    registry: FakeRegistry, store: ImageStore, transport: Transport
) -> None:
    manifest, _ = seed_image(registry, "app", "v1", [{"a": b"a"}, {"b": BIG}, {"c": b"c"}, {"d": b"d"}])
    middle = json.loads(manifest)["layers"][1]["digest"]
    registry.corrupt.add(middle)
    with pytest.raises(DigestMismatch):
        _pull(store, transport, f"{registry.host}/app:v1")
    assert not store.content.has(middle)
    assert (
        len(store.snapshots.list_snapshots()) <= 1
    )  # at most the bottom layer, committed before the failure


def test_other_valid_layer_served_under_a_digest_is_rejected(
    registry: FakeRegistry, store: ImageStore, transport: Transport
) -> None:
    # two stored (level 0) gzip layers of one size: same length, different content
    manifest, _ = seed_image(registry, "app", "v1", [{"big": os.urandom(100_000)}], level=0)
    seed_image(registry, "other", "v1", [{"big": os.urandom(100_000)}], level=0)
    wanted = json.loads(manifest)["layers"][0]["digest"]
    impostor = json.loads(registry.manifests[("other", "v1")][0])["layers"][0]["digest"]
    assert len(registry.blobs[impostor]) == len(registry.blobs[wanted])
    registry.blobs[wanted] = registry.blobs[impostor]
    with pytest.raises(DigestMismatch, match=f"blob {wanted}"):
        _pull(store, transport, f"{registry.host}/app:v1")
    assert not store.content.has(wanted)
    assert not store.content.has(impostor)
    assert store.snapshots.list_snapshots() == []


def test_blob_of_the_wrong_size_is_a_digest_mismatch_not_a_retry_loop(
    registry: FakeRegistry, store: ImageStore, transport: Transport
) -> None:
    manifest, _ = seed_image(registry, "app", "v1", [{"big": BIG}])
    wanted = json.loads(manifest)["layers"][0]["digest"]
    registry.blobs[wanted] = registry.blobs[wanted][:-10]
    with pytest.raises(DigestMismatch, match="should be"):
        _pull(store, transport, f"{registry.host}/app:v1")
    assert registry.count("GET", wanted) <= 2  # the streaming try and the verifying one, no retry loop


@pytest.mark.timeout(60)
def test_repeated_blob_locked_first_by_the_upper_layer_does_not_deadlock(
    registry: FakeRegistry, store: ImageStore, transport: Transport, monkeypatch: pytest.MonkeyPatch
) -> None:
    # layers A, B, A: the worker of the top A must be able to wait for B while the bottom A's worker
    # (which B waits for) needs A's download lock
    from pallet.registry.client import downloads

    same = os.urandom(200_000)
    manifest, _ = seed_image(registry, "app", "v1", [{"same": same}, {"other": BIG}, {"same": same}])
    repeated = json.loads(manifest)["layers"][0]["digest"]
    registry.throttle = 2_000_000  # the top worker is still downloading A when the bottom one asks for it
    acquire = downloads.PartialBlob.acquire
    first = threading.Event()

    def bottom_waits(self: downloads.PartialBlob) -> bool:
        if self.descriptor.digest == repeated and not first.is_set():
            first.set()
            time.sleep(0.03)  # the first caller (bottom layer) lets the top layer lock the blob first
        return acquire(self)

    monkeypatch.setattr(downloads.PartialBlob, "acquire", bottom_waits)
    _pull(store, transport, f"{registry.host}/app:v1", parallel=3)
    assert (_rootfs(store, f"{registry.host}/app:v1") / "same").read_bytes() == same
