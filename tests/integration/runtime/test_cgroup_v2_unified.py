"""The v2 driver on the host's real cgroup2 mount (this machine: ``/sys/fs/cgroup/unified``, hugetlb only).

Create, move a child in, limit what the mount offers, freeze, attach the BPF
device program and watch it refuse a device, remove. The fixture removes the
cgroup and gives the root's ``cgroup.subtree_control`` back the controllers
it had (``create`` delegates the root's controllers to its children).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator

import pytest

from pallet.errors import SystemError_
from pallet.linux import bpf
from pallet.oci.runtime_spec import DeviceRule, Resources
from pallet.runtime.cgroup_devices import attach_program, container_rules
from pallet.runtime.cgroup_v2 import V2Cgroup, detect

pytestmark = pytest.mark.root


@pytest.fixture
def cgroup() -> Iterator[V2Cgroup]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    mount = detect().unified
    if not mount:
        pytest.skip("no cgroup2 hierarchy is mounted on this host")
    control = os.path.join(mount, "cgroup.subtree_control")
    with open(control) as f:
        enabled_before = set(f.read().split())
    name = f"pallet-test-{secrets.token_hex(4)}"
    cgroup = V2Cgroup.for_container(f"/{name}/ctr", name, mount=mount)
    try:
        cgroup.create()
        yield cgroup
    finally:
        for pid in cgroup.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        V2Cgroup(os.path.join(mount, name), mount).remove()
        with open(control) as f:
            added = set(f.read().split()) - enabled_before
        for controller in added:
            # another cgroup may have started using it meanwhile: then it stays
            with contextlib.suppress(OSError), open(control, "w") as f:
                f.write(f"-{controller}")


@contextlib.contextmanager
def child_in(cgroup: V2Cgroup) -> Iterator[tuple[int, int, int]]:
    """A forked child inside ``cgroup`` that runs commands sent over a pipe: yields (pid, to_child, from_child)."""
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(to_child_w)
            os.close(from_child_r)
            os.write(from_child_w, b"ready\n")
            while command := os.read(to_child_r, 4096).decode():
                try:
                    os.close(os.open(command.strip(), os.O_RDONLY))
                    answer = "ok"
                except OSError as e:
                    answer = errno.errorcode[e.errno or 0]
                os.write(from_child_w, answer.encode())
        except BaseException:  # noqa: BLE001 - a forked child must never return into pytest
            code = 1
        finally:
            os._exit(code)
    os.close(to_child_r)
    os.close(from_child_w)
    try:
        cgroup.join(pid)
        assert os.read(from_child_r, 100) == b"ready\n"
        yield pid, to_child_w, from_child_r
    finally:
        os.close(to_child_w)
        os.close(from_child_r)
        os.waitpid(pid, 0)


def ask(channel: tuple[int, int, int], path: str) -> str:
    _, to_child, from_child = channel
    os.write(to_child, path.encode())
    return os.read(from_child, 100).decode()


def test_create_join_and_remove_a_real_v2_cgroup(cgroup: V2Cgroup) -> None:
    assert os.path.isdir(cgroup.path)
    with open(os.path.join(cgroup.mount, "cgroup.controllers")) as f:
        assert cgroup.controllers() <= frozenset(f.read().split())
    with child_in(cgroup) as (pid, _, _):
        assert cgroup.pids() == [pid]
        with open(f"/proc/{pid}/cgroup") as f:
            assert f"0::{cgroup.path[len(cgroup.mount) :]}\n" in f.read()
        with pytest.raises(SystemError_, match="device or resource busy"):
            cgroup.remove(timeout=0.05)
    cgroup.remove()
    assert not os.path.exists(cgroup.path)


def test_hugetlb_limit_is_written_where_the_controller_is_delegated(cgroup: V2Cgroup) -> None:
    if "hugetlb" not in cgroup.controllers():
        pytest.skip("the cgroup2 mount offers no hugetlb controller")
    cgroup.set(
        Resources.from_json({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]}, "linux.resources")
    )
    with open(os.path.join(cgroup.path, "hugetlb.2MB.max")) as f:
        assert f.read().strip() == str(4 << 20)


def test_freeze_and_thaw_show_in_cgroup_events(cgroup: V2Cgroup) -> None:
    with child_in(cgroup) as channel:
        cgroup.freeze(True)
        assert cgroup.frozen()
        cgroup.freeze(False)
        assert not cgroup.frozen()
        assert ask(channel, "/dev/null") == "ok"  # thawed: it answers again


def test_device_program_refuses_devices_the_rules_do_not_allow(cgroup: V2Cgroup) -> None:
    rules = container_rules([DeviceRule(allow=False, access="rwm")])
    try:
        attach_program(cgroup.path, rules)
    except SystemError_ as e:
        if e.errno in (errno.EPERM, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            pytest.skip(f"this kernel does not let us attach a cgroup device program here: {e}")
        raise
    with child_in(cgroup) as channel:
        assert ask(channel, "/dev/null") == "ok"
        assert ask(channel, "/dev/kmsg") == "EPERM"  # c 1:11 is not in the rules
        # an update replaces the program: now /dev/kmsg may be read
        attach_program(cgroup.path, [*rules, DeviceRule(allow=True, type="c", major=1, minor=11, access="r")])
        assert ask(channel, "/dev/kmsg") == "ok"
    fd = os.open(cgroup.path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert len(bpf.query(fd)) == 1
    finally:
        os.close(fd)
