"""A container's /etc/hostname, /etc/hosts and /etc/resolv.conf, written as docker writes them.

``write_network_files(directory, hostname=..., network=...)`` (a
``NetworkMode``) writes the
three files into the container's own directory (each atomically: temp file,
fsync, rename) and returns the mapping ``build_spec(hosts_files=...)`` wants
(container path -> host file), so they are bind-mounted over the image's.

- a network namespace of its own: ``hosts`` has docker's localhost lines only (there is
  no address to name the container by until bridge networking);
  ``resolv.conf`` is the host's without loopback nameservers (unreachable
  from another network namespace), docker's fallback when none is left.
- host network: the host's own ``hosts`` and ``resolv.conf``, copied.
"""

from __future__ import annotations

import os

from pallet.linux.atomicfile import write_atomic

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.engine.spec.syntax import NetworkMode

__all__ = ["hosts_content", "resolv_conf_content", "write_network_files"]

_LOCALHOST = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)
#: docker's nameservers when the host has none a container can reach
_FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def hosts_content(network: NetworkMode, host_hosts: str = "") -> str:
    """``/etc/hosts`` of a container on ``network``; ``host_hosts`` is the host's (for ``host``)."""
    if network.is_host:
        return host_hosts or _LOCALHOST
    return _LOCALHOST


def resolv_conf_content(network: NetworkMode, host_resolv: str) -> str:
    """``/etc/resolv.conf``: the host's, without loopback nameservers outside the host network."""
    if network.is_host:
        return host_resolv
    kept: list[str] = []
    nameservers = 0
    for line in host_resolv.splitlines():
        words = line.split()
        if words[:1] == ["nameserver"] and len(words) > 1:
            address = words[1]
            if address.startswith("127.") or address == "::1":
                continue
            nameservers += 1
        kept.append(line)
    if not nameservers:
        kept += [f"nameserver {a}" for a in _FALLBACK_NAMESERVERS]
    return "\n".join(kept) + "\n"


def write_network_files(
    directory: str,
    *,
    hostname: str,
    network: NetworkMode,
    host_etc: str = "/etc",
) -> dict[str, str]:
    """Write ``hostname``, ``hosts`` and ``resolv.conf`` into ``directory`` (atomic, idempotent);
    returns ``{"/etc/hostname": ..., "/etc/hosts": ..., "/etc/resolv.conf": ...}``."""
    files = {
        "/etc/hostname": (os.path.join(directory, "hostname"), f"{hostname}\n"),
        "/etc/hosts": (
            os.path.join(directory, "hosts"),
            hosts_content(network, _read(os.path.join(host_etc, "hosts"))),
        ),
        "/etc/resolv.conf": (
            os.path.join(directory, "resolv.conf"),
            resolv_conf_content(network, _read(os.path.join(host_etc, "resolv.conf"))),
        ),
    }
    for path, text in files.values():
        write_atomic(path, text.encode(), mode=0o644)  # bound into the container: readable by all
    return {destination: path for destination, (path, _) in files.items()}
