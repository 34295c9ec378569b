"""The network layer's rows in ``<root>/pallet.db``: networks, endpoints (IPAM allocations), published ports.

The layer declares its tables as one ``Schema`` (owner ``network``, steps
appended, never edited); whoever opens the root's database lists it after
the engine's schemas (``Database.at(root, (..., network.store.SCHEMA))``).
``NetworkStore`` works on that shared ``Database``, and every write goes
through ``db.transaction()``, which joins a transaction the caller already
holds: the engine records a container and its network attachment (the
endpoint, which holds the address) in one transaction.

Contracts:

- An address is held by exactly one endpoint of a network while the row
  exists (``UNIQUE(network_id, ip)``): two processes racing for an address
  cannot both win; the loser's transaction fails and it retries with the
  next address.
- A container is attached to a network at most once
  (``UNIQUE(network_id, container_id)``).
- A published host port (protocol, host address, port) belongs to one
  endpoint (``UNIQUE``); 0.0.0.0 against a specific address of the same port
  is checked by ``publish`` inside the same transaction.
- Removing an endpoint row releases its address and its ports (``ON DELETE
  CASCADE``); a network with endpoints cannot be removed (``RESTRICT``).
- The ``containers`` table is the engine's: nothing here references it, so
  the layer is usable (and tested) alone; ``reconcile`` is handed the ids of
  the containers that exist.
"""

from __future__ import annotations

import ipaddress

from pallet.database import Schema
from pallet.errors import AlreadyExists, Conflict, FailedPrecondition, InvalidArgument, NotFound
from pallet.network import ipam

