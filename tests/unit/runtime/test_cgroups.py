"""Cgroup path rules (runc's cgroupfs and systemd forms) and v1 hierarchy discovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from pallet.errors import InvalidArgument
from pallet.runtime.cgroups import expand_slice, systemd_path, v1_hierarchies


def test_systemd_form_becomes_the_path_runc_systemd_driver_uses() -> None:
    assert systemd_path("system.slice:docker:abc", "x") == "/system.slice/docker-abc.scope"
    assert systemd_path("a-b.slice:crio:id", "x") == "/a.slice/a-b.slice/crio-id.scope"
    assert systemd_path(":pfx:", "cid") == "/system.slice/pfx-cid.scope"
    assert expand_slice("-.slice") == "/"
    with pytest.raises(InvalidArgument):
        systemd_path("just-a-path", "x")
    with pytest.raises(InvalidArgument):
        expand_slice("a--b.slice")


def test_v1_hierarchies_are_read_from_mountinfo(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n"
        "31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
        "32 25 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
        "33 25 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
    )
    assert v1_hierarchies(str(info)) == {
        "memory": "/sys/fs/cgroup/memory",
        "cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
        "name=systemd": "/sys/fs/cgroup/systemd",
    }
