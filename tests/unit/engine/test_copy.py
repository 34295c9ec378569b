"""``pallet cp`` semantics: docker's destination rules, tar streams, and never leaving a root."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from pallet.engine.filesystem.cp import archive, copy, extract, split_source
from pallet.errors import InvalidArgument, NotFound
from pallet.image.tarstream import DIR, REG, SYM, TarEntry, TarReader, TarWriter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator


class Roots:
    def __init__(self, base: Path) -> None:
        self.ctr = base / "ctr"
        self.host = base / "host"
        for d in (self.ctr / "etc", self.ctr / "data" / "sub", self.host / "out"):
            d.mkdir(parents=True)
        (self.ctr / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
        (self.ctr / "data" / "a.txt").write_text("A")
        (self.ctr / "data" / "sub" / "b.txt").write_text("B")
        os.chmod(self.ctr / "data" / "a.txt", 0o640)
        (self.ctr / "data" / "link").symlink_to("a.txt")
        # hostile links: both must stay inside the container's root
        (self.ctr / "escape").symlink_to("/")
        (self.ctr / "dotdot").symlink_to("../../../../..")
        self.ctr_fd = os.open(self.ctr, os.O_PATH | os.O_DIRECTORY)
        self.host_fd = os.open(self.host, os.O_PATH | os.O_DIRECTORY)

    def close(self) -> None:
        os.close(self.ctr_fd)
        os.close(self.host_fd)


@pytest.fixture
def roots(tmp_path: Path) -> Iterator[Roots]:
    r = Roots(tmp_path)
    yield r
    r.close()


def names(data: bytes) -> list[str]:
    return [e.name for e in TarReader(io.BytesIO(data))]


def test_split_source_forms() -> None:
    assert split_source("/data/.") == ("/data", True, True)
    assert split_source("/data/") == ("/data", False, True)
    assert split_source("data") == ("/data", False, False)


def test_archive_of_directory_is_named_after_its_base(roots: Roots) -> None:
    out = io.BytesIO()
    result = archive(roots.ctr_fd, "/data", out)
    assert names(out.getvalue()) == ["data/", "data/a.txt", "data/link", "data/sub/", "data/sub/b.txt"]
    assert result.bytes == 2


def test_archive_of_contents_only(roots: Roots) -> None:
    out = io.BytesIO()
    archive(roots.ctr_fd, "/data/.", out)
    assert names(out.getvalue()) == ["a.txt", "link", "sub/", "sub/b.txt"]


def test_archive_keeps_symlink_unless_follow(roots: Roots) -> None:
    out = io.BytesIO()
    archive(roots.ctr_fd, "/data/link", out)
    (entry,) = list(TarReader(io.BytesIO(out.getvalue())))
    assert (entry.name, entry.type, entry.linkname) == ("link", SYM, "a.txt")
    out = io.BytesIO()
    archive(roots.ctr_fd, "/data/link", out, follow_link=True)
    reader = TarReader(io.BytesIO(out.getvalue()))
    (entry,) = list(reader)
    assert (entry.name, entry.type, entry.mode) == ("link", REG, 0o640)


def test_symlinks_resolve_inside_the_container_root(roots: Roots) -> None:
    out = io.BytesIO()
    archive(roots.ctr_fd, "/escape/etc/hosts", out)
    entry = next(iter(TarReader(io.BytesIO(out.getvalue()))))
    assert entry.size == len("127.0.0.1 localhost\n")  # the container's file, not the host's
    out = io.BytesIO()
    archive(roots.ctr_fd, "/dotdot/etc/hosts", out)
    assert entry.size == next(iter(TarReader(io.BytesIO(out.getvalue())))).size


def test_missing_source_is_not_found(roots: Roots) -> None:
    with pytest.raises(NotFound, match="no such file or directory"):
        archive(roots.ctr_fd, "/nope", io.BytesIO())


def test_file_to_missing_name_is_saved_under_it(roots: Roots) -> None:
    copy(roots.ctr_fd, "/etc/hosts", roots.host_fd, "/out/h.txt")
    assert (roots.host / "out" / "h.txt").read_text() == "127.0.0.1 localhost\n"


def test_file_into_directory_keeps_its_name_and_overwrites_file(roots: Roots) -> None:
    copy(roots.ctr_fd, "/etc/hosts", roots.host_fd, "/out")
    assert (roots.host / "out" / "hosts").exists()
    (roots.host / "existing").write_text("old")
    copy(roots.ctr_fd, "/data/a.txt", roots.host_fd, "/existing")
    assert (roots.host / "existing").read_text() == "A"


def test_file_to_missing_directory_with_slash_fails(roots: Roots) -> None:
    with pytest.raises(NotFound, match="must exist"):
        copy(roots.ctr_fd, "/etc/hosts", roots.host_fd, "/nodir/")


def test_directory_rules(roots: Roots) -> None:
    copy(roots.ctr_fd, "/data", roots.host_fd, "/out")
    assert (roots.host / "out" / "data" / "sub" / "b.txt").read_text() == "B"
    copy(roots.ctr_fd, "/data", roots.host_fd, "/fresh")
    assert (roots.host / "fresh" / "a.txt").read_text() == "A"
    assert os.readlink(roots.host / "fresh" / "link") == "a.txt"
    assert (roots.host / "fresh" / "a.txt").stat().st_mode & 0o777 == 0o640
    (roots.host / "into").mkdir()
    copy(roots.ctr_fd, "/data/.", roots.host_fd, "/into")
    assert sorted(p.name for p in (roots.host / "into").iterdir()) == ["a.txt", "link", "sub"]


def test_directory_onto_file_fails(roots: Roots) -> None:
    (roots.host / "file").write_text("x")
    with pytest.raises(InvalidArgument, match="cannot copy a directory to a file"):
        copy(roots.ctr_fd, "/data", roots.host_fd, "/file")


def test_source_with_slash_must_be_directory(roots: Roots) -> None:
    with pytest.raises(InvalidArgument, match="not a directory"):
        copy(roots.ctr_fd, "/etc/hosts/", roots.host_fd, "/out")


def test_copy_into_container_lands_inside_root_through_symlinks(roots: Roots) -> None:
    (roots.host / "payload").write_text("P")
    copy(roots.host_fd, "/payload", roots.ctr_fd, "/escape/etc/")
    assert (roots.ctr / "etc" / "payload").read_text() == "P"


def test_missing_destination_parent_is_not_found(roots: Roots) -> None:
    with pytest.raises(NotFound):
        copy(roots.ctr_fd, "/etc/hosts", roots.host_fd, "/a/b/c")


def tar_of(*entries: tuple[TarEntry, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    tar = TarWriter(buf)
    for entry, data in entries:
        tar.add(entry, io.BytesIO(data) if data else None)
    tar.close()
    buf.seek(0)
    return buf


def test_extract_writes_tar_and_sets_owner(roots: Roots, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    fd = os.open(dest, os.O_PATH | os.O_DIRECTORY)
    try:
        stream = tar_of(
            (TarEntry("d/", DIR, mode=0o750, uid=1234, gid=1234), b""),
            (TarEntry("d/f", REG, mode=0o604, size=2, uid=1234, gid=1234), b"hi"),
        )
        extract(fd, stream, owner=(0, 0) if os.geteuid() == 0 else None)
    finally:
        os.close(fd)
    assert (dest / "d" / "f").read_text() == "hi"
    assert (dest / "d").stat().st_mode & 0o777 == 0o750
    assert (dest / "d" / "f").stat().st_mode & 0o777 == 0o604
    if os.geteuid() == 0:
        assert (dest / "d" / "f").stat().st_uid == 0


def test_extract_refuses_names_climbing_out(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    fd = os.open(dest, os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(InvalidArgument, match="outside the root"):
            extract(fd, tar_of((TarEntry("../evil", REG, size=1), b"x")))
    finally:
        os.close(fd)
    assert not (tmp_path / "evil").exists()


def test_extract_replaces_a_planted_symlink_instead_of_following_it(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("safe")
    (dest / "f").symlink_to(victim)
    fd = os.open(dest, os.O_PATH | os.O_DIRECTORY)
    try:
        extract(fd, tar_of((TarEntry("f", REG, size=3), b"new")))
    finally:
        os.close(fd)
    assert victim.read_text() == "safe"
    assert (dest / "f").read_text() == "new"
    assert not (dest / "f").is_symlink()


def test_directory_contents_to_missing_destination_create_it(roots: Roots) -> None:
    copy(roots.ctr_fd, "/data/.", roots.host_fd, "/made")
    assert sorted(p.name for p in (roots.host / "made").iterdir()) == ["a.txt", "link", "sub"]
    assert not (roots.host / "a.txt").exists()


def test_extended_attributes_travel_with_the_file(roots: Roots) -> None:
    target = roots.ctr / "data" / "a.txt"
    try:
        os.setxattr(target, "user.note", b"kept")
    except OSError:
        pytest.skip("this file system has no user xattrs")
    copy(roots.ctr_fd, "/data/a.txt", roots.host_fd, "/x.txt")
    assert os.getxattr(roots.host / "x.txt", "user.note") == b"kept"
