"""Host ports: one a program listens on is refused by name; a chosen one is free and not held."""

from __future__ import annotations

import re
import socket

import pytest

from pallet.errors import Conflict, InvalidArgument
from pallet.network import ports


def test_a_listening_port_is_refused_in_dockers_words() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with pytest.raises(
            Conflict, match=re.escape(f"Bind for 127.0.0.1:{port} failed: port is already allocated")
        ):
            ports.check_free("tcp", "127.0.0.1", port)
        ports.check_free("udp", "127.0.0.1", port)  # another protocol is another port


def test_out_of_range_and_foreign_addresses_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="between 1 and 65535"):
        ports.check_free("tcp", "", 70000)
    with pytest.raises(InvalidArgument, match="not an address of this host"):
        ports.check_free("tcp", "192.0.2.123", 40000)


def test_a_chosen_port_is_in_the_ephemeral_range_free_and_not_held() -> None:
    low, high = ports.local_port_range()
    held = {low, low + 1}
    port = ports.choose_free("tcp", "127.0.0.1", held)
    assert low <= port <= high
    assert port not in held
    ports.check_free("tcp", "127.0.0.1", port)
