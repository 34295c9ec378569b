"""Docker's human output: aligned columns, sizes and ages as docker prints them.

Columns are laid out like Go's ``tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)``
that docker's formatters use: each cell but the last of a row is padded to
its column's widest cell plus 3 spaces, and to at least 10 characters.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TextIO

__all__ = ["human_duration", "human_size", "write_columns"]

_MIN_WIDTH = 10
_PADDING = 3


def write_columns(out: TextIO, rows: Sequence[Sequence[str]]) -> None:
    """Write ``rows`` (the header first, if any) as tabwriter-aligned lines."""
    if not rows:
        return
    widths: dict[int, int] = {}
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths.get(i, 0), len(cell) + _PADDING, _MIN_WIDTH)
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        out.write("".join(cells) + (row[-1] if row else "") + "\n")


def human_size(size: float, precision: int = 3) -> str:
    """Decimal size with 3 significant digits, as docker shows it: ``4.26MB``, ``218MB``.

    ``precision`` 4 is go-units' ``HumanSize`` (``system df``: ``16.43MB``).
    """
    units = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000
        i += 1
    return f"{size:.{precision}g}{units[i]}"


def human_duration(seconds: float) -> str:
    """Go-units ``HumanDuration`` (``About an hour``): the engine's, which docker's STATUS text uses too."""
    from pallet.engine.service import human_duration as text

    return text(seconds)
