"""The options of a new container, grouped as docker's API groups them, checked once when made.

``RunOptions`` is everything ``pallet run``/``create`` (and ``pallet.Client``,
and the coming API) take besides the image: a few container-wide fields
(name, labels, restart policy, auto-remove, runtime, log options) and five
groups:

- ``ProcessOptions`` (docker's ``Config``): command, entrypoint, environment,
  working directory, user and groups, terminal, stdin, ``--init``, stop
  signal and timeout;
- ``ResourceOptions`` (``HostConfig.Resources``): memory, CPUs, pids,
  ulimits, devices, /dev/shm's size;
- ``SecurityOptions``: privileged, capabilities, the security options
  (no-new-privileges, seccomp, AppArmor, labels, system paths), read-only
  root, sysctls;
- ``NetworkOptions``: the ``NetworkMode``, hostname, domain name, ports,
  legacy links;
- ``NamespaceOptions``: the pid, ipc, uts and cgroup namespaces (docker's
  ``PidMode``, ``IpcMode``, ``UTSMode``, ``CgroupnsMode``);
- ``MountOptions``: volume and mount requests (``MountSpec``), tmpfs mounts,
  ``--volumes-from``.

Values are already parsed (``engine.spec.syntax`` reads docker's syntaxes).
Each record checks itself when it is made, and ``RunOptions`` checks what
spans groups (``auto_remove`` with a restart policy, ``net.*`` sysctls with
the host network): a ``RunOptions`` that exists is valid, so nothing
downstream checks again. The checks raise ``InvalidArgument`` (or
``Unsupported``) naming fields, not flags; ``OptionConflict`` carries the
two fields so a front end can name them in its own words.

``options_to_json``/``options_from_json`` store the record in the container
document and read it back equal.
"""

from __future__ import annotations

import os
import types

from pallet.engine.spec.syntax import (
    RESTART_POLICIES,
    ULIMIT_NAMES,
    DeviceMapping,
    MountSpec,
    NetworkMode,
    PortRequest,
    RestartPolicy,
    Ulimit,
    is_cpu_list,
    is_hostname,
    parse_capability,
    parse_cgroupns_mode,
    parse_device_cgroup_rule,
    parse_extra_host,
    parse_ip,
    parse_ipc_mode,
    parse_link,
    parse_log_driver,
    parse_mac,
    parse_network,
    parse_pid_mode,
    parse_publish,
    parse_security_opt,
    parse_signal,
    parse_sysctl,
    parse_tmpfs,
    parse_uts_mode,
    parse_volumes_from,
)
from pallet.errors import InvalidArgument, Unsupported
from pallet.oci.image_spec import Healthcheck as _Healthcheck
from pallet.oci.record import EMPTY, Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

__all__ = [
    "MIN_MEMORY",
    "EndpointOptions",
    "MountOptions",
    "NamespaceOptions",
    "NetworkOptions",
    "OptionConflict",
    "ProcessOptions",
    "ResourceOptions",
    "RunOptions",
    "SecurityOptions",
    "options_from_json",
    "options_to_json",
    "security_options",
]

#: docker refuses memory limits below this (the kernel and runc need room to start the init)
MIN_MEMORY = 6 * 1024 * 1024


class OptionConflict(InvalidArgument):
    """Two options that cannot go together. ``fields`` names them as ``RunOptions`` does
    (``restart``, ``auto_remove``); ``worded`` says the same with other names (the CLI's flags)."""

    category = InvalidArgument.category

    def __init__(self, fields: tuple[str, str], reason: str) -> None:
        self.fields = fields
        self.reason = reason
        super().__init__(self.worded(fields))

    def worded(self, names: tuple[str, str]) -> str:
        return f"Conflicting options: {names[0]} and {names[1]} ({self.reason})"


class _Checked(Record):
    """A record that cleans and checks its values when it is made (and when ``replace`` makes one)."""

    if not TYPE_CHECKING:

        def __init__(self, **values: Any) -> None:
            super().__init__(**self._clean(values))
            self._check()

    @classmethod
    def _clean(cls, values: dict[str, Any]) -> dict[str, Any]:
        return values

    def _check(self) -> None:
        return None


