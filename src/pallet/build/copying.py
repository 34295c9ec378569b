"""COPY and ADD: what the sources hold (hashed for the cache) and how they land in the step's root.

Two phases, so a cache hit never needs a container:

1. ``stage_sources`` reads every source into a staging tar (a temp file),
   entries named ``<source index>/<path under the source>``, and hashes what
   decides the result: names, types, modes, link targets, file bytes (and an
   archive's owners) — never mtimes. Sources: a context file or directory
   (a directory's *contents* are copied), a local archive for ADD
   (unpacked: plain, gzip, bzip2, xz, zstd), a heredoc (``COPY <<EOF``).
2. ``place`` streams the staging tar into the step container's root with
   docker's destination rules: a file onto ``dest`` unless ``dest`` ends in
   ``/``, is an existing directory, or there are several sources (then into
   it, by base name); directories and archives into ``dest``. Missing parent
   directories are made 0755. Owners are ``--chown`` (names looked up in the
   image's ``/etc/passwd`` and ``/etc/group``) or 0:0 (an archive keeps its
   own); ``--chmod`` sets the mode of every copied file and directory.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
import tempfile
import time
from dataclasses import dataclass, field

from pallet.build.archives import decompressed, looks_like_tar
from pallet.build.dockerignore import IgnoreRules
from pallet.errors import InvalidArgument, NotFound
from pallet.image.tarstream import DIR, LNK, REG, SYM, TarEntry, TarReader, TarWriter
from pallet.linux.openat2 import open_in_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

    from pallet.build.sources import SourceTree

__all__ = ["Staged", "parse_chmod", "place", "resolve_owner", "stage_sources"]

_FILE, _DIR, _ARCHIVE = "file", "dir", "archive"


@dataclass(slots=True)
class Staged:
    """The staging tar and what it holds: one (kind, base name, path under the context) per source."""

    tar: BinaryIO
    sources: list[tuple[str, str, str]] = field(default_factory=list)
    digest: str = ""


class _Hasher:
    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def entry(self, name: str, entry: TarEntry, data_digest: str, owners: bool) -> None:
        owner = f"{entry.uid}:{entry.gid}" if owners else ""
        self._h.update(
            f"{name}\0{entry.type}\0{entry.mode:o}\0{entry.linkname}\0{owner}\0{data_digest}\n".encode()
        )

    def hexdigest(self) -> str:
        return "sha256:" + self._h.hexdigest()


class _HashingReader:
    """Reads a file once for both the tar and the content hash."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = os.read(self._fd, n if n >= 0 else 1 << 20)
        self.hash.update(data)
        return data


def _entry_of(name: str, st: os.stat_result, linkname: str = "") -> TarEntry | None:
    mode = stat.S_IMODE(st.st_mode)
    mtime = st.st_mtime_ns
    if stat.S_ISDIR(st.st_mode):
        return TarEntry(name, DIR, mode=mode, mtime_ns=mtime)
    if stat.S_ISREG(st.st_mode):
        return TarEntry(name, REG, mode=mode, size=st.st_size, mtime_ns=mtime)
    if stat.S_ISLNK(st.st_mode):
        return TarEntry(name, SYM, mode=mode, linkname=linkname, mtime_ns=mtime)
    return None  # sockets, devices, fifos of a context are not copied (docker skips them too)


def _add_file(tar: TarWriter, hasher: _Hasher, name: str, fd: int, st: os.stat_result) -> None:
    entry = _entry_of(name, st)
    assert entry is not None
    reader = _HashingReader(fd)
    tar.add(entry, reader)
    hasher.entry(name, entry, reader.hash.hexdigest(), owners=False)


def _stage_tree_source(
    *, tar: TarWriter, hasher: _Hasher, tree: SourceTree, rel: str, index: int, excluded: IgnoreRules | None
) -> str:
    fd = tree.open(rel)
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if stat.S_ISDIR(st.st_mode):
        for sub, sub_st, dir_fd, name in tree.walk(rel, excluded):
            entry_name = f"{index}/{sub}"
            if stat.S_ISREG(sub_st.st_mode):
                file_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
                try:
                    _add_file(tar, hasher, entry_name, file_fd, sub_st)
                finally:
                    os.close(file_fd)
                continue
            link = os.readlink(name, dir_fd=dir_fd) if stat.S_ISLNK(sub_st.st_mode) else ""
            entry = _entry_of(entry_name, sub_st, link)
            if entry is not None:
                tar.add(entry)
                hasher.entry(entry_name, entry, "", owners=False)
        return _DIR
    if not stat.S_ISREG(st.st_mode):
        raise InvalidArgument(
            f'"{rel}" in {tree.label} is not a regular file or a directory; it cannot be copied'
        )
    file_fd = tree.open(rel, os.O_RDONLY)
    try:
        _add_file(tar, hasher, f"{index}/f", file_fd, st)
    finally:
        os.close(file_fd)
    return _FILE


