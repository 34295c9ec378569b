"""The image comparer of the build tests (``pallet.testing.imagecompare``) sees what it must and only that."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

from pallet.image.tarstream import DIR, LNK, REG, SYM, TarEntry, TarWriter
from pallet.testing.imagecompare import amend, compare, read_archive

Entry = tuple[str, str, bytes] | tuple[str, str, bytes, dict[str, object]]

BASE: list[Entry] = [
    ("etc/", DIR, b""),
    ("etc/passwd", REG, b"root:x:0:0::/root:/bin/sh\n"),
    ("bin/", DIR, b""),
    ("bin/busybox", REG, b"\x7fELF"),
    ("bin/sh", SYM, b"/bin/busybox"),
    ("old/", DIR, b""),
    ("old/a", REG, b"a"),
    ("old/b", REG, b"b"),
]


def layer(entries: list[Entry], *, gz: bool = False) -> bytes:
    buf = io.BytesIO()
    tar = TarWriter(buf)
    for item in entries:
        name, kind, data = item[0], item[1], item[2]
        extra: dict[str, object] = dict(item[3]) if len(item) > 3 else {}  # type: ignore[misc]
        mode = int(extra.pop("mode", 0o755 if kind == DIR else 0o644))  # type: ignore[call-overload]
        if kind in (SYM, LNK):
            tar.add(TarEntry(name, kind, mode=0o777, linkname=data.decode(), **extra))  # type: ignore[arg-type]
        elif kind == REG:
            tar.add(TarEntry(name, REG, mode=mode, size=len(data), **extra), io.BytesIO(data))  # type: ignore[arg-type]
        else:
            tar.add(TarEntry(name, kind, mode=mode, **extra))  # type: ignore[arg-type]
    tar.close()
    return gzip.compress(buf.getvalue()) if gz else buf.getvalue()


def archive(
    path: Path, layers: list[bytes], config: dict[str, object], history: list[dict[str, object]]
) -> Path:
    """A ``docker save``-shaped archive of one image."""
    with tarfile.open(path, "w") as out:

        def put(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))

        names = []
        for i, blob in enumerate(layers):
            names.append(f"layer{i}.tar")
            put(names[-1], blob)
        put("config.json", json.dumps({"config": config, "history": history}).encode())
        put("manifest.json", json.dumps([{"Config": "config.json", "Layers": names}]).encode())
    return path


def image(tmp_path: Path, name: str, *upper: list[Entry], config: dict[str, object] | None = None) -> Path:
    history: list[dict[str, object]] = [{"created_by": "base"}]
    history += [{"created_by": f"RUN step {i}"} for i in range(len(upper))]
    layers = [layer(BASE), *(layer(entries, gz=i % 2 == 0) for i, entries in enumerate(upper))]
    return archive(tmp_path / f"{name}.tar", layers, config or {"Cmd": ["sh"]}, history)


def test_same_image_twice_has_no_differences(tmp_path: Path) -> None:
    a = read_archive(image(tmp_path, "a", [("new", REG, b"n")]))
    assert compare(a, a) == []


def test_whiteouts_and_opaque_dirs_are_applied(tmp_path: Path) -> None:
    built = read_archive(
        image(
            tmp_path,
            "w",
            [("old/.wh.a", REG, b""), ("etc/.wh.passwd", REG, b"")],
            [("old/", DIR, b""), ("old/.wh..wh..opq", REG, b""), ("old/c", REG, b"c")],
        )
    )
    assert sorted(p for p in built.rootfs if p.startswith(("old", "etc"))) == ["etc", "old", "old/c"]


def test_content_mode_owner_and_link_target_differences_are_named(tmp_path: Path) -> None:
    ours = read_archive(image(tmp_path, "o", [("f", REG, b"one", {"uid": 1}), ("l", SYM, b"f")]))
    for changed, word in [
        ([("f", REG, b"two", {"uid": 1}), ("l", SYM, b"f")], "sha256"),
        ([("f", REG, b"one", {"uid": 2}), ("l", SYM, b"f")], "2:0"),
        ([("f", REG, b"one", {"uid": 1, "mode": 0o600}), ("l", SYM, b"f")], "0600"),
        ([("f", REG, b"one", {"uid": 1}), ("l", SYM, b"g")], "-> g"),
        ([("f", REG, b"one", {"uid": 1})], "not in the reference"),
    ]:
        theirs = read_archive(image(tmp_path, "t", changed))
        problems = compare(ours, theirs)
        assert len(problems) == 1, problems
        assert word in problems[0], problems


def test_hard_links_are_compared_as_groups(tmp_path: Path) -> None:
    linked = read_archive(image(tmp_path, "h", [("x", REG, b"same"), ("y", LNK, b"x")]))
    copied = read_archive(image(tmp_path, "c", [("x", REG, b"same"), ("y", REG, b"same")]))
    assert linked.hardlinks() == {frozenset({"x", "y"})}
    assert [p for p in compare(linked, copied) if "hard links" in p]


def test_config_history_and_allowances(tmp_path: Path) -> None:
    ours = read_archive(
        image(tmp_path, "o", [("etc/hosts", REG, b"")], config={"Cmd": ["sh"], "Entrypoint": None})
    )
    theirs = read_archive(
        image(
            tmp_path,
            "t",
            [("run/", DIR, b""), ("etc/resolv.conf", REG, b"")],
            config={
                "Cmd": ["sh"],
                "Entrypoint": [],
                "OnBuild": [],
                "Labels": {"io.buildah.version": "1.28.2"},
            },
        )
    )
    assert compare(ours, theirs) == []  # stubs, empty lists and buildah's label are allowed
    other = read_archive(image(tmp_path, "x", [("etc/hosts", REG, b"127.0.0.1 localhost\n")]))
    assert [p for p in compare(ours, other) if p.startswith("/etc/hosts")]
    longer = read_archive(image(tmp_path, "l", [("a", REG, b"")], [("b", REG, b"")]))
    assert any(p.startswith("history:") for p in compare(ours, longer))
    relabelled = amend(theirs, config={"Labels": {"a": "b"}})
    assert any(p.startswith("config Labels") for p in compare(ours, relabelled))


def test_amend_and_ignore(tmp_path: Path) -> None:
    ours = read_archive(
        image(tmp_path, "o", [("made/", DIR, b""), ("skip/", DIR, b""), ("skip/x", REG, b"1")])
    )
    theirs = read_archive(
        image(tmp_path, "t", [("extra/", DIR, b""), ("skip/", DIR, b""), ("skip/x", REG, b"2")])
    )
    fixed = amend(theirs, absent=["extra"], dirs={"made": "0755 0:0"})
    assert compare(ours, fixed, ignore=["skip"]) == []
    assert compare(ours, fixed) != []
    rewritten = amend(theirs, absent=["extra"], dirs={"made": "0755 0:0"}, files={"skip/x": b"1"})
    assert compare(ours, rewritten) == []
