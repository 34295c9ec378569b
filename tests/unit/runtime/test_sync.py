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


def test_answer_to_an_init_that_already_failed_raises_the_inits_error() -> None:
    from pallet.runtime.create import CreateFailed, _reply

    to_init_r, to_init_w = os.pipe()
    from_init_r, from_init_w = os.pipe()
    try:
        # the init reported its error and exited: its end of our answer pipe is closed
        sync.send(from_init_w, sync.ERROR, "mount /mnt: no such file or directory")
        os.close(to_init_r)
        with pytest.raises(CreateFailed, match=r"^mount /mnt: no such file or directory$"):
            _reply(to_init_w, from_init_r, sync.CGROUP_DONE)
    finally:
        for fd in (to_init_w, from_init_r, from_init_w):
            os.close(fd)
