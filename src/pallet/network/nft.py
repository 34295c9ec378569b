"""NAT, published ports and isolation as nftables batches, in one table that belongs to pallet only.

Each pallet root has its own table, ``inet pallet-<tag>``; pallet never
lists, flushes or edits any other table (docker's and podman's live beside
it; a packet must pass every table's chains, so pallet's accept never
overrides another table's drop). Every change is **one** ``nft -f -`` batch,
which the kernel applies atomically: all of it or none.

The table (``table_batch``)::

    map ports        host address . protocol . port -> jump c-<endpoint>  (published ports)
    map to_bridge    oifname  -> jump n-<net>-in        (postrouting: hairpin and 127.0.0.1 masquerade)
    map from_subnet  saddr    -> jump n-<net>-out       (postrouting: outbound masquerade)
    map from_subnet6 the same for a dual-stack network's IPv6 subnet
    map fwd_in       iifname  -> jump n-<net>-from      (forward: what leaves a bridge)
    map fwd_out      oifname  -> jump n-<net>-to        (forward: what enters a bridge)
    set bridges      every bridge of this root           (isolation; the 127.0.0.0/8 guard)
    chain prerouting nat/dstnat   local destination: ports lookup
    chain output     nat/-100     the same for the host's own connections (127.0.0.1 included)
    chain postrouting nat/srcnat  to_bridge, then from_subnet
    chain forward    filter       fwd_in, then fwd_out
    chain guard      filter/raw   from a bridge to 127.0.0.0/8: drop (route_localnet's hole closed)

The base chains hold only those fixed dispatch rules, so a network or a
published port is a chain of its own plus map elements, added and removed by
key — never by rule handle, so nothing needs to be listed first.

Idempotence without listing: a removal batch first *adds* what it removes
(``add`` of something present is a no-op, in the same transaction), then
deletes it. ``rebuild_batch`` replaces the whole table with what the
database says in one transaction (the reconcile): leftovers of a command
killed mid-way vanish, and established connections keep their conntrack
NAT state across the swap.

127.0.0.1 publishing: DNAT in the ``output`` hook plus ``route_localnet`` on
the bridge (set by the driver) and a masquerade of 127.0.0.0/8 into the
bridge — docker's ``userland-proxy=false`` mode. No proxy process per port:
nothing to leak or to restart, and the kernel forwards at full speed
(docker-proxy copies every byte through user space). ``route_localnet``
would let neighbours on the bridge reach the host's 127.0.0.0/8 services
(CVE-2020-8558); the ``guard`` chain drops those packets before routing.

The one exception to "never another table", decided for docker's FORWARD
policy DROP (set by dockerd when it turns forwarding on; a packet must be
accepted by every base chain, so pallet's accept alone loses outbound NAT
and published ports): pallet adds accept rules for its bridges to docker's
``DOCKER-USER`` chain, the place docker documents for other parties' rules
and the one podman's netavark uses, each tagged ``pallet:<tag>:<bridge>`` so
that exactly those are removed again; nothing else of the table is read for
change or edited. ``forward_policy`` owns it, and writes through
iptables-nft (a native ``ct`` rule of ``nft`` would make docker's table
unreadable for iptables-nft).
"""

from __future__ import annotations

import ipaddress
import os

from pallet.errors import Conflict, Unavailable, Unknown

__all__ = [
    "NetworkRules",
    "PortRules",
    "apply",
    "compose",
    "network_add_batch",
    "network_remove_batch",
    "ports_add_batch",
    "ports_remove_batch",
    "rebuild_batch",
    "run",
    "table_batch",
    "table_name",
    "table_remove_batch",
]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from pallet.network.store import PortMapping

