"""A container's /etc/hostname, /etc/hosts and /etc/resolv.conf, written as docker writes them.

``write_network_files(directory, hostname=..., network=..., ...)`` (a
``NetworkMode``, the container's addresses and docker's options) writes the
three files into the container's own directory (each atomically: temp file,
fsync, rename) and returns the mapping ``build_spec(hosts_files=...)`` wants
(container path -> host file), so they are bind-mounted over the image's.

- a network namespace of its own: ``hosts`` has docker's localhost lines,
  the ``--add-host`` entries and a line naming the container by each of its
  addresses (``update_hosts`` adds and removes such lines, in place, when a
  running container is connected to a network or disconnected); ``resolv.conf`` is the host's without loopback nameservers
  (unreachable from another network namespace), docker's fallback when none
  is left, ``--dns``/``--dns-search``/``--dns-option`` in place of the
  host's lines; on a user network it names the network's resolver only.
- host network: the host's own ``hosts`` (plus ``--add-host`` entries) and
  ``resolv.conf``, copied.
"""

from __future__ import annotations

import os

from pallet.linux.atomicfile import write_atomic

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from pallet.engine.spec.syntax import NetworkMode

__all__ = [
    "container_lines",
    "hosts_content",
    "resolv_conf_content",
    "update_hosts",
    "update_resolv_conf",
    "write_network_files",
]

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


def hosts_content(
    network: NetworkMode,
    host_hosts: str = "",
    *,
    addresses: Sequence[str] = (),
    hostname: str = "",
    domainname: str = "",
    extra_hosts: Sequence[tuple[str, str]] = (),
) -> str:
    """``/etc/hosts`` of a container on ``network``: the host's own file on the host network; else
    docker's localhost lines, the ``--add-host`` entries, then each of the container's ``addresses``
    naming its ``hostname`` (``container_lines``)."""
    lines = [host_hosts or _LOCALHOST] if network.is_host else [_LOCALHOST]
    lines += [f"{address}\t{name}\n" for name, address in extra_hosts]
    return "".join(lines + container_lines(addresses, hostname=hostname, domainname=domainname))


def container_lines(addresses: Sequence[str], *, hostname: str, domainname: str = "") -> list[str]:
    """The lines naming the container by each of ``addresses``, as libnetwork makes them: the FQDN
    (``hostname.domainname``, or a dotted ``hostname``), then the bare host name if they differ,
    separated by a space."""
    if not hostname:
        return []
    fqdn = f"{hostname}.{domainname}" if domainname else hostname
    names = f"{fqdn} {fqdn.partition('.')[0]}" if "." in fqdn else fqdn
    return [f"{address}\t{names}\n" for address in addresses]


def update_hosts(path: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()) -> None:
    """A running container's ``hosts`` file after a ``network connect`` (``add``: lines appended)
    or ``disconnect`` (``remove``: exactly those lines go), as dockerd edits it. Rewritten in place,
    not renamed over: the container sees the file through a bind mount of this inode. A file the
    container has removed is left alone."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines(keepends=True)
    except FileNotFoundError:
        return
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    gone = set(remove)
    kept = [line for line in lines if line not in gone]
    kept += [line for line in add if line not in kept]
    if kept != lines:
        _write_in_place(path, "".join(kept).encode("utf-8", "surrogateescape"))


def update_resolv_conf(path: str, *, was: str, now: str) -> bool:
    """A container's ``resolv.conf`` becomes ``now`` (in place, as ``update_hosts``) if it still reads
    ``was``, what pallet wrote: a file the container changed is left alone, as dockerd leaves a
    file whose hash changed. True if it was rewritten."""
    try:
        with open(path, "rb") as f:
            current = f.read()
    except FileNotFoundError:
        return False
    if current != was.encode() or was == now:
        return False
    _write_in_place(path, now.encode())
    return True


def _write_in_place(path: str, data: bytes) -> None:
    """Truncate and write ``path``, keeping its inode (a bind mount into a container shows it)."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


