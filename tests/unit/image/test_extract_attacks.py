"""Malicious layers cannot touch anything outside the target directory.

Each test builds a hostile tar with pallet's writer (or by hand), applies it to
``tmp_path/root`` next to a ``tmp_path/outside`` tree, and checks that the
outside tree is byte-for-byte what it was.
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys

import pytest

from pallet.errors import InvalidArgument
from pallet.image.extract import apply_layer
from pallet.image.tarstream import CHR, DIR, LNK, REG, SYM, TarEntry, TarWriter
from pallet.linux import openat2

TAR = "application/vnd.oci.image.layer.v1.tar"


def layer(*entries: TarEntry | tuple[TarEntry, bytes]) -> bytes:
    out = io.BytesIO()
    tar = TarWriter(out)
    for item in entries:
        entry, data = item if isinstance(item, tuple) else (item, b"")
        if data:
            entry.size = len(data)
        tar.add(entry, io.BytesIO(data) if data else None)
    tar.close()
    return out.getvalue()


def tree(top: str) -> dict[str, tuple[object, ...]]:
    """Everything observable about a tree: type, mode, size, mtime, content, link target."""
    found: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            content: object = None
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    content = f.read()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(path)
            found[os.path.relpath(path, top)] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_nlink, content)
    return found


@pytest.fixture(params=["openat2", "user-space-walk"])
def sandbox(request, tmp_path, monkeypatch):
    """(root, outside): an empty target and a populated tree next to it that must stay untouched.

    Every attack runs twice: with the kernel's openat2 and with the fallback walk
    used where the kernel lacks it.
    """
    if request.param == "user-space-walk":
        monkeypatch.setitem(openat2._probed, "openat2", False)
    elif not openat2.has_openat2():
        pytest.skip("this kernel has no openat2")
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    (outside / "etc").mkdir(parents=True)
    (outside / "etc" / "passwd").write_text("root:x:0:0\n")
    (outside / "victim").write_text("keep me\n")
    (outside / "dir" / "child").mkdir(parents=True)
    before = tree(str(tmp_path / "outside"))
    yield root, outside
    assert tree(str(outside)) == before, "a layer changed something outside its target"


def apply(root, blob: bytes):
    return apply_layer(root, io.BytesIO(blob), media_type=TAR)


def test_dotdot_name_is_rejected(sandbox):
    root, _ = sandbox
    with pytest.raises(InvalidArgument, match="outside the root"):
        apply(root, layer((TarEntry("../outside/victim"), b"pwned")))


def test_dotdot_inside_the_root_is_cleaned_not_rejected(sandbox):
    root, _ = sandbox
    apply(root, layer((TarEntry("a/../b"), b"fine")))
    assert (root / "b").read_bytes() == b"fine"


def test_absolute_name_lands_inside_the_target(sandbox):
    root, outside = sandbox
    apply(root, layer((TarEntry(str(outside / "victim")), b"inside")))
    assert (root / str(outside / "victim").lstrip("/")).read_bytes() == b"inside"


@pytest.mark.parametrize("target", ["ABS_OUTSIDE", "../outside", "../../../../../../../outside"])
def test_file_written_through_a_symlink_pointing_out_lands_inside(sandbox, target):
    root, outside = sandbox
    target = str(outside) if target == "ABS_OUTSIDE" else target
    # the same path inside the target: where the symlink leads when resolved in the root
    inside = root / (str(outside).lstrip("/") if target.startswith("/") else "outside")
    inside.mkdir(parents=True)
    apply(root, layer(TarEntry("escape", SYM, linkname=target), (TarEntry("escape/victim"), b"pwned")))
    assert (inside / "victim").read_bytes() == b"pwned"


def test_file_written_through_a_symlink_to_a_missing_dir_is_refused(sandbox):
    root, outside = sandbox
    with pytest.raises(InvalidArgument, match="'escape' is used as a directory but is not one"):
        apply(
            root, layer(TarEntry("escape", SYM, linkname=str(outside)), (TarEntry("escape/victim"), b"pwned"))
        )


def test_file_replacing_a_symlink_does_not_write_through_it(sandbox):
    root, outside = sandbox
    apply(root, layer(TarEntry("link", SYM, linkname=str(outside / "victim")), (TarEntry("link"), b"new")))
    assert not (root / "link").is_symlink()
    assert (root / "link").read_bytes() == b"new"


def test_symlink_then_directory_with_the_same_name_replaces_the_symlink(sandbox):
    root, outside = sandbox
    apply(root, layer(TarEntry("d", SYM, linkname=str(outside / "dir")), TarEntry("d/", DIR, mode=0o700)))
    assert (root / "d").is_dir()
    assert not (root / "d").is_symlink()


def test_hardlink_to_a_file_outside_is_rejected(sandbox):
    root, _ = sandbox
    with pytest.raises(InvalidArgument, match="outside the root"):
        apply(root, layer(TarEntry("stolen", LNK, linkname="../outside/victim")))


def test_hardlink_with_an_absolute_name_resolves_inside_the_target(sandbox):
    root, outside = sandbox
    with pytest.raises(InvalidArgument, match="does not exist"):
        apply(root, layer(TarEntry("stolen", LNK, linkname=str(outside / "victim"))))
    assert not (root / "stolen").exists()


def test_hardlink_through_a_symlink_pointing_out_is_resolved_inside(sandbox):
    root, outside = sandbox
    with pytest.raises(InvalidArgument, match="does not exist"):
        apply(
            root,
            layer(TarEntry("l", SYM, linkname=str(outside)), TarEntry("stolen", LNK, linkname="l/victim")),
        )


def test_file_written_over_a_hardlink_does_not_change_the_linked_file(sandbox):
    root, _ = sandbox
    apply(root, layer((TarEntry("etc/shadow"), b"secret")))
    apply(root, layer(TarEntry("x", LNK, linkname="etc/shadow"), (TarEntry("x"), b"overwritten")))
    assert (root / "etc" / "shadow").read_bytes() == b"secret"
    assert (root / "x").read_bytes() == b"overwritten"


def test_hardlink_to_a_directory_is_rejected(sandbox):
    root, _ = sandbox
    with pytest.raises(InvalidArgument, match="a directory"):
        apply(root, layer(TarEntry("d/", DIR), TarEntry("x", LNK, linkname="d")))


def test_whiteout_climbing_out_is_rejected(sandbox):
    root, _ = sandbox
    with pytest.raises(InvalidArgument, match="outside the root"):
        apply(root, layer(TarEntry("../outside/.wh.victim")))


@pytest.mark.parametrize(
    "name", ["escape/.wh.victim", "escape/.wh.dir", "escape/dir/.wh..wh..opq", "escape/.wh..wh..opq"]
)
def test_whiteouts_through_a_symlink_pointing_out_delete_nothing_outside(sandbox, name):
    root, outside = sandbox
    apply(root, layer(TarEntry("escape", SYM, linkname=str(outside)), TarEntry(name)))


def test_whiteout_of_the_parent_name_is_ignored(sandbox):
    root, _ = sandbox
    (root / "keep").write_text("x")
    apply(root, layer(TarEntry(".wh.."), TarEntry(".wh..")))
    assert (root / "keep").exists()


def test_symlink_loop_in_a_parent_is_a_clear_error(sandbox):
    root, _ = sandbox
    with pytest.raises(InvalidArgument, match="is used as a directory but is not one"):
        apply(
            root,
            layer(
                TarEntry("a", SYM, linkname="b"), TarEntry("b", SYM, linkname="a"), (TarEntry("a/f"), b"x")
            ),
        )


def test_file_under_a_regular_file_is_a_clear_error(sandbox):
    root, _ = sandbox
    with pytest.raises(InvalidArgument, match="is used as a directory but is not one"):
        apply(root, layer((TarEntry("f"), b"x"), (TarEntry("f/g"), b"y")))


@pytest.mark.root
def test_device_nodes_are_skipped_with_a_warning_when_rootless(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    root = tmp_path / "root"
    root.mkdir()
    os.chown(root, 65534, 65534)
    blob = layer(TarEntry("dev/sda", CHR, devmajor=8, devminor=0), (TarEntry("file"), b"ok"))
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        # the child reaches the target through the fd: pytest's tmp dirs are closed to other users
        code = (
            "import sys; from pallet.image.extract import apply_layer; "
            f"s = apply_layer('/proc/self/fd/{fd}', sys.stdin.buffer, media_type={TAR!r}); "
            "print(*s.warnings, sep='\\n')"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], input=blob, pass_fds=(fd,), user=65534, group=65534,
            capture_output=True, check=False,
        )  # fmt: skip
    finally:
        os.close(fd)
    assert done.returncode == 0, done.stderr.decode()
    assert b"skipped 1 device node" in done.stdout
    assert not (root / "dev" / "sda").exists()
    assert (root / "file").read_bytes() == b"ok"


def test_regular_entry_name_with_trailing_dotdot_after_symlink_stays_inside(sandbox):
    root, outside = sandbox
    apply(
        root, layer(TarEntry("s", SYM, linkname=str(outside / "dir" / "child")), (TarEntry("s/../x"), b"x"))
    )
    assert (root / "x").read_bytes() == b"x"


def test_entry_types_that_are_not_files_are_skipped_with_a_warning(sandbox):
    root, _ = sandbox
    stats = apply(root, layer(TarEntry("volume-label", "V"), (TarEntry("f", REG), b"1")))
    assert any("not a file type" in w for w in stats.warnings)
    assert (root / "f").read_bytes() == b"1"