__all__ = ["SCHEMA", "Endpoint", "Network", "NetworkStore", "PortMapping"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
else:  # the C module sqlite3 re-exports, as pallet.database does (sqlite3's dbapi2 imports datetime)
    import _sqlite3 as sqlite3
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any

    from pallet.database import Database

_V1 = """
CREATE TABLE networks (
    id        TEXT PRIMARY KEY,                 -- 64 hex
    name      TEXT NOT NULL UNIQUE,
    driver    TEXT NOT NULL DEFAULT 'bridge',
    bridge    TEXT NOT NULL UNIQUE,             -- the Linux interface (<= 15 bytes)
    subnet    TEXT NOT NULL,                    -- CIDR
    gateway   TEXT NOT NULL,
    ip_range  TEXT NOT NULL,                    -- CIDR within subnet (the subnet when not given)
    internal  INTEGER NOT NULL DEFAULT 0,       -- no route out, no NAT
    dns       INTEGER NOT NULL DEFAULT 1,       -- a resolver serves names (not on the default bridge)
    mtu       INTEGER NOT NULL DEFAULT 1500,
    created   TEXT NOT NULL,                    -- RFC 3339, UTC
    labels    TEXT NOT NULL DEFAULT '{}',       -- JSON object
    options   TEXT NOT NULL DEFAULT '{}',       -- JSON object (driver options, docker's -o)
    last_ip   TEXT NOT NULL DEFAULT '',         -- the address given last (serial allocation)
    subnet6   TEXT NOT NULL DEFAULT '',         -- IPv6 CIDR ('': IPv4 only)
    gateway6  TEXT NOT NULL DEFAULT '',
    last_ip6  TEXT NOT NULL DEFAULT ''
);

CREATE TABLE endpoints (
    id           TEXT PRIMARY KEY,              -- 64 hex (docker's EndpointID)
    network_id   TEXT NOT NULL REFERENCES networks(id) ON DELETE RESTRICT,
    container_id TEXT NOT NULL,
    name         TEXT NOT NULL,                 -- the container's name (resolved on user networks)
    aliases      TEXT NOT NULL DEFAULT '[]',    -- JSON list of names
    ip           TEXT NOT NULL,
    mac          TEXT NOT NULL,
    veth         TEXT NOT NULL,                 -- the host end's interface name
    netns        TEXT NOT NULL,                 -- the namespace file the container end lives in
    ip6          TEXT NOT NULL DEFAULT '',      -- '' on an IPv4-only network
    UNIQUE (network_id, container_id),
    UNIQUE (network_id, ip)
);
CREATE INDEX endpoints_container ON endpoints(container_id);
CREATE UNIQUE INDEX endpoints_ip6 ON endpoints(network_id, ip6) WHERE ip6 != '';

CREATE TABLE published_ports (
    endpoint_id    TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    protocol       TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp', 'sctp')),
    host_ip        TEXT NOT NULL,               -- 0.0.0.0: every address of the host
    host_port      INTEGER NOT NULL,
    container_port INTEGER NOT NULL,
    UNIQUE (protocol, host_ip, host_port)
);
CREATE INDEX published_ports_endpoint ON published_ports(endpoint_id);
"""

# what docker's API keeps as given and shows back: a network's IPAM options (NULL: none given, shown
# as null, as dockerd does for a request without them), its auxiliary addresses (reserved, never
# given to an endpoint) and IPv6 range; an endpoint's requested IPAMConfig, Links and DriverOpts
_V2 = """
ALTER TABLE networks ADD COLUMN ip_range6 TEXT NOT NULL DEFAULT '';
ALTER TABLE networks ADD COLUMN ipam_options TEXT DEFAULT '{}';
ALTER TABLE networks ADD COLUMN aux_addresses TEXT NOT NULL DEFAULT '{}';
ALTER TABLE endpoints ADD COLUMN config TEXT NOT NULL DEFAULT '{}';
"""

# docker's predefined networks beside the default bridge, ``host`` and ``none``: modes, not bridges;
# their ids (random, as dockerd's) and creation times are kept so they stay the same for the root
_V3 = """
CREATE TABLE predefined_networks (
    name    TEXT PRIMARY KEY,
    id      TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL
);
"""

#: the network layer's schema; append steps, never edit one
SCHEMA = Schema(owner="network", steps=(_V1, _V2, _V3))


class Network:
    """A network as stored."""

    __slots__ = (
        "aux_addresses", "bridge", "created", "dns", "gateway", "gateway6", "id", "internal", "ip_range",
        "ip_range6", "ipam_options", "labels", "mtu", "name", "options", "subnet", "subnet6",
    )  # fmt: skip

    def __init__(
        self,
        *,
        id: str,
        name: str,
        bridge: str,
        subnet: str,
        gateway: str,
        ip_range: str,
        internal: bool = False,
        dns: bool = True,
        mtu: int = 1500,
        created: str = "",
        labels: dict[str, str] | None = None,
        options: dict[str, str] | None = None,
        subnet6: str = "",
        gateway6: str = "",
        ip_range6: str = "",
        ipam_options: dict[str, str] | None = None,
        aux_addresses: dict[str, str] | None = None,
    ) -> None:
        self.id = id
        self.name = name
        self.bridge = bridge
        self.subnet = subnet
        self.gateway = gateway
        self.ip_range = ip_range
        self.internal = internal
        self.dns = dns
        self.mtu = mtu
        self.created = created
        self.labels = labels or {}
        self.options = options or {}
        self.subnet6 = subnet6
        self.gateway6 = gateway6
        self.ip_range6 = ip_range6  # '': the whole subnet6
        self.ipam_options = ipam_options  # None: docker's null (none given)
        self.aux_addresses = aux_addresses or {}

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen

    @property
    def prefixlen6(self) -> int:
        return ipaddress.ip_network(self.subnet6).prefixlen if self.subnet6 else 0

    def addressing6(self) -> ipam.Subnet | None:
        if not self.subnet6:
            return None
        subnet = ipaddress.ip_network(self.subnet6)
        return ipam.Subnet(
            subnet=subnet,
            gateway=ipaddress.ip_address(self.gateway6),
            ip_range=ipaddress.ip_network(self.ip_range6 or self.subnet6),
        )

    def addressing(self) -> ipam.Subnet:
        return ipam.Subnet(
            subnet=ipaddress.ip_network(self.subnet),
            gateway=ipaddress.ip_address(self.gateway),
            ip_range=ipaddress.ip_network(self.ip_range),
        )

    def __repr__(self) -> str:
        return f"Network({self.name!r}, {self.bridge}, {self.subnet})"


class PortMapping:
    """One published port: ``host_ip:host_port`` -> the container's ``container_port``, over ``protocol``."""

    __slots__ = ("container_port", "host_ip", "host_port", "protocol")

    def __init__(
        self, *, host_port: int, container_port: int, protocol: str = "tcp", host_ip: str = "0.0.0.0"
    ) -> None:
        self.host_ip = host_ip or "0.0.0.0"
        self.host_port = host_port
        self.container_port = container_port
        self.protocol = protocol

    def key(self) -> tuple[str, str, int, int]:
        return (self.protocol, self.host_ip, self.host_port, self.container_port)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PortMapping) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        return f"PortMapping({self.host_ip}:{self.host_port}->{self.container_port}/{self.protocol})"


