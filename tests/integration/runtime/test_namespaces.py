"""Namespaces: new ones of every type, user id maps, time offsets, joining by path; hostname, domainname, sysctl."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pallet.oci.jsonfast import loads

from .conftest import Runtime, base_config, leftovers

pytestmark = pytest.mark.root

ALL_TYPES = ("pid", "network", "mount", "ipc", "uts", "cgroup")


def _ns(pid: str, name: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{name}")


def test_every_namespace_type_is_new_and_pid_is_1(runtime: Runtime) -> None:
    config = base_config(
        runtime.rootfs,
        "sh",
        "-c",
        "echo $$; for n in pid net mnt ipc uts cgroup; do readlink /proc/self/ns/$n; done",
    )
    config["linux"]["namespaces"] = [{"type": t} for t in ALL_TYPES]
    lines = runtime.run(config).out.split()
    assert lines[0] == "1"
    host = [_ns("self", n) for n in ("pid", "net", "mnt", "ipc", "uts", "cgroup")]
    assert all(inside != outside for inside, outside in zip(lines[1:], host, strict=True))


def test_hostname_domainname_and_sysctl_are_set_inside(runtime: Runtime) -> None:
    config = base_config(
        runtime.rootfs,
        "sh",
        "-c",
        "hostname; cat /proc/sys/kernel/domainname; cat /proc/sys/net/ipv4/ip_unprivileged_port_start",
    )
    config["hostname"] = "boxy"
    config["domainname"] = "example.test"
    config["linux"]["sysctl"] = {"net.ipv4.ip_unprivileged_port_start": "42"}
    result = runtime.run(config)
    assert result.out.split() == ["boxy", "example.test", "42"], result.err
    assert Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text().strip() != "42"


def _let_mapped_root_through(path: Path) -> None:
    # the container's root is an unprivileged host uid: it must be able to reach the rootfs
    for parent in [path, *path.parents]:
        if str(parent) in ("/", "/tmp"):
            break
        parent.chmod(parent.stat().st_mode | 0o111)


def test_user_namespace_gets_the_configured_id_maps(runtime: Runtime) -> None:
    _let_mapped_root_through(runtime.rootfs)
    _let_mapped_root_through(runtime.tmp)
    config = base_config(runtime.rootfs, "sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u")
    config["linux"]["namespaces"].append({"type": "user"})
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    # a sysfs of its own needs a network namespace the user namespace owns: bind the host's instead
    config["mounts"] = [m for m in config["mounts"] if not m["destination"].startswith("/sys")]
    result = runtime.run(config)
    assert [line.split() for line in result.out.splitlines()] == [
        ["0", "100000", "65536"],
        ["0", "200000", "65536"],
        ["0"],
    ], result.err


def test_a_user_without_a_mapping_in_the_user_namespace_is_refused_in_runc_words(runtime: Runtime) -> None:
    _let_mapped_root_through(runtime.rootfs)
    _let_mapped_root_through(runtime.tmp)
    config = base_config(runtime.rootfs, "true")
    config["linux"]["namespaces"].append({"type": "user"})
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 1000}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 1000}]
    config["mounts"] = [m for m in config["mounts"] if not m["destination"].startswith("/sys")]
    config["process"]["user"] = {"uid": 5000, "gid": 10}
    bundle = runtime.bundle(config)
    cid = runtime.new_id()
    result = runtime("create", "--bundle", str(bundle), cid)
    assert result.rc != 0
    assert "unable to setup user: cannot setuid to unmapped uid 5000 in user namespace" in result.err
    assert leftovers(runtime, cid) == []


def test_time_namespace_applies_the_offsets(runtime: Runtime) -> None:
    if not os.path.exists("/proc/self/ns/time"):
        pytest.skip("no time namespaces on this kernel")
    config = base_config(runtime.rootfs, "cat", "/proc/self/timens_offsets")
    config["linux"]["namespaces"].append({"type": "time"})
    config["linux"]["timeOffsets"] = {"monotonic": {"secs": 86400, "nanosecs": 5}, "boottime": {"secs": 7}}
    result = runtime.run(config)
    assert sorted(line.split() for line in result.out.splitlines()) == [
        ["boottime", "7", "0"],
        ["monotonic", "86400", "5"],
    ], result.err


def test_namespaces_given_by_path_are_joined(runtime: Runtime) -> None:
    first = base_config(runtime.rootfs, "sleep", "30")
    first["hostname"] = "sandbox"
    sandbox = runtime.new_id()
    assert runtime("run", "--detach", "--bundle", str(runtime.bundle(first, "sandbox")), sandbox).rc == 0
    pid = loads(runtime("state", sandbox).out)["pid"]  # type: ignore[index]
    second = base_config(
        runtime.rootfs, "sh", "-c", "hostname; readlink /proc/self/ns/net; readlink /proc/self/ns/ipc"
    )
    del second["hostname"]  # a joined uts namespace keeps its name
    second["linux"]["namespaces"] = [
        {"type": "mount"},
        {"type": "pid", "path": f"/proc/{pid}/ns/pid"},
        {"type": "uts", "path": f"/proc/{pid}/ns/uts"},
        {"type": "network", "path": f"/proc/{pid}/ns/net"},
        {"type": "ipc", "path": f"/proc/{pid}/ns/ipc"},
    ]
    result = runtime.run(second)
    assert result.out.split() == ["sandbox", _ns(str(pid), "net"), _ns(str(pid), "ipc")], result.err


def test_cgroup_namespace_is_rooted_in_the_container_cgroup(runtime: Runtime) -> None:
    config = base_config(runtime.rootfs, "cat", "/proc/self/cgroup")
    config["linux"]["namespaces"].append({"type": "cgroup"})
    config["linux"]["cgroupsPath"] = "/pallet-test-cgns"
    result = runtime.run(config)
    lines = [line for line in result.out.splitlines() if not line.startswith("0::")]
    assert lines, result.err
    assert all(line.endswith(":/") for line in lines), result.out


def test_loopback_is_up_in_a_new_network_namespace(runtime: Runtime) -> None:
    config = base_config(
        runtime.rootfs,
        "sh",
        "-c",
        "cat /sys/class/net/lo/flags; cat /sys/class/net/lo/operstate",
    )
    result = runtime.run(config)
    flags, operstate = result.out.split()
    assert int(flags, 16) & 0x1, result.err  # IFF_UP
    assert operstate == "unknown"  # lo has no carrier to report: "down" while IFF_UP is off


def test_without_a_mount_namespace_mounts_are_the_hosts_until_delete(runtime: Runtime) -> None:
    config = base_config(runtime.rootfs, "sh", "-c", "readlink /proc/self/ns/mnt; cat /proc/1/comm")
    config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"] if n["type"] != "mount"]
    cid = runtime.new_id()
    assert runtime("create", "--bundle", str(runtime.bundle(config)), cid).rc == 0
    try:
        with open("/proc/self/mountinfo") as f:
            in_host = [line.split()[4] for line in f if line.split()[4].startswith(str(runtime.rootfs))]
        assert f"{runtime.rootfs}/proc" in in_host  # made in our own mount namespace, as runc does
    finally:
        assert runtime("delete", "--force", cid).rc == 0
    with open("/proc/self/mountinfo") as f:
        assert [line for line in f if str(runtime.rootfs) in line] == []
