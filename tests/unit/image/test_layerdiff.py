"""Layers made from directory diffs apply back to the same tree; change lists match docker diff."""

from __future__ import annotations

import io
import os
import shutil
import socket
import stat
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pallet.errors import InvalidArgument
from pallet.image.compression import NONE, ZSTD
from pallet.image.extract import apply_layer
from pallet.image.layerdiff import FULL, OVERLAY, Change, diff_changes, write_layer
from pallet.image.tarstream import TarReader

TAR = "application/vnd.oci.image.layer.v1.tar"
ROOT = os.geteuid() == 0


def snapshot(top: str) -> dict[str, tuple[object, ...]]:
    """Every observable property of a tree (the top directory itself excluded)."""
    inodes: dict[tuple[int, int], str] = {}
    found: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, top)
            s = os.lstat(path)
            content: object = None
            if stat.S_ISREG(s.st_mode):
                with open(path, "rb") as f:
                    content = f.read()
            elif stat.S_ISLNK(s.st_mode):
                content = os.readlink(path)
            try:
                xattrs = {
                    k: os.getxattr(path, k, follow_symlinks=False)
                    for k in os.listxattr(path, follow_symlinks=False)
                }
            except OSError:
                xattrs = {}
            link_group = inodes.setdefault((s.st_dev, s.st_ino), rel) if stat.S_ISREG(s.st_mode) else None
            found[rel] = (
                stat.S_IFMT(s.st_mode), stat.S_IMODE(s.st_mode), s.st_uid, s.st_gid, s.st_mtime_ns,
                s.st_rdev, content, xattrs, link_group,
            )  # fmt: skip
    return found


def roundtrip(upper: str, target: str, **kwargs: object) -> None:
    out = io.BytesIO()
    write_layer(out, upper, compression=NONE, **kwargs)  # type: ignore[arg-type]
    apply_layer(target, io.BytesIO(out.getvalue()), media_type=TAR)


def xattrs_supported(path: str) -> bool:
    try:
        os.setxattr(path, "user.probe", b"1")
        os.removexattr(path, "user.probe")
    except OSError:
        return False
    return True


names = st.sampled_from(["a", "b", "c", "dir", "lön", "x" * 120, ".hidden", "s p a c e"])
node = st.tuples(
    st.lists(names, min_size=1, max_size=3),
    st.sampled_from(["file", "dir", "symlink", "hardlink", "fifo"]),
    st.binary(max_size=3000),
    st.integers(0, 0o7777),
    st.integers(0, 2_000_000_000 * 10**9),
    st.integers(0, 70000),
    st.booleans(),
)


def build(top: str, nodes: list[tuple[object, ...]], with_xattrs: bool) -> None:
    """Make a tree from random nodes; directories get their mtimes last."""
    dirs: list[tuple[str, int]] = []
    files: list[str] = []
    for parts, kind, data, mode, mtime, owner, xattr in nodes:  # type: ignore[misc]
        rel = "/".join(parts)
        path = os.path.join(top, rel)
        parent = os.path.dirname(path)
        if not os.path.isdir(parent) or os.path.islink(parent) or os.path.lexists(path):
            continue
        if kind == "file":
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, mode | 0o400)
            files.append(path)
        elif kind == "dir":
            os.mkdir(path)
            os.chmod(path, mode | 0o700)
            dirs.append((path, mtime))
        elif kind == "symlink":
            os.symlink(rel[::-1] or "x", path)
        elif kind == "hardlink":
            if not files:
                continue
            os.link(files[len(data) % len(files)], path)
        else:
            os.mkfifo(path, mode & 0o777 | 0o400)
        if ROOT:
            os.chown(path, owner, owner // 2, follow_symlinks=False)
            if kind == "file":
                os.chmod(path, mode | 0o400)  # chown cleared setuid/setgid
        if with_xattrs and xattr and kind in ("file", "dir"):
            os.setxattr(path, "user.random", bytes(data[:20]))
        if kind != "dir":
            os.utime(path, ns=(mtime, mtime), follow_symlinks=False)
    for path, mtime in reversed(dirs):
        os.utime(path, ns=(mtime, mtime))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(node, max_size=14))
def test_random_tree_survives_layerdiff_and_apply(nodes):
    with tempfile.TemporaryDirectory() as tmp:
        upper, target = os.path.join(tmp, "upper"), os.path.join(tmp, "target")
        os.mkdir(upper)
        os.mkdir(target)
        build(upper, nodes, xattrs_supported(upper))
        roundtrip(upper, target, upper_kind=FULL)
        assert snapshot(target) == snapshot(upper)


@pytest.fixture
def lower(tmp_path):
    path = tmp_path / "lower"
    (path / "etc").mkdir(parents=True)
    (path / "etc" / "passwd").write_text("root:x:0:0\n")
    (path / "etc" / "hosts").write_text("127.0.0.1\n")
    (path / "var" / "cache" / "apt").mkdir(parents=True)
    (path / "var" / "cache" / "apt" / "pkg").write_bytes(b"p" * 100)
    (path / "bin").mkdir()
    (path / "bin" / "sh").write_bytes(b"\x7fELF")
    os.symlink("sh", path / "bin" / "ash")
    for p in sorted(path.rglob("*"), key=lambda p: -len(p.parts)):
        os.utime(p, ns=(10**18, 10**18), follow_symlinks=False)
    return path


