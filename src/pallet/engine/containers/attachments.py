"""A container's networks: which ones its options ask for, its published ports, its /etc files.

What ``create`` records and writes for the network, decided here once:

- ``attachments``: the network requests recorded with the container
  (``networking.Attachment``): the default network ``bridge`` for docker's
  default mode, the named user network for ``--network NAME``, none for
  ``none``, ``host`` and ``container:X`` (which make or join a namespace
  without an endpoint of their own).
- ``port_mappings``: ``-p`` and ``-P`` as host ports: a range paired port by
  port, a host range for one container port gives the first free port of
  the range, a missing host port any free one of the ephemeral range (never
  one another container holds: ``held``), ``-P`` the image's EXPOSE'd ports
  on free ones.
- ``network_files``: ``/etc/hostname``, ``/etc/hosts`` and
  ``/etc/resolv.conf`` as docker writes them for the mode; a container that
  joins another's namespace shares that container's files.
- ``check_connectable``: docker's refusal to ``network connect`` a container
  whose mode has no endpoints of its own.
"""

from __future__ import annotations

from pallet.errors import Conflict, FailedPrecondition

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence
    from typing import Any

    from pallet.engine.networking import Attachment
    from pallet.engine.spec.options import NetworkOptions
    from pallet.network.store import Endpoint, PortMapping

__all__ = ["attachments", "check_connectable", "network_files", "port_mappings", "recorded_ports"]


def port_mappings(
    network: NetworkOptions, exposed: Sequence[str], held: Collection[tuple[str, int]]
) -> list[PortMapping]:
    """The host ports of ``-p`` (``network.ports()``) and ``-P`` (``exposed``, the image's ``80/tcp``
    texts), as mappings; ``held`` is every (protocol, host port) another container holds. ``Conflict``
    naming the range when none of a range's ports is free."""
    from pallet.network.ports import check_free, choose_free
    from pallet.network.store import PortMapping

    taken = set(held)
    out: list[PortMapping] = []

    def add(protocol: str, host_ip: str, host_port: int, container_port: int) -> None:
        taken.add((protocol, host_port))
        out.append(
            PortMapping(
                protocol=protocol, host_ip=host_ip, host_port=host_port, container_port=container_port
            )
        )

    def free(protocol: str, host_ip: str) -> int:
        return choose_free(protocol, host_ip or "0.0.0.0", {p for k, p in taken if k == protocol})

    for request in network.ports():
        protocol, host_ip = request.protocol, request.host_ip
        count = request.container_end - request.container_start
        if not request.host_start:
            for port in range(request.container_start, request.container_end + 1):
                add(protocol, host_ip, free(protocol, host_ip), port)
        elif count or request.host_start == request.host_end:
            for offset in range(count + 1):
                add(protocol, host_ip, request.host_start + offset, request.container_start + offset)
        else:  # a host range for one container port: the first free port of the range
            for candidate in range(request.host_start, request.host_end + 1):
                if (protocol, candidate) in taken:
                    continue
                try:
                    check_free(protocol, host_ip or "0.0.0.0", candidate)
                except Conflict:
                    continue
                add(protocol, host_ip, candidate, request.container_start)
                break
            else:
                raise Conflict(
                    f"Bind for {host_ip or '0.0.0.0'}:{request.host_start}-{request.host_end} failed: "
                    "every port of the range is already allocated"
                )
    if network.publish_all:
        asked = {(m.protocol, m.container_port) for m in out}
        for text in exposed:
            number, _, protocol = text.partition("/")
            protocol = protocol or "tcp"
            if not number.isdigit() or (protocol, int(number)) in asked:
                continue
            add(protocol, "", free(protocol, ""), int(number))
    return out


