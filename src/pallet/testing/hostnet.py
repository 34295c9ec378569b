"""The host's network state for end-to-end tests: snapshots to compare, and an "outside" namespace.

``HostNet.take()`` records what ``ip -o link``, ``ip netns``, ``nft list
ruleset`` and the process list show; ``HostNet.leftovers(before, mine)``
says what of it the test left behind. Other programs (other tests, docker,
podman) change the host at the same time, so a difference counts as the
test's only when ``mine`` claims it: by name (the test's bridges and
tables, pallet's veths ``veth`` + 11 hex), by a process's command line or
root directory naming the test's temp dir. Everything else is returned
apart, for a warning.

``Outside`` is the world outside the host as a test may reach it: a network
namespace the test makes, behind a veth pair of its own, on a /24 the test
picked among addresses no host route touches. A container's traffic to it
leaves the bridge, is routed by the host and masqueraded on the way, exactly
as traffic to the internet would be; nothing leaves the machine.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import subprocess
from dataclasses import dataclass, field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["HostNet", "Outside", "free_subnet", "pallet_veth", "processes_under"]

#: pallet's host end of a veth pair: ``veth`` + 11 hex of the endpoint id (docker's have 7)
_PALLET_VETH = re.compile(r"veth[0-9a-f]{11}")


def pallet_veth(name: str) -> bool:
    return _PALLET_VETH.fullmatch(name) is not None


def _lines(*argv: str) -> list[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return [line for line in done.stdout.splitlines() if line.strip()]


def _links() -> dict[str, str]:
    """Interface name -> its master's name (empty when none), from ``ip -o link``."""
    out: dict[str, str] = {}
    for line in _lines("ip", "-o", "link", "show"):
        name = line.split(":", 2)[1].strip().split("@", 1)[0]
        master = re.search(r" master (\S+)", line)
        out[name] = master.group(1) if master else ""
    return out


def _tables() -> dict[str, str]:
    """``family name`` -> the table's listing without rule handles, from ``nft list ruleset``."""
    tables: dict[str, str] = {}
    current = ""
    for line in _lines("nft", "list", "ruleset"):
        if line.startswith("table "):
            current = line[len("table ") :].rstrip(" {")
            tables[current] = ""
        elif current:
            tables[current] += re.sub(r" # handle \d+", "", line) + "\n"
    return tables


def _processes() -> dict[int, str]:
    """pid -> its command line (NULs as spaces), with ``[root DIR]`` after it when its root directory
    is not the host's (a container's processes: their root is the container's rootfs)."""
    out: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                text = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            root = os.readlink(f"/proc/{entry}/root")
        except OSError:
            continue
        out[int(entry)] = text if root == "/" else f"{text} [root {root}]"
    return out


def processes_under(path: str) -> list[int]:
    """Pids whose command line names ``path`` or whose root directory lies under it."""
    return [pid for pid, text in _processes().items() if path in text]


@dataclass(frozen=True, slots=True, kw_only=True)
class HostNet:
    """What the host shows at one moment."""

    links: dict[str, str] = field(default_factory=dict)
    netns: frozenset[str] = frozenset()
    tables: dict[str, str] = field(default_factory=dict)
    processes: dict[int, str] = field(default_factory=dict)

    @classmethod
    def take(cls) -> HostNet:
        return cls(
            links=_links(),
            netns=frozenset(line.split()[0] for line in _lines("ip", "netns", "list")),
            tables=_tables(),
            processes=_processes(),
        )

    def leftovers(self, before: HostNet, mine: Callable[[str, str], bool]) -> tuple[list[str], list[str]]:
        """(what differs from ``before`` that ``mine(kind, name)`` claims, what differs otherwise).

        Kinds: ``link`` (``mine`` also sees a link whose master it claims),
        ``orphan`` (a link added since, with no master now: a veth whose bridge
        went), ``netns``, ``nft`` (a table: added, removed or changed),
        ``process`` (its command line).
        """
        ours: list[str] = []
        others: list[str] = []

        def sort(kind: str, name: str, what: str) -> None:
            (ours if mine(kind, name) else others).append(f"{kind} {what}")

        for name in set(self.links) ^ set(before.links):
            master = self.links.get(name) or before.links.get(name, "")
            added = name in self.links
            claimed = (
                mine("link", name)
                or bool(master and mine("link", master))
                or (added and not master and mine("orphan", name))
            )
            (ours if claimed else others).append(f"link {name} {'added' if added else 'removed'}")
        for name in self.netns ^ before.netns:
            sort("netns", name, f"{name} {'removed' if name in before.netns else 'added'}")
        for table in set(self.tables) | set(before.tables):
            if self.tables.get(table) != before.tables.get(table):
                sort("nft", table, f"table {table} changed")
        for pid in set(self.processes) - set(before.processes):
            sort("process", self.processes[pid], f"{pid} {self.processes[pid]!r}")
        return sorted(ours), sorted(others)


