from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from pallet.errors import AlreadyExists, Conflict, FailedPrecondition, InvalidArgument, NotFound, SpecError
from pallet.image.snapshots import COPY
from pallet.image.store import ImageStore
from pallet.oci.digest import Digest
from pallet.oci.image_spec import Manifest, dumps, loads
from pallet.oci.reference import parse
from pallet.testing.images import MemoryImage, add_to_store, random_image, validate_image


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    s = ImageStore.open(tmp_path / "root", snapshot_driver=COPY)
    yield s  # type: ignore[misc]
    s.close()


def _blob_digests(store: ImageStore) -> set[str]:
    return {str(d) for d, _ in store.content.walk()}


def _image_blobs(image: MemoryImage) -> set[str]:
    return {image.manifest_digest, image.id, *(d.digest for d, _ in image.layers)}


def test_added_image_validates_and_resolves_by_every_name(store: ImageStore) -> None:
    image = random_image(seed=1)
    record = add_to_store(store, image, "busybox:1.36")
    validate_image(store, "busybox:1.36")
    assert record.id == image.id
    assert record.manifest_digest == image.manifest_digest
    assert [r.familiar_string() for r in record.references] == ["busybox:1.36"]
    for name in (
        "busybox:1.36",
        "docker.io/library/busybox:1.36",
        f"busybox@{image.manifest_digest}",
        image.id,
        image.id.hex,
        image.id.short,
        image.id.hex[:5],
        f"sha256:{image.id.hex[:8]}",
    ):
        assert store.resolve(name).id == image.id, name


def test_unknown_names_are_not_found_with_docker_advice(store: ImageStore) -> None:
    add_to_store(store, random_image(seed=1), "busybox")
    with pytest.raises(NotFound, match='image "busybx" not found locally; pull it or check the name'):
        store.resolve("busybx")
    with pytest.raises(NotFound):
        store.resolve("busybox:other")
    with pytest.raises(InvalidArgument, match="must be lowercase"):
        store.resolve("BusyBox")


def test_an_ambiguous_short_id_is_refused(store: ImageStore) -> None:
    seed_by_first_hex: dict[str, int] = {}
    for seed in range(200):  # 17 images always hold two whose ids share a first hex digit
        image = random_image(seed=seed, layers=1)
        first = image.id.hex[0]
        if first in seed_by_first_hex:
            add_to_store(store, random_image(seed=seed_by_first_hex[first], layers=1))
            add_to_store(store, image)
            break
        seed_by_first_hex[first] = seed
    with pytest.raises(InvalidArgument, match="matches more than one image"):
        store.resolve(image.id.hex[0])
    assert store.resolve(image.id.hex[:12]).id == image.id


def test_add_image_is_idempotent(store: ImageStore) -> None:
    image = random_image(seed=2)
    add_to_store(store, image, "app")
    add_to_store(store, image, "app")
    assert len(store.list_images()) == 1
    assert len(store.layers("app")) == 3


def test_add_image_refuses_a_config_that_is_not_the_manifests(store: ImageStore) -> None:
    image = random_image(seed=3)
    other = random_image(seed=4)
    with pytest.raises(InvalidArgument, match="config does not match the manifest"):
        store.add_image(image.manifest, other.config)


def test_add_image_needs_the_layer_blobs_first(store: ImageStore) -> None:
    image = random_image(seed=3)
    with pytest.raises(FailedPrecondition, match="ingest the layers before add_image"):
        store.add_image(image.manifest, image.config)
    assert store.list_images() == []


def test_add_image_checks_diff_ids_against_layers(store: ImageStore) -> None:
    image = random_image(seed=3)
    config = loads(image.config)
    config["rootfs"]["diff_ids"].pop()
    config_bytes = dumps(config)
    manifest = Manifest.from_json(loads(image.manifest))
    manifest = manifest.replace(
        config=manifest.config.replace(digest=Digest.of_bytes(config_bytes), size=len(config_bytes))
    )
    for d, blob in image.layers:
        store.content.ingest(io.BytesIO(blob), d)
    with pytest.raises(SpecError, match=r"rootfs\.diff_ids"):
        store.add_image(dumps(manifest.to_json()), config_bytes)


def test_tag_moves_a_name_between_images_and_untag_leaves_the_image(store: ImageStore) -> None:
    a, b = random_image(seed=5), random_image(seed=6)
    add_to_store(store, a, "app:1")
    add_to_store(store, b)
    store.tag(b.id, "app:1")
    assert store.resolve("app:1").id == b.id
    assert store.get(a.id).dangling
    store.untag("app:1")
    assert store.get(b.id).dangling
    with pytest.raises(NotFound):
        store.untag("app:1")
    with pytest.raises(InvalidArgument, match="digest reference"):
        store.tag(a.id, f"app@{a.manifest_digest}")


