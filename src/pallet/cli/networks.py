"""Network commands: ``network create``, ``ls``, ``inspect``, ``rm``, ``prune``, ``connect`` and
``disconnect``. Thin: parse docker's flags, call the engine's surface (``pallet.engine.service``),
print what docker prints.

The listing works on docker's network documents (what ``network inspect``
prints), so ``ls`` rows, ``--filter`` and ``--format`` see the same fields the
API gives. What stays here is docker's CLI side: pairing ``--subnet``,
``--gateway`` and ``--ip-range`` (the CLI's ``consolidateIpam``), the
``ls`` columns and the ``ls`` filter keys.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pallet.cli.exits import UsageError
from pallet.cli.output import inspect_each, print_rows
from pallet.cli.prune import add_prune_flags, confirm
from pallet.errors import InvalidArgument, NotFound, PalletError, Unsupported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any

    from pallet.cli.context import Context
    from pallet.cli.flags import FlagParser, Namespace
    from pallet.engine.service import Service

__all__ = [
    "IpamRequest",
    "NetworkFilters",
    "configure_connect",
    "configure_create",
    "configure_disconnect",
    "configure_inspect",
    "configure_ls",
    "configure_prune",
    "configure_rm",
    "ipam_request",
    "ls_row",
]

#: the networks every engine has (docker's predefined ones): ``type=builtin``, never dangling
BUILTIN = ("bridge", "host", "none")

_LS_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
_LS_TITLES = {
    "ID": "NETWORK ID",
    "Name": "NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "IPv6": "IPV6",
    "Internal": "INTERNAL",
    "Labels": "LABELS",
    "CreatedAt": "CREATED AT",
}


def _handler(run: Callable[[Context, Namespace, Service], int]) -> Callable[..., int]:
    """Wrap a handler so it gets the engine's service, closed whatever happens."""

    def handler(ctx: Context, args: Namespace) -> int:
        from pallet.engine.service import Service

        with Service.open(ctx.root, ctx.run_root, leave_open=ctx.exits_after) as service:
            return run(ctx, args, service)

    return handler


def _pairs(values: Sequence[str], flag: str, command: str) -> dict[str, str]:
    """``KEY=VALUE`` (or ``KEY``, an empty value) flags as a mapping; the last one of a key wins."""
    out: dict[str, str] = {}
    for value in values:
        key, _, val = value.partition("=")
        if not key:
            raise UsageError(f'invalid argument "{value}" for "{flag}" flag: a key is required', command)
        out[key] = val
    return out


# --- create ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class IpamRequest:
    """The addressing asked for on ``network create``: at most one IPv4 and one IPv6 subnet, each
    with its gateway and address range; empty strings where the engine chooses."""

    subnet: str = ""
    gateway: str = ""
    ip_range: str = ""
    subnet6: str = ""
    gateway6: str = ""
    ip_range6: str = ""


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid CIDR address: {text}") from None


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise InvalidArgument(f"invalid gateway address: {text}") from None


def ipam_request(subnets: Sequence[str], gateways: Sequence[str], ip_ranges: Sequence[str]) -> IpamRequest:
    """Pair each ``--gateway`` and ``--ip-range`` with the ``--subnet`` that holds it, with docker's
    CLI rules and words; pallet's bridge networks take one IPv4 and one IPv6 subnet at most."""
    if len(subnets) < len(ip_ranges) or len(subnets) < len(gateways):
        raise InvalidArgument("every ip-range or gateway must have a corresponding subnet")
    nets = [_network(s) for s in subnets]
    for i, a in enumerate(nets):
        for b in nets[i + 1 :]:
            if a.version == b.version and a.overlaps(b):
                raise InvalidArgument("multiple overlapping subnet configuration is not supported")
    for version in (4, 6):
        given = [s for s, n in zip(subnets, nets, strict=True) if n.version == version]
        if len(given) > 1:
            raise Unsupported(
                f"pallet's bridge networks take one IPv{version} subnet; got {', '.join(given)}"
            )
    ranges: dict[int, str] = {}
    for text in ip_ranges:
        span = _network(text)
        index = next((i for i, n in enumerate(nets) if n.version == span.version and span.subnet_of(n)), -1)  # type: ignore[arg-type]
        if index < 0:
            raise InvalidArgument(f"no matching subnet for range {text}")
        if index in ranges:
            raise InvalidArgument(
                f"cannot configure multiple ranges ({ranges[index]}, {text}) on the same subnet ({subnets[index]})"
            )
        ranges[index] = text
    found: dict[int, str] = {}
    for text in gateways:
        address = _address(text)
        index = next((i for i, n in enumerate(nets) if address in n), -1)
        if index < 0:
            raise InvalidArgument(f"no matching subnet for gateway {text}")
        if index in found:
            raise InvalidArgument(
                f"cannot configure multiple gateways ({found[index]}, {text}) for the same subnet ({subnets[index]})"
            )
        found[index] = text
    v4 = next((i for i, n in enumerate(nets) if n.version == 4), -1)
    v6 = next((i for i, n in enumerate(nets) if n.version == 6), -1)
    return IpamRequest(
        subnet=subnets[v4] if v4 >= 0 else "",
        gateway=found.get(v4, ""),
        ip_range=ranges.get(v4, ""),
        subnet6=subnets[v6] if v6 >= 0 else "",
        gateway6=found.get(v6, ""),
        ip_range6=ranges.get(v6, ""),
    )


