"""Whiteout names are classified as the OCI image spec defines them."""

from __future__ import annotations

import os

import pytest

from pallet.image import whiteouts


@pytest.mark.parametrize(
    ("base", "meaning"),
    [
        ("file", None),
        (".wh.file", (whiteouts.DELETE, "file")),
        (".wh..hidden", (whiteouts.DELETE, ".hidden")),
        (".wh..wh..opq", (whiteouts.OPAQUE, "")),
        (".wh..wh.plnk", (whiteouts.IGNORE, "")),  # aufs hard-link bookkeeping
        (".wh.", (whiteouts.IGNORE, "")),
        (".wh..", (whiteouts.IGNORE, "")),
        (".wh...", (whiteouts.IGNORE, "")),
        ("x.wh.y", None),
    ],
)
def test_base_names_are_classified(base, meaning):
    assert whiteouts.parse(base) == meaning


def test_whiteout_name_round_trips_through_parse():
    assert whiteouts.parse(whiteouts.whiteout_name("etc")) == (whiteouts.DELETE, "etc")


def test_regular_files_and_directories_are_not_overlay_whiteouts(tmp_path):
    (tmp_path / "f").write_text("x")
    assert not whiteouts.is_overlay_whiteout(os.lstat(tmp_path / "f"))
    assert not whiteouts.is_overlay_whiteout(os.lstat(tmp_path))
    assert not whiteouts.is_opaque_dir(str(tmp_path))


@pytest.mark.root
def test_overlay_forms_are_recognised(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root for mknod and trusted xattrs")
    fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        whiteouts.make_overlay_whiteout("gone", fd)
        whiteouts.mark_opaque(fd)
    finally:
        os.close(fd)
    assert whiteouts.is_overlay_whiteout(os.lstat(tmp_path / "gone"))
    assert whiteouts.is_opaque_dir(str(tmp_path))
