"""The default test image, ``busybox:latest``, made locally from Debian's busybox-static.

``busybox_rootfs_tar`` writes the root filesystem ``scripts/make-busybox-image.sh``
builds (``/bin/busybox``, a symlink per applet, ``/etc/passwd``, ``/etc/group``
and the usual empty directories) as a tar stream, with fixed owners, modes and
mtimes; ``make_busybox_image`` imports it with ``CMD ["sh"]`` and the usual
PATH, as the script does.

Pytest fixtures (import them into a test module or conftest):

- ``busybox_store_root`` (session): a store root holding ``busybox:latest``,
  made once per session; treat it as read-only.
- ``busybox_root`` (function): a private copy of it in ``tmp_path``, for tests
  that change the store.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pallet.image.importer import import_tarball
from pallet.image.store import ImageStore
from pallet.image.tarstream import DIR, REG, SYM, TarEntry, TarWriter

__all__ = [
    "BUSYBOX",
    "PATH_ENV",
    "busybox_root",
    "busybox_rootfs_tar",
    "busybox_store_root",
    "make_busybox_image",
]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from pallet.image.store import ImageRecord
    from pallet.image.tarstream import Writable

BUSYBOX = "/bin/busybox"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
_GROUP = b"root:x:0:\nnogroup:x:65534:\n"


def _applets() -> list[str]:
    done = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True)
    return sorted(a for a in done.stdout.split() if a and a != "busybox" and "/" not in a)


def busybox_rootfs_tar(out: Writable) -> None:
    """Write the busybox root filesystem as a tar stream to ``out``."""
    if not os.access(BUSYBOX, os.X_OK):
        pytest.skip(f"{BUSYBOX} missing; apt-get install busybox-static")
    tar = TarWriter(out)
    for name in ("./", "bin/", "dev/", "etc/", "proc/", "root/", "sys/"):
        tar.add(TarEntry(name, DIR, mode=0o755))
    tar.add(TarEntry("tmp/", DIR, mode=0o1777))
    size = os.stat(BUSYBOX).st_size
    with open(BUSYBOX, "rb") as f:
        tar.add(TarEntry("bin/busybox", REG, mode=0o755, size=size), f)
    for applet in _applets():
        tar.add(TarEntry(f"bin/{applet}", SYM, mode=0o777, linkname=BUSYBOX))
    tar.add(TarEntry("etc/group", REG, mode=0o644, size=len(_GROUP)), io.BytesIO(_GROUP))
    tar.add(TarEntry("etc/passwd", REG, mode=0o644, size=len(_PASSWD)), io.BytesIO(_PASSWD))
    tar.close()


def make_busybox_image(store: ImageStore, ref: str = "busybox:latest") -> ImageRecord:
    """Import the busybox root filesystem into ``store`` as ``ref``."""
    buf = io.BytesIO()
    busybox_rootfs_tar(buf)
    buf.seek(0)
    return import_tarball(
        store,
        buf,
        ref=ref,
        changes=('CMD ["sh"]', f"ENV {PATH_ENV}"),
        message="busybox-static from Debian, made by pallet.testing.busybox",
    )


@pytest.fixture(scope="session")
def busybox_store_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A store root with ``busybox:latest``, shared by the session: do not change it."""
    root = tmp_path_factory.mktemp("busybox-store")
    with ImageStore.open(root) as store:
        make_busybox_image(store)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def busybox_root(busybox_store_root: Path, tmp_path: Path) -> Iterator[Path]:
    """A private store root holding ``busybox:latest``, removed after the test.

    Its networks take their subnets from the tests' own pool, and whatever
    its default network left in the kernel (bridge, nftables table) goes with
    it (``pallet.testing.networks``; a fixture that knows the run dir removes
    the rest first)."""
    from pallet.testing.networks import remove_networks, use_test_pools

    root = tmp_path / "root"
    shutil.copytree(busybox_store_root, root, symlinks=True)
    use_test_pools(root)
    try:
        yield root
    finally:
        remove_networks(root, None)
        shutil.rmtree(root, ignore_errors=True)