class Endpoint:
    """A container's attachment to a network: its address, MAC, interfaces and published ports.

    ``ipam_config``: docker's ``EndpointIPAMConfig`` as requested (``IPv4Address``,
    ``IPv6Address``, ``LinkLocalIPs``), None when nothing was; ``links``: docker's
    ``NAME:ALIAS`` links on a user network (the alias resolves, for this container
    only, to that container); ``driver_opts``: kept and shown, the bridge reads none;
    ``dns``: the container's own ``--dns`` servers, where the network's resolver
    forwards the names it asks that are not the network's (docker's embedded
    server forwards to them).
    """

    __slots__ = (
        "aliases",
        "container_id",
        "dns",
        "driver_opts",
        "gw_priority",
        "id",
        "ip",
        "ip6",
        "ipam_config",
        "links",
        "mac",
        "name",
        "netns",
        "network_id",
        "ports",
        "veth",
    )

    def __init__(
        self,
        *,
        id: str,
        network_id: str,
        container_id: str,
        name: str,
        ip: str,
        mac: str,
        veth: str,
        netns: str,
        aliases: Sequence[str] = (),
        ports: Sequence[PortMapping] = (),
        ip6: str = "",
        ipam_config: dict[str, Any] | None = None,
        links: Sequence[str] = (),
        driver_opts: dict[str, str] | None = None,
        gw_priority: int = 0,
        dns: Sequence[str] = (),
    ) -> None:
        self.id = id
        self.network_id = network_id
        self.container_id = container_id
        self.name = name
        self.ip = ip
        self.mac = mac
        self.veth = veth
        self.netns = netns
        self.aliases = tuple(aliases)
        self.ports = tuple(ports)
        self.ip6 = ip6
        self.ipam_config = ipam_config
        self.links = tuple(links)
        self.driver_opts = driver_opts or {}
        #: docker's ``gw-priority``: the endpoint with the highest gives the default route
        self.gw_priority = gw_priority
        self.dns = tuple(dns)

    @property
    def link_local_ips(self) -> list[str]:
        return [str(a) for a in (self.ipam_config or {}).get("LinkLocalIPs") or ()]

    def config(self) -> dict[str, Any]:
        """What the ``config`` column keeps (docker's names; empty ones left out)."""
        out: dict[str, Any] = {}
        if self.ipam_config is not None:
            out["IPAMConfig"] = self.ipam_config
        if self.links:
            out["Links"] = list(self.links)
        if self.driver_opts:
            out["DriverOpts"] = self.driver_opts
        if self.gw_priority:
            out["GwPriority"] = self.gw_priority
        if self.dns:
            out[DNS_KEY] = list(self.dns)
        return out

    def __repr__(self) -> str:
        return f"Endpoint({self.container_id[:12]} {self.ip} on {self.network_id[:12]})"