def resolv_conf_content(
    network: NetworkMode,
    host_resolv: str,
    *,
    resolver: str = "",
    dns: Sequence[str] = (),
    dns_search: Sequence[str] = (),
    dns_options: Sequence[str] = (),
) -> str:
    """``/etc/resolv.conf``: the host's (its ``search`` and ``options`` lines, ``dns_search`` and
    ``dns_options`` in their place when given) with its nameservers, loopback ones left out outside
    the host network (``dns`` in their place when given; docker's fallback when none is left); or,
    on a user network, the network's ``resolver`` only, the options (``dns_options``, else the
    host's) with ``ndots:0`` added unless they set ``ndots``, as docker's embedded DNS (the
    resolver forwards to ``dns``)."""
    if network.is_host and not (dns or dns_search or dns_options):
        return host_resolv
    kept: list[str] = []
    nameservers: list[str] = []
    host_options: list[str] = []
    at = -1  # where the host's first nameserver line was: the nameservers go there
    for line in host_resolv.splitlines():
        words = line.split()
        key = words[0] if words else ""
        if key == "nameserver" and len(words) > 1:
            at = len(kept) if at < 0 else at
            address = words[1]
            if network.is_host or not (address.startswith("127.") or address == "::1"):
                nameservers.append(line)
            continue
        if key in ("search", "domain") and dns_search:
            continue
        if key == "options" and (dns_options or resolver):
            host_options += words[1:]
            continue
        kept.append(line)
    if dns_search:
        kept.append("search " + " ".join(d for d in dns_search if d != "."))
    if resolver:
        nameservers = [f"nameserver {resolver}"]
        options = list(dns_options) or host_options
        if not any(o.startswith("ndots:") for o in options):
            options.append("ndots:0")
        kept.append("options " + " ".join(options))
    else:
        if dns:
            nameservers = [f"nameserver {a}" for a in dns]
        if not nameservers:  # after the host's lines, as docker appends them
            nameservers, at = [f"nameserver {a}" for a in _FALLBACK_NAMESERVERS], -1
        if dns_options:
            kept.append("options " + " ".join(dns_options))
    at = len(kept) if at < 0 else at
    return "\n".join([*kept[:at], *nameservers, *kept[at:]]) + "\n"


def write_network_files(
    directory: str,
    *,
    hostname: str,
    network: NetworkMode,
    host_etc: str = "/etc",
    domainname: str = "",
    addresses: Sequence[str] = (),
    extra_hosts: Sequence[tuple[str, str]] = (),
    resolver: str = "",
    dns: Sequence[str] = (),
    dns_search: Sequence[str] = (),
    dns_options: Sequence[str] = (),
    durable: bool = True,
) -> dict[str, str]:
    """Write ``hostname``, ``hosts`` and ``resolv.conf`` into ``directory`` (atomic, idempotent);
    returns ``{"/etc/hostname": ..., "/etc/hosts": ..., "/etc/resolv.conf": ...}``. The other
    arguments are ``hosts_content``'s and ``resolv_conf_content``'s; ``durable`` False skips the
    fsyncs (a ``--rm`` container's files never outlive it)."""
    files = {
        "/etc/hostname": (os.path.join(directory, "hostname"), f"{hostname}\n"),
        "/etc/hosts": (
            os.path.join(directory, "hosts"),
            hosts_content(
                network, _read(os.path.join(host_etc, "hosts")) if network.is_host else "",
                addresses=addresses, hostname=hostname, domainname=domainname, extra_hosts=extra_hosts,
            ),
        ),
        "/etc/resolv.conf": (
            os.path.join(directory, "resolv.conf"),
            resolv_conf_content(
                network, _read(os.path.join(host_etc, "resolv.conf")), resolver=resolver, dns=dns,
                dns_search=dns_search, dns_options=dns_options,
            ),
        ),
    }  # fmt: skip
    for path, text in files.values():
        # bound into the container: readable by all
        write_atomic(path, text.encode(), mode=0o644, durable=durable)
    return {destination: path for destination, (path, _) in files.items()}
