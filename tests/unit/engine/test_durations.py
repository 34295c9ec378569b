"""Go's durations (``engine/durations.py``), read and printed as Go does."""

from __future__ import annotations

import pytest

from pallet.engine.durations import format_duration, parse_duration
from pallet.errors import InvalidArgument

_S = 1_000_000_000


@pytest.mark.parametrize(
    ("text", "ns"),
    [("0", 0), ("1s", _S), ("1.5s", 3 * _S // 2), ("1m30s", 90 * _S), ("500ms", 500_000_000), ("-2s", -2 * _S),
     ("1h", 3600 * _S), ("10us", 10_000)],
)  # fmt: skip
def test_go_durations_parse(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "s", "1", "1x", "1..2s", "soon"])
def test_bad_go_durations_are_refused_in_gos_words(text: str) -> None:
    with pytest.raises(InvalidArgument, match="time: invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (_S, "1s"),
        (3 * _S // 2, "1.5s"),
        (90 * _S, "1m30s"),
        (500_000_000, "500ms"),
        (3600 * _S, "1h0m0s"),
    ],
)
def test_durations_print_as_go_prints_them(ns: int, text: str) -> None:
    assert format_duration(ns) == text