def changed_copy(lower, tmp_path):
    upper = tmp_path / "upper"
    shutil.copytree(lower, upper, symlinks=True)
    (upper / "etc" / "hosts").write_text("127.0.0.1 localhost\n")  # C
    (upper / "etc" / "new.conf").write_text("x")  # A
    os.unlink(upper / "etc" / "passwd")  # D
    shutil.rmtree(upper / "var" / "cache")  # D (the whole dir)
    os.unlink(upper / "bin" / "ash")  # a symlink replaced by a directory: C
    (upper / "bin" / "ash").mkdir()
    (upper / "bin" / "ash" / "inside").write_text("i")  # A
    return upper


def test_full_diff_lists_additions_changes_and_deletions_like_docker_diff(lower, tmp_path):
    upper = changed_copy(lower, tmp_path)
    assert [str(c) for c in diff_changes(str(upper), lower=str(lower), upper_kind=FULL)] == [
        "C /bin",
        "C /bin/ash",
        "A /bin/ash/inside",
        "C /etc",
        "C /etc/hosts",
        "A /etc/new.conf",
        "D /etc/passwd",
        "C /var",
        "D /var/cache",
    ]


def test_full_diff_layer_applied_on_the_lower_tree_gives_the_upper_tree(lower, tmp_path):
    upper = changed_copy(lower, tmp_path)
    target = tmp_path / "target"
    shutil.copytree(lower, target, symlinks=True)
    roundtrip(str(upper), str(target), lower=str(lower), upper_kind=FULL)
    assert snapshot(str(target)) == snapshot(str(upper))


def test_unchanged_tree_gives_an_empty_layer(lower, tmp_path):
    upper = tmp_path / "same"
    shutil.copytree(lower, upper, symlinks=True)
    out = io.BytesIO()
    result = write_layer(out, str(upper), lower=str(lower), upper_kind=FULL, compression=NONE)
    assert result.changes == ()
    assert list(TarReader(io.BytesIO(out.getvalue()))) == []


def test_layer_tar_is_deterministic_and_in_walk_order(lower):
    outs = [io.BytesIO(), io.BytesIO()]
    results = [write_layer(o, str(lower), upper_kind=FULL, compression=ZSTD) for o in outs]
    assert outs[0].getvalue() == outs[1].getvalue()
    assert results[0].digest == results[1].digest
    tar = io.BytesIO()
    write_layer(tar, str(lower), upper_kind=FULL, compression=NONE)
    names = [e.name for e in TarReader(io.BytesIO(tar.getvalue()))]
    assert names == [
        "bin/",
        "bin/ash",
        "bin/sh",
        "etc/",
        "etc/hosts",
        "etc/passwd",
        "var/",
        "var/cache/",
        "var/cache/apt/",
        "var/cache/apt/pkg",
    ]


def test_hardlinks_in_the_upper_become_link_entries(tmp_path):
    upper = tmp_path / "u"
    upper.mkdir()
    (upper / "a").write_bytes(b"same inode")
    os.link(upper / "a", upper / "b")
    tar = io.BytesIO()
    write_layer(tar, str(upper), upper_kind=FULL, compression=NONE)
    entries = list(TarReader(io.BytesIO(tar.getvalue())))
    assert [(e.name, e.type, e.linkname, e.size) for e in entries] == [("a", "0", "", 10), ("b", "1", "a", 0)]


def test_overlay_upper_without_whiteouts_lists_changes_against_the_lower(lower, tmp_path):
    upper = tmp_path / "ovl"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "hosts").write_text("new")
    (upper / "opt").mkdir()
    assert diff_changes(str(upper), lower=str(lower), upper_kind=OVERLAY) == (
        Change(kind="C", path="/etc"),
        Change(kind="C", path="/etc/hosts"),
        Change(kind="A", path="/opt"),
    )


@pytest.mark.root
def test_overlay_whiteouts_and_opaque_dirs_become_oci_whiteouts(lower, tmp_path):
    if not ROOT:
        pytest.skip("needs root for 0/0 character devices and trusted xattrs")
    upper = tmp_path / "ovl"
    (upper / "etc").mkdir(parents=True)
    os.mknod(upper / "etc" / "passwd", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    (upper / "var").mkdir()
    os.setxattr(upper / "var", "trusted.overlay.opaque", b"y")
    (upper / "var" / "fresh").write_text("f")
    tar = io.BytesIO()
    result = write_layer(tar, str(upper), lower=str(lower), upper_kind=OVERLAY, compression=NONE)
    names = [e.name for e in TarReader(io.BytesIO(tar.getvalue()))]
    assert names == ["etc/", "etc/.wh.passwd", "var/", "var/.wh..wh..opq", "var/fresh"]
    assert [str(c) for c in result.changes] == ["C /etc", "D /etc/passwd", "C /var", "A /var/fresh"]
    target = tmp_path / "target"
    shutil.copytree(lower, target, symlinks=True)
    apply_layer(target, io.BytesIO(tar.getvalue()), media_type=TAR)
    assert sorted(os.listdir(target / "etc")) == ["hosts"]
    assert os.listdir(target / "var") == ["fresh"]


def test_sockets_are_listed_as_changes_but_left_out_of_the_layer(tmp_path):
    upper = tmp_path / "u"
    upper.mkdir()
    (upper / "f").write_text("x")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(upper / "sock"))
        tar = io.BytesIO()
        result = write_layer(tar, str(upper), upper_kind=FULL, compression=NONE)
    assert [str(c) for c in result.changes] == ["A /f", "A /sock"]
    assert [e.name for e in TarReader(io.BytesIO(tar.getvalue()))] == ["f"]


def test_missing_upper_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidArgument, match="is not a directory"):
        diff_changes(str(tmp_path / "nope"))
