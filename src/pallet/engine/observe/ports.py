"""``pallet port``: a container's published ports, as docker lists them.

Published ports live in the container document's ``HostConfig.PortBindings``
(docker's shape: ``{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}``).
Until bridge networking exists nothing is published, so the list is empty,
and asking for one port gives docker's error.
"""

from __future__ import annotations

from pallet.errors import InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["parse_port", "port_lines"]

_PROTOCOLS = ("tcp", "udp", "sctp")


def parse_port(text: str) -> str:
    """``80`` -> ``80/tcp``; docker's error for anything else than PORT[/PROTO]."""
    port, _, proto = text.partition("/")
    proto = (proto or "tcp").lower()
    if not port.isdigit() or not 0 < int(port) < 65536 or proto not in _PROTOCOLS:
        raise InvalidArgument(f"invalid port {text!r}: use PRIVATE_PORT[/PROTO] with PROTO tcp, udp or sctp")
    return f"{int(port)}/{proto}"


def _bindings(document: Mapping[str, Any]) -> dict[str, list[dict[str, str]]]:
    host_config = document.get("HostConfig") or {}
    found = host_config.get("PortBindings") if isinstance(host_config, dict) else None
    return found if isinstance(found, dict) else {}


def _address(binding: Mapping[str, str]) -> str:
    ip = binding.get("HostIp") or "0.0.0.0"
    return f"[{ip}]:{binding.get('HostPort', '')}" if ":" in ip else f"{ip}:{binding.get('HostPort', '')}"


def port_lines(document: Mapping[str, Any], name: str, port: str | None = None) -> list[str]:
    """Lines ``docker port`` prints: ``80/tcp -> 0.0.0.0:8080`` for all ports, or the addresses of one."""
    bindings = _bindings(document)
    if port is None:
        return [
            f"{private} -> {_address(b)}"
            for private in sorted(bindings, key=lambda p: (int(p.split("/")[0]), p))
            for b in bindings[private] or ()
        ]
    wanted = parse_port(port)
    found = bindings.get(wanted) or []
    if not found:
        raise NotFound(f"No public port '{wanted}' published for {name}")
    return [_address(b) for b in found]