class ProcessOptions(_Checked):
    """The container's process (docker's ``Config``).

    ``entrypoint`` None keeps the image's; any tuple (``()`` for
    ``--entrypoint ""``) replaces it and, as in docker, drops the image's
    Cmd. ``cmd`` None or ``()`` keeps the image's Cmd. ``env`` is the final
    list from the user (env-file entries first: ``syntax.collect_env``); a
    ``NAME`` without ``=`` (the API passes them through) is kept in the
    container's config but unsets NAME in its process, as dockerd does;
    ``env_files`` only records the files. ``group_add`` names or numbers
    groups. ``init`` runs docker's init (tini) as PID 1.
    """

    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    env_files: tuple[str, ...] = ()
    workdir: str = ""
    user: str = ""
    group_add: tuple[str, ...] = ()
    tty: bool = False
    interactive: bool = False
    init: bool = False
    stop_signal: str = ""
    stop_timeout: int | None = None

    def _check(self) -> None:
        if self.workdir and not self.workdir.startswith("/"):
            raise InvalidArgument(
                f"the working directory '{self.workdir}' is invalid, it needs to be an absolute path"
            )
        for entry in self.env:
            if not entry.partition("=")[0] or "\0" in entry:
                raise InvalidArgument(f'invalid environment entry "{entry}": want NAME=value or NAME')
        if self.stop_signal:
            parse_signal(self.stop_signal)
        if self.stop_timeout is not None and self.stop_timeout < -1:
            raise InvalidArgument("invalid stop timeout: must be -1 (wait forever) or more")


class ResourceOptions(_Checked):
    """What the container may use (docker's ``HostConfig.Resources``).

    Sizes are bytes, ``cpus`` is in nano-CPUs (docker's NanoCpus),
    ``memory_swap`` -1 means unlimited swap; ``shm_size`` is /dev/shm's.
    """

    memory: int | None = None
    memory_swap: int | None = None
    memory_reservation: int | None = None
    cpus: int | None = None
    cpu_shares: int | None = None
    #: the CFS period and quota in microseconds (docker's CpuPeriod/CpuQuota; not with ``cpus``)
    cpu_period: int | None = None
    cpu_quota: int | None = None
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    pids_limit: int | None = None
    #: the block I/O weight, 10 to 1000 (docker's BlkioWeight)
    blkio_weight: int | None = None
    ulimits: tuple[Ulimit, ...] = ()
    devices: tuple[DeviceMapping, ...] = ()
    #: rules added to the device cgroup (docker's ``--device-cgroup-rule``: ``c 7:128 rwm``)
    device_cgroup_rules: tuple[str, ...] = ()
    shm_size: int | None = None
    #: the memory cgroup's swappiness, 0 to 100 (cgroup v1 only; None: the kernel's)
    memory_swappiness: int | None = None

    def _check(self) -> None:
        for rule in self.device_cgroup_rules:
            parse_device_cgroup_rule(rule)
        if self.memory_swappiness is not None and not 0 <= self.memory_swappiness <= 100:
            raise InvalidArgument(
                f"Invalid value: {self.memory_swappiness}, valid memory swappiness range is 0-100"
            )
        if self.memory is not None and 0 < self.memory < MIN_MEMORY:
            raise InvalidArgument("Minimum memory limit allowed is 6MB")
        swap = self.memory_swap
        if swap is not None and swap not in (0, -1):
            if not self.memory:
                raise InvalidArgument(
                    "You should always set the Memory limit when using Memoryswap limit, see usage"
                )
            if swap < self.memory:
                raise InvalidArgument(
                    "Minimum memoryswap limit should be larger than memory limit, see usage "
                    "(the swap limit is memory plus swap)"
                )
        if self.memory_reservation and self.memory and self.memory < self.memory_reservation:
            raise InvalidArgument(
                "Minimum memory limit can not be less than memory reservation limit, see usage"
            )
        if self.cpus is not None:
            # a fact of this host, read here: options are made where the container will run
            cpus = os.cpu_count() or 1
            if self.cpus < 10**7 or self.cpus > cpus * 10**9:
                raise InvalidArgument(
                    f"Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
                )
        if self.cpus and self.cpu_period:
            raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
        if self.cpus and self.cpu_quota:
            raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
        if self.cpu_period and not 1000 <= self.cpu_period <= 1_000_000:
            raise InvalidArgument(
                "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
            )
        if self.cpu_quota and 0 < self.cpu_quota < 1000:
            raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
        if self.blkio_weight and not 10 <= self.blkio_weight <= 1000:
            raise InvalidArgument("Range of blkio weight is from 10 to 1000")
        if self.cpu_shares is not None and self.cpu_shares < 0:
            raise InvalidArgument("invalid CPU shares: must not be negative")
        for text, what in ((self.cpuset_cpus, "cpuset cpus"), (self.cpuset_mems, "cpuset mems")):
            if text and not is_cpu_list(text):
                raise InvalidArgument(f"invalid value {text} for {what} (want a list such as 0-2,4)")
        if self.shm_size is not None and self.shm_size <= 0:
            raise InvalidArgument("SHM size can not be less than 0")
        for ulimit in self.ulimits:
            if ulimit.name not in ULIMIT_NAMES:
                raise InvalidArgument(f"invalid ulimit type: {ulimit.name}")


