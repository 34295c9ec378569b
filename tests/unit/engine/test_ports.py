"""``port``: docker's lines for published ports, and its error for an unpublished one."""

from __future__ import annotations

import pytest

from pallet.engine.observe.ports import parse_port, port_lines
from pallet.errors import InvalidArgument, NotFound

DOC = [("80/tcp", "", 8080), ("80/tcp", "::", 8080), ("53/udp", "127.0.0.1", 5353)]


def test_all_ports_in_port_order() -> None:
    assert port_lines(DOC, "web") == [
        "53/udp -> 127.0.0.1:5353",
        "80/tcp -> 0.0.0.0:8080",
        "80/tcp -> [::]:8080",
    ]


def test_one_port_prints_its_addresses() -> None:
    assert port_lines(DOC, "web", "80") == ["0.0.0.0:8080", "[::]:8080"]


def test_no_bindings_prints_nothing_and_a_port_is_not_found() -> None:
    assert port_lines([], "web") == []
    with pytest.raises(NotFound, match="No public port '443/tcp' published for web"):
        port_lines([], "web", "443/tcp")


@pytest.mark.parametrize("bad", ["http", "0", "70000", "80/icmp"])
def test_bad_port_is_invalid(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_port(bad)