FAMILY = "inet"
_BASE_CHAINS = (
    ("prerouting", "type nat hook prerouting priority dstnat; policy accept;"),
    ("output", "type nat hook output priority -100; policy accept;"),
    ("postrouting", "type nat hook postrouting priority srcnat; policy accept;"),
    ("forward", "type filter hook forward priority filter; policy accept;"),
    ("guard", "type filter hook prerouting priority raw; policy accept;"),
)
_MAPS = (
    ("map", "ports", "type ipv4_addr . inet_proto . inet_service : verdict; flags interval;"),
    ("map", "to_bridge", "type ifname : verdict;"),
    ("map", "from_subnet", "type ipv4_addr : verdict; flags interval;"),
    ("map", "from_subnet6", "type ipv6_addr : verdict; flags interval;"),
    ("map", "fwd_in", "type ifname : verdict;"),
    ("map", "fwd_out", "type ifname : verdict;"),
    ("set", "bridges", "type ifname;"),
)
_DISPATCH = (
    ("prerouting", "fib daddr type local ip daddr . meta l4proto . th dport vmap @ports"),
    ("output", "fib daddr type local ip daddr . meta l4proto . th dport vmap @ports"),
    ("postrouting", "oifname vmap @to_bridge"),
    ("postrouting", "ip saddr vmap @from_subnet"),
    ("postrouting", "ip6 saddr vmap @from_subnet6"),
    ("forward", "iifname vmap @fwd_in"),
    ("forward", "oifname vmap @fwd_out"),
    ("guard", "iifname @bridges ip daddr 127.0.0.0/8 drop"),
)


def table_name(tag: str) -> str:
    """The table of the root tagged ``tag`` (a short stable id of the root, chosen by the engine)."""
    return f"pallet-{tag}"


class NetworkRules:
    """What the table needs to know of a network: its bridge, subnet and whether it is internal."""

    __slots__ = ("bridge", "id", "internal", "subnet", "subnet6")

    def __init__(
        self, *, id: str, bridge: str, subnet: str, internal: bool = False, subnet6: str = ""
    ) -> None:
        self.id = id[:12]
        self.bridge = bridge
        self.subnet = str(ipaddress.ip_network(subnet))
        self.internal = internal
        self.subnet6 = str(ipaddress.ip_network(subnet6)) if subnet6 else ""


class PortRules:
    """An endpoint's published ports: its id, address and mappings."""

    __slots__ = ("id", "ip", "ports")

    def __init__(self, *, id: str, ip: str, ports: Sequence[PortMapping]) -> None:
        self.id = id[:12]
        self.ip = ip
        self.ports = tuple(ports)


#: the order commands take in a batch, by their first words; a stable sort keeps rules in order
_ORDER = (
    "add table", "add chain", "flush chain", "add map", "add set", "add rule", "add element", "delete element",
    "delete chain",
)  # fmt: skip


def compose(*parts: str) -> str:
    """Batches merged into one, commands ordered as ``_ORDER``: nft 1.0.6 refuses an element of an
    interval map that jumps to a chain created *after* the map in the same batch, so every chain is
    added before any map."""
    lines = [line for part in parts for line in part.splitlines() if line]
    lines.sort(key=lambda line: next(i for i, p in enumerate(_ORDER) if line.startswith(p)))
    return "\n".join(lines) + "\n" if lines else ""


def _quote(name: str) -> str:
    return '"' + name.replace('"', "") + '"'


def _ip_only(rules: Sequence[PortMapping]) -> list[PortMapping]:
    return [p for p in rules if ":" not in p.host_ip]


# --- batches: pure text -------------------------------------------------------------------------


def table_batch(table: str) -> str:
    """The table, its maps and base chains with their dispatch rules. Idempotent (base chains re-filled)."""
    t = f"{FAMILY} {table}"
    lines = [f"add table {t}"]
    lines += [f"add chain {t} {name} {{ {spec} }}" for name, spec in _BASE_CHAINS]
    lines += [f"flush chain {t} {name}" for name, _ in _BASE_CHAINS]
    lines += [f"add {kind} {t} {name} {{ {spec} }}" for kind, name, spec in _MAPS]
    lines += [f"add rule {t} {chain} {rule}" for chain, rule in _DISPATCH]
    return "\n".join(lines) + "\n"


def table_remove_batch(table: str) -> str:
    """Remove the whole table (every network of the root gone). Idempotent."""
    return f"add table {FAMILY} {table}\ndelete table {FAMILY} {table}\n"