def test_removing_one_of_several_tags_only_untags(store: ImageStore) -> None:
    image = random_image(seed=7)
    add_to_store(store, image, "app:1")
    store.tag(image.id, "app:2")
    report = store.remove_image("app:1")
    assert [r.familiar_string() for r in report.untagged] == ["app:1"]
    assert report.deleted == ()
    assert store.resolve("app:2").id == image.id


def test_removing_the_last_tag_deletes_the_image_and_its_blobs(store: ImageStore) -> None:
    image = random_image(seed=8)
    add_to_store(store, image, "app")
    report = store.remove_image("app")
    assert report.deleted == (image.id,)
    assert store.list_images() == []
    assert _blob_digests(store) == set()


def test_an_image_in_use_is_kept_unless_forced_and_then_only_untagged(store: ImageStore) -> None:
    image = random_image(seed=9)
    add_to_store(store, image, "app")
    store.set_in_use(image.id, "c0ffee")
    with pytest.raises(Conflict, match="container c0ffee is using its referenced image"):
        store.remove_image("app")
    with pytest.raises(Conflict, match="must be forced"):
        store.remove_image(image.id.short)
    report = store.remove_image("app", force=True)
    assert report.deleted == ()
    assert store.get(image.id).dangling
    assert _image_blobs(image) <= _blob_digests(store)
    store.release(image.id, "c0ffee")
    assert store.remove_image(image.id).deleted == (image.id,)


def test_removing_by_id_an_image_named_in_several_repositories_needs_force(store: ImageStore) -> None:
    image = random_image(seed=10)
    add_to_store(store, image, "one")
    store.tag(image.id, "two")
    with pytest.raises(Conflict, match="referenced in multiple repositories"):
        store.remove_image(image.id.short)
    report = store.remove_image(image.id.short, force=True)
    assert sorted(r.familiar_string() for r in report.untagged) == ["one:latest", "two:latest"]
    assert report.deleted == (image.id,)


def test_shared_layer_blobs_survive_removal_of_one_image(store: ImageStore) -> None:
    base = random_image(seed=11, layers=2)
    add_to_store(store, base, "base")
    derived = random_image(seed=12, layers=1, base=base)
    add_to_store(store, derived, "derived")
    validate_image(store, "derived")
    assert store.layers("derived")[0].chain_id == store.layers("base")[0].chain_id
    assert store.layer_usage(store.layers("base")[0].chain_id) == 2
    store.remove_image("base")
    validate_image(store, "derived")
    left = _blob_digests(store)
    assert {d.digest for d, _ in base.layers} <= left
    assert base.manifest_digest not in left
    assert base.id not in left


def test_a_removal_reports_the_layers_no_other_image_has_top_first(store: ImageStore) -> None:
    base = random_image(seed=21, layers=2)
    add_to_store(store, base, "base")
    derived = random_image(seed=22, layers=2, base=base)
    add_to_store(store, derived, "derived")
    chains = [layer.chain_id for layer in store.layers("derived")]
    report = store.remove_image("derived")
    assert report.layers == ((derived.id, (chains[3], chains[2])),)  # base's two stay with base
    report = store.remove_image("base")
    assert report.layers_of(base.id) == (chains[1], chains[0])
    assert report.layers_of(derived.id) == ()


def test_prune_removes_dangling_images_and_prune_all_unused_ones(store: ImageStore) -> None:
    tagged, dangling, used = random_image(seed=13), random_image(seed=14), random_image(seed=15)
    add_to_store(store, tagged, "tagged")
    add_to_store(store, dangling)
    add_to_store(store, used, "used")
    store.set_in_use(used.id, "ctr")
    assert store.prune().deleted == (dangling.id,)
    report = store.prune(all=True)
    assert report.deleted == (tagged.id,)
    assert [r.familiar_string() for r in report.untagged] == ["tagged:latest"]
    assert [i.id for i in store.list_images()] == [used.id]


def test_an_image_only_repo_digests_name_is_dangling_and_pruned(store: ImageStore) -> None:
    image = random_image(seed=16)
    add_to_store(store, image, "registry.example/app:v1")
    digest = store.add_repo_digest(image.id, parse(f"registry.example/app@{image.manifest_digest}"))
    assert not store.get(image.id).dangling
    assert store.prune().deleted == ()
    store.untag("registry.example/app:v1")
    assert store.get(image.id).dangling  # docker: no tag, only a digest
    report = store.prune()
    assert report.deleted == (image.id,)
    assert report.untagged == (digest,)


def test_a_used_images_last_tag_and_its_repo_digests_are_one_reference(store: ImageStore) -> None:
    image = random_image(seed=17)
    add_to_store(store, image, "registry.example/app:v1")
    digest = store.add_repo_digest(image.id, parse(f"registry.example/app@{image.manifest_digest}"))
    store.set_in_use(image.id, "c0ffee")
    # docker's "single reference": untagging would leave the container's image dangling
    with pytest.raises(Conflict, match="container c0ffee is using its referenced image"):
        store.remove_image("registry.example/app:v1")
    store.tag(image.id, "other:v1")
    report = store.remove_image("registry.example/app:v1")  # another repository names it: no conflict
    assert [r.familiar_string() for r in report.untagged] == ["registry.example/app:v1", str(digest)]
    assert report.deleted == ()
    report = store.remove_image("other:v1", force=True)
    assert report.untagged == (parse("other:v1"),)
    assert report.deleted == ()
    assert store.get(image.id).dangling


