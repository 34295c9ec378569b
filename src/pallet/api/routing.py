"""The route table: (method, path pattern) -> handler, and finding the route of a request.

A pattern is a path with ``{name}`` parameters (one path segment) and
``{name*}`` parameters (the rest of the path, slashes included: image names
such as ``127.0.0.1:5000/app`` in ``/images/{name*}/push``). Patterns are
tried in the order they were added, so put ``/images/{name*}/json`` before a
wider pattern that would also match it. ``HEAD`` falls back to ``GET``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from pallet.api.messages import Request, Response

__all__ = ["Handler", "Match", "RouteTable"]

Handler = Callable[[Request], Response]

_PARAM = re.compile(r"\{([a-z_]+)(\*?)\}")


class Match(NamedTuple):
    handler: Handler
    params: dict[str, str]


class _Route(NamedTuple):
    method: str
    pattern: re.Pattern[str]
    handler: Handler


def _compile(pattern: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in _PARAM.finditer(pattern):
        out.append(re.escape(pattern[pos : m.start()]))
        out.append(f"(?P<{m.group(1)}>{'.+' if m.group(2) else '[^/]+'})")
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("".join(out) + r"/?\Z")


class RouteTable:
    """Routes of one resource (a ``routes/*.py`` module's ``ROUTES``), or of all of them merged."""

    def __init__(self) -> None:
        self._routes: list[_Route] = []

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Decorator: ``@ROUTES.route("GET", "/containers/{name}/json")``."""

        def add(handler: Handler) -> Handler:
            self._routes.append(_Route(method, _compile(pattern), handler))
            return handler

        return add

    def extend(self, other: RouteTable) -> None:
        self._routes.extend(other._routes)

    def find(self, method: str, path: str) -> Match | None:
        """The handler for ``method path`` (path without its version prefix), or None."""
        fallback = None
        for route in self._routes:
            m = route.pattern.match(path)
            if m is None:
                continue
            if route.method == method:
                return Match(route.handler, m.groupdict())
            if method == "HEAD" and route.method == "GET" and fallback is None:
                fallback = Match(route.handler, m.groupdict())
        return fallback

    def __len__(self) -> int:
        return len(self._routes)
