"""``.dockerignore``: which context paths a build cannot see, by docker's pattern rules.

Docker's rules (moby ``patternmatcher``): one pattern a line, blanks around
it trimmed, ``#`` lines comments; a pattern is cleaned like a path and a
leading ``/`` dropped; ``*`` matches within one path component, ``?`` one
character, ``[...]`` a class, ``**`` any number of components (zero too),
``\\`` escapes; a leading ``!`` re-includes. Patterns apply in order and the
last one that matches a path (or one of its parent directories) decides, so
``dir`` then ``!dir/keep`` excludes ``dir`` but ``dir/keep``.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from pallet.errors import InvalidArgument

__all__ = ["IgnoreRules", "Pattern", "parse_ignore"]


@dataclass(frozen=True, slots=True)
class Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]


def _compile(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    pos = 0
    while pos < len(pattern):
        ch = pattern[pos]
        if ch == "*":
            if pattern.startswith("**", pos):
                pos += 2
                if pattern.startswith("/", pos):
                    pos += 1
                out.append(".*" if pos >= len(pattern) else "(.*/)?")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            pos += 1
            if pos < len(pattern):
                out.append(re.escape(pattern[pos]))
        elif ch == "[":
            end = pattern.find("]", pos + 1)
            if end == -1:
                raise InvalidArgument(f".dockerignore: syntax error in pattern {pattern!r}: unclosed [")
            body = pattern[pos + 1 : end]
            if body.startswith("^"):
                body = "!" + body[1:]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            pos = end
        else:
            out.append(re.escape(ch))
        pos += 1
    out.append("$")
    return re.compile("".join(out), re.S)


def parse_ignore(text: str) -> IgnoreRules:
    """The rules of a ``.dockerignore`` file's text."""
    patterns: list[Pattern] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
            if not line:
                raise InvalidArgument('.dockerignore: illegal exclusion pattern: "!"')
        cleaned = posixpath.normpath(line)
        if cleaned.startswith("/") and len(cleaned) > 1:
            cleaned = cleaned.lstrip("/")
        patterns.append(Pattern(cleaned, exclusion, _compile(cleaned)))
    return IgnoreRules(tuple(patterns))


@dataclass(frozen=True, slots=True)
class IgnoreRules:
    patterns: tuple[Pattern, ...] = ()

    @property
    def has_exclusions(self) -> bool:
        """Whether a ``!`` pattern may bring back something inside an ignored directory."""
        return any(p.exclusion for p in self.patterns)

    def ignored(self, path: str) -> bool:
        """Whether context path ``path`` (relative, ``/``-separated) is excluded from the build."""
        path = posixpath.normpath(path).lstrip("/")
        if path in (".", "") or not self.patterns:
            return False
        parents: list[str] = []
        parts = path.split("/")
        for i in range(1, len(parts)):
            parents.append("/".join(parts[:i]))
        matched = False
        for pattern in self.patterns:
            if pattern.regex.match(path) or any(pattern.regex.match(parent) for parent in parents):
                matched = not pattern.exclusion
        return matched
