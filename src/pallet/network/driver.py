"""The bridge driver: what the engine calls to give containers networks, composed of this layer's parts.

``Driver(db, run_dir=..., tag=...)`` works on the root's database (the
engine's connection: allocations join its transactions), the run dir
(namespace files under ``netns/``, resolvers under ``resolvers/``) and the
root's nftables table (``pallet-<tag>``).

Operations and their contracts — each is idempotent, so a SIGKILL at any
point is repaired by running it again or by ``reconcile``:

- ``create_network``: validates and records (IPAM subnet chosen around the
  host's routes and the other networks); nothing in the kernel yet.
- ``ensure_network``: the bridge (up, gateway address, MTU,
  ``route_localnet``), ``ip_forward`` unless internal, the table and the
  network's chains. Called by ``attach``; after a reboot it recreates all.
- ``attach``: refuse host ports a program of the host holds (``ports``),
  allocate (one transaction: the endpoint row holds the address and the
  published ports; the caller may wrap it with the container's own
  record), then the kernel side (``plumb``: namespace file, veth pair with
  the container end made directly in the namespace, address, default
  route), then the published ports, then the resolver. A failure after the
  allocation undoes what it did and releases the row.
- ``detach``: the endpoint row first (from then on the resolver no longer
  answers its name), then its ports, then its veth. The namespace file is
  the container's, removed by ``remove_netns`` when the container goes.
- ``remove_container``: ``rm``'s one call: the namespace file first (its
  interfaces, the veths' host ends with them, are then destroyed by the
  kernel in the background), then the endpoints' rows and port rules.
- ``remove_network``: refused while endpoints remain (docker's words); the
  kernel side first, the row last, so a kill leaves a row the next
  ``network rm`` finishes.
- ``suspend`` / ``resume``: a stopped container loses its namespace file,
  veths and port rules but keeps its rows (addresses and host ports stay
  its own); a started one gets them back, the same addresses, in a new
  namespace (also what a reboot needs).
- ``reconcile(existing, active)``: given the ids of the containers that
  exist (and of those whose network is up), removes endpoints of the
  others, namespace files and veths of inactive ones, veths on this root's
  bridges that no endpoint names and resolvers of networks without
  endpoints, starts the resolver of a network whose resolver died, and
  rewrites the nftables table from the database.

Kernel changes of one root take turns on a lock file in the run dir
(``network.lock``), so the reconcile's rewrite of the rules never drops an
attach's that it did not see; the database serialises itself.

Costs: attach is one netlink socket in each namespace and about ten
round trips, plus one ``nft`` process when ports are published and one
resolver start for the first container of a user-defined network.

How an engine uses it (the calls, in order):

- open: the root's ``Database`` with ``pallet.network.store.SCHEMA`` listed
  after the engine's schemas; ``Driver(db, run_dir=..., tag=root_tag(root),
  pools=ipam.parse_pools(<config default-address-pools>))``.
- the default network, once: ``create_network("bridge", bridge="pallet0"
  (default root) or "pallet-" + tag[:8], dns=False)``.
- ``run``/``create``: in the transaction that records the container,
  ``allocate(network, cid, name=..., aliases=..., ip=..., mac=...,
  ports=...)`` per network; after the commit, ``resume(cid)`` (namespace,
  veths, rules, resolver); the runtime gets ``netns_path(cid)`` as the
  config's network namespace path. (``attach`` does both halves at once,
  for ``network connect``.)
- ``stop``: ``suspend(cid)``; ``start``: ``resume(cid)``; ``rm``:
  ``remove_container(cid)``; ``network
  disconnect``: ``detach(endpoint)``; ``network rm``/``prune``:
  ``remove_network``/``prune(keep=["bridge"])``.
- after finding dead or half-made containers: ``reconcile(existing,
  active)``.
- ``inspect``: ``inspect_settings``/``inspect_network``; ``port``:
  ``store.ports()``; ``/etc/resolv.conf`` of a container on a user network
  names ``network.gateway`` only (the resolver), on the default bridge the
  host's servers without 127.x (``engine/hostsfiles``); ``/etc/hosts``
  gains ``<ip> <hostname>``.
"""

from __future__ import annotations

import ipaddress
import os
from _socket import AF_INET, AF_INET6

from pallet.errors import AlreadyExists, InvalidArgument, PalletError
from pallet.network import forward_policy, ipam, netns, nft, resolver
from pallet.network.netlink import Netlink
from pallet.network.ports import check_free
from pallet.network.store import Endpoint, Network, NetworkStore, PortMapping