def test_gc_removes_unreferenced_blobs_but_not_while_a_lease_is_held(store: ImageStore) -> None:
    image = random_image(seed=16)
    add_to_store(store, image, "app")
    stray = store.content.put_bytes(b"left by an interrupted load")
    assert store.gc().blobs == 1
    assert not store.content.has(stray.digest)
    with store.lease():
        report = store.remove_image("app")  # cannot collect now: a load may be under way
        assert report.deleted == (image.id,)
        assert _image_blobs(image) <= _blob_digests(store)
    assert store.gc().blobs == len(_image_blobs(image))
    assert _blob_digests(store) == set()


def test_history_is_newest_first_with_the_id_on_top(store: ImageStore) -> None:
    image = random_image(seed=17, layers=2)
    add_to_store(store, image, "app")
    history = store.history("app")
    assert [h.created_by for h in history] == [
        '/bin/sh -c #(nop)  CMD ["sh"]',
        "/bin/sh -c #(nop) ADD layer 1",
        "/bin/sh -c #(nop) ADD layer 0",
    ]
    assert history[0].image_id == image.id
    assert history[1].image_id is None
    assert history[0].size == 0
    assert history[1].size == image.layers[1][0].size


def test_the_snapshot_driver_is_fixed_when_the_store_is_made(tmp_path: Path) -> None:
    ImageStore.open(tmp_path, snapshot_driver=COPY).close()
    with pytest.raises(FailedPrecondition, match='uses the "copy" snapshot driver'):
        ImageStore.open(tmp_path, snapshot_driver="overlay")


_LOADER = """
import sys
from pathlib import Path
from pallet.image.store import ImageStore
from pallet.testing.images import add_to_store, random_image
with ImageStore.open(Path(sys.argv[1]), snapshot_driver="copy") as store:
    for n in range(5):
        add_to_store(store, random_image(seed=int(sys.argv[2]) * 100 + n, layers=2), f"app:{sys.argv[2]}-{n}")
"""


def test_two_concurrent_loads_both_land(tmp_path: Path) -> None:
    root = tmp_path / "root"
    ImageStore.open(root, snapshot_driver=COPY).close()
    procs = [subprocess.Popen([sys.executable, "-c", _LOADER, str(root), str(i)]) for i in (1, 2)]
    try:
        codes = [p.wait(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert codes == [0, 0]
    with ImageStore.open(root) as store:
        assert len(store.list_images()) == 10
        for i in (1, 2):
            for n in range(5):
                validate_image(store, f"app:{i}-{n}")


def test_unpack_builds_the_image_filesystem_and_shares_layers(store: ImageStore) -> None:
    image = random_image(seed=18)
    add_to_store(store, image, "app")
    top = store.unpack("app")
    assert top == store.layers("app")[-1].chain_id
    mounts = store.snapshots.prepare("ctr1", top)
    assert [m.type for m in mounts] == ["bind"]
    fs = Path(mounts[0].source)
    found = {str(p.relative_to(fs)): p.read_bytes() for p in fs.rglob("*") if p.is_file()}
    assert found == image.final_files()
    assert all(layer.snapshot_key for layer in store.layers("app"))
    committed = {s.key for s in store.snapshots.list_snapshots() if s.kind == "committed"}
    assert store.unpack("app") == top  # unpacked once
    assert {s.key for s in store.snapshots.list_snapshots() if s.kind == "committed"} == committed
    with pytest.raises(AlreadyExists):
        store.snapshots.prepare("ctr1", top)


def test_removing_an_unpacked_image_then_gc_removes_its_snapshots(store: ImageStore) -> None:
    image = random_image(seed=19, layers=2)
    add_to_store(store, image, "app")
    top = store.unpack("app")
    store.snapshots.prepare("ctr", top)
    store.remove_image("app")
    # the container's snapshot still stands on the layers: they stay until it goes
    assert {s.key for s in store.snapshots.list_snapshots()} >= {"ctr", str(top)}
    store.snapshots.remove("ctr")
    assert store.gc().snapshots == 2
    assert store.snapshots.list_snapshots() == []
    assert sorted(p.name for p in store.snapshots.dir.iterdir()) == ["active", "committed", "tmp", "view"]
    assert not any((store.snapshots.dir / "committed").iterdir())


def test_reference_of_record_is_canonical(store: ImageStore) -> None:
    image = random_image(seed=20)
    record = add_to_store(store, image, f"localhost:5000/app@{image.manifest_digest}")
    assert record.references == (parse(f"localhost:5000/app@{image.manifest_digest}"),)
    assert store.resolve(f"localhost:5000/app@{image.manifest_digest}").id == image.id
