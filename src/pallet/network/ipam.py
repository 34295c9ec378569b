"""IP address management: which subnet a network gets, which address an endpoint gets. Pure logic.

No I/O here: the caller passes what is taken (the host's routes, the other
networks' subnets, the addresses held in the database) and stores what comes
back, in the same transaction as the attachment that holds it
(``pallet.network.store``). So the rules are property-tested alone.

- **Subnets** come from address pools, as docker's ``default-address-pools``:
  by default 172.17.0.0/16, then each /16 of 172.18.0.0–172.31.0.0, then
  192.168.0.0/16 cut into /20s. The first candidate that overlaps neither a
  host route (other than the default route) nor another network is chosen.
  A subnet given by the user must not overlap either (docker's words: "Pool
  overlaps with other one on this address space").
- **Gateway**: the first host address unless given; it must lie in the subnet.
- **Addresses** are given from the ``ip-range`` (the whole subnet when none)
  minus the network and broadcast addresses and the gateway, *serially*:
  after the last one given, wrapping around, so an address just released is
  the last to be given again (docker's bridge does the same, so a stale
  name-to-address mapping points nowhere rather than at a new container).
  A requested ``--ip`` must lie in the subnet (not necessarily the range),
  not be the gateway, and be free.
"""

from __future__ import annotations

import ipaddress

from pallet.errors import Conflict, InvalidArgument, Unavailable

__all__ = [
    "DEFAULT_POOLS",
    "Pool",
    "Subnet",
    "allocate",
    "choose_subnet",
    "make_subnet",
    "make_subnet6",
    "parse_pools",
]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    Net = ipaddress.IPv4Network | ipaddress.IPv6Network
    Addr = ipaddress.IPv4Address | ipaddress.IPv6Address


class Pool:
    """Subnets of prefix length ``size`` cut from ``base``, in address order."""

    __slots__ = ("base", "size")

    def __init__(self, base: str, size: int) -> None:
        try:
            self.base: Net = ipaddress.ip_network(base)
        except ValueError:
            raise InvalidArgument(f"invalid address pool base {base!r}: not a CIDR network") from None
        if not self.base.prefixlen <= size <= self.base.max_prefixlen:
            raise InvalidArgument(
                f"invalid address pool {base} size {size}: the size must lie between "
                f"{self.base.prefixlen} and {self.base.max_prefixlen}"
            )
        self.size = size

    def subnets(self) -> Iterator[Net]:
        return self.base.subnets(new_prefix=self.size)

    def __repr__(self) -> str:
        return f"Pool({str(self.base)!r}, {self.size})"


#: docker's default address pools (daemon/config defaults), in its order
DEFAULT_POOLS: tuple[Pool, ...] = (
    Pool("172.17.0.0/16", 16),
    Pool("172.18.0.0/15", 16),
    Pool("172.20.0.0/14", 16),
    Pool("172.24.0.0/13", 16),
    Pool("192.168.0.0/16", 20),
)


def parse_pools(entries: Sequence[dict[str, object]]) -> tuple[Pool, ...]:
    """Pools from the configuration's ``default-address-pools`` list (``{"base": CIDR, "size": N}``)."""
    pools = []
    for entry in entries:
        base, size = entry.get("base"), entry.get("size")
        if not isinstance(base, str) or not isinstance(size, int):
            raise InvalidArgument(
                f"invalid address pool {entry!r}: it needs a base (CIDR) and a size (integer)"
            )
        pools.append(Pool(base, size))
    return tuple(pools)


def _overlaps(subnet: Net, taken: Iterable[Net]) -> Net | None:
    for other in taken:
        if other.version == subnet.version and subnet.overlaps(other):
            return other
    return None


def _routed(taken: Iterable[Net]) -> list[Net]:
    # the default route overlaps everything and must not rule anything out
    return [net for net in taken if net.prefixlen > 0]


def choose_subnet(pools: Sequence[Pool], taken: Iterable[Net]) -> Net:
    """The first subnet of ``pools`` that overlaps nothing in ``taken`` (routes and networks)."""
    busy = _routed(taken)
    for pool in pools:
        for candidate in pool.subnets():
            if _overlaps(candidate, busy) is None:
                return candidate
    raise Unavailable(
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to "
        "the network; give --subnet or add address pools to the configuration"
    )


class Subnet:
    """A network's addressing: subnet, gateway and the range dynamic addresses come from."""

    __slots__ = ("gateway", "ip_range", "subnet")

    def __init__(self, *, subnet: Net, gateway: Addr, ip_range: Net) -> None:
        self.subnet = subnet
        self.gateway = gateway
        self.ip_range = ip_range

    def __repr__(self) -> str:
        return f"Subnet({self.subnet}, gateway={self.gateway}, range={self.ip_range})"

    def usable(self, address: Addr) -> bool:
        """True if ``address`` may be given to an endpoint (in the subnet, not reserved)."""
        subnet = self.subnet
        if address.version != subnet.version or address not in subnet:
            return False
        if address in (self.gateway, subnet.network_address):
            return False
        return not (subnet.version == 4 and subnet.prefixlen < 31 and address == subnet.broadcast_address)


def _network(text: str, what: str) -> Net:
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise InvalidArgument(f"invalid {what} {text!r}: not a CIDR network (e.g. 10.1.0.0/24)") from None
        raise InvalidArgument(
            f"invalid {what} {text!r}: host bits are set; did you mean its network address?"
        ) from None


