"""A ``pallet load`` killed with SIGKILL at random moments never leaves a corrupt store."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from pallet.image import archive
from pallet.image.importer import import_tarball
from pallet.image.store import ImageStore
from pallet.image.tarstream import REG, TarEntry, TarWriter
from pallet.testing.busybox import busybox_rootfs_tar
from pallet.testing.images import validate_image

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.root, pytest.mark.slow]

KILLS = 20
BIG = 24 << 20
PALLET = [sys.executable, "-m", "pallet.cli"]


def big_archive(root: Path, path: Path) -> None:
    """``big:1``: busybox plus one file of random bytes, saved to ``path``, so a load takes a while."""
    buf = io.BytesIO()
    busybox_rootfs_tar(buf)
    body = buf.getvalue()[:-1024]  # drop the end-of-archive blocks, then append one more file
    out = io.BytesIO()
    out.write(body)
    TarWriter(out).add(TarEntry("big.bin", REG, size=BIG), io.BytesIO(os.urandom(BIG)))
    out.write(b"\x00" * 1024)
    out.seek(0)
    with ImageStore.open(root) as store:
        import_tarball(store, out, ref="big:1")
        with open(path, "wb") as f:
            archive.save(store, ["big:1"], f)
        store.remove_image("big:1")


def leftovers(root: Path) -> list[str]:
    """Temp files a writer left in the store."""
    found = []
    for sub in ("content/ingest", "snapshots/tmp"):
        d = root / sub
        if d.is_dir():
            found += [f"{sub}/{name}" for name in os.listdir(d)]
    return found


def test_killed_loads_leave_a_readable_store_that_loads_again(busybox_root: Path, tmp_path: Path) -> None:
    path = tmp_path / "big.tar"
    big_archive(busybox_root, path)
    load = [*PALLET, "--root", str(busybox_root), "load", "-q", "-i", str(path)]
    started = time.monotonic()
    subprocess.run(load, check=True, capture_output=True)
    full = time.monotonic() - started
    with ImageStore.open(busybox_root) as store:
        store.remove_image("big:1")

    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    for kill in range(KILLS):
        where = f"kill {kill} (seed {seed})"
        proc = subprocess.Popen(load, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(rng.uniform(0.0, full))
        finally:
            proc.kill()
            proc.wait()

        images = subprocess.run(
            [*PALLET, "--root", str(busybox_root), "images"], capture_output=True, text=True, check=False
        )
        assert images.returncode == 0, f"{where}: {images.stderr}"
        assert "busybox" in images.stdout, where
        assert leftovers(busybox_root) == [], where

        with ImageStore.open(busybox_root) as store:
            validate_image(store, "busybox")
            with open(path, "rb") as f:
                [loaded] = archive.load(store, f)
            assert [str(n) for n in loaded.names] == ["docker.io/library/big:1"], where
            validate_image(store, "big:1")
            store.remove_image("big:1")  # the next kill starts from a store without it
        assert leftovers(busybox_root) == [], where
