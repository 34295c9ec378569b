"""The engine's networks: the network layer's bridge driver on the root's database and run dir.

``Networks(db, root=..., run_root=...)`` is what the engine (``containers/``)
and the service surface use; nothing here knows containers beyond their ids
and names, so it sits beside ``volumes``. The driver (``pallet.network.driver``)
opens on the engine's connection, so an endpoint (its address, its published
ports) is recorded in the same transaction as the container that holds it.

- The default network ``bridge`` (docker's) is made on first use: its
  interface is ``pallet0`` for the default root (``/var/lib/pallet``), else
  ``pallet-<tag[:8]>`` (``driver.root_tag``), so two roots on one host never
  share a bridge; its subnet comes from the root's address pools and avoids
  the host's routes and the other roots' bridges (a host-wide lock is held
  from the choice until the bridge, and with it its route, exists). It has no
  resolver (docker's default bridge resolves no names).
- The address pools are ``default-address-pools`` of ``<root>/config.toml``
  (docker's ``daemon.json`` shape: ``[{base = "10.99.0.0/16", size = 24}]``);
  docker's pools when absent. Read only when a network is made.
- The driver's files live under ``<run_root>/network`` (namespace files,
  resolvers, its lock); its nftables table is ``pallet-<tag>``.

- docker's predefined ``host`` (driver ``host``) and ``none`` (driver
  ``null``) are modes, not bridges (``PredefinedNetwork``): listed, inspected
  (the running containers in that mode under ``Containers``), found by name,
  id or id prefix, with an id (random, as dockerd's) and a creation time kept
  in the root's database on first use; never created, removed or pruned.
  A container in one of these modes is attached to it alone (``check_connect``:
  dockerd's refusals, in its words).

Every kernel operation is the driver's and is idempotent (see its module
docstring for the contracts); this module adds docker's rules that need the
engine's view: the predefined networks (``bridge``, ``host``, ``none``)
cannot be removed, and ``network ls`` lists them.
"""

from __future__ import annotations

import os

from pallet.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound, Unsupported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any

    from pallet.database import Database
    from pallet.network.driver import Driver, Reconciled
    from pallet.network.ipam import Pool
    from pallet.network.store import Endpoint, Network, PortMapping

__all__ = [
    "DEFAULT_NETWORK",
    "DEFAULT_ROOT",
    "PREDEFINED",
    "Attachment",
    "Networks",
    "PredefinedNetwork",
    "address_pools",
    "default_bridge_name",
]

#: docker's name of the default network
DEFAULT_NETWORK = "bridge"
#: the root whose default network's interface is ``pallet0`` (docker's ``docker0``)
DEFAULT_ROOT = "/var/lib/pallet"
#: networks docker always lists and never removes (host and none are modes, not bridges)
PREDEFINED = ("bridge", "host", "none")
#: docker's drivers of its predefined modes
MODE_DRIVERS = {"host": "host", "none": "null"}
#: dockerd's refusals of a connect that would mix the host's stack, loopback only, or a shared one
_HOST_CONFLICT = "container cannot be disconnected from host network or connected to host network"
_SHARED_CONFLICT = "container sharing network namespace with another container or host cannot be connected to any other network"
_NONE_CONFLICT = (
    "container cannot be connected to multiple networks with one of the networks in private (none) mode"
)
#: subnets are a host-wide resource: roots take turns choosing one and making its bridge
_POOLS_LOCK = "/run/lock/pallet-address-pools.lock"


def default_bridge_name(root: str) -> str:
    """The default network's interface: ``pallet0`` for the default root, else ``pallet-<tag[:8]>``."""
    from pallet.network.driver import root_tag

    if os.path.realpath(root) == DEFAULT_ROOT:
        return "pallet0"
    return "pallet-" + root_tag(root)[:8]


