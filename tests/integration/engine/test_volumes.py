"""Volumes and mounts end to end: data outlives containers, in-use rules, anonymous volumes, seeding, binds."""

from __future__ import annotations

from pathlib import Path

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import PalletEnv

pytestmark = pytest.mark.root


def test_named_volume_keeps_files_after_the_container_is_gone(pallet_env: PalletEnv) -> None:
    pallet_env.ok("run", "--rm", "-v", "keep1:/data", "busybox", "sh", "-c", "echo kept > /data/f")
    assert pallet_env.container_ids() == []
    assert pallet_env.ok("volume", "ls", "-q") == "keep1\n"
    out = pallet_env.ok("run", "--rm", "-v", "keep1:/data", "busybox", "cat", "/data/f")
    assert out == "kept\n"


def test_volume_in_use_is_refused_until_its_container_is_removed(pallet_env: PalletEnv) -> None:
    pallet_env.ok("create", "--name", "user1", "-v", "busy1:/data", "busybox", "true")
    done = pallet_env.pallet("volume", "rm", "busy1")
    assert done.returncode == 1
    assert "volume is in use" in done.stderr
    assert done.stderr.count("\n") == 1
    assert pallet_env.ok("volume", "ls", "-q") == "busy1\n"
    pallet_env.ok("rm", "user1")
    assert pallet_env.ok("volume", "rm", "busy1") == "busy1\n"


def test_anonymous_volume_goes_with_rm_v_and_named_one_stays(pallet_env: PalletEnv) -> None:
    pallet_env.ok("create", "--name", "anon1", "-v", "/scratch", "-v", "named1:/named", "busybox", "true")
    names = pallet_env.ok("volume", "ls", "-q").split()
    assert "named1" in names
    anonymous = [n for n in names if n != "named1"]
    assert len(anonymous) == 1
    assert len(anonymous[0]) == 64
    pallet_env.ok("rm", "-v", "anon1")
    assert pallet_env.ok("volume", "ls", "-q") == "named1\n"


def test_new_volume_is_seeded_from_the_image_once(pallet_env: PalletEnv) -> None:
    out = pallet_env.ok(
        "run", "--rm", "-v", "etc1:/etc", "busybox", "sh", "-c", "cat /etc/group; echo x > /etc/mine"
    )
    assert out.startswith("root:x:0:")
    data = Path(pallet_env.ok("volume", "inspect", "-f", "{{.Mountpoint}}", "etc1").strip())
    assert (data / "passwd").stat().st_mode & 0o777 == 0o644
    (data / "group").unlink()
    # not empty any more: a second container does not copy the image's files again
    out = pallet_env.ok("run", "--rm", "-v", "etc1:/etc", "busybox", "ls", "/etc")
    # and the mount points of the container's /etc files are made in the volume, as with docker
    assert out.split() == ["hostname", "hosts", "mine", "passwd", "resolv.conf"]


def test_read_only_bind_mount_shows_host_files_and_refuses_writes(
    pallet_env: PalletEnv, tmp_path: Path
) -> None:
    host = tmp_path / "shared"
    host.mkdir()
    (host / "f").write_text("from host\n")
    done = pallet_env.pallet(
        "run", "--rm", "-v", f"{host}:/mnt:ro", "busybox", "sh", "-c", "cat /mnt/f; touch /mnt/x"
    )
    assert done.stdout == "from host\n"
    assert done.returncode != 0
    assert "Read-only file system" in done.stderr
    assert not (host / "x").exists()


def test_v_creates_a_missing_host_dir_but_mount_refuses_it(pallet_env: PalletEnv, tmp_path: Path) -> None:
    missing = tmp_path / "made-by-v"
    pallet_env.ok("run", "--rm", "-v", f"{missing}:/out", "busybox", "sh", "-c", "echo hi > /out/f")
    assert (missing / "f").read_text() == "hi\n"
    other = tmp_path / "not-there"
    done = pallet_env.pallet(
        "run", "--rm", "--mount", f"type=bind,source={other},target=/x", "busybox", "true"
    )
    assert done.returncode == 125
    assert "bind source path does not exist" in done.stderr
    assert not other.exists()
    assert pallet_env.container_ids() == []


def test_tmpfs_mount_is_a_tmpfs_inside(pallet_env: PalletEnv) -> None:
    out = pallet_env.ok(
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,target=/fast",
        "busybox",
        "sh",
        "-c",
        "grep ' /fast ' /proc/mounts",
    )
    assert out.split()[2] == "tmpfs"
    assert "noexec" in out


def test_image_volume_becomes_an_anonymous_volume(pallet_env: PalletEnv) -> None:
    pallet_env.ok("create", "--name", "base1", "busybox", "true")
    pallet_env.ok("commit", "-c", "VOLUME /etc", "base1", "withvol:1")
    pallet_env.ok("create", "--name", "user2", "withvol:1", "true")
    (anonymous,) = pallet_env.ok("volume", "ls", "-q", "--filter", "dangling=false").split()
    data = Path(pallet_env.ok("volume", "inspect", "-f", "{{.Mountpoint}}", anonymous).strip())
    assert (data / "passwd").exists()  # seeded from the image
    pallet_env.ok("rm", "-v", "user2")
    assert pallet_env.ok("volume", "ls", "-q") == ""
