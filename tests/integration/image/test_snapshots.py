"""Overlay snapshots for real: kernel mounts of unpacked images (root only)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pallet.image.snapshots import OVERLAY, detect_driver, mount, unmount
from pallet.image.store import ImageStore
from pallet.testing.images import add_to_store, random_image

pytestmark = pytest.mark.root


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == str(path) or p.startswith(f"{path}/")]


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if detect_driver(tmp_path) != OVERLAY:
        pytest.skip("overlayfs cannot be mounted here")
    s = ImageStore.open(tmp_path / "root", snapshot_driver=OVERLAY)
    yield s  # type: ignore[misc]
    for target in reversed(_mounts_under(tmp_path)):
        unmount(Path(target))
    s.close()


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_overlay_root_shows_the_image_files_without_whited_out_ones(
    store: ImageStore, tmp_path: Path
) -> None:
    image = random_image(seed=1, layers=3)
    add_to_store(store, image, "app")
    top = store.unpack("app")
    target = tmp_path / "rootfs"
    target.mkdir()
    mounts = store.snapshots.prepare("ctr", top)
    assert mounts[0].type == "overlay"
    mount(mounts, target)
    try:
        assert _files(target) == image.final_files()
        assert not (target / "dir0" / "file0").exists()  # whited out by layer 1
        (target / "new").write_bytes(b"written in the container")
        upper = store.snapshots.get("ctr").path / "upper"
        assert (upper / "new").read_bytes() == b"written in the container"
        for layer in store.layers("app"):
            assert not (store.snapshots.get(str(layer.chain_id)).path / "fs" / "new").exists()
    finally:
        unmount(target)
    assert _mounts_under(tmp_path) == []


def test_images_on_the_same_base_share_its_lower_dirs(store: ImageStore, tmp_path: Path) -> None:
    base = random_image(seed=2, layers=2)
    one = random_image(seed=3, layers=1, base=base)
    two = random_image(seed=4, layers=1, base=base)
    add_to_store(store, one, "one")
    add_to_store(store, two, "two")
    top_one, top_two = store.unpack("one"), store.unpack("two")
    committed = [s for s in store.snapshots.list_snapshots() if s.kind == "committed"]
    assert len(committed) == 4  # two shared base layers, one top layer each
    shared = store.layers("one")[1].chain_id
    assert store.layers("two")[1].chain_id == shared
    assert store.layer_usage(shared) == 2
    lowers = []
    for name, top in (("one", top_one), ("two", top_two)):
        (mount_,) = store.snapshots.prepare(f"ctr-{name}", top)
        lowers.append(next(o for o in mount_.options if o.startswith("lowerdir=")).split(":")[1:])
    assert lowers[0] == lowers[1]  # the same directories on disk


def test_removing_everything_leaves_nothing_mounted_or_on_disk(store: ImageStore, tmp_path: Path) -> None:
    image = random_image(seed=5, layers=2)
    add_to_store(store, image, "app")
    top = store.unpack("app")
    targets = []
    for n in range(2):
        target = tmp_path / f"rootfs{n}"
        target.mkdir()
        mount(store.snapshots.prepare(f"ctr{n}", top), target)
        targets.append(target)
    assert len(_mounts_under(tmp_path)) == 2
    for n, target in enumerate(targets):
        unmount(target)
        store.snapshots.remove(f"ctr{n}")
    store.remove_image("app")  # collects its blobs and layer snapshots at once
    assert store.gc().snapshots == 0
    assert _mounts_under(tmp_path) == []
    assert store.snapshots.list_snapshots() == []
    assert not any((store.snapshots.dir / "committed").iterdir())
    assert not any((store.snapshots.dir / "active").iterdir())
    assert list(store.content.walk()) == []