def _create_extras(args: Namespace, request: IpamRequest) -> dict[str, Any]:
    """The IPv6 range, ``--aux-address`` and ``--ipam-opt`` (docker's CLI always sends the IPAM
    options, ``{}`` when none: its inspect shows ``{}``, an API request without them null)."""
    extras: dict[str, Any] = {"ipam_options": _pairs(args.ipam_opt, "--ipam-opt", "network create")}
    if request.ip_range6:
        extras["ip_range6"] = request.ip_range6
    if args.aux_address:
        if not (request.subnet or request.subnet6):
            raise InvalidArgument("every aux-address must have a corresponding subnet")
        extras["aux_addresses"] = _pairs(args.aux_address, "--aux-address", "network create")
    return extras


def _run_create(ctx: Context, args: Namespace, service: Service) -> int:
    request = ipam_request(args.subnet, args.gateway, args.ip_range)
    if request.subnet6 and not args.ipv6:
        raise InvalidArgument(f"--subnet {request.subnet6} is an IPv6 subnet: add --ipv6 to enable IPv6")
    network = service.network_create(
        args.name,
        driver=args.driver,
        subnet=request.subnet,
        gateway=request.gateway,
        ip_range=request.ip_range,
        internal=args.internal,
        labels=_pairs(args.label, "--label", "network create"),
        options=_pairs(args.opt, "--opt", "network create"),
        ipv6=args.ipv6,
        subnet6=request.subnet6,
        gateway6=request.gateway6,
        **_create_extras(args, request),
    )
    ctx.out.write(network.id + "\n")
    return 0


def configure_create(parser: FlagParser) -> None:
    parser.add_argument("name", metavar="NETWORK")
    parser.add_argument("-d", "--driver", default="bridge", help="driver to manage the network (bridge)")
    parser.add_argument(
        "--subnet", action="append", default=[], help="subnet in CIDR format (one IPv4, one IPv6)"
    )
    parser.add_argument("--gateway", action="append", default=[], help="gateway of a subnet")
    parser.add_argument(
        "--ip-range", action="append", default=[], help="allocate container addresses from a sub-range"
    )
    parser.add_argument(
        "--aux-address", action="append", default=[], help="auxiliary addresses the driver keeps (NAME=IP)"
    )
    parser.add_argument("--ipam-opt", action="append", default=[], help="set IPAM driver specific options")
    parser.add_argument("--internal", action="store_true", help="restrict external access to the network")
    parser.add_argument("--ipv6", action="store_true", help="enable IPv6 networking")
    parser.add_argument("--label", action="append", default=[], help="set metadata on a network (KEY=VALUE)")
    parser.add_argument(
        "-o",
        "--opt",
        action="append",
        default=[],
        help="driver options (com.docker.network.bridge.name=NAME, com.docker.network.driver.mtu=N)",
    )
    parser.set_defaults(run=_handler(_run_create))


# --- ls -------------------------------------------------------------------------------------------


def _go_time(created: str) -> str:
    """An RFC 3339 time as Go's ``time.Time.String`` prints it (``2006-01-02 15:04:05 +0000 UTC``)."""
    if len(created) < 19 or created[10] != "T":
        return created
    fraction = created[19:].rstrip("Z")
    fraction = fraction.rstrip("0").rstrip(".") if fraction.startswith(".") else ""
    return f"{created[:10]} {created[11:19]}{fraction} +0000 UTC"


