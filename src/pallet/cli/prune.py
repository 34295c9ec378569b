"""What the ``prune`` commands share: docker's confirmation prompt and its report of what went."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import TextIO

    from pallet.cli.context import Context
    from pallet.cli.flags import FlagParser

__all__ = ["add_prune_flags", "confirm", "write_report"]


def add_prune_flags(parser: FlagParser) -> None:
    """``-f/--force`` and ``--filter``, as every docker prune takes them."""
    parser.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        help="until=TIME|DURATION, label=KEY[=VALUE], label!=KEY[=VALUE]",
    )


def confirm(ctx: Context, warning: str) -> bool:
    """Ask ``WARNING! <warning>`` and whether to continue; True only for ``y`` or ``yes``."""
    ctx.out.write(f"WARNING! {warning}\nAre you sure you want to continue? [y/N] ")
    ctx.out.flush()
    answer = ctx.stdin.readline().decode(errors="replace").strip().lower()
    return answer in ("y", "yes")


def write_report(out: TextIO, heading: str, lines: Iterable[str], reclaimed: str) -> None:
    """``<heading>:`` and one line per removed thing (the section only if there is one), then the space freed."""
    lines = list(lines)
    if lines:
        out.write(f"{heading}:\n" + "".join(f"{line}\n" for line in lines) + "\n")
    out.write(f"Total reclaimed space: {reclaimed}\n")
