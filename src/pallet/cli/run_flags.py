"""The flags of ``pallet run``/``create`` (docker's) and the ``RunOptions`` they make.

``add_create_flags`` declares them; ``options_from_args`` reads each value
with its ``engine.spec.syntax`` parser and builds the grouped ``RunOptions``,
which checks itself. Parsers and checks name syntaxes and fields, never
flags; this module says which flag was wrong in docker's words:

    invalid argument "lots" for "-m, --memory" flag: invalid size: "lots" (want ...)

(for the flags docker's CLI parses itself; a ``-v``, ``--mount``, ``-e`` or
``--security-opt`` error keeps the words the daemon would use), and an
``OptionConflict`` names the two flags (``Conflicting options: --restart and
--rm``). ``parse_options`` makes any of them a usage error (exit 125).
"""

from __future__ import annotations

from pallet.cli.exits import UsageError
from pallet.cli.flags import REMAINDER
from pallet.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any, TypeVar

    from pallet.cli.flags import FlagParser, Namespace
    from pallet.engine.service import UpdateRequest
    from pallet.engine.spec.options import EndpointOptions, RunOptions
    from pallet.oci.image_spec import Healthcheck

    T = TypeVar("T")

__all__ = ["add_create_flags", "options_from_args", "parse_options", "update_request"]

#: ``RunOptions`` field -> the flag that sets it, for errors that name fields
_FLAGS = {"restart": "--restart", "auto_remove": "--rm"}


def add_create_flags(parser: FlagParser) -> None:
    """docker's ``run``/``create`` flags, then IMAGE and the command."""
    add = parser.add_argument
    add("--name")
    add("-e", "--env", action="append", default=[])
    add("--env-file", action="append", default=[])
    add("-w", "--workdir", default="")
    add("-u", "--user", default="")
    add("--entrypoint")
    add("--hostname", default="")
    add("--domainname", default="")
    add("-l", "--label", action="append", default=[])
    add("--read-only", action="store_true")
    add("--init", action="store_true")
    add("--stop-signal")
    add("--stop-timeout")
    add("--health-cmd", default="")
    for name in _HEALTH_DURATIONS:
        add(f"--health-{name}")
    add("--health-retries")
    add("--no-healthcheck", action="store_true")
    add("-m", "--memory")
    add("--memory-swap")
    add("--memory-reservation")
    add("--cpus")
    add("-c", "--cpu-shares")
    add("--cpuset-cpus", default="")
    add("--cpuset-mems", default="")
    add("--memory-swappiness")
    add("--pids-limit")
    add("--ulimit", action="append", default=[])
    add("--cap-add", action="append", default=[])
    add("--cap-drop", action="append", default=[])
    add("--security-opt", action="append", default=[])
    add("--privileged", action="store_true")
    add("--userns", default="")
    add("--device", action="append", default=[])
    add("--device-cgroup-rule", action="append", default=[])
    add("--group-add", action="append", default=[])
    add("--shm-size")
    add("--sysctl", action="append", default=[])
    add("--tmpfs", action="append", default=[])
    add("--restart")
    add("--runtime", default="")
    add("--pid", default="")
    add("--ipc", default="")
    add("--uts", default="")
    add("--cgroupns", default="")
    add("--isolation", default="")
    add("--network", "--net", dest="network", action="append", default=[])
    add("--network-alias", "--net-alias", dest="network_alias", action="append", default=[])
    add("--ip", default="")
    add("--ip6", default="")
    add("--link-local-ip", action="append", default=[])
    add("--mac-address", default="")
    add("--dns", action="append", default=[])
    add("--dns-search", action="append", default=[])
    add("--dns-option", "--dns-opt", dest="dns_option", action="append", default=[])
    add("--add-host", action="append", default=[])
    add("--link", action="append", default=[])
    add("-v", "--volume", action="append", default=[])
    add("--mount", action="append", default=[])
    add("--volumes-from", action="append", default=[])
    add("--volume-driver", default="")
    add("--log-driver", default="")
    add("--log-opt", action="append", default=[])
    add("-p", "--publish", action="append", default=[])
    add("-P", "--publish-all", action="store_true")
    add("--expose", action="append", default=[])
    add("-i", "--interactive", action="store_true")
    add("-t", "--tty", action="store_true")
    add("--rm", action="store_true")
    add("image")
    add("command", nargs=REMAINDER)


def _flag(flag: str, parse: Callable[[str], T], text: str) -> T:
    """``parse(text)``; its error worded as docker's CLI words a bad flag value."""
    try:
        return parse(text)
    except InvalidArgument as e:
        raise InvalidArgument(f'invalid argument "{text}" for "{flag}" flag: {e.message}') from None


