"""Parser directives: the ``# name=value`` comments at the very top of a Dockerfile.

Docker's rule (BuildKit's ``DirectiveParser``): directives are read only until
the first line that is not one — an empty line, another comment, an
instruction, or a directive name it does not know — and each known directive
may appear once. The known ones are ``syntax``, ``escape`` and ``check``;
``escape`` must be a backslash or a backtick.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pallet.errors import InvalidArgument

__all__ = ["DirectiveScanner", "Directives"]

_DIRECTIVE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
_KNOWN = ("syntax", "escape", "check")


@dataclass(frozen=True, slots=True, kw_only=True)
class Directives:
    """The directives in force for one Dockerfile; ``escape`` is one character."""

    escape: str = "\\"
    syntax: str | None = None
    check: str | None = None


class DirectiveScanner:
    """Reads directives from the leading lines, one call per physical line, until the first non-directive."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._done = False
        self._seen: dict[str, str] = {}

    @property
    def directives(self) -> Directives:
        return Directives(
            escape=self._seen.get("escape", "\\"),
            syntax=self._seen.get("syntax"),
            check=self._seen.get("check"),
        )

    def feed(self, line: str, number: int) -> bool:
        """Take one physical line; True while it was a directive (and so is not an instruction or comment)."""
        if self._done:
            return False
        match = _DIRECTIVE.match(line)
        if match is None or match.group(1).lower() not in _KNOWN:
            self._done = True
            return False
        key, value = match.group(1).lower(), match.group(2)
        if key in self._seen:
            raise InvalidArgument(f"{self._name}:{number}: only one {key} parser directive can be used")
        if key == "escape" and value not in ("\\", "`"):
            raise InvalidArgument(
                f"{self._name}:{number}: invalid escape token {value!r} does not match ` or \\"
            )
        self._seen[key] = value
        return True
