"""The tar reader accepts what Go's archive/tar accepts; the writer's output reads back identically."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pallet.errors import InvalidArgument
from pallet.image.tarstream import BLK, CHR, DIR, FIFO, LNK, REG, SYM, TarEntry, TarReader, TarWriter

needs_gnu_tar = pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar is not installed")


def write(entries: list[tuple[TarEntry, bytes]], *, close: bool = True) -> bytes:
    out = io.BytesIO()
    tar = TarWriter(out)
    for entry, data in entries:
        tar.add(entry, io.BytesIO(data) if data else None)
    if close:
        tar.close()
    return out.getvalue()


def read(blob: bytes) -> list[tuple[TarEntry, bytes]]:
    reader = TarReader(io.BytesIO(blob), chunk=4096)
    return [(entry, reader.read()) for entry in reader]


def signature(entry: TarEntry) -> tuple[object, ...]:
    return (
        entry.name, entry.type, entry.mode, entry.uid, entry.gid, entry.size, entry.mtime_ns,
        entry.linkname, entry.devmajor, entry.devminor, entry.xattrs, entry.sparse,
    )  # fmt: skip


def test_writer_output_reads_back_with_every_field():
    entries = [
        (TarEntry("dir/", DIR, mode=0o1755, mtime_ns=1_600_000_000_000_000_000), b""),
        (TarEntry("dir/file", REG, mode=0o4755, uid=1000, gid=1000, size=5, mtime_ns=1_500_000_000_123_456_789), b"hello"),
        (TarEntry("d" * 120 + "/" + "f" * 120, REG, size=3), b"abc"),
        (TarEntry("x" * 300, REG, size=1), b"z"),
        (TarEntry("ünïcode/naïve", REG, size=2, uname="ürsula"), b"hi"),
        (TarEntry("link", SYM, mode=0o777, linkname="/" + "t" * 200), b""),
        (TarEntry("hard", LNK, linkname="dir/file"), b""),
        (TarEntry("dev/null", CHR, devmajor=1, devminor=3), b""),
        (TarEntry("dev/sda", BLK, devmajor=8, devminor=0), b""),
        (TarEntry("fifo", FIFO), b""),
        (TarEntry("big-ids", REG, uid=1 << 30, gid=(1 << 32) - 2), b""),
        (TarEntry("caps", REG, size=1, xattrs={"security.capability": b"\x01\x00\x00\x02\xff", "user.k": b"v\n="}), b"c"),
        (TarEntry("old", REG, mtime_ns=-5_000_000_000), b""),
    ]  # fmt: skip
    got = read(write(entries))
    assert [signature(e) for e, _ in got] == [signature(e) for e, _ in entries]
    assert [d for _, d in got] == [d for _, d in entries]


def test_xattr_names_that_pax_cannot_hold_are_refused():
    with pytest.raises(InvalidArgument, match="cannot be stored in a tar"):
        write([(TarEntry("f", REG, xattrs={"user.a=b": b"1"}), b"")])


def test_writer_output_is_readable_by_python_tarfile():
    blob = write([(TarEntry("a" * 150 + "/b", REG, size=2, xattrs={"user.x": b"1"}), b"ok")])
    with tarfile.open(fileobj=io.BytesIO(blob)) as tf:
        member = tf.getmembers()[0]
        assert member.name == "a" * 150 + "/b"
        assert tf.extractfile(member).read() == b"ok"  # type: ignore[union-attr]


names = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/"), min_size=1, max_size=40
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(names, min_size=1, max_size=8).map("/".join),
            st.binary(max_size=1500),
            st.integers(0, 0o7777),
            st.integers(0, 1 << 40),
            st.integers(-(1 << 40), 1 << 62),
            st.dictionaries(
                names.filter(lambda n: "=" not in n).map(lambda n: "user." + n),
                st.binary(max_size=30),
                max_size=3,
            ),
        ),
        max_size=6,
    )
)
def test_random_entries_round_trip(items):
    entries = [
        (
            TarEntry(name, REG, mode=mode, uid=uid, gid=uid // 3, size=len(data), mtime_ns=mtime, xattrs=x),
            data,
        )
        for name, data, mode, uid, mtime, x in items
    ]
    got = read(write(entries))
    assert [signature(e) for e, _ in got] == [signature(e) for e, _ in entries]
    assert [d for _, d in got] == [d for _, d in entries]


def test_missing_end_blocks_and_final_padding_end_the_archive_cleanly():
    # umoci 0.4.7: no end-of-archive blocks, no padding after the last file's data
    blob = write(
        [(TarEntry("a", REG, size=3), b"abc"), (TarEntry("b", REG, size=700), b"x" * 700)], close=False
    )
    truncated = blob[: len(blob) - (-700 % 512)]
    got = read(truncated)
    assert [(e.name, d) for e, d in got] == [("a", b"abc"), ("b", b"x" * 700)]


def test_single_zero_block_then_eof_ends_the_archive():
    blob = write([(TarEntry("a", REG, size=1), b"a")], close=False) + bytes(512)
    assert [e.name for e, _ in read(blob)] == ["a"]


def test_data_cut_short_is_an_error():
    blob = write([(TarEntry("a", REG, size=1000), b"y" * 1000)], close=False)[:900]
    with pytest.raises(InvalidArgument, match="unexpected end of data inside a file"):
        read(blob)


def test_header_cut_short_is_an_error():
    blob = write([(TarEntry("a", REG), b"")], close=False)[:300]
    with pytest.raises(InvalidArgument, match="inside a header"):
        read(blob)


def test_zero_block_followed_by_data_is_an_error():
    blob = bytes(512) + write([(TarEntry("a", REG), b"")])
    with pytest.raises(InvalidArgument, match="zero block"):
        read(blob)


def test_bad_checksum_is_an_error():
    blob = bytearray(write([(TarEntry("a", REG), b"")]))
    blob[0] = ord("b")
    with pytest.raises(InvalidArgument, match="checksum"):
        read(bytes(blob))


def _rechecksum(block: bytearray) -> None:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\x00 " % sum(block[:512])


def test_base256_numbers_and_space_padded_octal_are_read():
    blob = bytearray(write([(TarEntry("a", REG, size=2), b"hi")]))
    blob[108:116] = b"\x80" + (123456789).to_bytes(7, "big")  # uid in base-256
    blob[116:124] = b"  1750 \x00"  # gid with leading spaces
    blob[136:148] = b"\xff" * 8 + (-10).to_bytes(4, "big", signed=True)  # negative mtime
    _rechecksum(blob)
    (entry, data), = read(bytes(blob))  # fmt: skip
    assert (entry.uid, entry.gid, entry.mtime_ns, data) == (123456789, 0o1750, -10_000_000_000, b"hi")


def test_pax_global_header_is_skipped_and_not_applied():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"uid": "4242"}) as tf:
        info = tarfile.TarInfo("file")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"1"))
    (entry, data), = read(out.getvalue())  # fmt: skip
    assert (entry.name, entry.uid, data) == ("file", 0, b"1")


def test_pax_mtime_fraction_and_overrides_are_read():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("short")
        info.size = 1
        info.pax_headers = {
            "path": "long/" * 30 + "name",
            "mtime": "1700000000.25",
            "uid": "99999999",
            "SCHILY.xattr.user.a": "b",
        }
        tf.addfile(info, io.BytesIO(b"1"))
    (entry, _), = read(out.getvalue())  # fmt: skip
    assert entry.name == "long/" * 30 + "name"
    assert entry.mtime_ns == 1_700_000_000_250_000_000
    assert entry.uid == 99999999
    assert entry.xattrs == {"user.a": b"b"}


def test_gnu_long_names_and_links_are_read():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tf:
        info = tarfile.TarInfo("n" * 200)
        info.type = tarfile.SYMTYPE
        info.linkname = "l" * 300
        tf.addfile(info)
    (entry, _), = read(out.getvalue())  # fmt: skip
    assert (entry.name, entry.type, entry.linkname) == ("n" * 200, SYM, "l" * 300)


@needs_gnu_tar
@pytest.mark.parametrize("fmt", ["gnu", "oldgnu", "pax", "ustar", "v7"])
def test_gnu_tar_formats_read_back_the_tree(tmp_path, fmt):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "file").write_bytes(b"data" * 300)
    os.symlink("sub/file", src / "link")
    name = "x" * 90 if fmt in ("ustar", "v7") else "y" * 150
    (src / name).write_bytes(b"n")
    blob = subprocess.run(
        ["tar", f"--format={fmt}", "-C", src, "-cf", "-", "."], check=True, capture_output=True
    ).stdout
    got = {e.name.removeprefix("./"): (e.type, e.linkname, d) for e, d in read(blob)}
    assert got["sub/file"] == (REG, "", b"data" * 300)
    assert got["link"] == (SYM, "sub/file", b"")
    assert got[name] == (REG, "", b"n")


@needs_gnu_tar
@pytest.mark.parametrize(
    "flags", [["--format=gnu"], *(["--format=pax", f"--sparse-version={v}"] for v in ("0.0", "0.1", "1.0"))]
)
def test_gnu_tar_sparse_formats_give_the_file_back(tmp_path, flags):
    path = tmp_path / "sparse"
    with open(path, "wb") as f:
        f.truncate(8 << 20)
        f.seek(3 << 20)
        f.write(b"middle")
        f.seek((8 << 20) - 4)
        f.write(b"tail")
    blob = subprocess.run(
        ["tar", *flags, "-S", "-C", tmp_path, "-cf", "-", "sparse"], check=True, capture_output=True
    ).stdout
    assert len(blob) < 1 << 20  # really stored sparse
    (entry,) = list(TarReader(io.BytesIO(blob)))
    assert entry.name == "sparse"
    assert entry.size == 8 << 20
    assert entry.sparse is not None
    rebuilt = bytearray(entry.size)
    reader = TarReader(io.BytesIO(blob))
    for e in reader:
        assert e.sparse is not None
        for offset, length in e.sparse:
            rebuilt[offset : offset + length] = reader.read(length)
    assert bytes(rebuilt) == path.read_bytes()


def test_entry_data_is_read_in_bounded_chunks():
    size = 5 << 20
    blob = write([(TarEntry("big", REG, size=size), b"\x07" * size)])
    reader = TarReader(io.BytesIO(blob), chunk=1 << 16)
    for _ in reader:
        sizes = [len(c) for c in reader.chunks()]
        assert max(sizes) <= 1 << 16
        assert sum(sizes) == size
