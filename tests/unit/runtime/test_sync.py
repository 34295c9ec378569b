"""The framing of create's sync messages."""

from __future__ import annotations

import os

import pytest

from pallet.runtime import sync


def test_messages_round_trip_in_order_and_eof_is_channel_closed() -> None:
    r, w = os.pipe()
    try:
        sync.send(w, sync.PID, "1234")
        sync.send(w, sync.ERROR, 'exec: "x": executable file not found in $PATH\nsecond line é')
        sync.send(w, sync.READY)
        os.close(w)
        w = -1
        assert sync.receive(r) == (sync.PID, "1234")
        assert sync.receive(r) == (sync.ERROR, 'exec: "x": executable file not found in $PATH\nsecond line é')
        assert sync.receive(r) == (sync.READY, "")
        with pytest.raises(sync.ChannelClosed):
            sync.receive(r)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