def _each(flag: str, parse: Callable[[str], T], texts: Iterable[str]) -> tuple[T, ...]:
    return tuple(_flag(flag, parse, t) for t in texts)


def _optional(flag: str, parse: Callable[[str], T], text: str | None) -> T | None:
    return None if text is None else _flag(flag, parse, text)


def _integer(text: str) -> int:
    body = text.strip()
    if not body.lstrip("-").isdigit():
        raise InvalidArgument(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    return int(body)


def _swappiness(text: str | None) -> int | None:
    """``--memory-swappiness``: 0 to 100; -1 (docker's default) leaves the kernel's."""
    value = _optional("--memory-swappiness", _integer, text)
    return None if value == -1 else value


def _swap(text: str) -> int:
    from pallet.engine.spec.syntax import parse_bytes

    return -1 if text.strip() == "-1" else parse_bytes(text)


_HEALTH_DURATIONS = ("interval", "timeout", "start-period", "start-interval")


def _healthcheck(args: Namespace) -> Healthcheck | None:
    """docker's ``--health-*`` and ``--no-healthcheck`` as a ``Healthcheck`` (None: the image's)."""
    from pallet.engine.durations import parse_duration
    from pallet.oci.image_spec import Healthcheck

    durations = {}
    for name in _HEALTH_DURATIONS:
        value = _optional(
            f"--health-{name}", parse_duration, getattr(args, f"health_{name.replace('-', '_')}")
        )
        if value is not None and value < 0:
            raise InvalidArgument(f"--health-{name} cannot be negative")
        durations[name] = value or None
    retries = _optional("--health-retries", _integer, args.health_retries)
    if retries is not None and retries < 0:
        raise InvalidArgument("--health-retries cannot be negative")
    if args.no_healthcheck:
        if args.health_cmd or retries or any(durations.values()):
            raise InvalidArgument("--no-healthcheck conflicts with --health-* options")
        return Healthcheck(test=("NONE",))
    if not args.health_cmd and not retries and not any(durations.values()):
        return None
    return Healthcheck(
        test=("CMD-SHELL", args.health_cmd) if args.health_cmd else None,
        interval=durations["interval"],
        timeout=durations["timeout"],
        start_period=durations["start-period"],
        start_interval=durations["start-interval"],
        retries=retries or None,
    )


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _network_flag(text: str) -> dict[str, Any]:
    """One ``--network``: a network's name, or docker's advanced syntax (a text with ``WORD=WORD`` in
    it, as its CLI decides): ``name=NET,alias=A,ip=IP,ip6=IP,mac-address=MAC,link-local-ip=IP,
    driver-opt=K=V,gw-priority=N``, comma-separated, case-folded as docker's CLI folds them. The
    ``EndpointOptions`` fields; ``InvalidArgument`` in docker's words."""
    from pallet.engine.spec.syntax import parse_ip

    advanced = any(
        c == "=" and 0 < i < len(text) - 1 and _is_word(text[i - 1]) and _is_word(text[i + 1])
        for i, c in enumerate(text)
    )
    if not advanced:
        return {"network": text}
    fields: dict[str, Any] = {"network": ""}
    aliases: list[str] = []
    link_local: list[str] = []
    driver_opts: dict[str, str] = {}
    for field in text.split(","):
        key, equals, value = field.lower().partition("=")
        key, value = key.strip(), value.strip()
        if not equals or not key:
            raise InvalidArgument(f"invalid field {field}")
        if key in ("ip", "ip6", "link-local-ip"):
            try:
                address = parse_ip(value)
            except InvalidArgument:
                raise InvalidArgument(f'ParseAddr("{value}"): unable to parse IP') from None
            if key == "link-local-ip":
                link_local.append(address)
            else:
                fields[key] = address
        elif key == "name":
            fields["network"] = value
        elif key == "alias":
            aliases.append(value)
        elif key == "mac-address":
            fields["mac_address"] = value
        elif key == "driver-opt":
            name, equals, option = value.partition("=")
            if not equals or not name.strip():
                raise InvalidArgument("invalid key value pair format in driver options")
            driver_opts[name.strip()] = option.strip()
        elif key == "gw-priority":
            if not value.lstrip("+-").isdigit():
                raise InvalidArgument(f"invalid gw-priority ({value}): invalid syntax")
            fields["gw_priority"] = int(value)
        else:
            raise InvalidArgument(f"invalid field key {key}")
    if not fields["network"]:
        raise InvalidArgument("network name/id is not specified")
    return {
        **fields,
        "aliases": tuple(aliases),
        "link_local_ips": tuple(link_local),
        "driver_opts": driver_opts,
    }


#: docker's words when a legacy flag and the first ``--network``'s own field both set one thing
_LEGACY_CONFLICTS = (
    ("aliases", "network_alias", "--network-alias and per-network alias"),
    ("links", "link", "--link and per-network links"),
    ("ip", "ip", "--ip and per-network IPv4 address"),
    ("ip6", "ip6", "--ip6 and per-network IPv6 address"),
    ("mac_address", "mac_address", "--mac-address and per-network MAC address"),
    ("link_local_ips", "link_local_ip", "--link-local-ip and per-network link-local IP addresses"),
)


def _networks(args: Namespace, links: tuple[str, ...]) -> tuple[dict[str, Any], tuple[EndpointOptions, ...]]:
    """The ``--network`` flags, in order (docker's CLI's ``parseNetworkOpts``): the first's fields (it
    may name a mode: ``default`` when none is given), the others' endpoints. The first takes ``--network-alias``, ``--ip``, ``--ip6``,
    ``--mac-address``, ``--link-local-ip`` and, on a user network, ``--link``."""
    from pallet.engine.spec.options import EndpointOptions
    from pallet.engine.spec.syntax import parse_network

    requests = [_flag("--network", _network_flag, text) for text in args.network] or [{"network": "default"}]
    first = requests[0]
    user_defined = parse_network(first["network"]).kind == "network"
    legacy = {
        "network_alias": tuple(args.network_alias), "link": links if user_defined else (), "ip": args.ip,
        "ip6": args.ip6, "mac_address": args.mac_address, "link_local_ip": tuple(args.link_local_ip),
    }  # fmt: skip
    for field, flag, words in _LEGACY_CONFLICTS:
        if first.get(field) and legacy[flag]:
            raise InvalidArgument(f"conflicting options: cannot specify both {words}")
        if legacy[flag]:
            first[field] = legacy[flag]
    kinds, seen, out = set(), set(), []
    for request in requests:
        target = request["network"]
        if not target.strip():
            raise InvalidArgument("no name set for network")
        user = parse_network(target).kind == "network"
        kinds.add(user)
        if not user and request.get("aliases"):
            raise InvalidArgument("network-scoped aliases are only supported for user-defined networks")
        if not user and request.get("links"):
            raise InvalidArgument("links are only supported for user-defined networks")
        if target in seen:
            raise InvalidArgument(f'network "{target}" is specified multiple times')
        seen.add(target)
        out.append(request)
    if len(kinds) > 1:
        raise InvalidArgument(
            "conflicting options: cannot attach both user-defined and non-user-defined network-modes"
        )
    return out[0], tuple(EndpointOptions(**request) for request in out[1:])


def options_from_args(args: Namespace) -> RunOptions:
    """``RunOptions`` from the flags of ``run``/``create``; bad values are ``InvalidArgument`` in docker's words."""
    from pallet.engine.spec import options as o
    from pallet.engine.spec import syntax as s

    process = o.ProcessOptions(
        cmd=tuple(args.command) or None,
        entrypoint=None if args.entrypoint is None else tuple(args.entrypoint.split()),
        env=s.collect_env(args.env, args.env_file),
        env_files=tuple(args.env_file),
        workdir=args.workdir,
        user=args.user,
        group_add=tuple(args.group_add),
        tty=args.tty,
        interactive=args.interactive,
        init=args.init,
        stop_signal=_flag("--stop-signal", s.parse_signal, args.stop_signal) if args.stop_signal else "",
        stop_timeout=_optional("--stop-timeout", _integer, args.stop_timeout),
    )
    resources = o.ResourceOptions(
        memory=_optional("-m, --memory", s.parse_bytes, args.memory),
        memory_swap=_optional("--memory-swap", _swap, args.memory_swap),
        memory_reservation=_optional("--memory-reservation", s.parse_bytes, args.memory_reservation),
        cpus=_optional("--cpus", s.parse_cpus, args.cpus),
        cpu_shares=_optional("-c, --cpu-shares", _integer, args.cpu_shares),
        cpuset_cpus=args.cpuset_cpus,
        cpuset_mems=args.cpuset_mems,
        pids_limit=_optional("--pids-limit", _integer, args.pids_limit),
        ulimits=_each("--ulimit", s.parse_ulimit, args.ulimit),
        devices=_each("--device", s.parse_device, args.device),
        device_cgroup_rules=tuple(args.device_cgroup_rule),
        shm_size=_optional("--shm-size", s.parse_bytes, args.shm_size),
        memory_swappiness=_swappiness(args.memory_swappiness),
    )
    namespaces = o.NamespaceOptions(
        pid=_flag("--pid", s.parse_pid_mode, args.pid),
        ipc=_flag("--ipc", s.parse_ipc_mode, args.ipc),
        uts=_flag("--uts", s.parse_uts_mode, args.uts),
        cgroupns=_flag("--cgroupns", s.parse_cgroupns_mode, args.cgroupns),
    )
    security = o.security_options(
        args.security_opt,
        privileged=args.privileged,
        cap_add=_each("--cap-add", s.parse_capability, args.cap_add),
        cap_drop=_each("--cap-drop", s.parse_capability, args.cap_drop),
        read_only=args.read_only,
        sysctls=dict(_each("--sysctl", s.parse_sysctl, args.sysctl)),
        userns=args.userns,
    )
    _each("-p, --publish", s.parse_publish, args.publish)
    _each("--dns", s.parse_ip, args.dns)
    _each("--add-host", s.parse_extra_host, args.add_host)
    for flag, text in (("--ip", args.ip), ("--ip6", args.ip6)):
        if text:
            _flag(flag, s.parse_ip, text)
    _each("--link-local-ip", s.parse_ip, args.link_local_ip)
    if args.mac_address:
        _flag("--mac-address", s.parse_mac, args.mac_address)
    links = _each("--link", s.parse_link, args.link)
    first, more = _networks(args, links)
    network = o.NetworkOptions(
        mode=s.parse_network(first["network"]),
        hostname=args.hostname,
        domainname=args.domainname,
        publish=tuple(args.publish),
        publish_all=args.publish_all,
        expose=tuple(args.expose),
        aliases=tuple(first.get("aliases", ())),
        ip=first.get("ip", ""),
        ip6=first.get("ip6", ""),
        link_local_ips=tuple(first.get("link_local_ips", ())),
        mac_address=first.get("mac_address", ""),
        dns=tuple(args.dns),
        dns_search=tuple(args.dns_search),
        dns_options=tuple(args.dns_option),
        extra_hosts=tuple(args.add_host),
        links=links,
        # docker's CLI: on a user network the links are the endpoint's (its resolver answers them)
        endpoint_links=tuple(first.get("links", ())),
        driver_opts=first.get("driver_opts", {}),
        gw_priority=first.get("gw_priority", 0),
        networks=more,
    )
    mounts = o.MountOptions(
        specs=(*(s.parse_volume(t) for t in args.volume), *(s.parse_mount(t) for t in args.mount)),
        tmpfs=dict(_each("--tmpfs", s.parse_tmpfs, args.tmpfs)),
        volumes_from=tuple(args.volumes_from),
        volume_driver=args.volume_driver,
    )
    try:
        return o.RunOptions(
            name=args.name,
            labels=dict(s.parse_label(t) for t in args.label),
            restart=_flag("--restart", s.parse_restart, args.restart) if args.restart else s.RestartPolicy(),
            auto_remove=args.rm,
            runtime=args.runtime,
            log_driver=args.log_driver,
            log_opts=dict(_each("--log-opt", s.parse_log_opt, args.log_opt)),
            isolation=args.isolation,
            process=process,
            resources=resources,
            security=security,
            network=network,
            namespaces=namespaces,
            mounts=mounts,
            healthcheck=_healthcheck(args),
        )
    except o.OptionConflict as e:
        a, b = e.fields
        raise InvalidArgument(e.worded((_FLAGS.get(a, a), _FLAGS.get(b, b)))) from None


def parse_options(args: Namespace, command: str) -> RunOptions:
    """The run options of the command line; a bad value is a usage error (exit 125), before any work."""
    try:
        return options_from_args(args)
    except UsageError:
        raise
    except InvalidArgument as e:
        raise UsageError(e.message, command) from None


def update_request(args: Namespace) -> UpdateRequest:
    """The flags of ``update`` as the engine's request, each read as ``run`` reads the same flag."""
    from pallet.engine.service import UpdateRequest
    from pallet.engine.spec import syntax as s

    return UpdateRequest(
        memory=_optional("-m, --memory", s.parse_bytes, args.memory),
        memory_swap=_optional("--memory-swap", _swap, args.memory_swap),
        memory_reservation=_optional("--memory-reservation", s.parse_bytes, args.memory_reservation),
        cpus=_optional("--cpus", s.parse_cpus, args.cpus),
        cpu_shares=_optional("-c, --cpu-shares", _integer, args.cpu_shares),
        cpu_period=_optional("--cpu-period", _integer, args.cpu_period),
        cpu_quota=_optional("--cpu-quota", _integer, args.cpu_quota),
        cpuset_cpus=args.cpuset_cpus,
        cpuset_mems=args.cpuset_mems,
        pids_limit=_optional("--pids-limit", _integer, args.pids_limit),
        blkio_weight=_optional("--blkio-weight", _integer, args.blkio_weight),
        restart=_optional("--restart", s.parse_restart, args.restart),
    )
