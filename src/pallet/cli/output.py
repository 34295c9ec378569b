"""How list and inspect commands print: docker's table, ``--format json``, or a template.

A command hands over its rows as JSON-able mappings with docker's field names
(``Repository``, ``Tag``, ``ID``, ...), the default table template, and the
column titles; this module picks the output form from ``--format``.
"""

from __future__ import annotations

import json

from pallet.cli.tables import write_columns
from pallet.cli.templates import Template
from pallet.errors import PalletError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import TextIO

    from pallet.cli.context import Context

__all__ = ["inspect_each", "print_inspect", "print_rows"]


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


def inspect_each(
    ctx: Context, names: Iterable[str], inspect: Callable[[str], Mapping[str, object]], fmt: str | None
) -> int:
    """``inspect`` of each name, printed as ``fmt`` asks; a name that fails is reported on stderr (exit status 1).

    Nothing is printed when every name failed.
    """
    found: list[Mapping[str, object]] = []
    failed = 0
    for name in names:
        try:
            found.append(inspect(name))
        except PalletError as e:
            failed += 1
            ctx.err.write(f"pallet: {e}\n")
    if found or not failed:
        print_inspect(ctx.out, found, fmt)
    return 1 if failed else 0