def ls_row(document: Mapping[str, Any], *, no_trunc: bool = False) -> dict[str, str]:
    """One ``network ls`` row (docker's fields, all text) of a network document."""
    labels = document.get("Labels") or {}
    return {
        "CreatedAt": _go_time(str(document.get("Created", ""))),
        "Driver": str(document.get("Driver", "")),
        "ID": str(document["Id"]) if no_trunc else str(document["Id"])[:12],
        "IPv6": "true" if document.get("EnableIPv6") else "false",
        "Internal": "true" if document.get("Internal") else "false",
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        "Name": str(document["Name"]),
        "Scope": str(document.get("Scope", "local")),
    }


class NetworkFilters:
    """``network ls --filter``: docker's keys; values of one key are alternatives, keys all apply.

    ``name`` and ``id`` match as docker's do (the value exactly, or as a
    regular expression found anywhere in it), ``label`` as ``KEY`` or
    ``KEY=VALUE`` (every one given must match), ``driver`` and ``scope``
    exactly, ``type`` is ``custom`` or ``builtin``, ``dangling`` a boolean
    (custom networks no container uses).
    """

    KEYS = ("dangling", "driver", "id", "label", "name", "scope", "type")

    def __init__(self, values: Iterable[str] = ()) -> None:
        import re

        self.by_key: dict[str, list[str]] = {}
        self._patterns: dict[str, list[re.Pattern[str]]] = {}
        for value in values:
            key, sep, arg = value.partition("=")
            key = key.strip().lower()
            if not sep:
                raise InvalidArgument(f'bad format of filter "{value}" (expected name=value)')
            if key not in self.KEYS:
                raise InvalidArgument(f"invalid filter '{key}'")
            if key == "type" and arg not in ("custom", "builtin"):
                raise InvalidArgument(f"invalid filter: 'type'='{arg}'")
            if key == "dangling" and arg.lower() not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"invalid filter 'dangling={arg}'")
            self.by_key.setdefault(key, []).append(arg)
            if key in ("name", "id"):
                try:
                    pattern = re.compile(arg)
                except re.error:
                    pattern = re.compile(re.escape(arg))
                self._patterns.setdefault(key, []).append(pattern)

    def _text(self, key: str, value: str) -> bool:
        return any(p.search(value) for p in self._patterns[key]) or value in self.by_key[key]

    def matches(self, document: Mapping[str, Any]) -> bool:
        name, builtin = str(document["Name"]), str(document["Name"]) in BUILTIN
        checks: dict[str, Callable[[], bool]] = {
            "name": lambda: self._text("name", name),
            "id": lambda: self._text("id", str(document["Id"])),
            "driver": lambda: document.get("Driver") in self.by_key["driver"],
            "scope": lambda: document.get("Scope", "local") in self.by_key["scope"],
            "type": lambda: ("builtin" if builtin else "custom") in self.by_key["type"],
            "label": lambda: all(_has_label(document.get("Labels") or {}, w) for w in self.by_key["label"]),
            "dangling": lambda: any(
                (not builtin and not document.get("Containers")) == (v.lower() in ("true", "1"))
                for v in self.by_key["dangling"]
            ),
        }
        return all(checks[key]() for key in self.by_key)


def _has_label(labels: Mapping[str, str], want: str) -> bool:
    key, sep, value = want.partition("=")
    return key in labels and (not sep or labels[key] == value)


def _natural(name: str) -> list[tuple[int, str]]:
    """docker's natural order of names (``net2`` before ``net10``)."""
    import re

    return [(int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"(\d+)", name) if part]


def _run_ls(ctx: Context, args: Namespace, service: Service) -> int:
    try:
        filters = NetworkFilters(args.filter)
    except InvalidArgument as e:
        raise UsageError(e.message, "network ls") from None
    documents = sorted(
        (
            d
            for d in map(service.network_inspect, (n.id for n in service.network_list()))
            if filters.matches(d)
        ),
        key=lambda d: _natural(str(d["Name"])),
    )
    rows = [ls_row(d, no_trunc=args.no_trunc) for d in documents]
    fmt = "{{.ID}}" if args.quiet else args.format
    print_rows(ctx.out, rows, fmt, default=_LS_TABLE, titles=_LS_TITLES)
    return 0