def recorded_ports(document: Mapping[str, Any], held: Collection[tuple[str, int]]) -> list[PortMapping]:
    """The host ports a container's ``container.json`` asks for (``HostConfig.PortBindings`` and
    ``PublishAllPorts`` over ``Config.ExposedPorts``), allocated again: for an endpoint made by
    ``network connect`` when none of the container's endpoints holds them (compose disconnects and
    reconnects the network a container was created on; docker keeps publishing its ports)."""
    from pallet.engine.spec.options import NetworkOptions

    host = document.get("HostConfig") or {}
    publish = []
    for port, bindings in (host.get("PortBindings") or {}).items():
        for binding in bindings or [{}]:
            ip, host_port = binding.get("HostIp") or "", binding.get("HostPort") or ""
            ip_part = f"[{ip}]" if ":" in ip else ip
            publish.append(
                f"{ip_part}:{host_port}:{port}" if ip else f"{host_port}:{port}" if host_port else port
            )
    network = NetworkOptions(publish=tuple(publish), publish_all=bool(host.get("PublishAllPorts")))
    if not publish and not network.publish_all:
        return []
    exposed = tuple((document.get("Config") or {}).get("ExposedPorts") or ())
    return port_mappings(network, exposed, held)


def attachments(network: NetworkOptions, ports: Sequence[PortMapping]) -> list[Attachment]:
    """The networks the container joins at create, in order: the network the mode names (with the
    endpoint's aliases, addresses, MAC and the published ports), then ``network.networks`` (each with
    its own settings); none for ``none``, ``host``, ``container:``."""
    from pallet.engine.networking import Attachment

    name = network.mode.network_name
    if not name:
        return []
    first = Attachment(
        name, aliases=network.aliases, ip=network.ip, mac=network.mac_address, ports=ports, ip6=network.ip6,
        link_local_ips=network.link_local_ips, links=network.endpoint_links, driver_opts=network.driver_opts,
        gw_priority=network.gw_priority,
    )  # fmt: skip
    more = [
        Attachment(
            extra.network,
            aliases=extra.aliases,
            ip=extra.ip,
            mac=extra.mac_address,
            ip6=extra.ip6,
            link_local_ips=extra.link_local_ips,
            links=extra.links,
            driver_opts=extra.driver_opts,
            gw_priority=extra.gw_priority,
        )
        for extra in network.networks
    ]
    return [first, *more]


def network_files(
    directory: str,
    network: NetworkOptions,
    *,
    hostname: str,
    endpoints: Sequence[Endpoint],
    resolver: str,
    host_gateway: str,
    durable: bool,
) -> dict[str, str]:
    """Write the container's ``/etc/hostname``, ``/etc/hosts`` and ``/etc/resolv.conf`` into
    ``directory``; the mapping ``build_spec(hosts_files=...)`` wants. ``resolver``: the address of
    the user network's resolver ("" on the default bridge); ``host_gateway``: what ``host-gateway``
    in ``--add-host`` stands for (the default network's gateway, an address of the host). The
    container's name has a line for its address on each of its networks, as docker's hosts file."""
    from pallet.engine.spec.hostsfiles import write_network_files
    from pallet.engine.spec.syntax import parse_extra_host

    extra = []
    for text in network.extra_hosts:
        name, address = parse_extra_host(text)
        extra.append((name, host_gateway if address == "host-gateway" else address))
    return write_network_files(
        directory, hostname=hostname, network=network.mode, domainname=network.domainname,
        addresses=[e.ip for e in endpoints], extra_hosts=extra, resolver=resolver, dns=network.dns,
        dns_search=network.dns_search, dns_options=network.dns_options, durable=durable,
    )  # fmt: skip


def check_connectable(document: Mapping[str, Any], name: str) -> None:
    """docker's refusal to ``network connect`` a container whose mode has no endpoints of its own."""
    mode = str((document.get("HostConfig") or {}).get("NetworkMode") or "default")
    if mode == "host":
        raise FailedPrecondition(
            "container cannot be disconnected from host network or connected to host network"
        )
    if mode == "none":
        raise FailedPrecondition(
            f"container {name} is on the none network: it cannot be connected to another network"
        )
    if mode.startswith("container:"):
        raise FailedPrecondition(
            "container sharing network namespace with another container or host cannot be connected to any "
            "other network"
        )
