"""``pallet port``: a container's published ports, as docker lists them.

The ports are those the container holds on its networks (the network
store's, a host port chosen for ``-p 80`` or ``-P`` filled in), given as
(``80/tcp``, host address, host port); asking for one that is not published
gives docker's error.
"""

from __future__ import annotations

from pallet.errors import InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["parse_port", "port_lines"]

_PROTOCOLS = ("tcp", "udp", "sctp")


def parse_port(text: str) -> str:
    """``80`` -> ``80/tcp``; docker's error for anything else than PORT[/PROTO]."""
    port, _, proto = text.partition("/")
    proto = (proto or "tcp").lower()
    if not port.isdigit() or not 0 < int(port) < 65536 or proto not in _PROTOCOLS:
        raise InvalidArgument(f"invalid port {text!r}: use PRIVATE_PORT[/PROTO] with PROTO tcp, udp or sctp")
    return f"{int(port)}/{proto}"


def _address(host_ip: str, host_port: int) -> str:
    ip = host_ip or "0.0.0.0"
    return f"[{ip}]:{host_port}" if ":" in ip else f"{ip}:{host_port}"


def port_lines(ports: Sequence[tuple[str, str, int]], name: str, port: str | None = None) -> list[str]:
    """Lines ``docker port`` prints: ``80/tcp -> 0.0.0.0:8080`` for all ports, or the addresses of one.

    ``ports``: (``80/tcp``, host address, host port) as the container holds them.
    """
    if port is None:
        ordered = sorted(ports, key=lambda p: (int(p[0].split("/")[0]), p[0]))
        return [f"{private} -> {_address(ip, host_port)}" for private, ip, host_port in ordered]
    wanted = parse_port(port)
    found = [_address(ip, host_port) for private, ip, host_port in ports if private == wanted]
    if not found:
        raise NotFound(f"No public port '{wanted}' published for {name}")
    return found
