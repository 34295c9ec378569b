"""Compare two built images the way a user sees them: config, history and the final root filesystem.

An image is read from a ``docker save``-shaped archive (``pallet save``, and
``buildah push IMAGE docker-archive:FILE``, which keeps docker's config fields —
an OCI layout would drop ``Healthcheck``, ``Shell``, ``OnBuild`` and
``StopSignal``). ``read_archive`` gives an ``ImageView``: the config fields of
issue 11 (``FIELDS``), the history as ``(created_by, empty_layer)`` pairs, and
the root filesystem made by applying every layer in order with OCI whiteouts
(``.wh.NAME`` deletes, ``.wh..wh..opq`` hides what lies below). Each path keeps
its type, permission bits (with setuid/setgid/sticky), owner, size, a sha256
of its bytes, its symlink target and, for hard links, the set of paths that
share its inode. Times are left out on purpose: two builds never agree on them.

``compare(ours, reference)`` lists every difference as one line of text (an
empty list means the same image), after the allowances below; ``ignore`` names
paths (and what is below them) left out on both sides. ``amend`` corrects a
reference where it is known to differ from docker (a test case says where and
why): config fields replaced, paths it should not have, directories it lacks.

Known legitimate differences (the allowances, each with why it is fair):

- The label ``io.buildah.version``: buildah stamps its own version on every
  image it commits. Docker and pallet add no label the Dockerfile did not ask
  for, so the label is dropped from a reference before comparing.
- An empty list or map versus none (``"Entrypoint": []`` or ``"OnBuild": []``
  or ``"Volumes": {}`` against ``null``): buildah writes empty Go slices where
  docker writes ``null``; no consumer of an image (docker, containerd, podman,
  pallet) tells them apart, so both read as absent.
- Mount-point stubs of RUN: with chroot isolation buildah creates empty
  ``/etc/hostname``, ``/etc/hosts``, ``/etc/resolv.conf`` files and an empty
  ``/run`` directory to bind-mount over when the base image lacks them, and
  commits them in the RUN's layer. Docker keeps such mount points in the
  container's init layer, which never becomes part of an image. So at those
  paths an empty file (or an empty directory at ``/run``) present on one side
  and absent, or also an empty stub, on the other is no difference. A
  non-empty file there is compared as any other.
- The ``empty_layer`` flag of a ``WORKDIR`` entry: docker's legacy builder
  makes a layer only when WORKDIR creates the directory, BuildKit always makes
  one (but for ``/``), buildah never does; the three references disagree, so
  that flag is not compared (the entry still counts in the history's length).
- Times (``created`` of the image and of each history entry, file mtimes) and
  the text of ``created_by`` (buildah writes ``/bin/sh -c #(nop) COPY
  file:<hash> in /x/``, docker the same with another hash, BuildKit ``COPY a
  /x/ # buildkit``): the history is compared by its length and by which
  entries are empty layers, as the issue asks.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from pallet.image import whiteouts
from pallet.image.compression import LayerReader
from pallet.image.tarstream import BLK, CHR, DIR, FIFO, LNK, REG, SYM, TarReader

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

__all__ = [
    "FIELDS",
    "STUB_DIRS",
    "STUB_FILES",
    "FileInfo",
    "ImageView",
    "amend",
    "compare",
    "read_archive",
]

#: the config fields issue 11 names, in docker's spelling
FIELDS = (
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "StopSignal",
    "Healthcheck",
    "Shell",
    "OnBuild",
)
#: labels a builder stamps by itself (see the module docstring)
BUILDER_LABELS = frozenset({"io.buildah.version"})
#: RUN mount points a builder may leave empty in a layer (see the module docstring)
STUB_FILES = frozenset({"etc/hostname", "etc/hosts", "etc/resolv.conf"})
STUB_DIRS = frozenset({"run"})

_KINDS = {REG: "file", DIR: "dir", SYM: "symlink", CHR: "char", BLK: "block", FIFO: "fifo"}


@dataclass(frozen=True, slots=True, kw_only=True)
class FileInfo:
    """One path of a root filesystem, times aside."""

    kind: str
    mode: int  # permission bits with setuid, setgid and sticky
    uid: int
    gid: int
    size: int = 0
    sha256: str = ""
    target: str = ""  # a symlink's target
    device: tuple[int, int] = (0, 0)
    inode: int = 0  # equal for paths that are hard links of one another

    def describe(self) -> str:
        text = f"{self.kind} {self.mode:04o} {self.uid}:{self.gid}"
        if self.kind == "file":
            text += f" {self.size}B sha256:{self.sha256[:12]}"
        elif self.kind == "symlink":
            text += f" -> {self.target}"
        elif self.kind in ("char", "block"):
            text += f" {self.device[0]},{self.device[1]}"
        return text


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageView:
    """What the comparison looks at in one image."""

    config: dict[str, Any]
    history: tuple[tuple[str, bool], ...]
    rootfs: dict[str, FileInfo] = field(default_factory=dict)

    def hardlinks(self) -> set[frozenset[str]]:
        """The groups of two or more paths that share an inode."""
        groups: dict[int, set[str]] = {}
        for path, info in self.rootfs.items():
            if info.kind == "file":
                groups.setdefault(info.inode, set()).add(path)
        return {frozenset(g) for g in groups.values() if len(g) > 1}


def _clean(name: str) -> str:
    """A tar member name as a relative path without ``./`` or a trailing slash; ``""`` is the root."""
    parts = [p for p in PurePosixPath(name.lstrip("/")).parts if p not in (".", "")]
    return "/".join(parts)


def _apply(tree: dict[str, FileInfo], blob: Any, inodes: itertools.count[int]) -> None:
    """Apply one layer (any compression) to ``tree`` with OCI whiteouts."""
    reader = LayerReader(blob, "application/vnd.oci.image.layer.v1.tar")
    try:
        tar = TarReader(reader)
        added: set[str] = set()
        for entry in tar:
            path = _clean(entry.name)
            parent, _, base = path.rpartition("/")
            found = whiteouts.parse(base)
            if found is not None:
                what, name = found
                if what == whiteouts.OPAQUE:
                    prefix = parent + "/" if parent else ""
                    for p in [p for p in tree if p.startswith(prefix) and p != parent]:
                        if p not in added:
                            del tree[p]
                elif what == whiteouts.DELETE:
                    gone = f"{parent}/{name}" if parent else name
                    for p in [p for p in tree if p == gone or p.startswith(gone + "/")]:
                        del tree[p]
                continue
            if not path:
                continue  # the root itself: its metadata is the snapshot's, not the layer's
            old = tree.get(path)
            if entry.type == LNK:
                target = tree.get(_clean(entry.linkname))
                if target is None:
                    raise AssertionError(f"hard link {path} -> {entry.linkname}: no such file below")
                tree[path] = target
                added.add(path)
                continue
            if old is not None and (old.kind != "dir" or entry.type != DIR):
                for p in [p for p in tree if p.startswith(path + "/")]:
                    del tree[p]  # a non-directory replaces a directory and all below it
            digest = hashlib.sha256()
            if entry.type == REG:
                for chunk in tar.chunks():
                    digest.update(chunk)
            kind = _KINDS.get(entry.type)
            if kind is None:
                raise AssertionError(f"{path}: tar type {entry.type!r} in a layer")
            tree[path] = FileInfo(
                kind=kind,
                mode=stat.S_IMODE(entry.mode),
                uid=entry.uid,
                gid=entry.gid,
                size=entry.size if kind == "file" else 0,
                sha256=digest.hexdigest() if kind == "file" else "",
                target=entry.linkname if kind == "symlink" else "",
                device=(entry.devmajor, entry.devminor) if kind in ("char", "block") else (0, 0),
                inode=next(inodes),
            )
            added.add(path)
    finally:
        reader.close()


def read_archive(path: Path | str, index: int = 0) -> ImageView:
    """The image ``index`` of a ``docker save``-shaped archive at ``path``."""
    with tarfile.open(path, "r:") as archive:

        def member(name: str) -> Any:
            got = archive.extractfile(name)
            if got is None:
                raise AssertionError(f"{path}: {name} is not a file")
            return got

        manifest = json.loads(member("manifest.json").read())[index]
        config = json.loads(member(manifest["Config"]).read())
        tree: dict[str, FileInfo] = {}
        inodes = itertools.count(1)
        for layer in manifest["Layers"]:
            with member(layer) as blob:
                _apply(tree, blob, inodes)
    history = tuple(
        (str(h.get("created_by", "")), bool(h.get("empty_layer", False))) for h in config.get("history", [])
    )
    return ImageView(config=config.get("config") or {}, history=history, rootfs=tree)


def _field(config: dict[str, Any], name: str) -> Any:
    value = config.get(name)
    if name == "Labels" and value:
        value = {k: v for k, v in value.items() if k not in BUILDER_LABELS}
    return value if value not in ([], {}, "") else None


def _is_stub(path: str, info: FileInfo | None, tree: dict[str, FileInfo]) -> bool:
    if info is None:
        return True
    if path in STUB_FILES:
        return info.kind == "file" and info.size == 0
    if path in STUB_DIRS:
        return info.kind == "dir" and not any(p.startswith(path + "/") for p in tree)
    return False


def amend(
    view: ImageView,
    *,
    config: dict[str, Any] | None = None,
    absent: Iterable[str] = (),
    dirs: dict[str, str] | None = None,
    files: dict[str, bytes] | None = None,
) -> ImageView:
    """``view`` with config fields replaced, the paths ``absent`` removed, directories and files set.

    ``dirs`` maps a path to ``"MODE UID:GID"`` (octal mode), as ``"0755 0:0"``;
    ``files`` a path to its bytes (mode and owner kept, or 0644 root's for a new file).
    """
    rootfs = {p: info for p, info in view.rootfs.items() if p not in set(absent)}
    for path, spec in (dirs or {}).items():
        mode, owner = spec.split()
        uid, gid = owner.split(":")
        rootfs[path] = FileInfo(kind="dir", mode=int(mode, 8), uid=int(uid), gid=int(gid))
    for path, data in (files or {}).items():
        old = rootfs.get(path) or FileInfo(kind="file", mode=0o644, uid=0, gid=0)
        rootfs[path] = FileInfo(
            kind="file",
            mode=old.mode,
            uid=old.uid,
            gid=old.gid,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            inode=old.inode,
        )
    return ImageView(config={**view.config, **(config or {})}, history=view.history, rootfs=rootfs)


def compare(ours: ImageView, reference: ImageView, *, ignore: Iterable[str] = ()) -> list[str]:
    """Every difference between two images, one line each, after the documented allowances."""
    problems: list[str] = []
    skipped = tuple(ignore)

    def ignored(path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in skipped)

    for name in FIELDS:
        a, b = _field(ours.config, name), _field(reference.config, name)
        if a != b:
            problems.append(f"config {name}: {json.dumps(a)} != reference {json.dumps(b)}")
    if len(ours.history) != len(reference.history):
        problems.append(f"history: {len(ours.history)} entries != reference {len(reference.history)}")
    else:
        for i, ((by_a, empty_a), (by_b, empty_b)) in enumerate(
            zip(ours.history, reference.history, strict=True)
        ):
            if empty_a != empty_b and "workdir " not in by_b.lower():
                problems.append(
                    f"history[{i}] empty_layer: {empty_a} ({by_a!r}) != reference {empty_b} ({by_b!r})"
                )
    for path in sorted(ours.rootfs.keys() | reference.rootfs.keys()):
        a_info, b_info = ours.rootfs.get(path), reference.rootfs.get(path)
        if ignored(path):
            continue
        if path in STUB_FILES | STUB_DIRS and (
            _is_stub(path, a_info, ours.rootfs) and _is_stub(path, b_info, reference.rootfs)
        ):
            continue
        if a_info is None:
            problems.append(f"/{path}: missing (reference has {b_info and b_info.describe()})")
        elif b_info is None:
            problems.append(f"/{path}: {a_info.describe()} not in the reference")
        elif a_info.describe() != b_info.describe() or a_info.sha256 != b_info.sha256:
            problems.append(f"/{path}: {a_info.describe()} != reference {b_info.describe()}")
    a_links = {g for g in ours.hardlinks() if not any(map(ignored, g))}
    b_links = {g for g in reference.hardlinks() if not any(map(ignored, g))}
    if a_links != b_links:
        problems.append(
            f"hard links: {sorted(map(sorted, a_links))} != reference {sorted(map(sorted, b_links))}"
        )
    return problems
