"""The build context: a directory or a tar on stdin, the Dockerfile, and what ``.dockerignore`` hides.

``open_context`` makes a ``BuildContext`` from docker's arguments: a
directory path, or ``-`` (a tar, plain or compressed, read from stdin and
unpacked into a private temp dir under the pallet root, removed by ``close``
or, if this process is killed, by the next build; stdin that is no archive
is the Dockerfile itself, with an empty context, as docker's ``build - <
Dockerfile``); ``-f FILE`` (relative to
the current directory; for a tar context, a path inside the tar), ``-f -``
(the Dockerfile on stdin, the context then a directory). The ignore file is
``<Dockerfile>.dockerignore`` beside the Dockerfile if there is one, else
``.dockerignore`` at the context's root.

Every path a build reads from the context is resolved inside the context's
root (``openat2(RESOLVE_IN_ROOT)``): a symlink in the context never leads out
of it, and a source naming a path above the root (``../x``) is refused.
"""

from __future__ import annotations

import io
import os
import posixpath
import shutil
import stat

from pallet.build.dockerignore import IgnoreRules, parse_ignore
from pallet.build.sources import SourceTree
from pallet.errors import InvalidArgument, NotFound
from pallet.image import owners
from pallet.linux.openat2 import open_in_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO, Self

__all__ = ["BuildContext", "open_context", "remove_abandoned_contexts"]

_DIR_PATH = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


class BuildContext:
    """An open build context: ``root_fd`` (an O_PATH fd of its root), the Dockerfile's text, the rules."""

    def __init__(
        self, root: str, dockerfile: str, dockerfile_name: str, ignore: IgnoreRules, temp: str | None
    ) -> None:
        self.root = root
        self.dockerfile = dockerfile
        self.dockerfile_name = dockerfile_name
        self.ignore = ignore
        self._temp = temp
        self.root_fd = os.open(root, _DIR_PATH)

    def close(self) -> None:
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def tree(self) -> SourceTree:
        """The context as a tree COPY/ADD read from: paths inside its root, ``.dockerignore`` applied."""
        return SourceTree(self.root_fd, self.ignore, "the build context")


def _temp_root(pallet_root: str) -> str:
    top = os.path.join(pallet_root, "build", "tmp")
    os.makedirs(top, exist_ok=True)
    return top


def remove_abandoned_contexts(pallet_root: str) -> None:
    """Remove the unpacked stdin contexts of builds that were killed (their owner process is gone)."""
    top = os.path.join(pallet_root, "build", "tmp")
    try:
        names = os.listdir(top)
    except FileNotFoundError:
        return
    for name in names:
        owner = owners.parse_owner(name)
        if owner is None or not owners.is_alive(*owner):
            shutil.rmtree(os.path.join(top, name), ignore_errors=True)


