"""Image archives between pallet and real tools: skopeo and podman read what ``pallet save`` writes,
and what skopeo writes (docker-archive and oci-archive, from an image umoci built) loads into pallet
and unpacks to exactly the files the archive holds (names, modes, owners, content)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pallet.image.store import ImageStore
from pallet.testing.cli import run_pallet
from pallet.testing.images import validate_image

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.root


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install {' '.join(missing)})")


def sh(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(argv)} failed: {done.stderr}"
    return done.stdout


@pytest.fixture
def saved_busybox(busybox_root: Path, tmp_path: Path) -> tuple[Path, str]:
    """``pallet save busybox`` as a file, and the image id."""
    path = tmp_path / "busybox.tar"
    assert run_pallet(busybox_root, "save", "-q", "-o", str(path), "busybox").code == 0
    with ImageStore.open(busybox_root) as store:
        return path, str(store.resolve("busybox").id)


@pytest.fixture
def podman() -> Iterator[list[str]]:
    """podman with a private store (vfs: no mounts), removed afterwards.

    Under /tmp with a short name: podman refuses a runroot longer than 50 characters.
    """
    need("podman")
    base = Path(tempfile.mkdtemp(prefix="pallet-podman-", dir="/tmp"))
    cmd = [
        "podman",
        "--root", str(base / "root"),
        "--runroot", str(base / "run"),
        "--tmpdir", str(base / "tmp"),
        "--storage-driver", "vfs",
        "--cgroup-manager", "cgroupfs",
        "--events-backend", "file",
    ]  # fmt: skip
    yield cmd
    subprocess.run([*cmd, "rmi", "-af"], capture_output=True, check=False)
    shutil.rmtree(base, ignore_errors=True)


# --- pallet -> peers ------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["docker-archive", "oci-archive"])
def test_skopeo_inspects_a_pallet_save_archive(saved_busybox: tuple[Path, str], transport: str) -> None:
    need("skopeo")
    path, image_id = saved_busybox
    raw = sh("skopeo", "inspect", "--raw", f"{transport}:{path}")
    config = json.loads(sh("skopeo", "inspect", "--config", f"{transport}:{path}"))
    assert json.loads(raw)["config"]["digest"] == image_id
    assert config["config"]["Cmd"] == ["sh"]
    assert len(config["rootfs"]["diff_ids"]) == 1


def test_podman_loads_a_pallet_save_archive(saved_busybox: tuple[Path, str], podman: list[str]) -> None:
    path, image_id = saved_busybox
    out = sh(*podman, "load", "-i", str(path))
    assert "docker.io/library/busybox:latest" in out
    listed = sh(*podman, "images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}")
    assert listed.split() == [image_id, "docker.io/library/busybox:latest"]


# --- peers -> pallet ------------------------------------------------------------------------------


def make_rootfs(rootfs: Path) -> None:
    """A tree with what layers carry: odd modes, owners, links, long and odd names."""
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", rootfs / "bin/busybox")
    for applet in ("sh", "ls", "cat"):
        os.symlink("busybox", rootfs / "bin" / applet)
    (rootfs / "etc").mkdir()
    (rootfs / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    suid = rootfs / "bin/suid-tool"
    suid.write_bytes(b"#!/bin/sh\necho suid\n")
    os.chmod(suid, 0o4755)
    secret = rootfs / "etc/secret"
    secret.write_bytes(os.urandom(3000))
    os.chmod(secret, 0o600)
    os.chown(secret, 1000, 1000)
    private = rootfs / "home/user"
    private.mkdir(parents=True)
    os.chmod(private, 0o700)
    os.chown(private, 1000, 100)
    (rootfs / "home/user/a file with spaces.txt").write_text("spaces\n")
    long_dir = rootfs / ("d" * 90) / ("e" * 90)
    long_dir.mkdir(parents=True)
    (long_dir / ("f" * 60)).write_bytes(b"long name\n")
    (rootfs / "empty").write_bytes(b"")
    os.link(rootfs / "etc/passwd", rootfs / "etc/passwd.hard")
    tmp = rootfs / "tmp"
    tmp.mkdir()
    os.chmod(tmp, 0o1777)


@pytest.fixture
def umoci_layout(tmp_path: Path) -> Path:
    """An OCI image layout ``layout:latest`` made by umoci from ``make_rootfs``."""
    need("umoci")
    rootfs = tmp_path / "rootfs"
    make_rootfs(rootfs)
    layout = tmp_path / "layout"
    sh("umoci", "init", "--layout", str(layout))
    sh("umoci", "new", "--image", f"{layout}:latest")
    sh("umoci", "insert", "--image", f"{layout}:latest", str(rootfs), "/")
    sh("umoci", "config", "--image", f"{layout}:latest", "--config.cmd", "/bin/sh")
    return layout


Entry = tuple[str, int, int, int, str]  # kind, mode, uid, gid, content hash or link target


def archive_layers(path: Path) -> list[bytes]:
    """The layer blobs of the one image in a docker-archive or OCI archive, bottom first."""
    with tarfile.open(path) as tar:
        files = {m.name.removeprefix("./"): m for m in tar if m.isfile() or m.issym()}

        def read(name: str) -> bytes:
            member = files[name]
            if member.issym():
                name = os.path.normpath(os.path.join(os.path.dirname(name), member.linkname))
                member = files[name]
            return tar.extractfile(member).read()  # type: ignore[union-attr]

        if "manifest.json" in files:
            [entry] = json.loads(read("manifest.json"))
            return [read(layer) for layer in entry["Layers"]]
        [descriptor] = json.loads(read("index.json"))["manifests"]
        manifest = json.loads(read("blobs/sha256/" + descriptor["digest"].split(":")[1]))
        return [read("blobs/sha256/" + layer["digest"].split(":")[1]) for layer in manifest["layers"]]


def tar_entries(layer: bytes) -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:*") as tar:
        for m in tar:
            name = os.path.normpath(m.name).lstrip("/")
            if name in ("", "."):
                continue
            mode, owner = stat.S_IMODE(m.mode), (m.uid, m.gid)
            if m.isdir():
                out[name] = ("dir", mode, *owner, "")
            elif m.issym():
                out[name] = ("symlink", mode, *owner, m.linkname)
            elif m.islnk():
                out[name] = out[os.path.normpath(m.linkname).lstrip("/")]
            else:
                data = tar.extractfile(m).read()  # type: ignore[union-attr]
                out[name] = ("file", mode, *owner, hashlib.sha256(data).hexdigest())
    return out


def tree_entries(top: Path) -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, top)
            owner = (st.st_uid, st.st_gid)
            if stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), *owner, "")
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = ("symlink", 0o777, *owner, os.readlink(path))
            else:
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
                out[rel] = ("file", stat.S_IMODE(st.st_mode), *owner, digest)
    return out


@pytest.mark.parametrize("transport", ["docker-archive", "oci-archive"])
def test_skopeo_archive_of_an_umoci_image_loads_file_for_file(
    umoci_layout: Path, tmp_path: Path, transport: str
) -> None:
    need("skopeo")
    path = tmp_path / f"{transport}.tar"
    sh("skopeo", "copy", "-q", f"oci:{umoci_layout}:latest", f"{transport}:{path}:compat/img:1")
    root = tmp_path / "root"
    result = run_pallet(root, "load", "-q", "-i", str(path))
    assert (result.code, result.out) == (0, "Loaded image: compat/img:1\n"), result
    [layer] = archive_layers(path)
    expected = tar_entries(layer)
    # the source tree really is in the layer, with its odd modes and owners
    assert "home/user/a file with spaces.txt" in expected
    assert expected["bin/suid-tool"][:2] == ("file", 0o4755)
    assert expected["etc/secret"][1:4] == (0o600, 1000, 1000)
    assert expected["home/user"][:4] == ("dir", 0o700, 1000, 100)
    assert expected["etc/passwd.hard"] == expected["etc/passwd"]
    with ImageStore.open(root) as store:
        validate_image(store, "compat/img:1")
        top = store.unpack("compat/img:1")
        assert top is not None
        unpacked = tree_entries(store.snapshots.get(top).path / "fs")
    assert unpacked == expected
