"""Where a registry name points: its API host, its credentials key, and whether TLS is required.

Docker's rules, followed here:

- ``docker.io`` is served by ``registry-1.docker.io``; its credentials live under
  ``https://index.docker.io/v1/`` in ``config.json``.
- A registry is *insecure* when it is named in the insecure list, or when its
  host is ``localhost`` or an address in 127.0.0.0/8 or ``::1`` (docker's default
  insecure CIDRs are ``::1/128`` and ``127.0.0.0/8``, and ``localhost`` resolves
  there). For an insecure registry pallet tries HTTPS without certificate
  checks first and falls back to plain HTTP, in docker's order: moby's
  ``lookupV2Endpoints`` lists the ``https://`` endpoint first and adds
  ``http://`` after it only for an insecure registry, and the pull or push
  moves to the next endpoint when the TLS attempt fails. (HTTP first could
  not tell a plain registry from a TLS one: a Go TLS server answers a plain
  request with an HTTP 400 of its own.) Every other registry is HTTPS with
  full verification.
- The insecure list is the union of ``insecure-registries`` (``host[:port]`` or
  a CIDR, the key of docker's ``daemon.json``) in ``<pallet root>/registries.json``
  and ``/etc/pallet/registries.json``, the comma-separated
  ``$PALLET_INSECURE_REGISTRIES``, and ``--insecure-registry`` flags.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path

from pallet.errors import InvalidArgument

__all__ = [
    "DOCKER_HUB",
    "DOCKER_HUB_API",
    "DOCKER_HUB_CONFIG_KEY",
    "SYSTEM_CONFIG",
    "api_host",
    "config_key",
    "insecure_list",
    "is_insecure",
]

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"
SYSTEM_CONFIG = Path("/etc/pallet/registries.json")
_HUB_ALIASES = frozenset({DOCKER_HUB, "index.docker.io", DOCKER_HUB_API, DOCKER_HUB_CONFIG_KEY})


def normalize(name: str) -> str:
    """A registry name as typed (``https://index.docker.io/v1/``, ``localhost:5000/``) reduced to ``host[:port]``."""
    text = name.strip()
    for prefix in ("https://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    text = text.partition("/")[0]
    if not text:
        raise InvalidArgument(f'invalid registry name "{name}": expected HOST[:PORT]')
    return DOCKER_HUB if text in _HUB_ALIASES else text


def api_host(registry: str) -> str:
    """The ``host[:port]`` that serves the v2 API for ``registry``."""
    return DOCKER_HUB_API if registry == DOCKER_HUB else registry


def config_key(registry: str) -> str:
    """The key of ``registry`` in ``config.json``'s ``auths``."""
    return DOCKER_HUB_CONFIG_KEY if registry == DOCKER_HUB else registry


def _split_host(host_port: str) -> str:
    if host_port.startswith("["):
        return host_port[1:].partition("]")[0]
    if host_port.count(":") == 1:
        return host_port.partition(":")[0]
    return host_port


def _read_list(path: Path) -> list[str]:
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as e:
        raise InvalidArgument(f"{path}: cannot read the registries config: {e}") from None
    entries = doc.get("insecure-registries", []) if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not all(isinstance(x, str) for x in entries):
        raise InvalidArgument(
            f'{path}: "insecure-registries" must be a list of "host[:port]" or CIDR strings'
        )
    return entries


def insecure_list(root: Path | None, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Every configured insecure entry: config files, the environment, then ``extra`` (flags)."""
    entries: list[str] = []
    if root is not None:
        entries += _read_list(root / "registries.json")
    entries += _read_list(SYSTEM_CONFIG)
    entries += [e.strip() for e in os.environ.get("PALLET_INSECURE_REGISTRIES", "").split(",") if e.strip()]
    entries += list(extra)
    return tuple(entries)


def is_insecure(registry: str, insecure: tuple[str, ...] = ()) -> bool:
    """Whether ``registry`` (``host[:port]``) may be reached without verified TLS (docker's rule)."""
    host = _split_host(registry)
    if host == "localhost":
        return True
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and address.is_loopback:
        return True
    for entry in insecure:
        entry = normalize(entry) if "/" not in entry or "://" in entry else entry
        if entry in (registry, host):
            return True
        if "/" in entry and address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue  # not a CIDR: a name that did not match
    return False
