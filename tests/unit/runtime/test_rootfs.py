"""Rootfs planning, checked against the recorded calls of the fake syscalls (no root needed)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pallet.linux import flags as f
from pallet.oci.jsonfast import dumps
from pallet.oci.runtime_spec import default_spec, load_spec
from pallet.runtime.mountopts import parse_options
from pallet.runtime.rootfs import RootfsBuilder, secure_join
from pallet.testing.fake_syscalls import FakeSyscalls


def _spec(**changes: object) -> object:
    doc = default_spec().to_json()
    doc["ociVersion"] = "1.2.0"
    doc.update(changes)
    return load_spec(dumps(doc))


def _builder(tmp_path: Path, **changes: object) -> tuple[RootfsBuilder, FakeSyscalls, str]:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    sys = FakeSyscalls()
    return RootfsBuilder(sys, _spec(**changes), str(rootfs), str(tmp_path)), sys, str(rootfs)  # type: ignore[arg-type]


def test_prepare_makes_root_rslave_binds_rootfs_then_mounts_in_order(tmp_path: Path) -> None:
    builder, sys, rootfs = _builder(tmp_path)
    builder.prepare()
    mounts = sys.named("mount")
    assert mounts[0] == ("mount", "", "/", "", f.MS_SLAVE | f.MS_REC, "")
    assert mounts[1] == ("mount", rootfs, rootfs, "", f.MS_BIND | f.MS_REC, "")
    targets = list(dict.fromkeys(m[2] for m in mounts[2:]))
    assert (
        targets
        == [
            rootfs + d
            for d in ("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup")
        ][: len(targets)]
    )
    proc = mounts[2]
    assert proc[1:4] == ("proc", rootfs + "/proc", "proc")
    dev = mounts[3]
    assert dev[3] == "tmpfs"
    assert "mode=755" in str(dev[5])


def _shared_mounts(tmp_path: Path, *points: str) -> str:
    info = tmp_path / "mountinfo"
    lines = ["1 0 8:1 / / rw shared:1 - ext4 /dev/sda rw"]
    lines += [f"{n} 1 0:{n} / {p} rw shared:{n} - overlay overlay rw" for n, p in enumerate(points, 2)]
    info.write_text("\n".join(lines) + "\n")
    return str(info)


def test_a_rootfs_that_is_a_shared_mount_point_is_made_private_itself_before_the_bind(tmp_path: Path) -> None:
    # containerd's overlay at $bundle/rootfs: the bind's parent is the rootfs mount, pivot_root needs it private
    builder, sys, rootfs = _builder(
        tmp_path, linux={**default_spec().to_json()["linux"], "rootfsPropagation": "rshared"}
    )
    builder.mountinfo = _shared_mounts(tmp_path, str(tmp_path), rootfs)
    builder.prepare()
    assert sys.named("mount")[:3] == [
        ("mount", "", "/", "", f.MS_SHARED | f.MS_REC, ""),
        ("mount", "", rootfs, "", f.MS_PRIVATE, ""),
        ("mount", rootfs, rootfs, "", f.MS_BIND | f.MS_REC, ""),
    ]


def test_a_rootfs_directory_has_the_shared_mount_holding_it_made_private(tmp_path: Path) -> None:
    builder, sys, _rootfs = _builder(tmp_path)
    builder.mountinfo = _shared_mounts(tmp_path, str(tmp_path))
    builder.prepare()
    assert sys.named("mount")[1] == ("mount", "", str(tmp_path), "", f.MS_PRIVATE, "")


def test_default_devices_are_mknod_char_devices_and_dev_links_are_made(tmp_path: Path) -> None:
    builder, sys, rootfs = _builder(tmp_path)
    builder.prepare()
    nodes = {
        str(c[1]).removeprefix(rootfs): (stat.S_IFMT(int(c[2])), os.major(int(c[3])), os.minor(int(c[3])))
        for c in sys.named("mknod")
    }
    assert nodes == {
        "/dev/null": (stat.S_IFCHR, 1, 3), "/dev/zero": (stat.S_IFCHR, 1, 5), "/dev/full": (stat.S_IFCHR, 1, 7),
        "/dev/random": (stat.S_IFCHR, 1, 8), "/dev/urandom": (stat.S_IFCHR, 1, 9), "/dev/tty": (stat.S_IFCHR, 5, 0),
    }  # fmt: skip
    assert os.readlink(rootfs + "/dev/ptmx") == "pts/ptmx"
    assert os.readlink(rootfs + "/dev/fd") == "/proc/self/fd"


def test_in_a_user_namespace_devices_are_bind_mounted_from_the_host(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    sys = FakeSyscalls()
    builder = RootfsBuilder(sys, _spec(), str(rootfs), str(tmp_path), in_user_namespace=True)  # type: ignore[arg-type]
    builder.prepare()
    assert sys.named("mknod") == []
    assert ("mount", "/dev/null", f"{rootfs}/dev/null", "", f.MS_BIND, "") in sys.calls


def test_ro_bind_is_a_bind_then_a_remount_and_the_file_target_is_a_file(tmp_path: Path) -> None:
    source = tmp_path / "hosts"
    source.write_text("x")
    mount = {
        "destination": "/etc/hosts",
        "type": "bind",
        "source": str(source),
        "options": ["rbind", "ro", "rprivate"],
    }
    builder, sys, rootfs = _builder(tmp_path, mounts=[mount])
    builder.prepare()
    target = rootfs + "/etc/hosts"
    assert Path(target).is_file()
    assert [c for c in sys.named("mount") if c[2] == target] == [
        ("mount", str(source), target, "", f.MS_BIND | f.MS_REC, ""),
        ("mount", "", target, "", f.MS_BIND | f.MS_REC | f.MS_RDONLY | f.MS_REMOUNT, ""),
        ("mount", "", target, "", f.MS_PRIVATE | f.MS_REC, ""),
    ]


def test_cgroup_mount_on_v1_is_a_tmpfs_with_one_bind_per_hierarchy(tmp_path: Path) -> None:
    mount = {
        "destination": "/sys/fs/cgroup",
        "type": "cgroup",
        "source": "cgroup",
        "options": ["ro", "nosuid"],
    }
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    sys = FakeSyscalls()
    builder = RootfsBuilder(
        sys, _spec(mounts=[mount]), str(rootfs), str(tmp_path),  # type: ignore[arg-type]
        cgroup_dirs={"memory": "/sys/fs/cgroup/memory/c1"}, cgroup_mounts={"memory": "/sys/fs/cgroup/memory"},
    )  # fmt: skip
    builder.prepare()
    target = f"{rootfs}/sys/fs/cgroup"
    calls = [c for c in sys.named("mount") if str(c[2]).startswith(target)]
    assert calls[0] == ("mount", "tmpfs", target, "tmpfs", f.MS_NOSUID, "mode=755")
    assert calls[1] == ("mount", "/sys/fs/cgroup/memory/c1", target + "/memory", "", f.MS_BIND | f.MS_REC, "")
    assert calls[-1][4] & f.MS_RDONLY


def test_cgroup_mount_on_v2_binds_the_containers_cgroup(tmp_path: Path) -> None:
    mount = {
        "destination": "/sys/fs/cgroup",
        "type": "cgroup",
        "source": "cgroup",
        "options": ["ro", "nosuid"],
    }
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    sys = FakeSyscalls()
    builder = RootfsBuilder(
        sys, _spec(mounts=[mount]), str(rootfs), str(tmp_path),  # type: ignore[arg-type]
        cgroup_dirs={"": "/sys/fs/cgroup/c1"},
    )  # fmt: skip
    builder.prepare()
    target = f"{rootfs}/sys/fs/cgroup"
    calls = [c for c in sys.named("mount") if str(c[2]).startswith(target)]
    assert calls == [
        ("mount", "/sys/fs/cgroup/c1", target, "", f.MS_BIND | f.MS_REC, ""),
        ("mount", "", target, "", f.MS_BIND | f.MS_REMOUNT | f.MS_RDONLY | f.MS_NOSUID, ""),
    ]


def test_without_a_mount_namespace_the_host_root_is_left_alone_and_chroot_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    sys = FakeSyscalls()
    builder = RootfsBuilder(sys, _spec(mounts=[]), str(rootfs), str(tmp_path), host_mount_namespace=True)  # type: ignore[arg-type]
    builder.prepare()
    assert all(c[2] != "/" for c in sys.named("mount"))  # no propagation change on the host's "/"
    roots: list[str] = []
    monkeypatch.setattr(os, "chdir", lambda path: None)
    monkeypatch.setattr(os, "chroot", roots.append)
    builder.pivot(no_pivot=False)
    assert roots == ["."]
    assert sys.named("pivot_root") == []


def test_pivot_and_no_pivot_use_the_right_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builder, sys, rootfs = _builder(tmp_path)
    monkeypatch.setattr(os, "chdir", lambda path: None)
    builder.pivot(no_pivot=False)
    assert sys.calls == [
        ("pivot_root", ".", "."),
        ("mount", "", ".", "", f.MS_SLAVE | f.MS_REC, ""),
        ("umount2", ".", f.MNT_DETACH),
    ]
    sys.calls.clear()
    monkeypatch.setattr(os, "chroot", lambda path: None)
    builder.pivot(no_pivot=True)
    assert sys.calls == [("mount", rootfs, "/", "", f.MS_MOVE, "")]


def test_masked_files_get_dev_null_masked_dirs_a_readonly_tmpfs(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    (root / "proc" / "kcore").write_text("")
    (root / "sys" / "firmware").mkdir(parents=True)
    builder, sys, _ = _builder(tmp_path)
    builder.finish(str(root))
    assert ("mount", "/dev/null", f"{root}/proc/kcore", "", f.MS_BIND, "") in sys.calls
    assert ("mount", "tmpfs", f"{root}/sys/firmware", "tmpfs", f.MS_RDONLY, "") in sys.calls


def test_secure_join_keeps_symlinks_inside_the_root(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    os.symlink("/../../../outside", tmp_path / "etc" / "escape")
    os.symlink("../etc", tmp_path / "up")
    assert secure_join(str(tmp_path), "/etc/escape/x") == f"{tmp_path}/outside/x"
    assert secure_join(str(tmp_path), "/up/../../etc") == f"{tmp_path}/etc"


def test_mount_options_split_into_flags_propagation_and_data() -> None:
    parsed = parse_options(["nosuid", "noexec", "rw", "mode=755", "size=65536k", "rslave", "tmpcopyup"])
    assert parsed.flags == f.MS_NOSUID | f.MS_NOEXEC
    assert parsed.propagation == (f.MS_SLAVE | f.MS_REC,)
    assert parsed.data == "mode=755,size=65536k"