__all__ = [
    "BRIDGE_NAME_OPTION",
    "Driver",
    "Reconciled",
    "bridge_mac",
    "gateway_endpoint",
    "inspect_network",
    "inspect_settings",
    "root_tag",
    "veth_name",
]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from pallet.database import Database

#: docker's driver option naming the bridge interface
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
_MTU_OPTION = "com.docker.network.driver.mtu"
_IFNAMSIZ = 15


def root_tag(root: str) -> str:
    """A short stable tag of a pallet root (8 hex), for names two roots on one host must not share:
    the nftables table (``pallet-<tag>``), the default network's bridge when the root is not the
    default one. ``zlib.crc32`` of the real path: ``hashlib`` is banned from the run path."""
    import zlib

    return f"{zlib.crc32(os.path.realpath(root).encode()):08x}"


def _new_id() -> str:
    """64 random hex digits (docker's ids; ``secrets`` would import hashlib, hmac and random)."""
    return os.urandom(32).hex()


def _now() -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _sysctl(path: str, value: str) -> None:
    """Write a /proc/sys value unless it holds it already."""
    try:
        with open(path) as f:
            if f.read().strip() == value:
                return
    except FileNotFoundError:
        return
    with open(path, "w") as f:
        f.write(value)


def veth_name(endpoint_id: str) -> str:
    """The host end of an endpoint's veth pair (docker's are ``veth`` + 7 hex; ours name the endpoint)."""
    return "veth" + endpoint_id[:11]


def bridge_mac(network_id: str) -> str:
    """A fixed MAC for the bridge, from the network's id (locally administered, unicast).

    Without one, a bridge takes the lowest MAC of its ports and changes it as
    containers come and go; the others' ARP caches then point at a MAC that is
    no longer the gateway's, and their packets are lost until the entry
    expires. Docker sets a random one for the same reason.
    """
    return "02:" + ":".join(network_id[i : i + 2] for i in range(0, 10, 2))


class _RootLock:
    """An exclusive ``flock`` on a file of the run dir, held for a ``with`` block (and by nothing else:
    a process killed while holding it releases it)."""

    __slots__ = ("_fd", "_path")

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd = -1

    def __enter__(self) -> None:
        import fcntl

        os.makedirs(os.path.dirname(self._path), mode=0o700, exist_ok=True)
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        os.close(self._fd)


class Reconciled:
    """What ``reconcile`` removed, for the caller's log."""

    __slots__ = ("endpoints", "links", "netns", "resolvers", "resolvers_started")

    def __init__(self) -> None:
        self.endpoints: list[str] = []
        self.netns: list[str] = []
        self.links: list[str] = []
        self.resolvers: list[str] = []
        self.resolvers_started: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.endpoints or self.netns or self.links or self.resolvers or self.resolvers_started)


