"""How list and inspect commands print: docker's table, ``--format json``, or a template.

A command hands over its rows as JSON-able mappings with docker's field names
(``Repository``, ``Tag``, ``ID``, ...), the default table template, and the
column titles; this module picks the output form from ``--format``.
"""

from __future__ import annotations

import json

from pallet.cli.tables import write_columns
from pallet.cli.templates import Template

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import TextIO

__all__ = ["print_inspect", "print_rows"]


def print_rows(
    out: TextIO,
    rows: Sequence[Mapping[str, object]],
    fmt: str | None,
    *,
    default: str,
    titles: Mapping[str, str],
) -> None:
    """Print ``rows`` as ``fmt`` asks.

    ``fmt`` is None or ``table`` (the default table ``default``), ``json``
    (one JSON object per line, like docker 24+), ``table TEMPLATE`` (aligned,
    with a header) or a bare template (one rendered line per row, no header).
    """
    if not fmt or fmt == "table":
        fmt = default
    if fmt == "json":
        for row in rows:
            out.write(json.dumps(row, separators=(",", ":")) + "\n")
        return
    template = Template(fmt)
    if not template.table:
        for row in rows:
            out.write(template.render(row) + "\n")
        return
    lines = [template.header(titles)] + [template.render(row) for row in rows]
    write_columns(out, [line.split("\t") for line in lines])


def print_inspect(out: TextIO, objects: Sequence[Mapping[str, object]], fmt: str | None) -> None:
    """``inspect`` output: an indented JSON array, or one template line per object."""
    if not fmt:
        out.write(json.dumps(list(objects), indent=4) + "\n")
        return
    if fmt == "json":
        # docker treats `--format json` on inspect as the default array
        out.write(json.dumps(list(objects), indent=4) + "\n")
        return
    template = Template(fmt)
    for obj in objects:
        out.write(template.render(obj) + "\n")
