"""diff and commit on the copying snapshot driver (no mounts, no root): changes, new layer, new config."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from pallet.engine.filesystem.commit import commit_snapshot
from pallet.engine.filesystem.diff import container_changes
from pallet.engine.filesystem.export import export_rootfs
from pallet.errors import InvalidArgument
from pallet.image.compression import LayerReader
from pallet.image.store import ImageStore
from pallet.oci.image_spec import ContainerConfig
from pallet.testing.busybox import make_busybox_image

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

KEY = "container-test"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ImageStore]:
    with ImageStore.open(tmp_path / "root", snapshot_driver="copy") as s:
        make_busybox_image(s)
        s.snapshots.prepare(KEY, s.unpack("busybox"))
        yield s


def tree(store: ImageStore) -> Path:
    return store.snapshots.get(KEY).path / "fs"


def change(store: ImageStore) -> None:
    fs = tree(store)
    (fs / "new").mkdir()
    (fs / "new" / "f").write_text("hello")
    (fs / "etc" / "group").unlink()
    with open(fs / "etc" / "passwd", "a") as f:
        f.write("extra:x:1:1::/:/bin/sh\n")
    (fs / "data").mkdir()  # a mount point the runtime made


def test_changes_list_a_c_d_and_hide_mount_points(store: ImageStore) -> None:
    change(store)
    lines = [str(c) for c in container_changes(store, KEY, mount_points=["/data/"])]
    assert lines == ["C /etc", "D /etc/group", "C /etc/passwd", "A /new", "A /new/f"]


def test_untouched_container_has_no_changes(store: ImageStore) -> None:
    assert container_changes(store, KEY) == ()


def test_commit_adds_one_layer_with_the_changes_and_the_run_config(store: ImageStore) -> None:
    change(store)
    parent = store.resolve("busybox")
    record = commit_snapshot(
        store,
        KEY,
        image=str(parent.id),
        run_config=ContainerConfig(cmd=("sleep", "1"), env=("A=1",)),
        changes=["ENV B=2", "LABEL team=core"],
        message="msg",
        author="me",
        created_by="sleep 1",
        ref="committed:v1",
    )
    assert record.references[0].familiar_string() == "committed:v1"
    config = store.config("committed:v1")
    assert config.config is not None
    assert config.config.cmd == ("sleep", "1")
    assert config.config.env == ("A=1", "B=2")
    assert dict(config.config.labels) == {"team": "core"}
    assert config.author == "me"
    assert config.history[-1].comment == "msg"
    assert config.history[-1].created_by == "sleep 1"
    layers = store.layers("committed:v1")
    assert len(layers) == len(store.layers("busybox")) + 1
    with store.content.open(layers[-1].blob.digest) as blob:
        data = LayerReader(blob, layers[-1].blob.media_type).read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
    assert "new/f" in names
    assert "etc/.wh.group" in names
    assert "bin/busybox" not in names  # unchanged files stay in the parent's layers


def test_bad_change_line_writes_nothing(store: ImageStore) -> None:
    blobs = {d for d, _ in store.content.walk()}
    with pytest.raises(InvalidArgument, match="FROB"):
        commit_snapshot(store, KEY, image="busybox", changes=["FROB x"])
    assert {d for d, _ in store.content.walk()} == blobs


def test_export_is_the_whole_tree(store: ImageStore) -> None:
    change(store)
    out = io.BytesIO()
    export_rootfs(tree(store), out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        names = tar.getnames()
    assert "bin/busybox" in names
    assert "new/f" in names
    assert "etc/group" not in names
