"""Paths are resolved inside the extraction root, by the kernel (openat2) or by the fallback walk."""

from __future__ import annotations

import errno
import os

import pytest

from pallet.linux import openat2


@pytest.fixture(params=["openat2", "user-space-walk"])
def resolver(request, monkeypatch):
    if request.param == "user-space-walk":
        monkeypatch.setitem(openat2._probed, "openat2", False)
    elif not openat2.has_openat2():
        pytest.skip("this kernel has no openat2")
    return openat2.open_in_root


@pytest.fixture
def root(tmp_path):
    """root/ holds etc/marker ("inside"); tmp_path/etc/marker ("outside") must never be reached."""
    for top, text in ((tmp_path, "outside"), (tmp_path / "root", "inside")):
        (top / "etc").mkdir(parents=True)
        (top / "etc" / "marker").write_text(text)
    r = tmp_path / "root"
    os.symlink("/etc", r / "abs")
    os.symlink("../../../..", r / "up")
    os.symlink("loop2", r / "loop1")
    os.symlink("loop1", r / "loop2")
    os.symlink("abs/marker", r / "chain")
    fd = os.open(r, os.O_PATH | os.O_DIRECTORY)
    yield fd
    os.close(fd)


def read(fd: int) -> str:
    try:
        return os.read(fd, 100).decode()
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "path",
    [
        "etc/marker",
        "/etc/marker",
        "../../etc/marker",
        "abs/marker",
        "up/etc/marker",
        "up/up/abs/../etc/marker",
        "chain",
    ],
)
def test_every_path_resolves_inside_the_root(resolver, root, path):
    assert read(resolver(root, path, os.O_RDONLY)) == "inside"


def test_symlink_loops_fail_with_eloop(resolver, root):
    with pytest.raises(OSError, match=os.strerror(errno.ELOOP)) as caught:
        resolver(root, "loop1/x", os.O_RDONLY)
    assert caught.value.errno == errno.ELOOP


def test_nofollow_refuses_a_final_symlink(resolver, root):
    with pytest.raises(OSError, match=os.strerror(errno.ELOOP)) as caught:
        resolver(root, "chain", os.O_RDONLY | os.O_NOFOLLOW)
    assert caught.value.errno == errno.ELOOP


def test_empty_path_opens_the_root_itself(resolver, root):
    fd = resolver(root, "", os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert "etc" in os.listdir(fd)
    finally:
        os.close(fd)


def test_missing_component_is_enoent(resolver, root):
    with pytest.raises(FileNotFoundError):
        resolver(root, "etc/nope/x", os.O_RDONLY)


def test_o_path_follows_a_final_symlink_unless_nofollow(resolver, root):
    fd = resolver(root, "abs", os.O_PATH)
    try:
        assert "marker" in os.listdir(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