def _network_chains(net: NetworkRules) -> dict[str, list[str]]:
    bridge = _quote(net.bridge)
    chains: dict[str, list[str]] = {
        # into the bridge: a published port reached from the bridge itself (hairpin) or from 127.0.0.1
        f"n-{net.id}-in": [f"ct status dnat ip saddr {{ 127.0.0.0/8, {net.subnet} }} masquerade"],
        f"n-{net.id}-from": [f"oifname {bridge} accept"],
        f"n-{net.id}-to": ["ct state established,related accept"],
    }
    if net.internal:
        chains[f"n-{net.id}-from"].append("drop")
        chains[f"n-{net.id}-to"].append("drop")
    else:
        chains[f"n-{net.id}-out"] = [f"oifname != {bridge} masquerade"]
        # a published port of another network, reached through the host, is not isolation's business
        chains[f"n-{net.id}-from"] += ["ct status dnat accept", "oifname @bridges drop", "accept"]
        chains[f"n-{net.id}-to"] += ["ct status dnat accept", "drop"]
    return chains


def _network_elements(net: NetworkRules) -> list[tuple[str, str]]:
    bridge = _quote(net.bridge)
    elements = [
        ("to_bridge", f"{bridge} : jump n-{net.id}-in"),
        ("fwd_in", f"{bridge} : jump n-{net.id}-from"),
        ("fwd_out", f"{bridge} : jump n-{net.id}-to"),
        ("bridges", bridge),
    ]
    if not net.internal:
        elements.append(("from_subnet", f"{net.subnet} : jump n-{net.id}-out"))
        if net.subnet6:
            elements.append(("from_subnet6", f"{net.subnet6} : jump n-{net.id}-out"))
    return elements


def network_add_batch(table: str, net: NetworkRules) -> str:
    """A network's chains and map elements. Idempotent (its chains are re-filled)."""
    t = f"{FAMILY} {table}"
    lines = []
    for chain, rules in _network_chains(net).items():
        lines += [f"add chain {t} {chain}", f"flush chain {t} {chain}"]
        lines += [f"add rule {t} {chain} {rule}" for rule in rules]
    lines += [f"add element {t} {name} {{ {element} }}" for name, element in _network_elements(net)]
    return "\n".join(lines) + "\n"


def network_remove_batch(table: str, net: NetworkRules) -> str:
    """Remove exactly a network's chains and elements. Idempotent (each is added, then deleted)."""
    t = f"{FAMILY} {table}"
    chains = _network_chains(net)
    lines = [f"add chain {t} {chain}" for chain in chains]
    for name, element in _network_elements(net):
        lines += [
            f"add element {t} {name} {{ {element} }}",
            f"delete element {t} {name} {{ {_key(element)} }}",
        ]
    for chain in chains:
        lines += [f"flush chain {t} {chain}", f"delete chain {t} {chain}"]
    return "\n".join(lines) + "\n"


def _key(element: str) -> str:
    return element.split(" : ", 1)[0]


def _port_key(port: PortMapping) -> str:
    address = "0.0.0.0/0" if port.host_ip == "0.0.0.0" else port.host_ip
    return f"{address} . {port.protocol} . {port.host_port}"


def _port_rule(port: PortMapping, ip: str) -> str:
    match = "" if port.host_ip == "0.0.0.0" else f"ip daddr {port.host_ip} "
    return f"{match}{port.protocol} dport {port.host_port} dnat ip to {ip}:{port.container_port}"


def ports_add_batch(table: str, endpoint: PortRules) -> str:
    """An endpoint's published ports: its chain ``c-<id>`` and one ``ports`` element per host port.

    Not idempotent on purpose: a host port held by another endpoint makes the
    batch fail ("File exists": ``apply`` raises ``Conflict``) and change nothing.
    The driver removes the endpoint's ports first (``ports_remove_batch``)
    when it re-applies them.
    """
    t = f"{FAMILY} {table}"
    chain = f"c-{endpoint.id}"
    ports = _ip_only(endpoint.ports)
    if not ports:
        return ""
    lines = [f"add chain {t} {chain}", f"flush chain {t} {chain}"]
    lines += [f"add rule {t} {chain} {_port_rule(p, endpoint.ip)}" for p in ports]
    lines += [f"add element {t} ports {{ {_port_key(p)} : jump {chain} }}" for p in ports]
    return "\n".join(lines) + "\n"