def _decode(text: str) -> Any:
    """A JSON column; the empty object and list without importing ``json`` (which imports ``re``,
    banned from the ``run`` path: a plain run has no labels, options or aliases here)."""
    if text == "{}":
        return {}
    if text == "[]":
        return []
    import json

    return json.loads(text)


def _encode(value: dict[str, Any] | list[str]) -> str:
    if not value:
        return "{}" if isinstance(value, dict) else "[]"
    import json

    return json.dumps(value)


def _network(row: sqlite3.Row) -> Network:
    return Network(
        id=row["id"],
        name=row["name"],
        bridge=row["bridge"],
        subnet=row["subnet"],
        gateway=row["gateway"],
        ip_range=row["ip_range"],
        internal=bool(row["internal"]),
        dns=bool(row["dns"]),
        mtu=int(row["mtu"]),
        created=row["created"],
        labels=_decode(row["labels"]),
        options=_decode(row["options"]),
        subnet6=row["subnet6"],
        gateway6=row["gateway6"],
        ip_range6=row["ip_range6"],
        ipam_options=None if row["ipam_options"] is None else _decode(row["ipam_options"]),
        aux_addresses=_decode(row["aux_addresses"]),
    )


def _endpoint_config(text: str) -> dict[str, Any]:
    """The ``config`` column as ``Endpoint`` keyword arguments."""
    config = _decode(text)
    return {
        "ipam_config": config.get("IPAMConfig"),
        "links": config.get("Links") or (),
        "driver_opts": config.get("DriverOpts") or {},
        "gw_priority": int(config.get("GwPriority") or 0),
        "dns": config.get(DNS_KEY) or (),
    }


def ipam_config(ip: str = "", ip6: str = "", link_local_ips: Sequence[str] = ()) -> dict[str, Any] | None:
    """docker's ``EndpointIPAMConfig`` of a request: the keys given, None when none is."""
    out: dict[str, Any] = {}
    if ip:
        out["IPv4Address"] = ip
    if ip6:
        out["IPv6Address"] = ip6
    if link_local_ips:
        out["LinkLocalIPs"] = list(link_local_ips)
    return out or None