def _stage_archive(tar: TarWriter, hasher: _Hasher, tree: SourceTree, rel: str, index: int) -> bool:
    """ADD of a local archive: its entries staged under ``index/``; False when it is not an archive."""
    fd = tree.open(rel, os.O_RDONLY)
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # Python's open() refuses a directory's fd
        os.close(fd)
        return False
    with open(fd, "rb") as f:
        if not looks_like_tar(f):
            return False
        f.seek(0)
        with decompressed(f) as stream:
            reader = TarReader(stream)
            for entry in reader:
                name = posixpath.normpath(entry.name.lstrip("/")).removeprefix("./")
                if name in (".", "") or name.startswith("../"):
                    continue
                entry.name = f"{index}/{name}"
                if entry.type == LNK:
                    entry.linkname = f"{index}/{posixpath.normpath(entry.linkname.lstrip('/'))}"
                if entry.type == REG:
                    data = reader.read()
                    tar.add(entry, _Bytes(data))
                    hasher.entry(entry.name, entry, hashlib.sha256(data).hexdigest(), owners=True)
                else:
                    tar.add(entry)
                    hasher.entry(entry.name, entry, "", owners=True)
    return True


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else self._pos + n
        chunk = self._data[self._pos : end]
        self._pos += len(chunk)
        return chunk


def stage_sources(
    sources: list[tuple[SourceTree, str]],
    *,
    heredocs: dict[int, tuple[str, bytes, int]],
    unpack: bool,
    parents: bool,
    excludes: tuple[str, ...],
    temp_dir: str | None = None,
) -> Staged:
    """Stage every source (``(tree, source as written)``; an index in ``heredocs`` is an inline file:
    a heredoc or a fetched URL, ``(name, bytes, mode)``).

    ``NotFound`` names a source that is missing.
    """
    from pallet.build.dockerignore import parse_ignore

    excluded = parse_ignore("\n".join(excludes)) if excludes else None
    tar_file = tempfile.TemporaryFile(dir=temp_dir)  # noqa: SIM115 - the caller's, in Staged
    staged = Staged(tar=tar_file)
    tar = TarWriter(tar_file)
    hasher = _Hasher()
    index = 0
    for position, (tree, source) in enumerate(sources):
        if position in heredocs:
            name, data, mode = heredocs[position]
            entry = TarEntry(f"{index}/f", REG, mode=mode, size=len(data), mtime_ns=time.time_ns())
            tar.add(entry, _Bytes(data))
            hasher.entry(entry.name, entry, hashlib.sha256(data).hexdigest(), owners=False)
            staged.sources.append((_FILE, name, name))
            index += 1
            continue
        for rel in tree.matches(source):
            if excluded is not None and rel and excluded.ignored(rel):
                continue
            base = posixpath.basename(rel) if rel else ""
            if unpack and _stage_archive(tar, hasher, tree, rel, index):
                staged.sources.append((_ARCHIVE, base, rel))
            else:
                kind = _stage_tree_source(
                    tar=tar, hasher=hasher, tree=tree, rel=rel, index=index, excluded=excluded
                )
                staged.sources.append((kind, base, rel))
            index += 1
    tar.close()
    tar_file.flush()
    hasher._h.update(repr([(k, b, r if parents else "") for k, b, r in staged.sources]).encode())
    staged.digest = hasher.hexdigest()
    return staged


# --- phase 2: into the step's root ------------------------------------------------------------


