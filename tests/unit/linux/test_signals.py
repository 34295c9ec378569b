"""Signal names as kill accepts them."""

from __future__ import annotations

from pallet.linux.capabilities import CAPABILITY_NUMBERS, capability_mask
from pallet.linux.signals import parse_signal


def test_numbers_names_and_sig_prefixed_names_all_parse() -> None:
    assert [parse_signal(s) for s in ("9", "KILL", "SIGKILL", "sigterm", "TERM", "USR1", "SIGUSR2")] == [
        9,
        9,
        9,
        15,
        15,
        10,
        12,
    ]


def test_realtime_signals_and_unknown_names() -> None:
    assert parse_signal("RTMIN") == 34
    assert parse_signal("SIGRTMIN+3") == 37
    assert parse_signal("RTMAX-1") == 63
    assert parse_signal("BOGUS") is None
    assert parse_signal("0") is None
    assert parse_signal("65") is None


def test_capability_masks_skip_names_the_kernel_does_not_know() -> None:
    assert capability_mask(["CAP_CHOWN", "CAP_KILL", "CAP_NOT_A_THING"], 40) == 1 | 1 << 5
    assert capability_mask(["CAP_CHECKPOINT_RESTORE"], 39) == 0
    assert CAPABILITY_NUMBERS["CAP_SYS_ADMIN"] == 21
