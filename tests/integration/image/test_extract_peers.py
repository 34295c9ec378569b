"""pallet's extractor against real peers: a layer written by umoci, and a real overlayfs upper dir."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess

import pytest

from pallet.image.compression import NONE
from pallet.image.extract import apply_layer
from pallet.image.layerdiff import OVERLAY, write_layer

pytestmark = pytest.mark.root
TAR = "application/vnd.oci.image.layer.v1.tar"


def listing(top) -> dict[str, tuple[object, ...]]:
    found: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            s = os.lstat(path)
            content: object = None
            if stat.S_ISREG(s.st_mode):
                with open(path, "rb") as f:
                    content = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(s.st_mode):
                content = os.readlink(path)
            found[os.path.relpath(path, top)] = (
                stat.S_IFMT(s.st_mode),
                stat.S_IMODE(s.st_mode),
                s.st_uid,
                s.st_gid,
                content,
            )
    return found


@pytest.fixture
def as_root():
    if os.geteuid() != 0:
        pytest.skip("needs root")


def test_layer_written_by_umoci_insert_is_applied(tmp_path, as_root):
    if shutil.which("umoci") is None:
        pytest.skip("umoci is not installed (apt-get install umoci)")
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "motd").write_text("hello\n")
    (src / "bin").mkdir()
    (src / "bin" / "tool").write_bytes(b"\x7fELF" + b"t" * 1000)
    os.chmod(src / "bin" / "tool", 0o4755)
    os.symlink("tool", src / "bin" / "alias")
    (src / "zz-last").write_bytes(b"q" * 777)  # not a multiple of 512: umoci 0.4.7 drops its padding
    layout = tmp_path / "layout"
    run = lambda *a: subprocess.run(["umoci", *a], check=True, capture_output=True)  # noqa: E731
    run("init", "--layout", str(layout))
    run("new", "--image", f"{layout}:t")
    run("insert", "--image", f"{layout}:t", str(src), "/")
    blobs = layout / "blobs" / "sha256"
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((blobs / index["manifests"][0]["digest"].split(":")[1]).read_bytes())
    config = json.loads((blobs / manifest["config"]["digest"].split(":")[1]).read_bytes())
    (desc,) = manifest["layers"]
    target = tmp_path / "target"
    target.mkdir()
    with open(blobs / desc["digest"].split(":")[1], "rb") as blob:
        stats = apply_layer(target, blob, media_type=desc["mediaType"])
    assert stats.digest == desc["digest"]
    assert stats.diff_id == config["rootfs"]["diff_ids"][0]
    assert listing(target) == listing(src)


def test_overlay_upper_dir_becomes_a_layer_that_recreates_the_merged_view(tmp_path, as_root):
    lower, upper, work, merged = (tmp_path / n for n in ("lower", "upper", "work", "merged"))
    for d in (lower / "etc", lower / "var" / "lib" / "old", upper, work, merged):
        d.mkdir(parents=True)
    (lower / "etc" / "passwd").write_text("root\n")
    (lower / "etc" / "group").write_text("root\n")
    (lower / "var" / "lib" / "old" / "db").write_text("db\n")
    try:
        subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir={upper},workdir={work}", str(merged)],
            check=True, capture_output=True,
        )  # fmt: skip
    except subprocess.CalledProcessError as e:
        pytest.skip(f"overlayfs cannot be mounted here: {e.stderr.decode().strip()}")
    try:
        os.unlink(merged / "etc" / "passwd")
        (merged / "etc" / "group").write_text("root\nstaff\n")
        shutil.rmtree(merged / "var" / "lib")
        (merged / "var" / "lib").mkdir()  # a new dir over a deleted one: overlayfs makes it opaque
        (merged / "var" / "lib" / "new").write_text("n\n")
        (merged / "opt").mkdir()
        expected = listing(merged)
    finally:
        subprocess.run(["umount", str(merged)], check=True)

    layer = io.BytesIO()
    result = write_layer(layer, str(upper), lower=str(lower), upper_kind=OVERLAY, compression=NONE)
    assert {str(c) for c in result.changes} >= {"D /etc/passwd", "C /etc/group", "A /opt", "A /var/lib/new"}

    naive = tmp_path / "naive"
    shutil.copytree(lower, naive, symlinks=True)
    apply_layer(naive, io.BytesIO(layer.getvalue()), media_type=TAR)
    assert listing(naive) == expected

    # the same layer unpacked the overlay way, stacked on the lower dir by the kernel
    layer_dir, view = tmp_path / "layer", tmp_path / "view"
    layer_dir.mkdir()
    view.mkdir()
    apply_layer(layer_dir, io.BytesIO(layer.getvalue()), media_type=TAR, mode="overlay")
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={layer_dir}:{lower}", str(view)], check=True
    )
    try:
        assert listing(view) == expected
    finally:
        subprocess.run(["umount", str(view)], check=True)
