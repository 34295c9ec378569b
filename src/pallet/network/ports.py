"""Host ports for publishing: is one free, and which one to give to ``-p CONTAINER_PORT``.

Published ports are DNAT rules, not listening sockets (see ``nft``), so
nothing in the kernel would refuse a host port that a host program already
listens on: its connections would silently go to the container. Before a
port is published, ``check_free`` binds it the way a server would (with
``SO_REUSEADDR``, so a port in TIME_WAIT is free, as it is for servers) and
refuses with docker's words when that fails. The database's
``published_ports`` table refuses a port another container holds.

``choose_free`` picks, for ``-p 80`` and ``-P``, a port of the kernel's
ephemeral range (``net.ipv4.ip_local_port_range``, as docker does) that no
endpoint holds and that binds.
"""

from __future__ import annotations

import _socket
from errno import EACCES, EADDRINUSE, EADDRNOTAVAIL

from pallet.errors import Conflict, InvalidArgument, Unavailable

__all__ = ["check_free", "choose_free", "local_port_range"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection

_KINDS = {"tcp": _socket.SOCK_STREAM, "udp": _socket.SOCK_DGRAM}


def _bindable(protocol: str, host_ip: str, port: int) -> int:
    """0 if ``host_ip:port`` binds for ``protocol``, else the errno."""
    kind = _KINDS.get(protocol)
    if kind is None:
        return 0  # sctp: nothing to probe without the module; the table's uniqueness still holds
    family = _socket.AF_INET6 if ":" in host_ip else _socket.AF_INET
    sock = _socket.socket(family, kind | _socket.SOCK_CLOEXEC)
    try:
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        sock.bind((host_ip, port))
    except OSError as e:
        return e.errno or EADDRINUSE
    finally:
        sock.close()
    return 0


def check_free(protocol: str, host_ip: str, port: int) -> None:
    """Refuse ``host_ip:port`` if a program of the host holds it (docker's words)."""
    if not 0 < port < 65536:
        raise InvalidArgument(f"invalid host port {port}: it must lie between 1 and 65535")
    errno = _bindable(protocol, host_ip or "0.0.0.0", port)
    if errno in (EADDRINUSE, EACCES):
        raise Conflict(f"Bind for {host_ip or '0.0.0.0'}:{port} failed: port is already allocated")
    if errno == EADDRNOTAVAIL:
        raise InvalidArgument(f"cannot publish on {host_ip}:{port}: {host_ip} is not an address of this host")


def local_port_range() -> tuple[int, int]:
    """The kernel's ephemeral port range."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = f.read().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def choose_free(protocol: str, host_ip: str, held: Collection[int], *, start: int = 0) -> int:
    """A host port of the ephemeral range not in ``held`` and bindable; ``start`` picks where to begin
    (callers pass a random offset so concurrent commands rarely try the same one)."""
    low, high = local_port_range()
    span = high - low + 1
    for step in range(span):
        port = low + (start + step) % span
        if port not in held and _bindable(protocol, host_ip or "0.0.0.0", port) == 0:
            return port
    raise Unavailable(f"no free host port for {protocol} in {low}-{high}")