def _routes() -> list[ipaddress.IPv4Network]:
    out = []
    for line in _lines("ip", "-4", "route", "show", "table", "all"):
        dst = line.split()[0]
        if dst in ("default", "broadcast", "local", "unreachable", "multicast"):
            dst = line.split()[1] if dst in ("broadcast", "local") else ""
        if dst and dst[0].isdigit():
            out.append(ipaddress.IPv4Network(dst if "/" in dst else dst + "/32", strict=False))
    return out


# Handed out by this process: a network gets its bridge, and so its route, only when a container
# attaches, so two networks made one after the other would not see each other in the routes.
_given: set[ipaddress.IPv4Network] = set()


def free_subnet(second: int, avoid: tuple[str, ...] = ()) -> str:
    """A random /24 of 10.<second>.0.0/16 that no host route, ``avoid`` or earlier call touches."""
    taken = _routes() + [ipaddress.IPv4Network(a) for a in avoid]
    for _ in range(200):
        candidate = ipaddress.IPv4Network(f"10.{second}.{secrets.randbelow(254) + 1}.0/24")
        if candidate not in _given and not any(candidate.overlaps(r) for r in taken):
            _given.add(candidate)
            return str(candidate)
    raise RuntimeError(f"no free /24 in 10.{second}.0.0/16")


class Outside:
    """A namespace at ``path`` standing for the world outside: its end of a veth pair is ``eth0`` with
    ``ip`` (``.2`` of the /24), the host's end is ``link`` with ``host_ip`` (``.1``). It has no route
    back to any container subnet, so an answer can only come back through the host's NAT.

    ``remove()`` deletes the pair and the namespace (idempotent); call it in a finalizer."""

    def __init__(self, path: str, link: str, second: int = 254) -> None:
        from pallet.network import netns
        from pallet.network.netlink import Netlink

        subnet = ipaddress.IPv4Network(free_subnet(second))
        self.subnet = str(subnet)
        self.host_ip = str(subnet.network_address + 1)
        self.ip = str(subnet.network_address + 2)
        self.path = path
        self.link = link
        netns.create(path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                with Netlink.open() as nl:
                    nl.add_veth(link, "eth0", peer_netns_fd=fd)
                    nl.add_address(link, self.host_ip, 24)
                    nl.set_link(link, up=True)
            finally:
                os.close(fd)
            with Netlink.open(path) as inside:
                inside.set_link("lo", up=True)
                inside.set_link("eth0", up=True)
                inside.add_address("eth0", self.ip, 24)
        except BaseException:
            self.remove()
            raise

    def run(self, *argv: str) -> subprocess.Popen[bytes]:
        """A program in the namespace (the caller ends it by pid)."""
        return subprocess.Popen(
            ["nsenter", f"--net={self.path}", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def remove(self) -> None:
        from pallet.errors import PalletError
        from pallet.network import netns
        from pallet.network.netlink import Netlink

        try:
            with Netlink.open() as nl:
                nl.delete_link(self.link)
        except PalletError:
            pass
        netns.remove(self.path)
