"""``top``'s filtering of ps output: the PID column found by title, commands kept whole."""

from __future__ import annotations

import pytest

from pallet.engine.observe.top import filter_ps
from pallet.errors import InvalidArgument

PS = """UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 01:53 ?        00:00:04 /sbin/init splash
root        4242       1  0 02:40 ?        00:00:00 sh -c sleep 1 & wait
root        4243    4242  0 02:40 ?        00:00:00 sleep 1
"""


def test_keeps_only_the_container_pids_with_whole_commands() -> None:
    listing = filter_ps(PS, {4242, 4243})
    assert listing.titles == ("UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD")
    assert [p[1] for p in listing.processes] == ["4242", "4243"]
    assert listing.processes[0][-1] == "sh -c sleep 1 & wait"


def test_pid_column_is_found_wherever_it_is() -> None:
    listing = filter_ps("COMMAND PID\nsleep 7\nsh 8\n", {8})
    assert listing.processes == (("sh", "8"),)


def test_output_without_pid_column_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match="couldn't find PID field"):
        filter_ps("USER COMMAND\nroot sh\n", {1})