def address_pools(root: str) -> tuple[Pool, ...]:
    """The root's address pools: ``default-address-pools`` of ``<root>/config.toml``, else docker's.
    ``InvalidArgument`` naming the file for a bad file or pool (``engine/config.py``)."""
    from pallet.engine.config import load_config
    from pallet.network import ipam

    pools = load_config(root).address_pools
    return tuple(ipam.Pool(p.base, p.size) for p in pools) if pools else ipam.DEFAULT_POOLS


class Attachment:
    """A container's request for one network: by name or id, with its aliases, addresses (``ip``,
    ``ip6``, ``link_local_ips``), MAC, ports, and docker's endpoint ``links``, ``driver_opts`` and
    ``gw_priority`` (the endpoint with the highest gives the default route)."""

    __slots__ = (
        "aliases", "driver_opts", "gw_priority", "ip", "ip6", "link_local_ips", "links", "mac", "network", "ports",
    )  # fmt: skip

    def __init__(
        self,
        network: str,
        *,
        aliases: Sequence[str] = (),
        ip: str = "",
        mac: str = "",
        ports: Sequence[PortMapping] = (),
        ip6: str = "",
        link_local_ips: Sequence[str] = (),
        links: Sequence[str] = (),
        driver_opts: Mapping[str, str] | None = None,
        gw_priority: int = 0,
    ) -> None:
        self.network = network
        self.aliases = tuple(aliases)
        self.ip = ip
        self.mac = mac
        self.ports = tuple(ports)
        self.ip6 = ip6
        self.link_local_ips = tuple(link_local_ips)
        self.links = tuple(links)
        self.driver_opts = dict(driver_opts or {})
        self.gw_priority = gw_priority