def ports_remove_batch(table: str, endpoint: PortRules) -> str:
    """Remove exactly an endpoint's published ports. Idempotent."""
    t = f"{FAMILY} {table}"
    chain = f"c-{endpoint.id}"
    ports = _ip_only(endpoint.ports)
    if not ports:
        return ""
    lines = [f"add chain {t} {chain}"]
    for p in ports:
        # if another endpoint holds the key now, the add fails and the batch changes nothing: the
        # reconcile's rebuild_batch settles it
        lines += [
            f"add element {t} ports {{ {_port_key(p)} : jump {chain} }}",
            f"delete element {t} ports {{ {_port_key(p)} }}",
        ]
    lines += [f"flush chain {t} {chain}", f"delete chain {t} {chain}"]
    return "\n".join(lines) + "\n"


def rebuild_batch(table: str, networks: Sequence[NetworkRules], endpoints: Sequence[PortRules]) -> str:
    """The whole table as the database describes it, replacing what is there, in one transaction."""
    if not networks:
        return table_remove_batch(table)
    return table_remove_batch(table) + compose(
        table_batch(table),
        *(network_add_batch(table, n) for n in networks),
        *(ports_add_batch(table, e) for e in endpoints),
    )


# --- applying -----------------------------------------------------------------------------------

#: where nft is looked for (Debian's package puts it in /usr/sbin, which a user's PATH may lack)
NFT_PATHS = ("/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft")


def _nft() -> str:
    for path in NFT_PATHS:
        if os.access(path, os.X_OK):
            return path
    import shutil

    found = shutil.which("nft")
    if found is None:
        raise Unavailable("nft is not installed: bridge networks need nftables (apt-get install nftables)")
    return found


def apply(batch: str) -> None:
    """Run ``batch`` as one ``nft -f -`` transaction; nothing is changed if any line fails.

    A published port taken in the kernel's map is ``Conflict``; any other
    refusal is ``Unknown`` with nft's own words.
    """
    if not batch:
        return
    code, words = _run_nft(batch.encode())
    if code == 0:
        return
    if "File exists" in words and "ports" in words:
        raise Conflict(f"a published host port is already allocated: {words.splitlines()[-1].strip()}")
    raise Unknown(f"nft refused the network rules: {words}")


def _run_nft(batch: bytes) -> tuple[int, str]:
    """``nft -f -`` with ``batch`` on its stdin: its exit status and its stderr (stdout with it)."""
    nft = _nft()
    code, out, err = run([nft, "-f", "-"], batch)
    return code, (out + "\n" + err).strip()


def run(argv: Sequence[str], stdin: bytes) -> tuple[int, str, str]:
    """``argv`` with ``stdin`` on its stdin: its exit status, stdout and stderr.

    ``posix_spawn`` with memfds as stdin, stdout and stderr rather than
    ``subprocess`` (which imports ``threading``, ``selectors`` and more that
    ``pallet run -p`` would otherwise load): no pipe, so no deadlock whatever
    the sizes, and the child inherits only those descriptors' duplicates
    (pallet opens everything else close-on-exec).
    """
    fds = [os.memfd_create(f"pallet-{what}", 0) for what in ("stdin", "stdout", "stderr")]
    try:
        view = memoryview(stdin)
        while view:
            view = view[os.write(fds[0], view) :]
        os.lseek(fds[0], 0, os.SEEK_SET)
        actions: list[tuple[int, int] | tuple[int, int, int]] = [
            (os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(fds)
        ]
        actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in fds]
        pid = os.posix_spawn(argv[0], list(argv), os.environ, file_actions=actions)
        _, status = os.waitpid(pid, 0)
        texts = []
        for fd in fds[1:]:
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            texts.append(b"".join(chunks).decode(errors="replace").strip())
    finally:
        for fd in fds:
            os.close(fd)
    return os.waitstatus_to_exitcode(status), texts[0], texts[1]