class Driver:
    """Bridge networks of one pallet root."""

    def __init__(
        self,
        db: Database,
        *,
        run_dir: str,
        tag: str,
        pools: Sequence[ipam.Pool] = ipam.DEFAULT_POOLS,
        upstreams: Sequence[str] | None = None,
    ) -> None:
        self.store = NetworkStore(db)
        self.run_dir = run_dir
        self.tag = tag
        self.table = nft.table_name(tag)
        self.pools = pools
        self._upstreams = upstreams

    # --- networks ---------------------------------------------------------------------------------

    def create_network(
        self,
        name: str,
        *,
        subnet: str = "",
        gateway: str = "",
        ip_range: str = "",
        internal: bool = False,
        dns: bool = True,
        bridge: str = "",
        labels: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
        network_id: str = "",
        ipv6: bool = False,
        subnet6: str = "",
        gateway6: str = "",
        ip_range6: str = "",
        ipam_options: Mapping[str, str] | None = None,
        aux_addresses: Mapping[str, str] | None = None,
    ) -> Network:
        """Record a bridge network; ``bridge`` (or docker's ``-o com.docker.network.bridge.name``)
        names its interface, ``br-<id[:12]>`` by default. ``ipv6`` (or a ``subnet6``) makes it dual
        stack, on a unique local /64 unless ``subnet6`` is given. ``aux_addresses`` (docker's
        ``--aux-address NAME=IP``) are reserved: in a subnet, never given to an endpoint;
        ``ipam_options`` are kept and shown (None: shown as null)."""
        if not name or "/" in name:
            raise InvalidArgument(f"invalid network name {name!r}")
        options = dict(options or {})
        bridge = bridge or options.get(BRIDGE_NAME_OPTION, "")
        network_id = network_id or _new_id()
        bridge = bridge or f"br-{network_id[:12]}"
        if len(bridge.encode()) > _IFNAMSIZ or not bridge.isprintable() or "/" in bridge or " " in bridge:
            raise InvalidArgument(f"invalid bridge name {bridge!r}: at most 15 bytes, no '/' or space")
        if any(n.name == name for n in self.store.networks()):
            raise AlreadyExists(f"network with name {name} already exists")
        taken, uplink_mtu = self._host_view()
        mtu = uplink_mtu
        if _MTU_OPTION in options:
            try:
                mtu = int(options[_MTU_OPTION])
            except ValueError:
                raise InvalidArgument(f"invalid {_MTU_OPTION} {options[_MTU_OPTION]!r}") from None
            if not 68 <= mtu <= 65535:
                raise InvalidArgument(f"invalid {_MTU_OPTION} {mtu}: it must lie between 68 and 65535")
        addressing = ipam.make_subnet(
            subnet=subnet, gateway=gateway, ip_range=ip_range, pools=self.pools, taken=taken
        )
        v6 = None
        if ipv6 or subnet6 or gateway6:
            v6 = ipam.make_subnet6(subnet=subnet6, gateway=gateway6, ip_range=ip_range6, taken=taken)
        aux = dict(aux_addresses or {})
        for aux_name, text in aux.items():
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                raise InvalidArgument(
                    f"invalid auxiliary address {aux_name}={text!r}: not an IP address"
                ) from None
            if not any(s is not None and address in s.subnet for s in (addressing, v6)):
                raise InvalidArgument(f"no matching subnet for aux-address {text}")
        network = Network(
            id=network_id, name=name, bridge=bridge, subnet=str(addressing.subnet),
            gateway=str(addressing.gateway), ip_range=str(addressing.ip_range), internal=internal, dns=dns,
            mtu=mtu, created=_now(), labels=dict(labels or {}), options=options,
            subnet6=str(v6.subnet) if v6 else "", gateway6=str(v6.gateway) if v6 else "",
            ip_range6=str(v6.ip_range) if v6 else "",
            ipam_options=None if ipam_options is None else dict(ipam_options), aux_addresses=aux,
        )  # fmt: skip
        self.store.add(network)
        return network

    def _host_view(self) -> tuple[list[ipaddress.IPv4Network | ipaddress.IPv6Network], int]:
        """The subnets taken (other networks', the host's routes) and the MTU a new network gets.

        The MTU is that of the interface of the host's default route, at most
        1500 (netavark's choice; docker's fixed 1500 loses large packets on
        hosts whose uplink is smaller, as on many VMs), 1500 without one.
        """
        taken = self.store.subnets()
        mtu = 1500
        with Netlink.open() as nl:
            routes = nl.routes(AF_INET)
            for route in routes + nl.routes(AF_INET6):
                if route.dst_len:
                    taken.append(ipaddress.ip_network(f"{route.dst}/{route.dst_len}", strict=False))
            uplinks = {route.oif for route in routes if route.dst_len == 0 and route.oif}
            if uplinks:
                mtu = min([1500] + [link.mtu for link in nl.links() if link.index in uplinks and link.mtu])
        return taken, mtu

    def ensure_network(self, network: Network, nl: Netlink | None = None) -> None:
        """The network's bridge, address and rules in the kernel. Idempotent."""
        own = nl is None
        nl = nl or Netlink.open()
        try:
            try:
                nl.add_bridge(network.bridge, mtu=network.mtu, mac=bridge_mac(network.id))
                self._forget_set_up(network)
            except AlreadyExists:
                link = nl.link(network.bridge)
                if link.kind != "bridge":
                    raise AlreadyExists(
                        f"interface {network.bridge} exists and is not a bridge; choose another bridge name"
                    ) from None
                if not link.up:
                    nl.set_link(network.bridge, up=True)
            nl.add_address(network.bridge, network.gateway, network.prefixlen)
            if network.subnet6:
                _sysctl(f"/proc/sys/net/ipv6/conf/{network.bridge}/disable_ipv6", "0")
                nl.add_address(network.bridge, network.gateway6, network.prefixlen6, nodad=True)
        finally:
            if own:
                nl.close()
        marker = self._set_up_marker(network)
        try:
            with open(marker) as f:
                applied = f.read()
        except FileNotFoundError:
            applied = None
        if applied is not None:
            # sysctls and rules applied since boot (the run dir is lost with them on reboot); only a
            # dockerd started (or its FORWARD policy changed) since then needs pallet's accepts again
            now = forward_policy.target()
            if applied != now:
                self._accept_forwarding(self.store.networks())
                with open(marker, "w") as f:
                    f.write(now)
            return
        # 127.0.0.1 publishing: the host's own connections DNAT'd into the bridge keep their source
        _sysctl(f"/proc/sys/net/ipv4/conf/{network.bridge}/route_localnet", "1")
        if not network.internal:
            _sysctl("/proc/sys/net/ipv4/ip_forward", "1")
            if network.subnet6:
                # as docker does; note that a host taking its IPv6 route from router advertisements
                # needs accept_ra=2 on its uplink once forwarding is on
                _sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")
        nft.apply(
            nft.compose(nft.table_batch(self.table), nft.network_add_batch(self.table, _rules(network)))
        )
        self._accept_forwarding(self.store.networks())
        os.makedirs(os.path.dirname(marker), mode=0o700, exist_ok=True)
        with open(marker, "w") as f:
            f.write(forward_policy.target())  # what the accepts were made for

    def _accept_forwarding(self, networks: Iterable[Network]) -> None:
        """pallet's accept rules in docker's ``DOCKER-USER`` chain exactly for ``networks``' bridges
        (``forward_policy``: docker's FORWARD policy DROP would drop their traffic otherwise)."""
        forward_policy.sync(self.tag, {n.bridge: n.internal for n in networks})

    def _set_up_marker(self, network: Network) -> str:
        """A file under the run dir that says the network's sysctls and rules are in place."""
        return os.path.join(self.run_dir, "networks", network.id[:12])

    def _forget_set_up(self, network: Network) -> None:
        try:  # noqa: SIM105 - contextlib: an import for one line
            os.unlink(self._set_up_marker(network))
        except FileNotFoundError:
            pass

    def remove_network(self, ref: str) -> Network:
        """Remove a network without endpoints: resolver, rules, bridge, then the row. Idempotent."""
        with self._lock():
            network = self.store.find(ref)
            self.store.check_unused(network)
            self._forget_set_up(network)
            resolver.stop(self.run_dir, network.id)
            others = [n for n in self.store.networks() if n.id != network.id]
            if others:
                nft.apply(nft.network_remove_batch(self.table, _rules(network)))
            else:
                nft.apply(nft.table_remove_batch(self.table))
            self._accept_forwarding(others)
            with Netlink.open() as nl:
                nl.delete_link(network.bridge)
            self.store.remove(network)
        return network

    def prune(self, keep: Iterable[str] = ()) -> list[Network]:
        """``network prune``: remove every network without endpoints, except those named in ``keep``
        (the default network). Returns those removed."""
        keep = set(keep)
        removed = []
        for network in self.store.networks():
            if network.name in keep or network.id in keep or self.store.endpoints(network_id=network.id):
                continue
            removed.append(self.remove_network(network.id))
        return removed

    # --- containers -------------------------------------------------------------------------------

    def netns_path(self, container_id: str) -> str:
        """Where the container's network namespace is bound (the path the OCI config names)."""
        return os.path.join(self.run_dir, "netns", container_id)

    def create_netns(self, container_id: str) -> str:
        """The container's network namespace, made if missing; its path. Idempotent."""
        path = self.netns_path(container_id)
        netns.create(path)
        return path

    def remove_netns(self, container_id: str) -> None:
        """Remove the container's namespace file (its interfaces go with the namespace). Idempotent."""
        netns.remove(self.netns_path(container_id))

    def attach(
        self,
        network: Network,
        container_id: str,
        *,
        name: str,
        aliases: Sequence[str] = (),
        ip: str = "",
        mac: str = "",
        ports: Sequence[PortMapping] = (),
        ip6: str = "",
        link_local_ips: Sequence[str] = (),
        links: Sequence[str] = (),
        driver_opts: Mapping[str, str] | None = None,
        gw_priority: int = 0,
        dns: Sequence[str] = (),
    ) -> Endpoint:
        """Connect the container to ``network``: its address, interface, route, ports and names.

        ``Conflict`` if attached already, the address or a port is taken (by
        another endpoint or by a program of the host); on any failure nothing
        of this attachment is left.
        """
        with self._lock():
            endpoint = self.allocate(
                network, container_id, name=name, aliases=aliases, ip=ip, mac=mac, ports=ports, ip6=ip6,
                link_local_ips=link_local_ips, links=links, driver_opts=driver_opts, gw_priority=gw_priority,
                dns=dns,
            )  # fmt: skip
            try:
                self.create_netns(container_id)
                self._bring_up(network, endpoint)
            except BaseException:
                self._undo(endpoint)
                raise
        return endpoint

    def allocate(
        self,
        network: Network,
        container_id: str,
        *,
        name: str,
        aliases: Sequence[str] = (),
        ip: str = "",
        mac: str = "",
        ports: Sequence[PortMapping] = (),
        ip6: str = "",
        link_local_ips: Sequence[str] = (),
        links: Sequence[str] = (),
        driver_opts: Mapping[str, str] | None = None,
        gw_priority: int = 0,
        dns: Sequence[str] = (),
    ) -> Endpoint:
        """Only record the attachment (address, ports), nothing in the kernel: the half of ``attach``
        an engine runs inside the transaction that records the container, before ``resume`` brings
        every recorded endpoint up. Refuses what ``attach`` refuses."""
        for port in ports:
            check_free(port.protocol, port.host_ip, port.host_port)
        if mac and not _is_mac(mac):
            raise InvalidArgument(f"invalid MAC address {mac!r}: want six hex octets, 02:42:ac:11:00:02")
        for address in link_local_ips:
            _link_local_prefix(address)
        for link in links:
            if not link.partition(":")[0]:
                raise InvalidArgument(f"invalid link {link!r}: want NAME or NAME:ALIAS")
        endpoint_id = _new_id()
        return self.store.allocate(
            network, endpoint_id=endpoint_id, container_id=container_id, name=name, aliases=aliases, ip=ip,
            mac=mac, ports=ports, netns=self.netns_path(container_id), veth=veth_name(endpoint_id), ip6=ip6,
            link_local_ips=link_local_ips, links=[_link_text(link) for link in links],
            driver_opts=dict(driver_opts or {}), gw_priority=gw_priority, dns=dns,
        )  # fmt: skip

    def _bring_up(self, network: Network, endpoint: Endpoint, route: bool | None = None) -> None:
        """The kernel side of a recorded endpoint: network, veth, ports, resolver. Caller holds the lock.
        ``route``: ``plumb``'s."""
        with Netlink.open() as nl:
            self.ensure_network(network, nl)
            self.plumb(network, endpoint, nl, route=route)
        if endpoint.ports:
            rules = _port_rules(endpoint)
            nft.apply(nft.ports_remove_batch(self.table, rules) + nft.ports_add_batch(self.table, rules))
        if network.dns:
            self._ensure_resolver(network)

    def plumb(
        self, network: Network, endpoint: Endpoint, nl: Netlink | None = None, *, route: bool | None = None
    ) -> str:
        """The kernel side of an endpoint: veth pair, address, default route. Idempotent (the pair is
        made again). Returns the interface's name in the container (eth0, eth1, ...). ``route``: the
        endpoint gives the default routes (True), does not (False), or does if there are none yet (None,
        a ``connect``: a later network keeps the route the container has, as docker)."""
        own = nl is None
        nl = nl or Netlink.open()
        try:
            nl.delete_link(endpoint.veth)
            with Netlink.open(endpoint.netns) as inside:
                taken = {link.name for link in inside.links()}
                ifname = next(f"eth{i}" for i in range(len(taken) + 1) if f"eth{i}" not in taken)
                fd = os.open(endpoint.netns, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    nl.add_veth(
                        endpoint.veth, ifname, peer_netns_fd=fd, peer_mac=endpoint.mac, mtu=network.mtu,
                        master=network.bridge,
                    )  # fmt: skip
                finally:
                    os.close(fd)
                nl.set_hairpin(endpoint.veth)
                inside.set_link("lo", up=True)
                inside.set_link(ifname, up=True)
                inside.add_address(ifname, endpoint.ip, network.prefixlen)
                if route is None:
                    route = not any(r.dst_len == 0 for r in inside.routes())
                if route and not network.internal:
                    inside.default_route(network.gateway, ifname)
                for address in endpoint.link_local_ips:  # docker's --link-local-ip: added beside the address
                    inside.add_address(ifname, address, _link_local_prefix(address), nodad=":" in address)
                if endpoint.ip6:
                    inside.add_address(ifname, endpoint.ip6, network.prefixlen6, nodad=True)
                    if (
                        route
                        and not network.internal
                        and not any(r.dst_len == 0 for r in inside.routes(AF_INET6))
                    ):
                        inside.default_route(network.gateway6, ifname)
            return ifname
        finally:
            if own:
                nl.close()

    def _undo(self, endpoint: Endpoint) -> None:
        try:  # noqa: SIM105 - contextlib: an import for one line
            self._detach(endpoint)
        except PalletError:
            pass  # the reconcile finishes it: the original error is the one to report

    def detach(self, endpoint: Endpoint) -> None:
        """Disconnect an endpoint: its row (and address) first, then its ports and its veth. Idempotent."""
        with self._lock():
            self._detach(endpoint)

    def _detach(self, endpoint: Endpoint) -> None:
        self.store.release(endpoint.id)
        self._tear_down(endpoint)
        remaining = self.store.endpoints(container_id=endpoint.container_id)
        if remaining and netns.is_netns(endpoint.netns):
            self._keep_a_way_out(remaining)

    def _keep_a_way_out(self, endpoints: Sequence[Endpoint]) -> None:
        """After a ``disconnect``: if the container lost its default route with the interface that
        carried it, route by the first remaining network that has a way out."""
        with Netlink.open(endpoints[0].netns) as inside:
            if any(r.dst_len == 0 for r in inside.routes()):
                return
            by_mac = {link.mac: link.name for link in inside.links()}
            for endpoint in endpoints:
                network = self.store.find(endpoint.network_id)
                if not network.internal and endpoint.mac in by_mac:
                    inside.default_route(network.gateway, by_mac[endpoint.mac])
                    return

    def _tear_down(self, endpoint: Endpoint) -> None:
        if endpoint.ports:
            nft.apply(nft.ports_remove_batch(self.table, _port_rules(endpoint)))
        with Netlink.open() as nl:
            nl.delete_link(endpoint.veth)

    def detach_container(self, container_id: str) -> list[Endpoint]:
        """Detach a container from every network (``rm``); its namespace file stays (``remove_netns``)."""
        with self._lock():
            endpoints = self.store.endpoints(container_id=container_id)
            for endpoint in endpoints:
                self._detach(endpoint)
        return endpoints

    def remove_container(self, container_id: str) -> list[Endpoint]:
        """``rm``: the container's namespace file, then each endpoint's row and port rules. Idempotent.

        Its veths are not deleted one by one: with the namespace gone the kernel
        destroys its interfaces, the veths' host ends with them, in the
        background (each deletion waits for the host's RCU grace period, ~10 ms,
        which ``rm`` need not wait for). Veths of a namespace already gone (a
        suspended container) are deleted here; one a lingering process keeps
        alive goes at the next ``reconcile``.
        """
        with self._lock():
            path = self.netns_path(container_id)
            destroyed = netns.is_netns(path)
            self.remove_netns(container_id)
            endpoints = self.store.endpoints(container_id=container_id)
            for endpoint in endpoints:
                self.store.release(endpoint.id)
                if endpoint.ports:
                    nft.apply(nft.ports_remove_batch(self.table, _port_rules(endpoint)))
                if not destroyed:
                    with Netlink.open() as nl:
                        nl.delete_link(endpoint.veth)
        return endpoints

    def suspend(self, container_id: str) -> list[Endpoint]:
        """A stopped container: its ports' rules, veths and namespace file go; its rows stay, so its
        addresses and host ports stay its own until ``resume`` or ``detach_container``. Idempotent."""
        with self._lock():
            endpoints = self.store.endpoints(container_id=container_id)
            for endpoint in endpoints:
                self._tear_down(endpoint)
            self.remove_netns(container_id)
        return endpoints

    def resume(self, container_id: str) -> list[Endpoint]:
        """A (re)started container: every endpoint it holds brought up again in a new namespace, with
        the same addresses and ports (after ``suspend``, or after a reboot). Idempotent."""
        with self._lock():
            self.create_netns(container_id)
            endpoints = self.store.endpoints(container_id=container_id)
            networks = [self.store.find(endpoint.network_id) for endpoint in endpoints]
            gateway = gateway_endpoint(endpoints, networks)
            for network, endpoint in zip(networks, endpoints, strict=True):
                # interfaces eth0, eth1... in the order the endpoints were recorded
                self._bring_up(network, endpoint, route=endpoint is gateway)
        return endpoints

    def _lock(self) -> _RootLock:
        """The root's network lock: kernel changes and the reconcile's rewrite of the rules, one at a
        time, so a rewrite never drops the rules of an attach it did not see."""
        return _RootLock(os.path.join(self.run_dir, "network.lock"))

    def _ensure_resolver(self, network: Network) -> int:
        upstreams = self._upstreams
        if upstreams is None:
            try:
                with open("/etc/resolv.conf") as f:
                    upstreams = resolver.host_nameservers(f.read())
            except OSError:
                upstreams = []
        return resolver.ensure_running(
            self.run_dir, self.store.db.path, network.id, network.gateway,
            upstreams=upstreams, internal=network.internal,
        )  # fmt: skip

    # --- leftovers --------------------------------------------------------------------------------

    def reconcile(
        self,
        existing: Iterable[str] | Callable[[], Iterable[str]],
        active: Iterable[str] | Callable[[], Iterable[str]] | None = None,
    ) -> Reconciled:
        """Remove what belongs to containers that do not exist and rewrite the rules. Idempotent.

        ``existing``: the ids of every container record, those being created
        included (their endpoints are kept). ``active``: those whose network
        is up (created, running, paused; default: all of ``existing``) — the
        others keep their rows but lose their namespace file, veths and port
        rules, as after ``suspend``. Either may be a function, called under
        the lock after the endpoints are read: an engine that reads its
        containers there never loses the endpoint of a container recorded
        meanwhile (its row was committed with the endpoint's, before).
        """
        done = Reconciled()
        with self._lock():
            snapshot = self.store.endpoints()
            existing = set(existing() if callable(existing) else existing)
            asked = active() if callable(active) else active
            active = existing if asked is None else set(asked) & existing
            with Netlink.open() as nl:
                for endpoint in snapshot:
                    if endpoint.container_id not in existing:
                        self.store.release(endpoint.id)
                        nl.delete_link(endpoint.veth)  # its ports go with the rewrite of the table below
                        done.endpoints.append(endpoint.id)
            netns_dir = os.path.join(self.run_dir, "netns")
            try:
                names = os.listdir(netns_dir)
            except FileNotFoundError:
                names = []
            for name in names:
                if name not in active and not name.startswith("."):
                    netns.remove(os.path.join(netns_dir, name))
                    done.netns.append(name)
            networks = self.store.networks()
            endpoints = self.store.endpoints()
            up = [e for e in endpoints if e.container_id in active]
            wanted = {e.veth for e in up}
            with Netlink.open() as nl:
                links = nl.links()
                bridges = {link.index for link in links if link.name in {n.bridge for n in networks}}
                for link in links:
                    if link.master in bridges and link.kind == "veth" and link.name not in wanted:
                        nl.delete_link(link.name)
                        done.links.append(link.name)
            used = {e.network_id[:12] for e in endpoints}
            for short in resolver.resolver_networks(self.run_dir):
                if short not in used:
                    resolver.stop(self.run_dir, short)
                    done.resolvers.append(short)
            present = {link.name for link in links}
            serving = {e.network_id for e in up}
            for network in networks:
                if network.bridge not in present:
                    self._forget_set_up(network)  # gone with a reboot or by hand: the next attach sets it up
                elif (
                    network.dns
                    and network.id in serving
                    and not resolver.running_pid(self.run_dir, network.id)
                ):
                    self._ensure_resolver(network)  # it died (SIGKILL, OOM): its containers need names
                    done.resolvers_started.append(network.id[:12])
            nft.apply(
                nft.rebuild_batch(
                    self.table,
                    [_rules(n) for n in networks if n.bridge in present],
                    [_port_rules(e) for e in up if e.ports],
                )
            )
            self._accept_forwarding([n for n in networks if n.bridge in present])
        return done

    def network(self, ref: str) -> Network:
        return self.store.find(ref)

    def endpoints(self, container_id: str) -> list[Endpoint]:
        return self.store.endpoints(container_id=container_id)


def gateway_endpoint(endpoints: Sequence[Endpoint], networks: Sequence[Network]) -> Endpoint | None:
    """The endpoint that gives a container its default routes, by libnetwork's ordering of a
    sandbox's endpoints (``Endpoint.Less``): the highest ``gw-priority``, then one not on an
    ``--internal`` network, then one with both an IPv4 and an IPv6 gateway, then the network's name
    (the least). None when every network is internal (no way out)."""
    best: tuple[tuple[int, int, str], Endpoint] | None = None
    for endpoint, network in zip(endpoints, networks, strict=True):
        if network.internal:
            continue
        gateways = 1 + bool(endpoint.ip6 and network.gateway6)
        key = (-endpoint.gw_priority, -gateways, network.name)
        if best is None or key < best[0]:
            best = (key, endpoint)
    return None if best is None else best[1]


def _rules(network: Network) -> nft.NetworkRules:
    return nft.NetworkRules(
        id=network.id, bridge=network.bridge, subnet=network.subnet, internal=network.internal,
        subnet6=network.subnet6,
    )  # fmt: skip


def _port_rules(endpoint: Endpoint) -> nft.PortRules:
    return nft.PortRules(id=endpoint.id, ip=endpoint.ip, ports=endpoint.ports)


def _link_local_prefix(text: str) -> int:
    """The prefix length a ``--link-local-ip`` is added with: its link-local network's (169.254.0.0/16,
    fe80::/64), else the address alone. ``InvalidArgument`` for what is not an address."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidArgument(f"invalid link-local IP address {text!r}") from None
    if address.is_link_local:
        return 16 if address.version == 4 else 64
    return address.max_prefixlen


def _is_mac(text: str) -> bool:
    octets = text.split(":")
    return len(octets) == 6 and all(
        len(o) == 2 and all(c in "0123456789abcdefABCDEF" for c in o) for o in octets
    )


def _link_text(link: str) -> str:
    """docker's form of a link: ``NAME:ALIAS`` (``NAME`` alone is ``NAME:NAME``)."""
    name, _, alias = link.partition(":")
    return f"{name.lstrip('/')}:{alias or name.lstrip('/')}"


def inspect_settings(network: Network, endpoint: Endpoint) -> dict[str, object]:
    """The container's ``NetworkSettings.Networks.<name>`` entry, as docker shows it."""
    return {
        "IPAMConfig": endpoint.ipam_config,
        "Links": list(endpoint.links) or None,
        "Aliases": list(endpoint.aliases) or None,
        "MacAddress": endpoint.mac,
        "DriverOpts": endpoint.driver_opts or None,
        "NetworkID": network.id,
        "EndpointID": endpoint.id,
        "Gateway": network.gateway,
        "IPAddress": endpoint.ip,
        "IPPrefixLen": network.prefixlen,
        "IPv6Gateway": network.gateway6 if endpoint.ip6 else "",
        "GlobalIPv6Address": endpoint.ip6,
        "GlobalIPv6PrefixLen": network.prefixlen6 if endpoint.ip6 else 0,
        "DNSNames": [endpoint.name, *endpoint.aliases, endpoint.container_id[:12]] if network.dns else None,
    }


def inspect_network(network: Network, endpoints: Sequence[Endpoint]) -> dict[str, object]:
    """``network inspect``'s document for a bridge network, as docker shows it."""
    configs: list[dict[str, object]] = []
    for subnet, ip_range, gateway in (
        (network.subnet, network.ip_range, network.gateway),
        (network.subnet6, network.ip_range6 or network.subnet6, network.gateway6),
    ):
        if not subnet:
            continue
        config: dict[str, object] = {"Subnet": subnet}
        if ip_range != subnet:
            config["IPRange"] = ip_range
        config["Gateway"] = gateway
        net = ipaddress.ip_network(subnet)
        aux = {k: v for k, v in network.aux_addresses.items() if ipaddress.ip_address(v) in net}
        if aux:
            config["AuxiliaryAddresses"] = aux
        configs.append(config)
    return {
        "Name": network.name,
        "Id": network.id,
        "Created": network.created,
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv6": bool(network.subnet6),
        "IPAM": {"Driver": "default", "Options": network.ipam_options, "Config": configs},
        "Internal": network.internal,
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": {
            e.container_id: {
                "Name": e.name,
                "EndpointID": e.id,
                "MacAddress": e.mac,
                "IPv4Address": f"{e.ip}/{network.prefixlen}",
                "IPv6Address": f"{e.ip6}/{network.prefixlen6}" if e.ip6 else "",
            }
            for e in endpoints
        },
        # only the options the user gave, as docker: a generated bridge name shown here would read to
        # compose as a changed network (it compares Options with its file's driver_opts)
        "Options": dict(network.options),
        "Labels": network.labels,
    }