def parse_chmod(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        mode = int(text, 8)
    except ValueError:
        raise InvalidArgument(f"invalid chmod parameter {text!r}: use an octal mode such as 0755") from None
    if not 0 <= mode <= 0o7777:
        raise InvalidArgument(f"invalid chmod parameter {text!r}: out of range")
    return mode


def _lookup(root_fd: int, table: str, name: str) -> tuple[int, int] | None:
    """(id, primary gid) of ``name`` in the image's /etc/passwd or /etc/group."""
    try:
        fd = open_in_root(root_fd, f"etc/{table}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    with open(fd, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split(":")
            if len(parts) >= 3 and parts[0] == name and parts[2].isdigit():
                gid = (
                    int(parts[3])
                    if table == "passwd" and len(parts) > 3 and parts[3].isdigit()
                    else int(parts[2])
                )
                return int(parts[2]), gid
    return None


def resolve_owner(root_fd: int, chown: str) -> tuple[int, int]:
    """``--chown=user[:group]`` as numbers (names from the image; a user alone gives its primary group)."""
    user, has_group, group = chown.partition(":")
    if user.isdigit():
        uid = int(user)
        gid = uid
    else:
        found = _lookup(root_fd, "passwd", user)
        if found is None:
            raise NotFound(f"unable to convert uid/gid chown string to host mapping: no such user: {user}")
        uid, gid = found
    if has_group:
        if group.isdigit():
            gid = int(group)
        else:
            found_group = _lookup(root_fd, "group", group)
            if found_group is None:
                raise NotFound(
                    f"unable to convert uid/gid chown string to host mapping: no such group: {group}"
                )
            gid = found_group[0]
    return uid, gid


def _is_dir(root_fd: int, path: str) -> bool:
    try:
        fd = open_in_root(root_fd, path.lstrip("/") or ".", os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return stat.S_ISDIR(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def _exists(root_fd: int, path: str) -> bool:
    try:
        fd = open_in_root(root_fd, path.lstrip("/") or ".", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def place(
    staged: Staged,
    root_fd: int,
    dest: str,
    *,
    owner: tuple[int, int] | None,
    chmod: int | None,
    parents: bool,
    mtime_ns: int | None,
    temp_dir: str | None = None,
) -> None:
    """Extract the staged sources into the root at ``dest`` (absolute, expanded) by docker's rules."""
    from pallet.engine.filesystem.cp import extract

    dest_is_dir = dest.endswith("/") or len(staged.sources) > 1 or _is_dir(root_fd, dest)
    if len(staged.sources) > 1 and not dest.endswith("/") and not _is_dir(root_fd, dest):
        raise InvalidArgument(
            "When using COPY with more than one source file, the destination must be a directory and end with a /"
        )
    dest = posixpath.normpath(dest)
    base_owner = owner if owner is not None else (0, 0)
    targets: dict[int, str] = {}
    for index, (kind, base, rel) in enumerate(staged.sources):
        if kind == _FILE:
            if parents and rel:
                targets[index] = posixpath.join(dest, rel)
            else:
                targets[index] = posixpath.join(dest, base) if dest_is_dir else dest
        else:
            targets[index] = posixpath.join(dest, rel) if parents and rel and kind == _DIR else dest
    made: set[str] = set()
    dir_time = mtime_ns if mtime_ns is not None else time.time_ns()
    out = tempfile.TemporaryFile(dir=temp_dir)  # noqa: SIM115 - closed by the with block at the end
    writer = TarWriter(out)

    def make_parents(path: str) -> None:
        parts = [p for p in path.strip("/").split("/") if p]
        current = ""
        for part in parts:
            current = f"{current}/{part}"
            if current in made:
                continue
            made.add(current)
            if not _exists(root_fd, current):
                uid, gid = base_owner
                writer.add(
                    TarEntry(current.lstrip("/") + "/", DIR, mode=0o755, uid=uid, gid=gid, mtime_ns=dir_time)
                )

    staged.tar.seek(0)
    reader = TarReader(staged.tar)
    for entry in reader:
        index_text, _, sub = entry.name.rstrip("/").partition("/")
        index = int(index_text)
        kind = staged.sources[index][0]
        target = targets[index] if kind == _FILE else posixpath.join(targets[index], sub)
        make_parents(posixpath.dirname(target))
        if kind != _FILE and entry.type == DIR:
            made.add(target)
        entry.name = target.lstrip("/") + ("/" if entry.type == DIR else "")
        if entry.type == LNK:
            link_index, _, link_sub = entry.linkname.partition("/")
            entry.linkname = posixpath.join(targets[int(link_index)], link_sub).lstrip("/")
        if kind != _ARCHIVE or owner is not None:
            entry.uid, entry.gid = base_owner
        if chmod is not None and entry.type in (REG, DIR):
            entry.mode = chmod
        if mtime_ns is not None and entry.mtime_ns > mtime_ns:
            entry.mtime_ns = mtime_ns
        if entry.type == REG:
            writer.add(entry, reader)
        else:
            writer.add(entry)
    for index, (kind, _, _) in enumerate(staged.sources):
        if kind != _FILE:
            make_parents(targets[index])  # an empty directory source still makes its destination
    writer.close()
    out.seek(0)
    with out:
        extract(root_fd, out, owner=None)
