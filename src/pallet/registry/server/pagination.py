"""Paginated lists (tags, catalog): the ``n``/``last`` query and the ``Link`` header.

The spec's contract: results are in lexical order; ``last`` excludes every
entry up to and including it; ``n`` caps the count; when more remain, the
response carries ``Link: <url?n=N&last=X>; rel="next"``.
"""

from __future__ import annotations

import bisect
from urllib.parse import urlencode

from pallet.registry.server.errorcodes import RegistryError

__all__ = ["Page", "paginate"]


class Page:
    """One page of results and the ``Link`` header value for the next, if any."""

    __slots__ = ("items", "link")

    def __init__(self, items: list[str], link: str | None) -> None:
        self.items = items
        self.link = link


def paginate(items: list[str], query: dict[str, list[str]], path: str) -> Page:
    """The page of sorted ``items`` that ``query`` (``n``, ``last``) asks for; ``path`` makes the link."""
    last = query.get("last", [""])[0]
    n_text = query.get("n", [""])[0]
    limit: int | None = None
    if n_text:
        try:
            limit = int(n_text)
        except ValueError:
            limit = -1
        if limit < 0:
            raise RegistryError("PAGINATION_NUMBER_INVALID", detail={"n": n_text})
    start = bisect.bisect_right(items, last) if last else 0
    rest = items[start:]
    if limit is None or limit >= len(rest):
        return Page(rest, None)
    page = rest[:limit]
    if not page:
        return Page([], None)
    link = f'<{path}?{urlencode({"n": limit, "last": page[-1]})}>; rel="next"'
    return Page(page, link)
