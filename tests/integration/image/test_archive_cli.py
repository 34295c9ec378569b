"""``pallet save``, ``pallet load`` and ``pallet import``: archives in both docker layouts and OCI
layouts, compressed or not, from files and pipes; bad archives leave the store as it was."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import subprocess
import sys
import tarfile
from typing import TYPE_CHECKING

import pytest

from pallet.image.importer import import_tarball
from pallet.image.store import ImageStore
from pallet.testing.busybox import busybox_rootfs_tar
from pallet.testing.cli import Result, run_pallet, store_fingerprint
from pallet.testing.images import add_to_store, random_image, validate_image

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

pytestmark = pytest.mark.root


def members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def saved(root: Path, *images: str) -> bytes:
    result = run_pallet(root, "save", "-q", *images)
    assert result.code == 0, result
    return result.data


def assert_failed_cleanly(result: Result, root: Path, before: object) -> None:
    assert result.code == 1, result
    assert result.err.startswith("pallet: "), result
    assert result.err.count("\n") == 1, result
    assert store_fingerprint(root) == before


def legacy_layout(archive: bytes) -> bytes:
    """Rewrite a ``pallet save`` archive in the classic ``docker save`` layout: ``<id>/layer.tar``, ``<hex>.json``."""
    files = members(archive)
    [entry] = json.loads(files["manifest.json"])
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        layers = []
        for n, path in enumerate(entry["Layers"]):
            layer_id = f"{n:064x}"
            add(f"{layer_id}/VERSION", b"1.0")
            add(f"{layer_id}/layer.tar", files[path])
            add(f"{layer_id}/json", b'{"id": "%s"}' % layer_id.encode())
            layers.append(f"{layer_id}/layer.tar")
        config_name = entry["Config"].rsplit("/", 1)[1] + ".json"
        add(config_name, files[entry["Config"]])
        manifest = [{"Config": config_name, "RepoTags": entry["RepoTags"], "Layers": layers}]
        add("manifest.json", json.dumps(manifest).encode())
        add("repositories", b"{}")
    return out.getvalue()


def oci_layout(archive: bytes, annotations: dict[str, str], *, nested: bool = False) -> bytes:
    """A ``pallet save`` archive as a bare OCI layout (no manifest.json) whose index names the image
    with ``annotations``; with ``nested`` the index points to an index listing two platforms."""
    files = members(archive)
    del files["manifest.json"], files["repositories"]
    [descriptor] = json.loads(files["index.json"])["manifests"]
    descriptor.pop("annotations")
    if nested:
        other = {
            **descriptor,
            "digest": "sha256:" + "0" * 64,
            "platform": {"architecture": "s390x", "os": "linux"},
        }
        inner = json.dumps({"schemaVersion": 2, "manifests": [other, descriptor]}).encode()
        digest = hashlib.sha256(inner).hexdigest()
        files[f"blobs/sha256/{digest}"] = inner
        descriptor = {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": f"sha256:{digest}",
            "size": len(inner),
        }
    descriptor["annotations"] = annotations
    files["index.json"] = json.dumps({"schemaVersion": 2, "manifests": [descriptor]}).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


# --- save -----------------------------------------------------------------------------------------


def test_save_writes_docker_and_oci_layouts_in_one_archive(busybox_root: Path) -> None:
    files = members(saved(busybox_root, "busybox"))
    [entry] = json.loads(files["manifest.json"])
    assert entry["RepoTags"] == ["busybox:latest"]
    index = json.loads(files["index.json"])
    [descriptor] = index["manifests"]
    assert descriptor["annotations"]["io.containerd.image.name"] == "docker.io/library/busybox:latest"
    assert descriptor["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    with ImageStore.open(busybox_root) as store:
        image_id = store.resolve("busybox").id
    assert entry["Config"] == f"blobs/sha256/{image_id.hex}"
    assert json.loads(files["repositories"])["busybox"]["latest"]


def test_save_is_reproducible(busybox_root: Path) -> None:
    assert saved(busybox_root, "busybox") == saved(busybox_root, "busybox")


def test_save_to_file_with_o(busybox_root: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.tar"
    result = run_pallet(busybox_root, "save", "-o", str(target), "busybox")
    assert result.code == 0
    assert result.err.startswith("Saved layer ")
    assert target.read_bytes() == saved(busybox_root, "busybox")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tar", "root"]  # no temp file left


def test_save_of_an_unknown_image_writes_no_file(busybox_root: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.tar"
    result = run_pallet(busybox_root, "save", "-o", str(target), "busybox", "nosuch")
    assert result.code == 1
    assert 'image "nosuch" not found' in result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]


def test_save_refuses_to_write_to_a_terminal(busybox_root: Path) -> None:
    import os
    import pty

    master, slave = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pallet.cli", "--root", str(busybox_root), "save", "busybox"],
            stdout=slave,
            stderr=subprocess.PIPE,
            check=False,
        )
    finally:
        os.close(slave)
        os.close(master)
    assert done.returncode == 1
    assert b"cowardly refusing to save to a terminal" in done.stderr


# --- load -----------------------------------------------------------------------------------------


def test_load_into_an_empty_store_names_and_validates_the_image(busybox_root: Path, tmp_path: Path) -> None:
    archive = saved(busybox_root, "busybox")
    empty = tmp_path / "empty"
    result = run_pallet(empty, "load", stdin=archive)
    assert (result.code, result.out) == (0, "Loaded image: busybox:latest\n")
    assert "Loading blob" in result.err
    with ImageStore.open(empty) as store, ImageStore.open(busybox_root) as source:
        assert store.resolve("busybox").id == source.resolve("busybox").id
        validate_image(store, "busybox")


def test_load_quiet_prints_only_the_result(busybox_root: Path, tmp_path: Path) -> None:
    result = run_pallet(tmp_path / "r", "load", "-q", stdin=saved(busybox_root, "busybox"))
    assert (result.code, result.out, result.err) == (0, "Loaded image: busybox:latest\n", "")


@pytest.mark.parametrize(
    "compress",
    [
        lambda data: gzip.compress(data, compresslevel=1),
        lambda data: bz2.compress(data, compresslevel=1),
        lambda data: lzma.compress(data[: len(data) // 2]) + lzma.compress(data[len(data) // 2 :], preset=0),
    ],
    ids=["gzip", "bzip2", "xz-two-streams"],
)
def test_load_from_a_compressed_file_with_i(
    busybox_root: Path, tmp_path: Path, compress: Callable[[bytes], bytes]
) -> None:
    path = tmp_path / "bb.tar.x"
    path.write_bytes(compress(saved(busybox_root, "busybox")))
    result = run_pallet(tmp_path / "r", "load", "-q", "-i", str(path))
    assert result.out == "Loaded image: busybox:latest\n"


def test_load_moves_a_name_off_another_image_and_says_so(busybox_root: Path) -> None:
    archive = saved(busybox_root, "busybox")
    with ImageStore.open(busybox_root) as store:
        original = store.resolve("busybox").id
        other = import_tarball(store, io.BytesIO(rootfs_tar()), ref="busybox:latest", message="other").id
    result = run_pallet(busybox_root, "load", "-q", stdin=archive)
    assert result.out == (
        f"The image busybox:latest already exists, renaming the old one with ID {other} to empty string\n"
        "Loaded image: busybox:latest\n"
    )
    assert run_pallet(busybox_root, "images", "-q", "--no-trunc", "busybox").out == f"{original}\n"
    assert run_pallet(busybox_root, "images", "-q", "--no-trunc", "-f", "dangling=true").out == f"{other}\n"


def test_load_reads_the_classic_docker_layout(busybox_root: Path, tmp_path: Path) -> None:
    archive = legacy_layout(saved(busybox_root, "busybox"))
    assert "manifest.json" in members(archive)
    assert "index.json" not in members(archive)
    root = tmp_path / "r"
    assert run_pallet(root, "load", "-q", stdin=archive).out == "Loaded image: busybox:latest\n"
    with ImageStore.open(root) as store:
        validate_image(store, "busybox")


@pytest.mark.parametrize("unpacked", [False, True], ids=["packed", "unpacked"])
def test_save_and_load_a_multi_layer_compressed_image(tmp_path: Path, unpacked: bool) -> None:
    source, target = tmp_path / "a", tmp_path / "b"
    image = random_image(layers=3, seed=7, compressed=True)
    with ImageStore.open(source) as store:
        add_to_store(store, image, "multi:layers")
        if unpacked:  # the store then knows each layer's uncompressed size: no temp file on save
            store.unpack("multi:layers")
            assert all(layer.uncompressed_size for layer in store.layers("multi:layers"))
    archive = saved(source, "multi:layers")
    assert run_pallet(target, "load", "-q", stdin=archive).out == "Loaded image: multi:layers\n"
    with ImageStore.open(target) as store:
        validate_image(store, "multi:layers")
        assert store.resolve("multi:layers").id == image.id  # same config: same image id
        assert [layer.blob.media_type for layer in store.layers("multi:layers")] == [
            "application/vnd.oci.image.layer.v1.tar"
        ] * 3


def test_save_of_a_bare_repository_saves_all_its_tags(busybox_root: Path, tmp_path: Path) -> None:
    run_pallet(busybox_root, "tag", "busybox", "busybox:other")
    run_pallet(busybox_root, "tag", "busybox", "unrelated:1")
    result = run_pallet(tmp_path / "r", "load", "-q", stdin=saved(busybox_root, "busybox"))
    assert sorted(result.out.splitlines()) == ["Loaded image: busybox:latest", "Loaded image: busybox:other"]


@pytest.mark.parametrize(
    ("annotations", "loaded"),
    [
        ({"io.containerd.image.name": "example.com/a/b:2"}, "Loaded image: example.com/a/b:2"),
        ({"org.opencontainers.image.ref.name": "x/y:1"}, "Loaded image: x/y:1"),
        ({"org.opencontainers.image.ref.name": "latest"}, "Loaded image ID: "),
    ],
)
def test_load_of_an_oci_layout_names_images_by_annotation(
    busybox_root: Path, tmp_path: Path, annotations: dict[str, str], loaded: str
) -> None:
    result = run_pallet(
        tmp_path / "r", "load", "-q", stdin=oci_layout(saved(busybox_root, "busybox"), annotations)
    )
    assert result.code == 0, result
    assert result.out.startswith(loaded)


def test_load_of_an_oci_layout_with_a_platform_index_picks_this_host(
    busybox_root: Path, tmp_path: Path
) -> None:
    archive = oci_layout(saved(busybox_root, "busybox"), {"io.containerd.image.name": "multi:1"}, nested=True)
    root = tmp_path / "r"
    assert run_pallet(root, "load", "-q", stdin=archive).out == "Loaded image: multi:1\n"
    with ImageStore.open(root) as store, ImageStore.open(busybox_root) as source:
        assert store.resolve("multi:1").id == source.resolve("busybox").id
        assert store.resolve("multi:1").index_digest is not None
        validate_image(store, "multi:1")


def test_save_by_id_loads_without_a_name(busybox_root: Path, tmp_path: Path) -> None:
    with ImageStore.open(busybox_root) as store:
        image_id = str(store.resolve("busybox").id)
    result = run_pallet(tmp_path / "r", "load", "-q", stdin=saved(busybox_root, image_id[7:19]))
    assert result.out == f"Loaded image ID: {image_id}\n"


def test_load_of_an_archive_whose_layer_does_not_match_changes_nothing(busybox_root: Path) -> None:
    files = members(legacy_layout(saved(busybox_root, "busybox")))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            if name.endswith("layer.tar"):
                data = data[:-1024] + b"\x00" * 1024 if data[-1024:].strip(b"\x00") else data + b"\x00" * 512
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    root = busybox_root
    run_pallet(root, "rmi", "busybox")
    before = store_fingerprint(root)
    result = run_pallet(root, "load", "-q", stdin=out.getvalue())
    assert result.code == 1
    assert "does not match the image config" in result.err
    assert store_fingerprint(root)[0] == before[0]  # no image added (the stray blob is gc's)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the input is empty"),
        (b"this is not a tar file at all" * 40, "not a tar stream"),
        (gzip.compress(b"\x00" * 1024), "holds no image"),
    ],
)
def test_load_of_a_bad_archive_fails_on_one_line(busybox_root: Path, data: bytes, message: str) -> None:
    before = store_fingerprint(busybox_root)
    result = run_pallet(busybox_root, "load", stdin=data)
    assert_failed_cleanly(result, busybox_root, before)
    assert message in result.err


def test_load_of_a_truncated_archive_adds_no_image(busybox_root: Path) -> None:
    archive = saved(busybox_root, "busybox")
    root = busybox_root
    run_pallet(root, "rmi", "busybox")
    result = run_pallet(root, "load", stdin=archive[: len(archive) // 2])
    assert result.code == 1
    assert store_fingerprint(root)[0] == []


def test_load_of_a_missing_file_names_it(busybox_root: Path, tmp_path: Path) -> None:
    result = run_pallet(busybox_root, "load", "-i", str(tmp_path / "nope.tar"))
    assert result.code == 1
    assert result.err == f"pallet: {tmp_path / 'nope.tar'}: no such file or directory\n"


# --- import ---------------------------------------------------------------------------------------


def rootfs_tar() -> bytes:
    buf = io.BytesIO()
    busybox_rootfs_tar(buf)
    return buf.getvalue()


def test_import_applies_changes_message_and_platform(tmp_path: Path) -> None:
    root = tmp_path / "r"
    result = run_pallet(
        root,
        "import",
        "--change", "ENTRYPOINT [\"/bin/sh\", \"-c\"]",
        "-c", "ENV A=1",
        "-c", "WORKDIR /srv",
        "-c", "USER nobody",
        "-c", "EXPOSE 8080",
        "-c", "LABEL team=core",
        "-c", "STOPSIGNAL SIGINT",
        "-c", "VOLUME /data",
        "-m", "hello",
        "--platform", "linux/arm64",
        "-",
        "example/imported:1",
        stdin=lzma.compress(rootfs_tar(), preset=0),
    )  # fmt: skip
    assert result.code == 0, result
    [image] = json.loads(run_pallet(root, "image", "inspect", "example/imported:1").out)
    assert result.out == image["Id"] + "\n"
    config = image["Config"]
    assert config["Entrypoint"] == ["/bin/sh", "-c"]
    assert config["Env"] == ["A=1"]
    assert (config["WorkingDir"], config["User"], config["StopSignal"]) == ("/srv", "nobody", "SIGINT")
    assert config["ExposedPorts"] == {"8080/tcp": {}}
    assert config["Volumes"] == {"/data": {}}
    assert config["Labels"] == {"team": "core"}
    assert (image["Architecture"], image["Comment"]) == ("arm64", "hello")
    with ImageStore.open(root) as store:
        validate_image(store, "example/imported:1")


def test_import_of_a_file_without_a_name_is_dangling(tmp_path: Path) -> None:
    path = tmp_path / "rootfs.tar"
    path.write_bytes(rootfs_tar())
    root = tmp_path / "r"
    result = run_pallet(root, "import", str(path))
    assert result.code == 0
    history = run_pallet(root, "image", "history", "--format", "{{.Comment}}", result.out.strip())
    assert history.out == f"Imported from {path}\n"
    assert run_pallet(root, "images", "--format", "{{.Repository}}:{{.Tag}}").out == "<none>:<none>\n"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("-", "x:1"), b"not a tarball" * 100, "is not a tar archive"),
        (("-", "x:1"), b"", "the input is empty"),
        (("-", "x:1"), bz2.compress(bytes(range(256)) * 400)[:100], "truncated"),
        (("--change", "RUN rm -rf /", "-", "x:1"), None, "RUN is not an instruction"),
        (("--platform", "linux", "-", "x:1"), None, "invalid platform"),
        (("--platform", "windows/amd64", "-", "x:1"), None, "linux images only"),
        (("-", "Bad Name"), None, "invalid reference format"),
    ],
)
def test_import_of_bad_input_changes_nothing(
    busybox_root: Path, args: tuple[str, ...], stdin: bytes | None, message: str
) -> None:
    before = store_fingerprint(busybox_root)
    result = run_pallet(busybox_root, "import", *args, stdin=rootfs_tar() if stdin is None else stdin)
    assert_failed_cleanly(result, busybox_root, before)
    assert message in result.err
