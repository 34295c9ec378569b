"""IPAM: subnets chosen from docker's pools around what is taken; addresses given once, serially."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pallet.errors import Conflict, InvalidArgument, Unavailable
from pallet.network import ipam


def net(text: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text)


def test_the_first_default_subnet_is_dockers_bridge() -> None:
    assert ipam.choose_subnet(ipam.DEFAULT_POOLS, []) == net("172.17.0.0/16")


def test_a_host_route_or_a_network_pushes_the_choice_on() -> None:
    taken = [net("0.0.0.0/0"), net("172.17.5.0/24"), net("172.18.0.0/16")]
    assert ipam.choose_subnet(ipam.DEFAULT_POOLS, taken) == net("172.19.0.0/16")


def test_after_the_172_pools_come_192_168_slash_20s() -> None:
    taken = [net("172.16.0.0/12"), net("192.168.0.0/20")]
    assert ipam.choose_subnet(ipam.DEFAULT_POOLS, taken) == net("192.168.16.0/20")


def test_exhausted_pools_say_what_to_do() -> None:
    with pytest.raises(Unavailable, match="--subnet"):
        ipam.choose_subnet([ipam.Pool("10.0.0.0/24", 25)], [net("10.0.0.0/24")])


@given(st.lists(st.integers(0, 255).map(lambda n: net(f"172.{16 + n % 16}.{n}.0/24")), max_size=30))
def test_a_chosen_subnet_never_overlaps_what_is_taken(taken: list[ipaddress.IPv4Network]) -> None:
    chosen = ipam.choose_subnet(ipam.DEFAULT_POOLS, taken)
    assert not any(chosen.overlaps(t) for t in taken)


def test_configured_pools_are_read() -> None:
    pools = ipam.parse_pools([{"base": "10.10.0.0/16", "size": 24}])
    assert ipam.choose_subnet(pools, [net("10.10.0.0/24")]) == net("10.10.1.0/24")
    with pytest.raises(InvalidArgument):
        ipam.parse_pools([{"base": "10.10.0.0/16"}])
    with pytest.raises(InvalidArgument):
        ipam.Pool("10.10.0.0/16", 8)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"subnet": "10.1.0.0/33"}, InvalidArgument, "not a CIDR"),
        ({"subnet": "10.1.0.1/24"}, InvalidArgument, "host bits"),
        ({"subnet": "10.1.0.0/24", "gateway": "10.2.0.1"}, InvalidArgument, "no matching subnet for gateway"),
        ({"subnet": "10.1.0.0/24", "gateway": "nope"}, InvalidArgument, "not an IP address"),
        ({"subnet": "10.1.0.0/24", "ip_range": "10.1.1.0/25"}, InvalidArgument, "within the subnet"),
        ({"gateway": "10.1.0.1"}, InvalidArgument, "need --subnet"),
        ({"subnet": "10.1.0.0/24", "taken": [net("10.1.0.128/25")]}, Conflict, "Pool overlaps"),
    ],
)
def test_bad_addressing_is_refused_in_one_line(kwargs: dict[str, object], error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        ipam.make_subnet(**kwargs)  # type: ignore[arg-type]


def test_defaults_gateway_and_range() -> None:
    s = ipam.make_subnet(subnet="10.1.0.0/24")
    assert (str(s.gateway), s.ip_range) == ("10.1.0.1", net("10.1.0.0/24"))
    s = ipam.make_subnet(subnet="10.1.0.0/24", gateway="10.1.0.254", ip_range="10.1.0.128/25")
    assert (str(s.gateway), s.ip_range) == ("10.1.0.254", net("10.1.0.128/25"))


def test_addresses_skip_network_gateway_and_broadcast() -> None:
    s = ipam.make_subnet(subnet="10.1.0.0/30")
    assert str(ipam.allocate(s, [])) == "10.1.0.2"
    with pytest.raises(Unavailable):
        ipam.allocate(s, [ipaddress.IPv4Address("10.1.0.2")])


def test_allocation_is_serial_a_released_address_comes_back_last() -> None:
    s = ipam.make_subnet(subnet="10.1.0.0/29")  # hosts .2-.6 besides the gateway .1
    first = ipam.allocate(s, [])
    second = ipam.allocate(s, [first], last=first)
    # first released: the next is still after second
    third = ipam.allocate(s, [second], last=second)
    assert [str(a) for a in (first, second, third)] == ["10.1.0.2", "10.1.0.3", "10.1.0.4"]
    # wraps around at the end of the range
    assert str(ipam.allocate(s, [], last=ipaddress.IPv4Address("10.1.0.6"))) == "10.1.0.2"


def test_a_requested_address_must_be_in_the_subnet_and_free() -> None:
    s = ipam.make_subnet(subnet="10.1.0.0/24", ip_range="10.1.0.128/25")
    assert str(ipam.allocate(s, [], wanted="10.1.0.5")) == "10.1.0.5"  # outside the range is fine
    with pytest.raises(InvalidArgument, match="not in the network's subnet"):
        ipam.allocate(s, [], wanted="10.2.0.5")
    with pytest.raises(InvalidArgument, match="gateway"):
        ipam.allocate(s, [], wanted="10.1.0.1")
    with pytest.raises(Conflict, match="already in use"):
        ipam.allocate(s, [ipaddress.IPv4Address("10.1.0.5")], wanted="10.1.0.5")


@given(st.integers(24, 29), st.data())
def test_allocations_are_distinct_usable_and_in_range(prefix: int, data: st.DataObject) -> None:
    s = ipam.make_subnet(subnet=f"10.9.0.0/{prefix}")
    held: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    last = None
    capacity = 2 ** (32 - prefix) - 3
    for _ in range(min(capacity, 40)):
        if held and data.draw(st.booleans()):
            held.remove(data.draw(st.sampled_from(held)))
        address = ipam.allocate(s, held, last=last)
        assert address not in held
        assert s.usable(address)
        assert address in s.ip_range
        held.append(address)
        last = address


def test_an_ipv6_subnet_is_a_unique_local_slash_64_unless_given() -> None:
    s = ipam.make_subnet6(random=bytes.fromhex("0102030405"))
    assert str(s.subnet) == "fd01:203:405::/64"
    assert str(s.gateway) == "fd01:203:405::1"
    taken = [ipaddress.IPv6Network("fd01:203:405::/48")]
    assert ipam.make_subnet6(random=bytes.fromhex("0102030405"), taken=taken).subnet != s.subnet
    given_ = ipam.make_subnet6(subnet="fd00:1::/64", gateway="fd00:1::fe")
    assert str(given_.gateway) == "fd00:1::fe"
    with pytest.raises(InvalidArgument, match="not an IPv6 network"):
        ipam.make_subnet6(subnet="10.0.0.0/24")
    with pytest.raises(InvalidArgument, match="no matching subnet for gateway"):
        ipam.make_subnet6(subnet="fd00:1::/64", gateway="fd00:2::1")
    with pytest.raises(Conflict, match="Pool overlaps"):
        ipam.make_subnet6(subnet="fd00:1::/64", taken=[ipaddress.IPv6Network("fd00::/16")])


def test_ipv6_addresses_are_serial_too() -> None:
    s = ipam.make_subnet6(subnet="fd00:1::/64")
    first = ipam.allocate(s, [])
    assert str(first) == "fd00:1::2"
    assert str(ipam.allocate(s, [first], last=first)) == "fd00:1::3"
