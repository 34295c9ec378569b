"""``pallet import`` of tarballs whose first header is a PAX extended header (GNU ``tar --format=pax``,
Python's ``tarfile`` PAX_FORMAT with names longer than ustar's 100+155 bytes)."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from pallet.errors import InvalidArgument
from pallet.image.importer import import_tarball
from pallet.image.store import ImageStore
from pallet.image.tarstream import TarReader

LONG_DIR = "d" * 120
LONG_FILE = "f" * 130


def _layer_names(store: ImageStore, ref: str) -> list[str]:
    layer = store.manifest(ref).layers[0]
    with store.content.open(str(layer.digest)) as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return [entry.name.removeprefix("./") for entry in TarReader(io.BytesIO(data))]


def _python_pax_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        directory = tarfile.TarInfo(LONG_DIR)
        directory.type = tarfile.DIRTYPE
        directory.mode = 0o755
        tar.addfile(directory)
        data = b"hello\n"
        info = tarfile.TarInfo(f"{LONG_DIR}/{LONG_FILE}")
        info.size = len(data)
        info.mtime = 1700000000.5  # a fraction: a PAX mtime record as well
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_python_pax_tarball_with_long_names_imports(tmp_path: Path) -> None:
    with ImageStore.open(str(tmp_path / "root")) as store:
        import_tarball(store, io.BytesIO(_python_pax_tar()), ref="pax:py")
        assert f"{LONG_DIR}/{LONG_FILE}" in _layer_names(store, "pax:py")


def test_a_gnu_tar_pax_tarball_imports(tmp_path: Path) -> None:
    tar = shutil.which("tar")
    if tar is None:
        pytest.skip("GNU tar is not installed")
    source = tmp_path / "src" / LONG_DIR
    source.mkdir(parents=True)
    (source / LONG_FILE).write_text("hello\n")
    archive = subprocess.run(
        [tar, "--format=pax", "-C", str(tmp_path / "src"), "-cf", "-", "."], capture_output=True, check=True
    ).stdout
    assert archive[156:157] == b"x"  # the case at hand: the first header is an extended one
    with ImageStore.open(str(tmp_path / "root")) as store:
        import_tarball(store, io.BytesIO(gzip.compress(archive)), ref="pax:gnu")
        assert f"{LONG_DIR}/{LONG_FILE}" in _layer_names(store, "pax:gnu")


def test_what_is_not_a_tar_is_still_refused(tmp_path: Path) -> None:
    with (
        ImageStore.open(str(tmp_path / "root")) as store,
        pytest.raises(InvalidArgument, match="not a tar archive"),
    ):
        import_tarball(store, io.BytesIO(b"x" * 1024), ref="pax:bad")
