"""Trees are removed like shutil.rmtree would, without importing it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pallet.linux.trees import remove_tree


def test_a_nested_tree_goes_and_symlinks_in_it_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    tree = tmp_path / "tree"
    (tree / "a" / "b" / "c").mkdir(parents=True)
    (tree / "a" / "file").write_text("y")
    (tree / "a" / "b" / "c" / "deep").write_text("z")
    (tree / "a" / "link-to-dir").symlink_to(outside)
    (tree / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tree / "fifo")
    (tree / "empty").mkdir()
    remove_tree(str(tree))
    assert not tree.exists()
    assert (outside / "keep").read_text() == "x"


def test_a_missing_tree_is_nothing_to_do(tmp_path: Path) -> None:
    remove_tree(tmp_path / "absent")


def test_a_symlink_is_refused_as_shutil_refuses_it(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "dir")
    with pytest.raises(OSError, match="symbolic link"):
        remove_tree(tmp_path / "link")
    assert (tmp_path / "dir").is_dir()


def test_ignore_errors_leaves_what_cannot_go_and_raises_nothing(tmp_path: Path) -> None:
    import shutil
    import subprocess

    if shutil.which("chattr") is None:
        pytest.skip("chattr (e2fsprogs) is not installed")
    tree = tmp_path / "tree"
    (tree / "kept").mkdir(parents=True)
    stuck = tree / "kept" / "file"
    stuck.write_text("x")
    (tree / "free").write_text("y")
    # an immutable file cannot be unlinked, not even by root
    made = subprocess.run(["chattr", "+i", str(stuck)], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"no immutable files on this filesystem: {made.stderr.strip()}")
    try:
        with pytest.raises(PermissionError):
            remove_tree(tree)
        remove_tree(tree, ignore_errors=True)
        assert stuck.exists()
        assert not (tree / "free").exists()
    finally:
        subprocess.run(["chattr", "-i", str(stuck)], check=False)
