"""A tree COPY/ADD read from — the build context, or another stage's or image's root filesystem.

Every path is resolved inside the tree's root (``openat2(RESOLVE_IN_ROOT)``):
a symlink never leads out of it. The context refuses a source that climbs
above its root (``../x``); a stage's root treats ``..`` as ``/`` does.
Below a source, files are opened relative to their directory with
``O_NOFOLLOW``: symlinks are copied as links, never followed.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import stat

from pallet.build.dockerignore import IgnoreRules
from pallet.errors import InvalidArgument, NotFound
from pallet.linux.openat2 import open_in_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["SourceTree", "WalkItem"]

_DIR_PATH = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC

#: (path relative to the walked source, its lstat, the parent dir fd, its name in that dir)
WalkItem = tuple[str, os.stat_result, int, str]


class SourceTree:
    """Paths under ``root_fd``; ``ignore`` hides paths (the context's ``.dockerignore``)."""

    def __init__(
        self, root_fd: int, ignore: IgnoreRules | None, label: str, *, confined: bool = True
    ) -> None:
        self.root_fd = root_fd
        self.ignore = ignore or IgnoreRules()
        self.label = label
        self.confined = confined

    def clean(self, source: str) -> str:
        """A source as a path relative to the root; ``InvalidArgument`` if it climbs out of the context."""
        joined = posixpath.normpath(source if not source.startswith("/") else source.lstrip("/") or ".")
        if joined == ".." or joined.startswith("../"):
            if self.confined:
                raise InvalidArgument(f"forbidden path outside the build context: {source}")
            joined = posixpath.normpath("/" + joined).lstrip("/") or "."
        return "" if joined == "." else joined

    def matches(self, source: str) -> list[str]:
        """The paths a source names (wildcards expanded), hidden ones left out; ``NotFound`` if none."""
        rel = self.clean(source)
        if not any(ch in rel for ch in "*?["):
            if rel and self.ignore.ignored(rel):
                raise NotFound(f'"{source}" not found: excluded by .dockerignore')
            try:
                fd = open_in_root(self.root_fd, rel or ".", os.O_PATH | os.O_CLOEXEC)
            except OSError:
                raise NotFound(f'"{source}" not found in {self.label}: no such file or directory') from None
            os.close(fd)
            return [rel]
        found = [p for p in self._glob(rel.split("/"), "") if not self.ignore.ignored(p)]
        if not found:
            raise NotFound(f'no source files were specified: "{source}" matches nothing in {self.label}')
        return sorted(found)

    def _glob(self, parts: list[str], prefix: str) -> list[str]:
        head, rest = parts[0], parts[1:]
        try:
            fd = open_in_root(self.root_fd, prefix or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return []
        try:
            names = os.listdir(fd)
        finally:
            os.close(fd)
        out: list[str] = []
        for name in sorted(names):
            if not fnmatch.fnmatchcase(name, head):
                continue
            path = f"{prefix}/{name}" if prefix else name
            out += self._glob(rest, path) if rest else [path]
        return out

    def open(self, rel: str, flags: int = os.O_PATH) -> int:
        """An fd of ``rel`` (a symlink at the top is resolved inside the root)."""
        return open_in_root(self.root_fd, rel or ".", flags | os.O_CLOEXEC)

    def walk(self, rel: str, excluded: IgnoreRules | None = None) -> Iterator[WalkItem]:
        """Everything below directory ``rel``, parents before children, names sorted; hidden paths skipped.

        ``excluded`` (COPY ``--exclude``) is matched against paths relative to ``rel``.
        """
        fd = self.open(rel, os.O_RDONLY | os.O_DIRECTORY)
        try:
            yield from self._walk(fd, rel, "", excluded)
        finally:
            os.close(fd)

    def _walk(self, fd: int, top: str, prefix: str, excluded: IgnoreRules | None) -> Iterator[WalkItem]:
        for name in sorted(os.listdir(fd)):
            sub = f"{prefix}/{name}" if prefix else name
            full = f"{top}/{sub}" if top else sub
            if self.ignore.ignored(full) and not self._may_hold_exceptions(full):
                continue
            if excluded is not None and excluded.ignored(sub):
                continue
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            hidden = self.ignore.ignored(full)
            if not hidden:
                yield sub, st, fd, name
            if stat.S_ISDIR(st.st_mode):
                child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                try:
                    yield from self._walk(child, top, sub, excluded)
                finally:
                    os.close(child)

    def _may_hold_exceptions(self, path: str) -> bool:
        """An ignored directory is still walked when a ``!`` pattern may re-include something inside."""
        return any(
            (p.exclusion and p.text.startswith(path + "/")) or "*" in p.text
            for p in self.ignore.patterns
            if p.exclusion
        )
