"""``pallet export``: the container's merged filesystem as one flat tar."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import PalletEnv

pytestmark = pytest.mark.root


def test_export_holds_image_files_and_changes_not_deleted_ones(pallet_env: PalletEnv, tmp_path: Path) -> None:
    pallet_env.ok("run", "--name", "exp1", "-v", "evol:/data", "busybox", "sh", "-c",
                  "echo new > /added; rm /etc/group; echo v > /data/in-volume")  # fmt: skip
    target = tmp_path / "fs.tar"
    pallet_env.ok("export", "-o", str(target), "exp1")
    with tarfile.open(target) as tar:
        names = set(tar.getnames())
        added = tar.extractfile("added")
        assert added is not None
        assert added.read() == b"new\n"
        busybox = tar.getmember("bin/busybox")
        assert busybox.mode == 0o755
    assert "etc/passwd" in names
    assert "etc/group" not in names
    assert "data/in-volume" not in names  # volumes are not part of the container's filesystem
    streamed = subprocess.run(pallet_env.argv("export", "exp1"), capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(streamed.stdout)) as tar:
        assert set(tar.getnames()) == names


def test_export_to_a_terminal_is_refused(pallet_env: PalletEnv) -> None:
    import os
    import pty

    pallet_env.ok("create", "--name", "exp2", "busybox", "true")
    primary, secondary = pty.openpty()
    try:
        done = subprocess.run(
            pallet_env.argv("export", "exp2"), stdout=secondary, stderr=subprocess.PIPE, check=False
        )
    finally:
        os.close(secondary)
        os.close(primary)
    assert done.returncode == 125
    assert b"cowardly refusing to save to a terminal" in done.stderr


def test_export_and_cp_work_when_the_rootfs_is_not_mounted(pallet_env: PalletEnv, tmp_path: Path) -> None:
    """As after a reboot: the snapshot is mounted for the command and unmounted again."""
    cid = pallet_env.ok("create", "--name", "exp3", "busybox", "true").strip()
    rootfs = pallet_env.root / "containers" / cid / "bundle" / "rootfs"
    subprocess.run(["umount", str(rootfs)], check=True)
    streamed = subprocess.run(pallet_env.argv("export", "exp3"), capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(streamed.stdout)) as tar:
        assert "bin/busybox" in tar.getnames()
    pallet_env.ok("cp", "exp3:/etc/passwd", str(tmp_path / "passwd"))
    assert (tmp_path / "passwd").read_text().startswith("root:")
    assert str(rootfs) not in Path("/proc/self/mountinfo").read_text()