class PredefinedNetwork:
    """docker's ``host`` or ``none`` network: a mode (the host's own stack; loopback only), shown as a
    network. ``driver`` is docker's (``host``, ``null``)."""

    __slots__ = ("created", "driver", "id", "name")

    def __init__(self, *, id: str, name: str, created: str) -> None:
        self.id = id
        self.name = name
        self.driver = MODE_DRIVERS[name]
        self.created = created

    @property
    def labels(self) -> dict[str, str]:
        return {}

    def endpoint_id(self, container_id: str) -> str:
        """The endpoint of container ``container_id`` in this mode: stable, distinct per container
        and network (64 hex, as docker's; no ``hashlib`` on the start path)."""
        return f"{int(container_id[:64], 16) ^ int(self.id, 16):064x}"

    def document(self, members: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
        """``network inspect``'s document (docker's JSON); ``members``: (id, name) of the running
        containers in this mode."""
        return {
            "Name": self.name, "Id": self.id, "Created": self.created, "Scope": "local",
            "Driver": self.driver, "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None, "Config": None},
            "Internal": False, "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
            "ConfigOnly": False,
            "Containers": {
                cid: {"Name": name, "EndpointID": self.endpoint_id(cid), "MacAddress": "", "IPv4Address": "",
                      "IPv6Address": ""}
                for cid, name in members
            },
            "Options": {}, "Labels": {},
        }  # fmt: skip

    def settings(self, container_id: str) -> dict[str, Any]:
        """``NetworkSettings.Networks.<name>`` of a container in this mode, as dockerd shows it."""
        return {
            "IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "", "DriverOpts": None,
            "GwPriority": 0, "NetworkID": self.id, "EndpointID": self.endpoint_id(container_id), "Gateway": "",
            "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "DNSNames": None,
        }  # fmt: skip

    def __repr__(self) -> str:
        return f"PredefinedNetwork({self.name!r}, {self.driver})"


class _HostLock:
    """An exclusive ``flock`` on the host-wide pools lock file for a ``with`` block."""

    __slots__ = ("_fd",)

    def __init__(self) -> None:
        self._fd = -1

    def __enter__(self) -> None:
        import fcntl

        # rootless: the user's namespaces hold no host routes; their own run dir's lock will do
        path = _POOLS_LOCK
        if os.environ.get("PALLET_ROOTLESS") == "1":
            path = os.path.join(os.environ.get("PALLET_RUN", "/tmp"), "address-pools.lock")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        os.close(self._fd)


class Networks:
    """The networks of one engine root. The driver is made on first use (its import is the cost)."""

    __slots__ = ("_db", "_driver", "root", "run_dir")

    def __init__(self, db: Database, *, root: str, run_root: str) -> None:
        self._db = db
        self.root = root
        self.run_dir = os.path.join(run_root, "network")
        self._driver: Driver | None = None

    @property
    def driver(self) -> Driver:
        if self._driver is None:
            from pallet.network import ipam
            from pallet.network.driver import Driver, root_tag

            kind = Driver
            if os.environ.get("PALLET_ROOTLESS") == "1":  # engine/rootless.py: pasta, not bridges
                from pallet.network.pasta import PastaDriver

                kind = PastaDriver
            self._driver = kind(
                self._db, run_dir=self.run_dir, tag=root_tag(self.root), pools=ipam.DEFAULT_POOLS
            )
        return self._driver

    # --- networks -----------------------------------------------------------------------------

    def default(self) -> Network:
        """The default network ``bridge``, made (record, bridge, rules) if this root has none yet."""
        try:
            return self.driver.network(DEFAULT_NETWORK)
        except NotFound:
            pass
        with _HostLock():
            try:  # another process of this root may have made it while we waited
                return self.driver.network(DEFAULT_NETWORK)
            except NotFound:
                pass
            return self._create_locked(DEFAULT_NETWORK, bridge=default_bridge_name(self.root), dns=False)

    def create(
        self,
        name: str,
        *,
        driver: str = "bridge",
        subnet: str = "",
        gateway: str = "",
        ip_range: str = "",
        internal: bool = False,
        labels: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
        ipv6: bool = False,
        subnet6: str = "",
        gateway6: str = "",
        ip_range6: str = "",
        ipam_options: Mapping[str, str] | None = None,
        aux_addresses: Mapping[str, str] | None = None,
    ) -> Network:
        """``network create``: a user-defined bridge network (with a resolver of its containers' names),
        its bridge made at once, as docker does. ``AlreadyExists`` for a taken name (the predefined
        ones included), ``InvalidArgument`` for bad addressing, ``NotFound`` for a driver other than
        ``bridge``; nothing is left on error. ``ipam_options`` None is docker's null (an API request
        without them), ``{}`` what its CLI sends."""
        if driver != "bridge":
            raise NotFound(
                f'could not find plugin {driver} in v1 plugin registry: plugin not found (only the "bridge" driver exists)'
            )
        if name in PREDEFINED:
            raise Conflict(f"operation is not permitted on predefined {name} network")
        self.default()  # the default network takes its subnet first, as dockerd's start does
        with _HostLock():
            return self._create_locked(
                name, subnet=subnet, gateway=gateway, ip_range=ip_range, internal=internal,
                labels=labels, options=options, ipv6=ipv6, subnet6=subnet6, gateway6=gateway6,
                ip_range6=ip_range6, ipam_options=ipam_options, aux_addresses=aux_addresses,
            )  # fmt: skip

    def _create_locked(self, name: str, **kwargs: Any) -> Network:
        """Record a network and make its bridge; the caller holds the host lock. On error, nothing stays."""
        driver = self.driver
        driver.pools = address_pools(self.root)
        network = driver.create_network(name, **kwargs)
        try:
            driver.ensure_network(network)
        except BaseException:
            driver.remove_network(network.id)
            raise
        return network

    def networks(self) -> list[Network | PredefinedNetwork]:
        """Every network of the root (the default one made if missing): the bridges oldest first,
        then docker's ``host`` and ``none``."""
        self.default()
        bridges: list[Network | PredefinedNetwork] = list(self.driver.store.networks())
        return bridges + [self.predefined(name) for name in MODE_DRIVERS]

    def predefined(self, name: str) -> PredefinedNetwork:
        """docker's ``host`` or ``none`` network of this root (its id kept from its first use)."""
        import time

        from pallet.network.store import NetworkStore

        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        # the store alone, not the driver (its import is the cost): a host or none start asks this
        store = self._driver.store if self._driver is not None else NetworkStore(self._db)
        found_id, created = store.predefined(name, new_id=os.urandom(32).hex(), created=created)
        return PredefinedNetwork(id=found_id, name=name, created=created)

    def lookup(self, ref: str) -> Network | PredefinedNetwork:
        """The network ``ref`` names, docker's ``host`` and ``none`` included (by name, id or id
        prefix); ``NotFound`` in docker's words."""
        if ref in MODE_DRIVERS:
            return self.predefined(ref)
        try:
            return self.find(ref)
        except NotFound:
            if ref:
                for name in MODE_DRIVERS:
                    mode = self.predefined(name)
                    if mode.id.startswith(ref.lower()):
                        return mode
            raise

    def find(self, ref: str) -> Network:
        """The network ``ref`` names (name, id, unique id prefix); ``NotFound`` in docker's words."""
        if ref == DEFAULT_NETWORK:
            return self.default()
        try:
            return self.driver.network(ref)
        except NotFound:
            raise NotFound(f"network {ref} not found") from None

    def inspect(
        self, ref: str, members: Callable[[str], Iterable[tuple[str, str]]] = lambda _: ()
    ) -> dict[str, Any]:
        """``network inspect``'s document (docker's JSON) of network ``ref``; ``members(mode)``: the
        (id, name) of the running containers in mode ``host`` or ``none``, for those two."""
        from pallet.network.driver import inspect_network

        found = self.lookup(ref)
        if isinstance(found, PredefinedNetwork):
            return found.document(members(found.name))
        network = found
        document = inspect_network(network, self.driver.store.endpoints(network_id=network.id))
        if network.name == DEFAULT_NETWORK:
            options = document["Options"]
            assert isinstance(options, dict)
            options.update({
                "com.docker.network.bridge.name": network.bridge,
                "com.docker.network.bridge.default_bridge": "true",
                "com.docker.network.bridge.enable_icc": "true",
                "com.docker.network.bridge.enable_ip_masquerade": "true",
                "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                "com.docker.network.driver.mtu": str(network.mtu),
            })  # fmt: skip
        return document

    def remove(self, ref: str) -> Network:
        """``network rm``: refused for a predefined network and while containers are attached
        (docker's words); bridge, rules, resolver and row go. ``NotFound`` if there is none."""
        if ref in PREDEFINED:
            raise Conflict(f"{ref} is a pre-defined network and cannot be removed")
        network = self.lookup(ref)
        if isinstance(network, PredefinedNetwork) or network.name in PREDEFINED:
            raise Conflict(f"{network.name} is a pre-defined network and cannot be removed")
        return self.driver.remove_network(network.id)

    def prune(self, keep: Callable[[Network], bool] = lambda _: False) -> list[Network]:
        """``network prune``: remove every user network without containers, except those ``keep``
        says to keep (the prune filters); the networks removed."""
        removed = []
        store = self.driver.store
        for network in store.networks():
            if network.name in PREDEFINED or keep(network) or store.endpoints(network_id=network.id):
                continue
            removed.append(self.driver.remove_network(network.id))
        return removed

    # --- containers -----------------------------------------------------------------------------

    def netns_path(self, container_id: str) -> str:
        """The container's network namespace file (named in its config.json; made by ``resume``)."""
        return os.path.join(self.run_dir, "netns", container_id)

    def check_attachments(self, attachments: Sequence[Attachment]) -> list[Network]:
        """The networks of a create's requests, found (the default one made) before its transaction:
        ``NotFound`` in docker's words for an unknown one, ``InvalidArgument`` for one asked twice
        (by name and id, say) — before anything is recorded."""
        out: list[Network] = []
        for request in attachments:
            network = self.find(request.network)
            if any(n.id == network.id for n in out):
                raise InvalidArgument(f'network "{request.network}" is specified multiple times')
            out.append(network)
        return out

    def allocate(
        self, container_id: str, name: str, attachments: Sequence[Attachment], *, dns: Sequence[str] = ()
    ) -> list[Endpoint]:
        """Record the container's endpoints (addresses, ports; ``dns``: its own ``--dns`` servers, where
        a network's resolver forwards its other names), in the order asked (its interfaces
        eth0, eth1... follow it): nothing in the kernel. Call it inside the transaction that records
        the container, so a refusal of any of them leaves none. The requests' published ports go with
        the first endpoint on a network with a way out. ``Conflict`` for an address or a host port
        taken (by another container or a program of the host), ``NotFound`` for an unknown network."""
        driver = self.driver
        networks = [
            self.default() if r.network == DEFAULT_NETWORK else self.find(r.network) for r in attachments
        ]
        # the published ports go with the first endpoint not on an --internal network (dockerd's
        # rule: port mappings belong to the container, only on a network with a way out)
        ports = tuple(port for request in attachments for port in request.ports)
        holder = next((i for i, n in enumerate(networks) if not n.internal), 0)
        out = []
        for index, (request, network) in enumerate(zip(attachments, networks, strict=True)):
            endpoint = driver.allocate(
                network, container_id, name=name, aliases=request.aliases, ip=request.ip, mac=request.mac,
                ports=ports if index == holder else (), ip6=request.ip6, link_local_ips=request.link_local_ips,
                links=request.links, driver_opts=request.driver_opts, gw_priority=request.gw_priority, dns=dns,
            )  # fmt: skip
            out.append(endpoint)
        return out

    def endpoints(self, container_id: str) -> list[Endpoint]:
        """The container's endpoints, in the order it was attached."""
        return self.driver.endpoints(container_id)

    def resume(self, container_id: str) -> list[Endpoint]:
        """Before the runtime starts the container: its namespace file and every endpoint it holds up.
        Idempotent."""
        return self.driver.resume(container_id)

    def suspend(self, container_id: str) -> None:
        """The container stopped: its namespace file, veths and port rules go; its addresses and
        host ports stay its own (its rows). Idempotent; nothing to do for a container without endpoints."""
        driver = self.driver
        if driver.endpoints(container_id) or os.path.exists(self.netns_path(container_id)):
            driver.suspend(container_id)

    def release(self, container_id: str) -> None:
        """The container is removed: its endpoints (addresses, ports, veths) and namespace file go.
        Idempotent."""
        self.driver.remove_container(container_id)

    def connect(
        self,
        ref: str,
        container_id: str,
        *,
        name: str,
        aliases: Sequence[str] = (),
        ip: str = "",
        running: bool,
        ports: Callable[[set[tuple[str, int]]], Sequence[PortMapping]] | None = None,
        request: Attachment | None = None,
        dns: Sequence[str] = (),
    ) -> Endpoint:
        """``network connect``: a running container gets its interface now, a stopped one when it
        starts. ``Conflict`` if it is attached already (docker's words), or its address is taken.
        ``ports``: the container's published ports from the ports held now, for the new endpoint
        when none of its endpoints holds any (they went with the endpoint that held them).
        ``request``: the endpoint's settings (its ``network`` is ``ref``), instead of ``aliases``/``ip``;
        ``dns``: the container's own ``--dns`` servers (``allocate``'s)."""
        network = self.find(ref)
        driver = self.driver
        endpoints = driver.endpoints(container_id)
        if any(e.network_id == network.id for e in endpoints):
            raise Conflict(f"endpoint with name {name} already exists in network {network.name}")
        held = () if ports is None or any(e.ports for e in endpoints) else ports(self.held_ports())
        want = request or Attachment(ref, aliases=aliases, ip=ip)
        make = driver.attach if running else driver.allocate
        return make(
            network, container_id, name=name, aliases=want.aliases, ip=want.ip, mac=want.mac, ports=held,
            ip6=want.ip6, link_local_ips=want.link_local_ips, links=want.links, driver_opts=want.driver_opts,
            gw_priority=want.gw_priority, dns=dns,
        )  # fmt: skip

    @staticmethod
    def check_connect(mode: str, name: str, target: Network | PredefinedNetwork, *, running: bool) -> bool:
        """dockerd's refusals, in its words, of ``network connect`` of container ``name`` in network
        mode ``mode`` (its ``HostConfig.NetworkMode``) to ``target``: the host's stack, loopback only
        (``none``) and another container's namespace mix with nothing. False when there is nothing
        to do: a stopped container asked for the mode it is in (dockerd lets that pass)."""
        if mode.startswith("container:"):
            raise InvalidArgument(_SHARED_CONFLICT)
        if target.name == "host" and mode != "host":
            raise InvalidArgument(_HOST_CONFLICT)
        if mode in MODE_DRIVERS:
            if target.name != mode:
                raise InvalidArgument(_SHARED_CONFLICT if mode == "host" else _NONE_CONFLICT)
            if running:
                raise Conflict(f"endpoint with name {name} already exists in network {mode}")
            return False
        if target.name == "none":
            raise InvalidArgument(_NONE_CONFLICT)
        return True

    @staticmethod
    def check_disconnect(mode: str, name: str, target: Network | PredefinedNetwork) -> None:
        """dockerd's refusal to take a container off the host network (it is on it alone); for
        ``none``, pallet keeps the mode the container was made with."""
        if not isinstance(target, PredefinedNetwork):
            return
        if mode != target.name:
            raise FailedPrecondition(f"container {name} is not connected to network {target.name}")
        if mode == "host":
            raise InvalidArgument(_HOST_CONFLICT)
        raise Unsupported(
            f"container {name} was made with --network none and stays in that mode; "
            "remove it and make it again with another --network"
        )

    def disconnect(self, ref: str, container_id: str, *, name: str, force: bool = False) -> None:
        """``network disconnect``: the container's endpoint on network ``ref`` goes (address, ports,
        interface). ``FailedPrecondition`` if it is not attached to it, ``force`` or not (as dockerd:
        ``force`` only lets a network that is gone pass)."""
        try:
            network = self.find(ref)
        except NotFound:
            if force:
                return
            raise
        for endpoint in self.driver.endpoints(container_id):
            if endpoint.network_id == network.id:
                self.driver.detach(endpoint)
                return
        raise FailedPrecondition(f"container {name} is not connected to network {network.name}")

    def ports(self, container_id: str) -> list[PortMapping]:
        """The container's published ports, as allocated (a chosen host port filled in)."""
        return [port for endpoint in self.endpoints(container_id) for port in endpoint.ports]

    def settings(self, container_id: str, mode: str = "") -> dict[str, dict[str, object]]:
        """``NetworkSettings.Networks`` of the container: network name -> docker's endpoint settings;
        ``mode``: its ``HostConfig.NetworkMode`` (``host`` and ``none`` are networks of their own)."""
        from pallet.network.driver import inspect_settings

        if mode in MODE_DRIVERS:
            return {mode: self.predefined(mode).settings(container_id)}
        out: dict[str, dict[str, object]] = {}
        for endpoint in self.endpoints(container_id):
            network = self.driver.network(endpoint.network_id)
            out[network.name] = inspect_settings(network, endpoint)
        return out

    def held_ports(self) -> set[tuple[str, int]]:
        """Every (protocol, host port) a container of this root holds."""
        return {(p.protocol, p.host_port) for _, p in self.driver.store.ports()}

    def reconcile(
        self,
        existing: Iterable[str] | Callable[[], Iterable[str]],
        active: Iterable[str] | Callable[[], Iterable[str]],
    ) -> Reconciled:
        """After containers died or were half made: remove what belongs to none of ``existing`` and
        take down the namespaces of those not ``active`` (the driver's ``reconcile``)."""
        return self.driver.reconcile(existing, active)