class SecurityOptions(_Checked):
    """What the container may do to the kernel.

    ``cap_add``/``cap_drop`` are ``CAP_X`` names or ``ALL`` (``sys_admin``
    is cleaned to ``CAP_SYS_ADMIN``). ``no_new_privileges`` None: not asked
    either way. ``seccomp`` "" is the default profile, ``unconfined`` none,
    else a profile file. ``unmask_system_paths`` is docker's
    ``systempaths=unconfined``. ``sysctls`` are the container's namespaced
    ones (keys cleaned to dots).
    """

    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    read_only: bool = False
    no_new_privileges: bool | None = None
    seccomp: str = ""
    apparmor: str = ""
    selinux_labels: tuple[str, ...] = ()
    unmask_system_paths: bool = False
    sysctls: Mapping[str, str] = EMPTY
    #: ``--userns``: "" the root's default (``userns-remap``), ``host`` opt out, ``remap`` opt in
    userns: str = ""

    @classmethod
    def _clean(cls, values: dict[str, Any]) -> dict[str, Any]:
        for key in ("cap_add", "cap_drop"):
            if key in values:
                values[key] = tuple(parse_capability(c) for c in values[key])
        if values.get("sysctls"):
            values["sysctls"] = types.MappingProxyType(
                dict(parse_sysctl(f"{k}={v}") for k, v in values["sysctls"].items())
            )
        return values

    def _check(self) -> None:
        if self.userns not in ("", "host", "remap"):
            raise InvalidArgument(f'invalid USER mode "{self.userns}": want "host" or "remap"')
        if self.apparmor and self.apparmor != "unconfined":
            raise Unsupported(
                f'AppArmor profile "{self.apparmor}" cannot be applied: AppArmor is not used by pallet on this '
                "host (use apparmor=unconfined or leave it out)"
            )

    def opts(self) -> tuple[str, ...]:
        """The security options as docker's ``HostConfig.SecurityOpt`` lists them."""
        out: list[str] = []
        if self.no_new_privileges is not None:
            out.append(f"no-new-privileges={'true' if self.no_new_privileges else 'false'}")
        if self.seccomp:
            out.append(f"seccomp={self.seccomp}")
        if self.apparmor:
            out.append(f"apparmor={self.apparmor}")
        out += [f"label={label}" for label in self.selinux_labels]
        if self.unmask_system_paths:
            out.append("systempaths=unconfined")
        return tuple(out)


def security_options(security_opt: Iterable[str] = (), **fields: Any) -> SecurityOptions:
    """``SecurityOptions`` from docker's ``--security-opt`` texts (a later key wins) and other fields."""
    labels: list[str] = []
    for text in security_opt:
        key, _, value = parse_security_opt(text).partition("=")
        if key == "no-new-privileges":
            fields["no_new_privileges"] = value == "true"
        elif key == "seccomp":
            fields["seccomp"] = value
        elif key == "apparmor":
            fields["apparmor"] = value
        elif key == "label":
            labels.append(value)
        else:  # systempaths=unconfined, the only one parse_security_opt lets through
            fields["unmask_system_paths"] = True
    if labels:
        fields["selinux_labels"] = tuple(labels)
    return SecurityOptions(**fields)


