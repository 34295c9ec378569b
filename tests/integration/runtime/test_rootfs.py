"""The container's filesystem: mounts, /dev, masked and read-only paths, readonly root, cgroup mount, --no-pivot."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pallet.testing.host import require_host_path

from .conftest import Runtime, base_config

pytestmark = pytest.mark.root


def _mountinfo_options(mountinfo: str, target: str) -> set[str]:
    for line in mountinfo.splitlines():
        fields = line.split()
        if fields[4] == target:
            return set(fields[5].split(",")) | set(line.split(" - ")[1].split()[2].split(","))
    raise AssertionError(f"{target} not mounted:\n{mountinfo}")


def test_default_mounts_devices_and_dev_links_exist(runtime: Runtime) -> None:
    result = runtime.run(base_config(runtime.rootfs, "sh", "-c", "cat /proc/self/mountinfo; ls -l /dev"))
    out = result.out
    for target in ("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"):
        _mountinfo_options(out, target)
    assert "ro" in _mountinfo_options(out, "/sys")
    for name, numbers in (
        ("null", "1,   3"),
        ("zero", "1,   5"),
        ("full", "1,   7"),
        ("random", "1,   8"),
        ("urandom", "1,   9"),
        ("tty", "5,   0"),
    ):
        assert any(
            line.startswith("crw-rw-rw-") and line.endswith(f" {name}") and numbers in line
            for line in out.splitlines()
        ), name
    for link, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ):
        assert f" {link} -> {target}" in out


def test_bind_mounts_honour_ro_and_create_file_or_directory_targets(runtime: Runtime, tmp_path: Path) -> None:
    src_dir = tmp_path / "srcdir"
    src_dir.mkdir()
    (src_dir / "hello").write_text("from host\n")
    src_file = tmp_path / "srcfile"
    src_file.write_text("a file\n")
    config = base_config(
        runtime.rootfs, "sh", "-c",
        "cat /mnt/ro/hello; cat /etc/extra.conf; touch /mnt/ro/x 2>/dev/null || echo ro-refused; "
        "touch /mnt/rw/y && echo rw-ok; cat /proc/self/mountinfo",
    )  # fmt: skip
    config["mounts"] += [
        {
            "destination": "/mnt/ro",
            "type": "bind",
            "source": str(src_dir),
            "options": ["rbind", "ro", "nosuid", "nodev"],
        },
        {"destination": "/mnt/rw", "type": "bind", "source": str(src_dir), "options": ["bind", "rprivate"]},
        {
            "destination": "/etc/extra.conf",
            "type": "none",
            "source": str(src_file),
            "options": ["bind", "ro"],
        },
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["noexec", "size=1m"]},
    ]
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    for d in ("bin", "proc", "sys", "dev", "etc"):
        (rootfs / d).mkdir()
    shutil.copy2(runtime.rootfs / "bin" / "busybox", rootfs / "bin" / "busybox")
    for applet in ("sh", "cat", "touch"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    config["root"] = {"path": str(rootfs)}
    result = runtime.run(config)
    lines = result.out.splitlines()
    assert lines[:4] == ["from host", "a file", "ro-refused", "rw-ok"], result.err
    mountinfo = "\n".join(lines[4:])
    assert {"ro", "nosuid", "nodev"} <= _mountinfo_options(mountinfo, "/mnt/ro")
    assert "ro" in _mountinfo_options(mountinfo, "/etc/extra.conf")
    assert {"noexec", "size=1024k"} <= _mountinfo_options(mountinfo, "/scratch")
    assert (src_dir / "y").exists()
    assert (rootfs / "etc" / "extra.conf").is_file()
    assert (rootfs / "mnt" / "ro").is_dir()


def test_masked_and_readonly_paths_and_readonly_root(runtime: Runtime) -> None:
    # a masked path that does not exist is skipped, so the masked ones must exist to prove anything
    require_host_path("/proc/timer_list", "CONFIG_GENERIC_CLOCKEVENTS")
    require_host_path("/sys/firmware")
    config = base_config(
        runtime.rootfs, "sh", "-c",
        "wc -c < /proc/timer_list; ls /sys/firmware | wc -l; "
        "echo 1 > /proc/sys/kernel/domainname 2>/dev/null || echo sys-ro; "
        "touch /newfile 2>/dev/null || echo root-ro",
    )  # fmt: skip
    config["linux"]["maskedPaths"] = ["/proc/timer_list", "/sys/firmware", "/does/not/exist"]
    config["linux"]["readonlyPaths"] = ["/proc/sys"]
    config["root"]["readonly"] = True
    result = runtime.run(config)
    assert result.out.split() == ["0", "0", "sys-ro", "root-ro"], result.err


def test_linux_devices_are_created_with_their_mode_and_owner(runtime: Runtime) -> None:
    config = base_config(runtime.rootfs, "ls", "-ln", "/dev/mydev", "/dev/fuse")
    config["linux"]["devices"] = [
        {"path": "/dev/mydev", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 7, "gid": 8},
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229},
    ]
    lines = runtime.run(config).out.splitlines()
    assert lines[0].split()[:6] == ["crw-rw-rw-", "1", "0", "0", "10,", "229"]
    assert lines[1].split()[:6] == ["crw-r-----", "1", "7", "8", "1,", "3"]


def test_cgroup_mount_on_v1_shows_the_container_cgroup_per_controller(runtime: Runtime) -> None:
    config = base_config(
        runtime.rootfs, "sh", "-c", "ls /sys/fs/cgroup; cat /sys/fs/cgroup/pids/cgroup.procs"
    )
    config["mounts"].append(
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
        }
    )
    config["linux"]["cgroupsPath"] = "/pallet-test-cgmount"
    result = runtime.run(config)
    lines = result.out.split()
    assert {"memory", "pids", "cpu", "devices"} <= set(lines), result.err
    assert lines[-1] == "1"  # the init, as the container's pid namespace numbers it
    assert not Path("/sys/fs/cgroup/pids/pallet-test-cgmount").exists()


def test_no_pivot_moves_the_rootfs_and_chroots(runtime: Runtime) -> None:
    result = runtime.run(
        base_config(runtime.rootfs, "sh", "-c", "ls /bin/busybox && cat /proc/1/cmdline"), "--no-pivot"
    )
    assert result.out.startswith("/bin/busybox\n"), result.err


def test_rootfs_propagation_is_applied_to_the_container_root(runtime: Runtime) -> None:
    config = base_config(runtime.rootfs, "sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo")
    config["linux"]["rootfsPropagation"] = "rshared"
    shared = runtime.run(config)
    assert " shared:" in shared.out, shared.err
    config["linux"]["rootfsPropagation"] = "rprivate"
    private = runtime.run(config)
    assert private.out, private.err
    assert " shared:" not in private.out
    assert " master:" not in private.out


def test_a_dev_bound_from_the_host_gets_no_device_nodes(runtime: Runtime, tmp_path: Path) -> None:
    # a stand-in for the host's /dev: making the config's nodes there would replace the host's own
    host_dev = tmp_path / "host-dev"
    host_dev.mkdir()
    (host_dev / "null").write_text("the host's own\n")
    config = base_config(runtime.rootfs, "true")
    config["mounts"] = [m for m in config["mounts"] if m["destination"] != "/dev"]
    config["mounts"].append(
        {"destination": "/dev", "type": "bind", "source": str(host_dev), "options": ["rbind"]}
    )
    config["linux"]["devices"] = [
        {
            "path": "/dev/null",
            "type": "c",
            "major": 1,
            "minor": 3,
            "fileMode": 0o755,
            "uid": 65534,
            "gid": 65534,
        },
        {"path": "/dev/mydev", "type": "c", "major": 1, "minor": 3},
    ]
    result = runtime.run(config)
    assert result.rc == 0, result.err
    assert (host_dev / "null").read_text() == "the host's own\n"
    assert sorted(p.name for p in host_dev.iterdir()) == ["null"]
