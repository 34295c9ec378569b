"""Applying layers: content, metadata, whiteouts, digests, real-world tar quirks, big and many files."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import threading
import tracemalloc

import pytest

from pallet.errors import InvalidArgument, SystemError_
from pallet.image.extract import apply_layer, clean_name
from pallet.image.tarstream import BLK, CHR, DIR, FIFO, LNK, REG, SYM, TarEntry, TarWriter

TAR = "application/vnd.oci.image.layer.v1.tar"
TAR_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
T1 = 1_600_000_000_123_456_789
T2 = 1_500_000_000_000_000_000


def layer(*entries: TarEntry | tuple[TarEntry, bytes], close: bool = True) -> bytes:
    out = io.BytesIO()
    tar = TarWriter(out)
    for item in entries:
        entry, data = item if isinstance(item, tuple) else (item, b"")
        if data:
            entry.size = len(data)
        tar.add(entry, io.BytesIO(data) if data else None)
    if close:
        tar.close()
    return out.getvalue()


def apply(root, blob: bytes, media_type: str = TAR, **kwargs):
    return apply_layer(root, io.BytesIO(blob), media_type=media_type, **kwargs)


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "rootfs"
    path.mkdir()
    return path


def test_files_dirs_symlinks_hardlinks_and_fifos_are_created_with_modes_and_mtimes(root):
    apply(
        root,
        layer(
            TarEntry("etc/", DIR, mode=0o755, mtime_ns=T2),
            (TarEntry("etc/hosts", mode=0o644, mtime_ns=T1), b"127.0.0.1 localhost\n"),
            TarEntry("etc/hosts.link", LNK, linkname="etc/hosts"),
            TarEntry("etc/motd", SYM, linkname="hosts", mtime_ns=T2),
            TarEntry("run/", DIR, mode=0o1777, mtime_ns=T1),
            TarEntry("run/fifo", FIFO, mode=0o620, mtime_ns=T1),
            TarEntry("ro/", DIR, mode=0o555, mtime_ns=T2),
            (TarEntry("ro/inside", mode=0o400), b"written before the dir became read-only"),
        ),
    )
    hosts = os.lstat(root / "etc" / "hosts")
    assert (root / "etc" / "hosts").read_bytes() == b"127.0.0.1 localhost\n"
    assert (stat.S_IMODE(hosts.st_mode), hosts.st_mtime_ns, hosts.st_nlink) == (0o644, T1, 2)
    assert os.path.samefile(root / "etc" / "hosts", root / "etc" / "hosts.link")
    assert os.readlink(root / "etc" / "motd") == "hosts"
    assert os.lstat(root / "etc" / "motd").st_mtime_ns == T2
    assert stat.S_IMODE(os.stat(root / "run").st_mode) == 0o1777
    assert stat.S_ISFIFO(os.lstat(root / "run" / "fifo").st_mode)
    assert stat.S_IMODE(os.lstat(root / "run" / "fifo").st_mode) == 0o620
    # directory mtimes and modes are set after their children are written
    assert os.stat(root / "etc").st_mtime_ns == T2
    assert os.stat(root / "run").st_mtime_ns == T1
    assert stat.S_IMODE(os.stat(root / "ro").st_mode) == 0o555
    assert os.stat(root / "ro").st_mtime_ns == T2


def test_missing_parent_directories_are_created(root):
    apply(root, layer((TarEntry("a/b/c/file"), b"x")))
    assert (root / "a" / "b" / "c" / "file").read_bytes() == b"x"


def test_user_xattrs_are_set(root):
    try:
        os.setxattr(root, "user.probe", b"1")
    except OSError:
        pytest.skip("the temp file system has no user xattrs")
    apply(
        root,
        layer(
            (TarEntry("f", xattrs={"user.colour": b"blue\x00\xff"}), b"x"),
            TarEntry("d/", DIR, xattrs={"user.d": b"1"}),
        ),
    )
    assert os.getxattr(root / "f", "user.colour") == b"blue\x00\xff"
    assert os.getxattr(root / "d", "user.d") == b"1"


def test_later_entries_replace_earlier_ones_whatever_their_type(root):
    apply(
        root,
        layer(
            (TarEntry("x"), b"file"),
            TarEntry("x/", DIR),
            (TarEntry("x/in"), b"1"),
            (TarEntry("x"), b"file again"),
        ),
    )
    assert (root / "x").read_bytes() == b"file again"
    apply(root, layer(TarEntry("x", SYM, linkname="elsewhere")))
    assert os.readlink(root / "x") == "elsewhere"


def test_existing_directory_is_kept_when_a_layer_names_it_again(root):
    apply(root, layer(TarEntry("d/", DIR), (TarEntry("d/lower"), b"1")))
    apply(root, layer(TarEntry("d/", DIR, mode=0o700), (TarEntry("d/upper"), b"2")))
    assert sorted(os.listdir(root / "d")) == ["lower", "upper"]
    assert stat.S_IMODE(os.stat(root / "d").st_mode) == 0o700


def test_directory_named_twice_gets_the_metadata_of_its_last_entry(root):
    apply(
        root,
        layer(
            TarEntry("d/", DIR, mode=0o700, mtime_ns=T1),
            (TarEntry("d/f"), b"1"),
            TarEntry("d/", DIR, mode=0o750, mtime_ns=T2),
        ),
    )
    assert stat.S_IMODE(os.stat(root / "d").st_mode) == 0o750
    assert os.stat(root / "d").st_mtime_ns == T2


def test_stats_report_digests_files_and_bytes(root):
    tar = layer(
        TarEntry("d/", DIR),
        (TarEntry("d/a"), b"12345"),
        (TarEntry("d/b"), b"678"),
        TarEntry("l", SYM, linkname="d"),
    )
    blob = gzip.compress(tar)
    stats = apply(root, blob, TAR_GZ)
    assert stats.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert stats.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert (stats.files, stats.bytes, stats.entries) == (2, 8, 4)
    assert (stats.size, stats.compressed_size) == (len(tar), len(blob))


@pytest.mark.parametrize("threaded", [True, False])
def test_umoci_style_layer_without_trailer_or_final_padding_is_applied(root, threaded):
    tar = layer((TarEntry("a"), b"first"), (TarEntry("b"), b"x" * 1000), close=False)
    tar = tar[: len(tar) - (-1000 % 512)]
    stats = apply(root, gzip.compress(tar), TAR_GZ, threaded=threaded)
    assert (root / "b").read_bytes() == b"x" * 1000
    assert stats.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()


def test_gzip_layer_with_trailing_garbage_is_applied(root):
    apply(root, gzip.compress(layer((TarEntry("a"), b"ok"))) + b"\x00" * 100 + b"junk", TAR_GZ)
    assert (root / "a").read_bytes() == b"ok"


def test_truncated_layer_is_an_error(root):
    tar = layer((TarEntry("a"), b"x" * 5000))[:3000]
    with pytest.raises(InvalidArgument, match="unexpected end of data"):
        apply(root, tar)


def test_whiteout_deletes_files_and_directories_of_lower_layers(root):
    apply(
        root, layer((TarEntry("etc/keep"), b"1"), (TarEntry("etc/gone"), b"2"), (TarEntry("var/lib/x"), b"3"))
    )
    apply(root, layer(TarEntry("etc/.wh.gone"), TarEntry(".wh.var"), TarEntry("etc/.wh.never-existed")))
    assert sorted(os.listdir(root)) == ["etc"]
    assert os.listdir(root / "etc") == ["keep"]


def test_opaque_whiteout_hides_lower_content_but_keeps_this_layers(root):
    apply(
        root, layer((TarEntry("d/old"), b"1"), (TarEntry("d/sub/old"), b"2"), (TarEntry("d/sub2/old"), b"3"))
    )
    apply(
        root,
        layer(
            TarEntry("d/", DIR),
            (TarEntry("d/sub/new"), b"4"),
            TarEntry("d/.wh..wh..opq"),
            (TarEntry("d/later"), b"5"),
        ),
    )
    assert sorted(os.listdir(root / "d")) == ["later", "sub"]
    assert os.listdir(root / "d" / "sub") == ["new"]


def test_whiteout_of_a_symlinked_dir_removes_only_the_symlink(root):
    apply(
        root,
        layer(TarEntry("real/", DIR), (TarEntry("real/f"), b"1"), TarEntry("alias", SYM, linkname="real")),
    )
    apply(root, layer(TarEntry(".wh.alias")))
    assert not os.path.lexists(root / "alias")
    assert (root / "real" / "f").exists()


def test_unknown_mode_is_refused(root):
    with pytest.raises(InvalidArgument, match="unknown layer apply mode"):
        apply(root, layer(), mode="aufs")


def test_missing_target_is_a_system_error(tmp_path):
    with pytest.raises(SystemError_, match="no such file or directory"):
        apply(tmp_path / "missing", layer())


@pytest.mark.parametrize(
    ("name", "clean"),
    [("./a/b/", "a/b"), ("/abs//x/./y", "abs/x/y"), ("a/../b", "b"), ("./", ""), ("a/b/../../c", "c")],
)
def test_entry_names_are_cleaned_lexically(name, clean):
    assert clean_name(name) == clean


class ZeroStream:
    """A tar stream of one huge all-zero file, produced on the fly (never held in memory)."""

    def __init__(self, size: int) -> None:
        self.parts = [TarWriter(io.BytesIO())._header(TarEntry("huge", REG, size=size), "huge", REG, size)]
        self.left = size + (-size % 512) + 1024
        self.zeros = bytes(1 << 20)

    def read(self, n: int) -> bytes:
        if self.parts:
            return self.parts.pop()
        k = min(n, self.left, len(self.zeros))
        self.left -= k
        return self.zeros if k == len(self.zeros) else bytes(k)


@pytest.mark.slow
def test_one_gib_file_is_streamed_with_bounded_memory(root):
    size = 1 << 30
    tracemalloc.start()
    try:
        stats = apply_layer(root, ZeroStream(size), media_type=TAR)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    st = os.stat(root / "huge")
    assert st.st_size == size
    assert stats.bytes == size
    assert peak < 64 << 20, f"peak traced memory {peak >> 20} MiB for a 1 GiB file"
    assert st.st_blocks * 512 < 16 << 20  # zero chunks became holes


def test_many_file_layer_is_applied_completely(root):
    entries = [TarEntry(f"d{i:02d}/", DIR) for i in range(20)]
    files = [(TarEntry(f"d{i % 20:02d}/f{i:05d}"), b"%d" % i) for i in range(3000)]
    stats = apply(root, gzip.compress(layer(*entries, *files)), TAR_GZ)
    assert stats.files == 3000
    assert sum(len(os.listdir(root / f"d{i:02d}")) for i in range(20)) == 3000
    assert (root / "d07" / "f02987").read_bytes() == b"2987"


def test_layers_can_be_applied_in_parallel_threads(tmp_path):
    blobs = [
        gzip.compress(layer(*[(TarEntry(f"l{n}/f{i}"), os.urandom(20000)) for i in range(50)]))
        for n in range(4)
    ]
    results: dict[int, object] = {}

    def work(n: int) -> None:
        target = tmp_path / str(n)
        target.mkdir()
        results[n] = apply(target, blobs[n], TAR_GZ)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0, 1, 2, 3]
    assert all(len(os.listdir(tmp_path / str(n) / f"l{n}")) == 50 for n in range(4))


@pytest.mark.root
def test_owners_setuid_devices_and_capabilities_are_kept_as_root(root):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    cap = bytes.fromhex("0100000200200000000000000000000000000000")  # cap_net_bind_service, effective
    apply(
        root,
        layer(
            (
                TarEntry("bin/ping", mode=0o4755, uid=0, gid=0, xattrs={"security.capability": cap}),
                b"\x7fELF",
            ),
            (TarEntry("home/u/file", mode=0o2640, uid=1000, gid=1001), b"mine"),
            TarEntry("home/u/", DIR, mode=0o750, uid=1000, gid=1000),
            TarEntry("home/u/link", SYM, linkname="file", uid=1000, gid=1001),
            TarEntry("dev/null", CHR, mode=0o666, devmajor=1, devminor=3),
            TarEntry("dev/loop9", BLK, mode=0o660, devmajor=7, devminor=9, gid=6),
        ),
    )
    ping = os.stat(root / "bin" / "ping")
    assert stat.S_IMODE(ping.st_mode) == 0o4755
    assert os.getxattr(root / "bin" / "ping", "security.capability") == cap
    f = os.stat(root / "home" / "u" / "file")
    assert (f.st_uid, f.st_gid, stat.S_IMODE(f.st_mode)) == (1000, 1001, 0o2640)
    d = os.stat(root / "home" / "u")
    assert (d.st_uid, d.st_gid, stat.S_IMODE(d.st_mode)) == (1000, 1000, 0o750)
    link = os.lstat(root / "home" / "u" / "link")
    assert (link.st_uid, link.st_gid) == (1000, 1001)
    null = os.lstat(root / "dev" / "null")
    assert stat.S_ISCHR(null.st_mode)
    assert null.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o666
    loop = os.lstat(root / "dev" / "loop9")
    assert stat.S_ISBLK(loop.st_mode)
    assert (loop.st_rdev, loop.st_gid) == (os.makedev(7, 9), 6)


@pytest.mark.root
def test_overlay_mode_writes_whiteouts_as_char_devices_and_opaque_xattrs(root):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    apply(
        root,
        layer(
            TarEntry("etc/.wh.passwd"),
            TarEntry("var/", DIR),
            TarEntry("var/.wh..wh..opq"),
            (TarEntry("var/new"), b"1"),
        ),
        mode="overlay",
    )
    wh = os.lstat(root / "etc" / "passwd")
    assert stat.S_ISCHR(wh.st_mode)
    assert wh.st_rdev == 0
    assert os.getxattr(root / "var", "trusted.overlay.opaque") == b"y"
    assert (root / "var" / "new").read_bytes() == b"1"


def test_module_entry_applies_layers_and_reports_errors_without_traceback(tmp_path, capsys):
    from pallet.image.extract import _main

    good, bad = tmp_path / "good.tgz", tmp_path / "bad.tar"
    good.write_bytes(gzip.compress(layer((TarEntry("hello"), b"world"))))
    bad.write_bytes(layer((TarEntry("../escape"), b"x")))
    assert _main([str(tmp_path / "one"), str(good)]) == 0
    assert (tmp_path / "one" / "hello").read_bytes() == b"world"
    assert "1 files 5 bytes" in capsys.readouterr().out
    assert _main(["--per-layer", str(tmp_path / "many"), str(good), str(good)]) == 0
    assert (tmp_path / "many" / "1" / "hello").exists()
    capsys.readouterr()
    assert _main([str(tmp_path / "two"), str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: layer entry '../escape' points outside the root")
    assert "Traceback" not in err