class EndpointOptions(_Checked):
    """One more network the container joins at create, after the one its mode names (docker's
    CLI: a second ``--network``; the API: another ``EndpointsConfig`` entry), with the endpoint's
    settings, docker's ``EndpointSettings``: ``network`` (a user network's name or id), ``aliases``,
    ``ip``, ``ip6``, ``link_local_ips``, ``mac_address``, ``links`` (``NAME:ALIAS``, answered by the
    network's resolver), ``driver_opts`` and ``gw_priority`` (the highest gives the default route)."""

    network: str = ""
    aliases: tuple[str, ...] = ()
    ip: str = ""
    ip6: str = ""
    link_local_ips: tuple[str, ...] = ()
    mac_address: str = ""
    links: tuple[str, ...] = ()
    driver_opts: Mapping[str, str] = EMPTY
    gw_priority: int = 0

    @classmethod
    def _clean(cls, values: dict[str, Any]) -> dict[str, Any]:
        if values.get("driver_opts"):
            values["driver_opts"] = types.MappingProxyType(dict(values["driver_opts"]))
        return values

    def _check(self) -> None:
        if not self.network.strip():
            raise InvalidArgument("no name set for network")
        if parse_network(self.network).kind != "network":
            raise InvalidArgument(
                "conflicting options: cannot attach both user-defined and non-user-defined network-modes"
            )
        for address in (self.ip, self.ip6, *self.link_local_ips):
            if address:
                parse_ip(address)
        if self.mac_address:
            parse_mac(self.mac_address)


class NetworkOptions(_Checked):
    """The container's network (docker's ``HostConfig`` network fields and ``NetworkingConfig``).

    ``mode``: the ``NetworkMode``. ``publish``: docker's ``-p`` texts (parsed
    with ``syntax.parse_publish`` by ``ports``); ``publish_all``: ``-P``, the
    image's EXPOSE'd ports and ``expose`` (``--expose``: ``80``,
    ``8000-8002/udp``) on free host ports. ``aliases``, ``ip`` and
    ``mac_address`` are the endpoint's on the network the mode names
    (``aliases`` and ``ip`` on a user network only, as docker).
    ``dns``/``dns_search``/``dns_options`` replace the host's lines of
    ``/etc/resolv.conf``; ``extra_hosts`` (``name:ip``, ``ip`` may be
    ``host-gateway``) are added to ``/etc/hosts``. ``links`` are docker's
    legacy links, ``NAME:ALIAS`` (``syntax.parse_link``): the linked
    container's address under the alias in ``/etc/hosts`` and, on the
    default bridge, its ``ALIAS_NAME``/``ALIAS_PORT_*``/``ALIAS_ENV_*``
    variables. ``networks``: the other user networks joined at create, in
    order (the mode's network is the first, ``eth0``); the published ports
    go with the first endpoint.
    """

    mode: NetworkMode = NetworkMode()
    hostname: str = ""
    domainname: str = ""
    publish: tuple[str, ...] = ()
    publish_all: bool = False
    expose: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    ip: str = ""
    mac_address: str = ""
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    #: the endpoint's on the network the mode names, docker's EndpointSettings (``--ip6``,
    #: ``--link-local-ip``, its ``Links`` and ``DriverOpts``): kept, shown by inspect
    ip6: str = ""
    link_local_ips: tuple[str, ...] = ()
    endpoint_links: tuple[str, ...] = ()
    driver_opts: Mapping[str, str] = EMPTY
    gw_priority: int = 0
    networks: tuple[EndpointOptions, ...] = ()

    @classmethod
    def _clean(cls, values: dict[str, Any]) -> dict[str, Any]:
        if values.get("links"):
            values["links"] = tuple(parse_link(text) for text in values["links"])
        if values.get("driver_opts"):
            values["driver_opts"] = types.MappingProxyType(dict(values["driver_opts"]))
        return values

    def _check(self) -> None:
        kind = self.mode.kind
        if self.links and kind == "host":
            raise InvalidArgument(
                "conflicting options: host type networking can't be used with links. This would result in "
                "undefined behavior"
            )
        if self.links and kind == "container":
            raise InvalidArgument(
                "conflicting options: container type network can't be used with links. This would result in "
                "undefined behavior"
            )
        if self.hostname and not is_hostname(self.hostname):
            raise InvalidArgument(
                f'invalid hostname "{self.hostname}": want at most 63 letters, digits, "-" and "." '
                "(RFC 1123), not starting or ending with - or ."
            )
        self.ports()
        self.exposed()
        for address in self.dns:
            parse_ip(address)
        for entry in self.extra_hosts:
            parse_extra_host(entry)
        for address in (self.ip, self.ip6, *self.link_local_ips):
            if address:
                parse_ip(address)
        if self.mac_address:
            parse_mac(self.mac_address)
        if kind == "container":
            # docker's words: the namespace, and the files that describe it, are the other container's
            for value, what in (
                (self.hostname, "hostname"),
                (self.dns or self.dns_search or self.dns_options, "dns"),
                (self.extra_hosts, "custom host-to-IP mapping"),
                (self.mac_address, "mac-address"),
                (self.publish or self.publish_all, "port publishing"),
            ):
                if value:
                    raise InvalidArgument(f"conflicting options: {what} and the network mode")
        if kind == "host" and self.mac_address:
            raise InvalidArgument("conflicting options: mac-address and the network mode")
        if self.aliases and kind != "network":
            raise InvalidArgument("network-scoped aliases are only supported for user-defined networks")
        if self.ip and kind != "network":
            raise InvalidArgument("user specified IP address is supported on user defined networks only")
        if self.networks and not self.mode.on_bridge:
            raise InvalidArgument(
                "conflicting options: cannot attach both user-defined and non-user-defined network-modes"
            )
        named = [self.mode.network_name]
        for endpoint in self.networks:
            if endpoint.network in named:
                raise InvalidArgument(f'network "{endpoint.network}" is specified multiple times')
            named.append(endpoint.network)

    def ports(self) -> tuple[PortRequest, ...]:
        """The ``-p`` requests, parsed."""
        return tuple(parse_publish(text) for text in self.publish)

    def exposed(self) -> tuple[str, ...]:
        """The ``--expose`` ports as docker's ``ExposedPorts`` keys (``80/tcp``), ranges expanded."""
        out: list[str] = []
        for text in self.expose:
            request = parse_publish(text)
            if request.host_start or request.host_ip:
                raise InvalidArgument(f'invalid expose "{text}": want PORT[-PORT][/PROTOCOL]')
            out += [
                f"{p}/{request.protocol}" for p in range(request.container_start, request.container_end + 1)
            ]
        return tuple(out)


