"""Go's durations, as docker's flags and files spell them (``30s``, ``1m30s``, ``1.5h``, ``500ms``).

One reading for every place docker takes one: healthcheck settings, ``logs --since 10m``, a
Dockerfile's ``HEALTHCHECK --interval``. Standard library only: the shim imports this module.
"""

from __future__ import annotations

from pallet.errors import InvalidArgument

__all__ = ["SECOND", "format_duration", "parse_duration"]

SECOND = 1_000_000_000
# longest first, so "ms" is not read as "m" followed by "s"
_UNITS = (("ns", 1), ("us", 1_000), ("µs", 1_000), ("ms", 1_000_000), ("h", 3600 * SECOND),
          ("m", 60 * SECOND), ("s", SECOND))  # fmt: skip


def parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration`` in nanoseconds (a sign allowed, ``0`` without a unit);
    ``InvalidArgument`` in Go's words if ``text`` is not one."""
    body = text.strip()
    if body in ("0", "+0", "-0"):
        return 0
    sign = -1 if body.startswith("-") else 1
    rest = body[1:] if body[:1] in ("+", "-") else body
    if not rest:
        raise InvalidArgument(f'time: invalid duration "{text}"')
    total = 0.0
    while rest:
        i = 0
        while i < len(rest) and (rest[i].isdigit() or rest[i] == "."):
            i += 1
        number, rest = rest[:i], rest[i:]
        unit = next((u for u in _UNITS if rest.startswith(u[0])), None)
        if not number or number == "." or number.count(".") > 1 or unit is None:
            raise InvalidArgument(f'time: invalid duration "{text}"')
        total += float(number) * unit[1]
        rest = rest[len(unit[0]) :]
    return sign * int(total)


def format_duration(ns: int) -> str:
    """Go's ``Duration.String()``: ``1s``, ``1.5s``, ``500ms``, ``1m30s``, ``0s``."""
    if ns == 0:
        return "0s"
    sign, ns = ("-" if ns < 0 else ""), abs(ns)
    if ns < SECOND:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _decimal(ns, size) + unit
    hours, ns = divmod(ns, 3600 * SECOND)
    minutes, ns = divmod(ns, 60 * SECOND)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "")
    return sign + text + _decimal(ns, SECOND) + "s"


def _decimal(value: int, unit: int) -> str:
    whole, fraction = divmod(value, unit)
    if not fraction:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{str(fraction).rjust(digits, '0').rstrip('0')}"