def _read_ignore(root_fd: int, dockerfile_rel: str | None) -> IgnoreRules:
    candidates = []
    if dockerfile_rel:
        candidates.append(dockerfile_rel + ".dockerignore")
    candidates.append(".dockerignore")
    for rel in candidates:
        try:
            fd = open_in_root(root_fd, rel, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        with open(fd, "rb") as f:
            return parse_ignore(f.read().decode("utf-8", "replace"))
    return IgnoreRules()


def _unpack_stdin(stream: BinaryIO, target: str) -> None:
    """A context tar from stdin (plain, gzip, bzip2, xz or zstd) unpacked into ``target``, safely."""
    import tempfile

    from pallet.build.archives import decompressed
    from pallet.engine.filesystem.cp import extract
    from pallet.image.tarstream import DIR, TarEntry, TarReader, TarWriter

    fd = os.open(target, _DIR_PATH)
    try:
        # a context tar may omit directory entries ("tar cf - sub/f"): they are added, 0755
        with decompressed(stream) as raw, tempfile.TemporaryFile(dir=target) as whole:
            writer = TarWriter(whole)
            seen: set[str] = set()
            reader = TarReader(raw)
            for entry in reader:
                name = posixpath.normpath(entry.name.lstrip("/"))
                parts = name.split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    parent = "/".join(parts[:i])
                    if parent not in seen and parent not in (".", ".."):
                        seen.add(parent)
                        writer.add(TarEntry(parent + "/", DIR, mode=0o755))
                if entry.type == DIR:
                    seen.add(name)
                writer.add(entry, reader if entry.size else None)
            writer.close()
            whole.seek(0)
            extract(fd, whole, owner=None)
    finally:
        os.close(fd)


#: bytes enough to tell a tar (its magic at offset 257) or a compressed stream from a Dockerfile
_SNIFF = 512
_MAGICS = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")


def _is_archive(head: bytes) -> bool:
    """What docker's CLI asks of stdin before calling it a context: compressed, or a tar header."""
    return head.startswith(_MAGICS) or head[257:262] == b"ustar"


class _Prefixed(io.RawIOBase):
    """``stream`` with ``head`` (already read from it) in front again."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(view))
        view[: len(data)] = data
        return len(data)


def open_context(
    path: str,
    *,
    dockerfile: str | None,
    pallet_root: str,
    stdin: BinaryIO | None = None,
) -> BuildContext:
    """The context docker's ``build [-f FILE] PATH|-`` names (see the module docstring)."""
    temp: str | None = None
    try:
        if path == "-":
            if dockerfile == "-":
                raise InvalidArgument(
                    "invalid argument: can't use stdin for both build context and dockerfile"
                )
            if stdin is None:
                raise InvalidArgument("the build context is '-' but there is no stdin to read it from")
            temp = os.path.join(_temp_root(pallet_root), owners.owner_tag())
            os.mkdir(temp, 0o700)
            head = stdin.read(_SNIFF)
            if _is_archive(head):
                _unpack_stdin(io.BufferedReader(_Prefixed(head, stdin)), temp)
            else:
                # docker's `build - < Dockerfile`: stdin that is no archive is the Dockerfile, and
                # the context is empty
                if dockerfile is not None:
                    raise InvalidArgument("-f cannot name a Dockerfile when stdin is the Dockerfile")
                with open(os.path.join(temp, "Dockerfile"), "wb") as f:
                    f.write(head + stdin.read())
            root = temp
        else:
            root = os.path.abspath(path)
            if not os.path.isdir(root):
                if not os.path.exists(root):
                    raise NotFound(f'unable to prepare context: path "{path}" not found')
                raise InvalidArgument(f'unable to prepare context: context must be a directory: "{path}"')
        root_fd = os.open(root, _DIR_PATH)
        try:
            text, name, rel = _dockerfile_text(root, root_fd, dockerfile, stdin, in_tar=path == "-")
            ignore = _read_ignore(root_fd, rel)
        finally:
            os.close(root_fd)
        return BuildContext(root, text, name, ignore, temp)
    except BaseException:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
        raise


def _dockerfile_text(
    root: str, root_fd: int, dockerfile: str | None, stdin: BinaryIO | None, *, in_tar: bool
) -> tuple[str, str, str | None]:
    """(text, name for errors, path relative to the context or None when it is outside)."""
    if dockerfile == "-":
        if stdin is None:
            raise InvalidArgument("-f - reads the Dockerfile from stdin, but there is no stdin")
        return stdin.read().decode("utf-8", "replace"), "Dockerfile", None
    if dockerfile is None or in_tar:
        rel = posixpath.normpath((dockerfile or "Dockerfile").lstrip("/"))
        try:
            fd = open_in_root(root_fd, rel, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            if dockerfile is None:
                try:
                    fd = open_in_root(root_fd, "dockerfile", os.O_RDONLY | os.O_CLOEXEC)
                    rel = "dockerfile"
                except OSError:
                    raise NotFound(
                        f"unable to prepare context: cannot find Dockerfile in {root} (name it Dockerfile or give -f)"
                    ) from None
            else:
                raise NotFound(f'the Dockerfile "{dockerfile}" is not in the build context') from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise InvalidArgument(f'the Dockerfile "{rel}" is not a regular file')
        with open(fd, "rb") as f:
            return f.read().decode("utf-8", "replace"), posixpath.basename(rel), rel
    full = os.path.abspath(dockerfile)
    try:
        with open(full, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        raise NotFound(f"unable to prepare context: the Dockerfile {dockerfile} does not exist") from None
    except IsADirectoryError:
        raise InvalidArgument(f"the Dockerfile {dockerfile} is a directory, not a file") from None
    rel_path: str | None = os.path.relpath(full, root)
    if rel_path is not None and (rel_path == ".." or rel_path.startswith("../")):
        rel_path = None
    return text, os.path.basename(full), rel_path