class NamespaceOptions(_Checked):
    """The pid, ipc, uts and cgroup namespaces (docker's ``PidMode``, ``IpcMode``, ``UTSMode``,
    ``CgroupnsMode``), as ``syntax.parse_*_mode`` read them; "" is docker's default for each: a pid
    and uts namespace of its own, ``private`` ipc, a private cgroup namespace on cgroup v2 and the
    host's on v1. ``container:NAME`` joins that running container's namespace."""

    pid: str = ""
    ipc: str = ""
    uts: str = ""
    cgroupns: str = ""

    def _check(self) -> None:
        parse_pid_mode(self.pid)
        parse_ipc_mode(self.ipc)
        parse_uts_mode(self.uts)
        parse_cgroupns_mode(self.cgroupns)

    @property
    def ipc_mode(self) -> str:
        """The ipc mode in force: docker's default is ``private``."""
        return self.ipc or "private"

    @staticmethod
    def joined(mode: str) -> str:
        """The container a ``container:NAME`` mode joins ("" for another mode)."""
        kind, _, name = mode.partition(":")
        return name if kind == "container" else ""


class MountOptions(_Checked):
    """The container's mounts: ``specs`` (volumes, binds, tmpfs mounts as requested), ``tmpfs``
    (container path -> mount options, docker's ``HostConfig.Tmpfs``), ``volumes_from``
    (``CONTAINER[:ro|:rw]``: that container's volumes and binds, at the same paths) and
    ``volume_driver`` (docker's ``--volume-driver``: the driver of the volumes ``specs`` make that
    name none; checked when a volume is made, as docker does)."""

    specs: tuple[MountSpec, ...] = ()
    tmpfs: Mapping[str, str] = EMPTY
    volumes_from: tuple[str, ...] = ()
    volume_driver: str = ""

    def _check(self) -> None:
        for path, data in self.tmpfs.items():
            parse_tmpfs(f"{path}:{data}" if data else path)
        for text in self.volumes_from:
            parse_volumes_from(text)