def configure_ls(parser: FlagParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="only display network IDs")
    parser.add_argument(
        "-f",
        "--filter",
        action="append",
        default=[],
        help="driver=, id=, label=KEY[=VALUE], name=, scope=local, type=custom|builtin, dangling=true|false",
    )
    parser.add_argument("--format", help="'table', 'json', 'table TEMPLATE' or a Go template")
    parser.add_argument("--no-trunc", action="store_true", help="do not truncate the output")
    parser.set_defaults(run=_handler(_run_ls))


# --- inspect --------------------------------------------------------------------------------------


def _run_inspect(ctx: Context, args: Namespace, service: Service) -> int:
    return inspect_each(ctx, args.networks, service.network_inspect, args.format)


def configure_inspect(parser: FlagParser) -> None:
    parser.add_argument("networks", nargs="+", metavar="NETWORK")
    parser.add_argument("-f", "--format", help="a Go template such as '{{.Id}}', or 'json'")
    parser.set_defaults(run=_handler(_run_inspect))


# --- rm -------------------------------------------------------------------------------------------


def _run_rm(ctx: Context, args: Namespace, service: Service) -> int:
    failed = 0
    for name in args.networks:
        try:
            service.network_remove(name)
        except PalletError as e:
            if args.force and isinstance(e, NotFound):
                continue
            failed += 1
            ctx.err.write(f"pallet: {e}\n")
            continue
        ctx.out.write(name + "\n")
    return 1 if failed else 0


def configure_rm(parser: FlagParser) -> None:
    parser.add_argument("networks", nargs="+", metavar="NETWORK")
    parser.add_argument(
        "-f", "--force", action="store_true", help="do not error if the network does not exist"
    )
    parser.set_defaults(run=_handler(_run_rm))


# --- prune ----------------------------------------------------------------------------------------


def _run_prune(ctx: Context, args: Namespace, service: Service) -> int:
    from pallet.engine.service import prune_filters

    filters = prune_filters(args.filter)
    if not args.force and not confirm(
        ctx, "This will remove all custom networks not used by at least one container."
    ):
        return 0
    removed = service.network_prune(filters)
    if removed:
        ctx.out.write("Deleted Networks:\n" + "".join(f"{n.name}\n" for n in removed) + "\n")
    return 0


def configure_prune(parser: FlagParser) -> None:
    add_prune_flags(parser)
    parser.set_defaults(run=_handler(_run_prune))


# --- connect, disconnect --------------------------------------------------------------------------


def _run_connect(ctx: Context, args: Namespace, service: Service) -> int:
    extras: dict[str, Any] = {}  # docker's CLI flags beyond --alias and --ip, passed when given
    if args.ip6:
        extras["ip6"] = args.ip6
    if args.link:
        extras["links"] = args.link
    if args.link_local_ip:
        extras["link_local_ips"] = args.link_local_ip
    if args.driver_opt:
        extras["driver_opts"] = _pairs(args.driver_opt, "--driver-opt", "network connect")
    service.network_connect(args.network, args.container, aliases=args.alias, ip=args.ip, **extras)
    return 0


def configure_connect(parser: FlagParser) -> None:
    parser.add_argument("network", metavar="NETWORK")
    parser.add_argument("container", metavar="CONTAINER")
    parser.add_argument("--alias", action="append", default=[], help="add a network-scoped alias")
    parser.add_argument("--driver-opt", action="append", default=[], help="driver options for the network")
    parser.add_argument("--ip", default="", help="IPv4 address (e.g. 172.30.100.104)")
    parser.add_argument("--ip6", default="", help="IPv6 address (e.g. 2001:db8::33)")
    parser.add_argument("--link", action="append", default=[], help="add link to another container")
    parser.add_argument(
        "--link-local-ip", action="append", default=[], help="add a link-local address for the container"
    )
    parser.set_defaults(run=_handler(_run_connect))


def _run_disconnect(ctx: Context, args: Namespace, service: Service) -> int:
    service.network_disconnect(args.network, args.container, force=args.force)
    return 0


def configure_disconnect(parser: FlagParser) -> None:
    parser.add_argument("network", metavar="NETWORK")
    parser.add_argument("container", metavar="CONTAINER")
    parser.add_argument(
        "-f", "--force", action="store_true", help="force the container to disconnect from a network"
    )
    parser.set_defaults(run=_handler(_run_disconnect))