def make_subnet(
    *,
    subnet: str = "",
    gateway: str = "",
    ip_range: str = "",
    pools: Sequence[Pool] = DEFAULT_POOLS,
    taken: Iterable[Net] = (),
) -> Subnet:
    """The addressing of a new network, validated; ``subnet`` chosen from ``pools`` when empty."""
    busy = _routed(taken)
    if subnet:
        net = _network(subnet, "subnet")
        if net.version == 4 and net.prefixlen > 30:
            raise InvalidArgument(f"invalid subnet {subnet}: too small for a bridge network (at most /30)")
        other = _overlaps(net, busy)
        if other is not None:
            raise Conflict(
                f"invalid pool request: Pool overlaps with other one on this address space ({other})"
            )
    else:
        if gateway or ip_range:
            raise InvalidArgument("--gateway and --ip-range need --subnet")
        net = choose_subnet(pools, busy)
    if ip_range:
        rng = _network(ip_range, "ip-range")
        if rng.version != net.version or not rng.subnet_of(net):  # type: ignore[arg-type]
            raise InvalidArgument(f"invalid ip-range {ip_range}: it must lie within the subnet {net}")
    else:
        rng = net
    if gateway:
        try:
            gw: Addr = ipaddress.ip_address(gateway)
        except ValueError:
            raise InvalidArgument(f"invalid gateway {gateway!r}: not an IP address") from None
        if gw.version != net.version or gw not in net or gw in (net.network_address, net.broadcast_address):
            raise InvalidArgument(
                f"no matching subnet for gateway {gateway}: it must be a host address of {net}"
            )
    else:
        gw = net.network_address + 1
    return Subnet(subnet=net, gateway=gw, ip_range=rng)


def make_subnet6(
    *, subnet: str = "", gateway: str = "", ip_range: str = "", taken: Iterable[Net] = (), random: bytes = b""
) -> Subnet:
    """The IPv6 addressing of a dual-stack network, validated; without ``subnet``, a /64 of a unique
    local prefix (RFC 4193: ``fd`` and 40 random bits, ``random`` giving them in tests) that overlaps
    nothing taken. ``ip_range``: where dynamic addresses come from (the subnet when empty)."""
    busy = [net for net in _routed(taken) if net.version == 6]
    if subnet:
        net = _network(subnet, "IPv6 subnet")
        if net.version != 6:
            raise InvalidArgument(f"invalid IPv6 subnet {subnet}: not an IPv6 network")
        if net.prefixlen > 124:
            raise InvalidArgument(
                f"invalid IPv6 subnet {subnet}: too small for a bridge network (at most /124)"
            )
        other = _overlaps(net, busy)
        if other is not None:
            raise Conflict(
                f"invalid pool request: Pool overlaps with other one on this address space ({other})"
            )
    else:
        import os

        for _ in range(16):
            global_id = random or os.urandom(5)
            net = ipaddress.IPv6Network((b"\xfd" + global_id[:5] + bytes(10), 64))
            if _overlaps(net, busy) is None:
                break
            random = b""
        else:
            raise Unavailable(
                "could not find a free IPv6 unique local prefix; give --subnet with an IPv6 CIDR"
            )
    if gateway:
        try:
            gw: Addr = ipaddress.ip_address(gateway)
        except ValueError:
            raise InvalidArgument(f"invalid IPv6 gateway {gateway!r}: not an IP address") from None
        if gw.version != 6 or gw not in net or gw == net.network_address:
            raise InvalidArgument(
                f"no matching subnet for gateway {gateway}: it must be a host address of {net}"
            )
    else:
        gw = net.network_address + 1
    rng: Net = net
    if ip_range:
        if not subnet:
            raise InvalidArgument("every ip-range or gateway must have a corresponding subnet")
        rng = _network(ip_range, "IPv6 ip-range")
        if not isinstance(rng, ipaddress.IPv6Network) or not rng.subnet_of(net):
            raise InvalidArgument(f"invalid ip-range {ip_range}: it must lie within the subnet {net}")
    return Subnet(subnet=net, gateway=gw, ip_range=rng)


def allocate(addressing: Subnet, used: Iterable[Addr], *, last: Addr | None = None, wanted: str = "") -> Addr:
    """An address for a new endpoint: ``wanted`` if given and free, else the next free one after ``last``.

    ``used``: the addresses held by the network's endpoints.
    """
    held = set(used)
    if wanted:
        try:
            address: Addr = ipaddress.ip_address(wanted)
        except ValueError:
            raise InvalidArgument(f"invalid IP address {wanted!r}") from None
        if not addressing.usable(address):
            if address == addressing.gateway:
                raise InvalidArgument(f"requested address {wanted} is the network's gateway")
            raise InvalidArgument(
                f"requested address {wanted} is not in the network's subnet {addressing.subnet}"
            )
        if address in held:
            raise Conflict(f"Address already in use: {wanted} is held by another container on this network")
        return address
    rng = addressing.ip_range
    first, end = int(rng.network_address), int(rng.broadcast_address)
    start = first
    if last is not None and last in rng:
        start = int(last) + 1
    total = end - first + 1
    kind = type(rng.network_address)
    for step in range(total):
        candidate = kind(first + (start - first + step) % total)
        if candidate not in held and addressing.usable(candidate):
            return candidate
    raise Unavailable(f"no available IPv{rng.version} addresses on this network's address pools ({rng})")