class RunOptions(_Checked):
    """Everything ``pallet run``/``create`` takes besides the image (see the module docstring)."""

    name: str | None = None
    labels: Mapping[str, str] = EMPTY
    restart: RestartPolicy = RestartPolicy()
    auto_remove: bool = False
    runtime: str = ""
    #: "" or ``json-file``, or ``none`` (no log kept; ``syntax.parse_log_driver``)
    log_driver: str = ""
    log_opts: Mapping[str, str] = EMPTY
    #: docker's ``Isolation``: on Linux only "" or ``default``
    isolation: str = ""
    process: ProcessOptions = ProcessOptions()
    resources: ResourceOptions = ResourceOptions()
    security: SecurityOptions = SecurityOptions()
    network: NetworkOptions = NetworkOptions()
    namespaces: NamespaceOptions = NamespaceOptions()
    mounts: MountOptions = MountOptions()
    #: docker's Healthcheck asked for (``--health-*``, ``Config.Healthcheck``); None: the image's
    healthcheck: _Healthcheck | None = None

    def _check(self) -> None:
        if self.healthcheck is not None:
            from pallet.engine.healthcheck import check

            check(self.healthcheck)
        if self.restart.name not in RESTART_POLICIES or self.restart.max_retries < 0:
            raise InvalidArgument(
                f"invalid restart policy format: {self.restart.to_text()} "
                "(want no, always, on-failure[:N] or unless-stopped)"
            )
        if self.auto_remove and self.restart.name != "no":
            raise OptionConflict(("restart", "auto_remove"), "a removed container cannot restart")
        parse_log_driver(self.log_driver)
        if self.log_driver == "none" and self.log_opts:
            raise InvalidArgument("invalid logging opts for driver none")
        if self.isolation.lower() not in ("", "default"):
            raise InvalidArgument(f"invalid isolation: \"{self.isolation}\" - linux only supports 'default'")
        if self.namespaces.uts == "host" and self.network.hostname:
            raise InvalidArgument("conflicting options: hostname and the UTS mode")
        if self.namespaces.ipc == "host":
            for key in self.security.sysctls:
                if not key.startswith("net."):
                    raise InvalidArgument(
                        f'sysctl "{key}" is not allowed with the host IPC namespace: it would change the '
                        "host's IPC settings"
                    )
        if self.network.mode.is_host:
            for key in self.security.sysctls:
                if key.startswith("net."):
                    raise InvalidArgument(
                        f'sysctl "{key}" is not allowed with the host network: it would change the host\'s '
                        "network stack"
                    )


# ---------------------------------------------------------------------------
# storage in the container record

_NESTED: dict[str, type[Record]] = {
    "restart": RestartPolicy,
    "process": ProcessOptions,
    "resources": ResourceOptions,
    "security": SecurityOptions,
    "network": NetworkOptions,
    "namespaces": NamespaceOptions,
    "mounts": MountOptions,
    "mode": NetworkMode,
    "healthcheck": _Healthcheck,
}
_NESTED_TUPLES: dict[str, type[Record]] = {
    "ulimits": Ulimit,
    "devices": DeviceMapping,
    "specs": MountSpec,
    "networks": EndpointOptions,
}


def _record_to_json(record: Record) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in record._fields:
        value = getattr(record, name)
        if isinstance(value, Record):
            value = _record_to_json(value)
        elif isinstance(value, tuple):
            value = [_record_to_json(v) if isinstance(v, Record) else v for v in value]
        elif isinstance(value, types.MappingProxyType | dict):
            value = dict(value)
        out[name] = value
    return out


def _record_from_json(cls: type[Record], doc: object, what: str) -> Any:
    if cls is NetworkMode and isinstance(doc, str):
        return parse_network(doc)
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{what}: must be an object")
    values: dict[str, object] = {}
    for name, value in doc.items():
        if name not in cls._fields:
            continue  # written by a newer pallet: ignore, as the spec readers do
        if name in _NESTED and value is not None and cls is not EndpointOptions:  # its ``network`` is a name
            value = _record_from_json(_NESTED[name], value, f"{what}.{name}")
        elif name in _NESTED_TUPLES and isinstance(value, list):
            value = tuple(_record_from_json(_NESTED_TUPLES[name], v, f"{what}.{name}") for v in value)
        elif isinstance(value, list):
            value = tuple(value)
        elif isinstance(value, dict):
            value = types.MappingProxyType(dict(value))
        values[name] = value
    try:
        return cls(**values)
    except TypeError as e:
        raise InvalidArgument(f"{what}: {e}") from None


def options_to_json(options: RunOptions) -> dict[str, object]:
    """``options`` as JSON-ready data; ``options_from_json`` reads it back equal."""
    return _record_to_json(options)


def options_from_json(doc: object) -> RunOptions:
    """Read what ``options_to_json`` wrote (unknown keys are ignored)."""
    result: RunOptions = _record_from_json(RunOptions, doc, "options")
    return result
