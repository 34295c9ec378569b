"""Named network namespaces against the recording fake: what create, remove and entered ask of the kernel."""

from __future__ import annotations

from errno import EINVAL, EPERM
from pathlib import Path

import pytest

from pallet.errors import SystemError_
from pallet.linux.flags import CLONE_NEWNET, MNT_DETACH, MS_BIND
from pallet.network import netns
from pallet.testing.fake_syscalls import FakeSyscalls


def test_create_unshares_binds_the_thread_namespace_and_returns(tmp_path: Path) -> None:
    fake = FakeSyscalls()
    path = str(tmp_path / "netns" / "c1")
    netns.create(path, fake)
    assert [c[0] for c in fake.calls] == ["unshare", "mount", "setns"]
    assert fake.calls[0] == ("unshare", CLONE_NEWNET)
    assert fake.calls[1] == ("mount", "/proc/thread-self/ns/net", path, "", MS_BIND, "")
    assert fake.calls[2][2] == CLONE_NEWNET  # back to the saved namespace
    assert (tmp_path / "netns" / "c1").exists()  # the file the namespace is bound on


def test_a_failed_mount_still_returns_the_thread(tmp_path: Path) -> None:
    fake = FakeSyscalls()
    fake.fail["mount"] = EPERM
    with pytest.raises(SystemError_):
        netns.create(str(tmp_path / "c1"), fake)
    assert fake.calls[-1][0] == "setns"


def test_remove_unmounts_until_nothing_is_mounted_then_unlinks(tmp_path: Path) -> None:
    fake = FakeSyscalls()
    fake.fail["umount2"] = EINVAL  # not (or no longer) a mount point
    path = tmp_path / "c1"
    path.write_text("")
    netns.remove(str(path), fake)
    assert fake.named("umount2") == [("umount2", str(path), MNT_DETACH)]
    assert not path.exists()
    netns.remove(str(path), fake)  # idempotent


def test_entered_sets_and_restores(tmp_path: Path) -> None:
    fake = FakeSyscalls()
    path = tmp_path / "c1"
    path.write_text("")
    with netns.entered(str(path), fake):
        assert len(fake.named("setns")) == 1
    assert len(fake.named("setns")) == 2
    with pytest.raises(SystemError_), netns.entered(str(tmp_path / "missing"), fake):
        pass