def mac_for(ip: str) -> str:
    """Docker's MAC for an IPv4 address: 02:42 then the address's four bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)


class NetworkStore:
    """The network rows of one database. Every write is one transaction (joining the caller's)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure(SCHEMA)

    # networks

    def networks(self) -> list[Network]:
        return [_network(r) for r in self.db.query("SELECT * FROM networks ORDER BY created, name")]

    def find(self, ref: str) -> Network:
        """A network by name, full id or unique id prefix (docker's lookup order)."""
        rows = self.db.query("SELECT * FROM networks WHERE name = ? OR id = ?", (ref, ref))
        if not rows and ref:
            rows = self.db.query("SELECT * FROM networks WHERE id LIKE ? || '%'", (ref.lower(),))
            if len(rows) > 1:
                raise InvalidArgument(f"network {ref} is ambiguous ({len(rows)} matches)")
        if not rows:
            raise NotFound(f"network {ref} not found")
        return _network(rows[0])

    def add(self, network: Network) -> None:
        """Record ``network``; ``AlreadyExists`` in docker's words if the name is taken."""
        try:
            with self.db.transaction() as conn:
                conn.execute(
                    "INSERT INTO networks (id, name, driver, bridge, subnet, gateway, ip_range, internal, dns, mtu,"
                    " created, labels, options, subnet6, gateway6, ip_range6, ipam_options, aux_addresses)"
                    " VALUES (?, ?, 'bridge', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        network.id, network.name, network.bridge, network.subnet, network.gateway,
                        network.ip_range, int(network.internal), int(network.dns), network.mtu, network.created,
                        _encode(network.labels), _encode(network.options), network.subnet6, network.gateway6,
                        network.ip_range6 if network.ip_range6 != network.subnet6 else "",
                        None if network.ipam_options is None else _encode(network.ipam_options),
                        _encode(network.aux_addresses),
                    ),
                )  # fmt: skip
        except sqlite3.IntegrityError:
            if self.db.query("SELECT 1 FROM networks WHERE name = ?", (network.name,)):
                raise AlreadyExists(f"network with name {network.name} already exists") from None
            raise AlreadyExists(f"bridge interface {network.bridge} is taken by another network") from None

    def check_unused(self, network: Network, conn: sqlite3.Connection | None = None) -> None:
        """Docker's refusal to remove a network that still has endpoints."""
        users = (
            (conn or self.db.conn)
            .execute("SELECT count(*) FROM endpoints WHERE network_id = ?", (network.id,))
            .fetchone()[0]
        )
        if users:
            raise FailedPrecondition(
                f"error while removing network: network {network.name} id {network.id} has active endpoints"
            )

    def remove(self, network: Network) -> None:
        """Forget ``network``; refused while endpoints remain. Idempotent."""
        with self.db.transaction() as conn:
            self.check_unused(network, conn)
            conn.execute("DELETE FROM networks WHERE id = ?", (network.id,))

    def predefined(self, name: str, *, new_id: str, created: str) -> tuple[str, str]:
        """The id and creation time of predefined network ``name``, recorded with ``new_id`` and
        ``created`` the first time it is asked for. Idempotent (two racing processes agree)."""
        row = self.db.query("SELECT id, created FROM predefined_networks WHERE name = ?", (name,))
        if not row:
            with self.db.transaction() as conn:
                conn.execute(
                    "INSERT OR IGNORE INTO predefined_networks (name, id, created) VALUES (?, ?, ?)",
                    (name, new_id, created),
                )
            row = self.db.query("SELECT id, created FROM predefined_networks WHERE name = ?", (name,))
        return str(row[0][0]), str(row[0][1])

    def subnets(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """Every network's subnets, IPv4 and IPv6."""
        out: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for subnet, subnet6 in self.db.query("SELECT subnet, subnet6 FROM networks"):
            out.append(ipaddress.ip_network(subnet))
            if subnet6:
                out.append(ipaddress.ip_network(subnet6))
        return out

    # endpoints

    def endpoints(self, network_id: str | None = None, container_id: str | None = None) -> list[Endpoint]:
        sql, params = "SELECT * FROM endpoints", []
        clauses = []
        if network_id is not None:
            clauses.append("network_id = ?")
            params.append(network_id)
        if container_id is not None:
            clauses.append("container_id = ?")
            params.append(container_id)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        out = []
        for row in self.db.query(sql + " ORDER BY rowid", params):
            ports = [
                PortMapping(protocol=p[0], host_ip=p[1], host_port=p[2], container_port=p[3])
                for p in self.db.query(
                    "SELECT protocol, host_ip, host_port, container_port FROM published_ports"
                    " WHERE endpoint_id = ? ORDER BY rowid",
                    (row["id"],),
                )
            ]
            out.append(
                Endpoint(
                    id=row["id"],
                    network_id=row["network_id"],
                    container_id=row["container_id"],
                    name=row["name"],
                    aliases=_decode(row["aliases"]),
                    ip=row["ip"],
                    mac=row["mac"],
                    veth=row["veth"],
                    netns=row["netns"],
                    ports=ports,
                    ip6=row["ip6"],
                    **_endpoint_config(row["config"]),
                )
            )
        return out

    def allocate(
        self,
        network: Network,
        *,
        endpoint_id: str,
        container_id: str,
        name: str,
        netns: str,
        veth: str,
        aliases: Sequence[str] = (),
        ip: str = "",
        mac: str = "",
        ports: Sequence[PortMapping] = (),
        ip6: str = "",
        link_local_ips: Sequence[str] = (),
        links: Sequence[str] = (),
        driver_opts: dict[str, str] | None = None,
        gw_priority: int = 0,
        dns: Sequence[str] = (),
    ) -> Endpoint:
        """Record a new endpoint holding an address (``ip`` if given; and an IPv6 one, ``ip6`` if given,
        on a dual-stack network) and ``ports``, in one transaction.

        ``Conflict`` if the container is attached already, the address is taken
        or a port is published by another endpoint.
        """
        with self.db.transaction() as conn:
            if conn.execute(
                "SELECT 1 FROM endpoints WHERE network_id = ? AND container_id = ?",
                (network.id, container_id),
            ).fetchone():
                raise Conflict(f"endpoint with name {name} already exists in network {network.name}")
            used = [ipaddress.ip_address(r[0]) for r in conn.execute(
                "SELECT ip FROM endpoints WHERE network_id = ?", (network.id,))]  # fmt: skip
            reserved = [ipaddress.ip_address(a) for a in network.aux_addresses.values()]
            used += reserved
            lasts = conn.execute(
                "SELECT last_ip, last_ip6 FROM networks WHERE id = ?", (network.id,)
            ).fetchone()
            if lasts is None:
                raise NotFound(f"network {network.name} not found")
            last = ipaddress.ip_address(lasts[0]) if lasts[0] else None
            address = str(ipam.allocate(network.addressing(), used, last=last, wanted=ip))
            address6 = ""
            addressing6 = network.addressing6()
            if addressing6 is not None:
                used6 = [ipaddress.ip_address(r[0]) for r in conn.execute(
                    "SELECT ip6 FROM endpoints WHERE network_id = ? AND ip6 != ''", (network.id,))]  # fmt: skip
                used6 += reserved
                last6 = ipaddress.ip_address(lasts[1]) if lasts[1] else None
                address6 = str(ipam.allocate(addressing6, used6, last=last6, wanted=ip6))
            elif ip6:
                raise InvalidArgument(f"network {network.name} has no IPv6 subnet for --ip6 {ip6}")
            endpoint = Endpoint(
                id=endpoint_id, network_id=network.id, container_id=container_id, name=name, aliases=aliases,
                ip=address, mac=mac or mac_for(address), veth=veth, netns=netns, ports=ports, ip6=address6,
                ipam_config=ipam_config(ip, ip6, link_local_ips), links=links, driver_opts=driver_opts,
                gw_priority=gw_priority, dns=dns,
            )  # fmt: skip
            conn.execute(
                "INSERT INTO endpoints (id, network_id, container_id, name, aliases, ip, mac, veth, netns, ip6,"
                " config) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    endpoint.id, network.id, container_id, name, _encode(list(aliases)), address,
                    endpoint.mac, veth, netns, address6, _encode(endpoint.config()),
                ),
            )  # fmt: skip
            if not ip:
                conn.execute("UPDATE networks SET last_ip = ? WHERE id = ?", (address, network.id))
            if address6 and not ip6:
                conn.execute("UPDATE networks SET last_ip6 = ? WHERE id = ?", (address6, network.id))
            for port in ports:
                self._publish(conn, endpoint.id, port)
        return endpoint

    @staticmethod
    def _publish(conn: sqlite3.Connection, endpoint_id: str, port: PortMapping) -> None:
        if port.host_ip == "0.0.0.0":
            clash = conn.execute(
                "SELECT host_ip FROM published_ports WHERE protocol = ? AND host_port = ?",
                (port.protocol, port.host_port),
            ).fetchone()
        else:
            clash = conn.execute(
                "SELECT host_ip FROM published_ports WHERE protocol = ? AND host_port = ? AND host_ip IN (?, '0.0.0.0')",
                (port.protocol, port.host_port, port.host_ip),
            ).fetchone()
        if clash is None:
            try:
                conn.execute(
                    "INSERT INTO published_ports (endpoint_id, protocol, host_ip, host_port, container_port)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (endpoint_id, port.protocol, port.host_ip, port.host_port, port.container_port),
                )
                return
            except sqlite3.IntegrityError:
                pass
        raise Conflict(f"Bind for {port.host_ip}:{port.host_port} failed: port is already allocated")

    def release(self, endpoint_id: str) -> None:
        """Forget an endpoint, its address and its ports. Idempotent."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM endpoints WHERE id = ?", (endpoint_id,))

    def ports(self) -> list[tuple[str, PortMapping]]:
        """Every published port with its endpoint's id."""
        return [
            (r[0], PortMapping(protocol=r[1], host_ip=r[2], host_port=r[3], container_port=r[4]))
            for r in self.db.query(
                "SELECT endpoint_id, protocol, host_ip, host_port, container_port FROM published_ports ORDER BY rowid"
            )
        ]

    def container_ids(self) -> set[str]:
        return {str(r[0]) for r in self.db.query("SELECT DISTINCT container_id FROM endpoints")}

    def resolve(self, network_id: str, name: str, client: str = "") -> list[str]:
        """The addresses ``name`` stands for on a network: container name, alias, or short/full id
        (or, asked from address ``client``, a link alias of the client's endpoint)."""
        lowered = name.lower().rstrip(".")
        found = matching(self.db.query(RESOLVE_SQL, (network_id,)), lowered, client=client)
        if found or not client:
            return found
        for (other,) in self.db.query(PEER_NETWORKS_SQL, (network_id, client, client, network_id)):
            found = matching(self.db.query(RESOLVE_SQL, (other,)), lowered)
            if found:
                return found
        return []


#: the ``config`` key of an endpoint's container's own name servers (pallet's: docker keeps them in the
#: sandbox, not the endpoint)
DNS_KEY = "PalletDNS"
#: the ``config`` and namespace file of the endpoint at a client's address on a network (network id,
#: address twice)
CLIENT_CONFIG_SQL = "SELECT config, netns FROM endpoints WHERE network_id = ? AND (ip = ? OR ip6 = ?)"


def client_nameservers(config: str) -> list[str]:
    """The container's own name servers of an endpoint's ``config`` column (``CLIENT_CONFIG_SQL``)."""
    if DNS_KEY not in config:
        return []
    return [str(a) for a in _decode(config).get(DNS_KEY) or ()]


#: the rows ``matching`` reads, of one network (its id the one parameter)
RESOLVE_SQL = (
    "SELECT ip, ip6, name, aliases, container_id, config FROM endpoints WHERE network_id = ? ORDER BY rowid"
)
#: the other networks of the container whose address on a network asked (network id, client address
#: twice, network id): as docker's embedded server, a resolver answers a container the names of every
#: network it is on, each network's own address (the asked network's first, then in attach order)
PEER_NETWORKS_SQL = (
    "SELECT o.network_id FROM endpoints c JOIN endpoints o ON o.container_id = c.container_id"
    " WHERE c.network_id = ? AND (c.ip = ? OR c.ip6 = ?) AND o.network_id != ? ORDER BY o.rowid"
)


def matching(
    rows: Iterable[sqlite3.Row | tuple[str, str, str, str, str, str]], name: str, *, client: str = ""
) -> list[str]:
    """The addresses of the rows (``RESOLVE_SQL``'s) that ``name`` designates, IPv4 and IPv6. For a
    query from ``client`` (an address), the alias of one of its endpoint's links (docker's
    ``--link NAME:ALIAS`` on a user network) stands for the linked container's name."""
    rows = list(rows)
    if client:
        for row in rows:
            if client in (row[0], row[1]) and row[5] != "{}":
                for link in _decode(row[5]).get("Links") or ():
                    target, _, alias = link.partition(":")
                    if alias.lower() == name:
                        name = target.lower()
    out = []
    for ip, ip6, cname, aliases, cid, _config in rows:
        if cname.lower() == name or name in (a.lower() for a in _decode(aliases)) or name in (cid[:12], cid):
            out.append(ip)
            if ip6:
                out.append(ip6)
    return out
