"""A create request's ``Config``/``HostConfig``/``NetworkingConfig`` as the engine's ``RunOptions``.

docker's JSON fields map onto the grouped run options (``engine/spec/options.py``)
through the same syntax parsers the CLI's flags use (``engine/spec/syntax.py``):
``Binds`` are ``-v`` texts, ``Mounts`` are ``--mount`` fields, ``PortBindings``
become ``-p`` texts. Fields the engine has no use for are ignored, as dockerd
ignores unknown fields; a field of the wrong JSON type is a 400 naming it
(``json: cannot unmarshal string into Go struct field HostConfig.Memory of type int64``).
Zero means "not set" where docker's does (``Memory: 0``, ``PidsLimit: 0``, ``ShmSize: 0``;
``MemorySwappiness: -1``). The endpoint settings of the network the mode names
(``NetworkingConfig``: aliases, address, MAC) go with the network options; every other
``EndpointsConfig`` entry is one more network joined at create (API 1.44 and newer).
``Config.Runtime`` (where docker-py's ``create_container(runtime=)`` puts it)
is ignored, as dockerd ignores it: the runtime is ``HostConfig.Runtime``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from pallet.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.engine.service import RunOptions, UpdateRequest
    from pallet.oci.image_spec import Healthcheck

__all__ = ["run_options", "update_request"]

_GO_TYPES = {str: "string", int: "int64", bool: "bool", list: "array", dict: "object"}
_JSON_NAMES = {str: "string", int: "number", float: "number", bool: "bool", list: "array", dict: "object"}


def _get(doc: Mapping[str, Any], struct: str, key: str, kind: type, default: Any = None) -> Any:
    """``doc[key]`` if it is a ``kind`` (null is the default); a 400 in Go's words if it is not."""
    value = doc.get(key)
    if value is None:
        return default
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if not ok:
        got = _JSON_NAMES.get(type(value), "value")
        raise InvalidArgument(
            f"json: cannot unmarshal {got} into Go struct field {struct}.{key} of type {_GO_TYPES[kind]}"
        )
    return value


def _strings(doc: Mapping[str, Any], struct: str, key: str) -> tuple[str, ...]:
    value = _get(doc, struct, key, list, [])
    if not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"json: cannot unmarshal into Go struct field {struct}.{key} of type []string")
    return tuple(value)


def _string_map(doc: Mapping[str, Any], struct: str, key: str) -> dict[str, str]:
    value = _get(doc, struct, key, dict, {})
    if not all(isinstance(v, str) for v in value.values()):
        raise InvalidArgument(
            f"json: cannot unmarshal into Go struct field {struct}.{key} of type map[string]string"
        )
    return dict(value)


def _positive(doc: Mapping[str, Any], struct: str, key: str) -> int | None:
    value = _get(doc, struct, key, int, 0)
    return value if value > 0 else None


def _command(doc: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, str):  # the API accepts a string too (docker's StrSlice)
        return (value,)
    return _strings(doc, "Config", key)


def _publish(bindings: Mapping[str, Any]) -> tuple[str, ...]:
    """``PortBindings`` as ``-p`` texts: ``{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}`` -> ``8080:80/tcp``."""
    out = []
    for port, hosts in bindings.items():
        if not isinstance(hosts, list) or not hosts:
            out.append(port)
            continue
        for host in hosts:
            if not isinstance(host, dict):
                raise InvalidArgument(f"invalid port binding for {port}")
            ip = _get(host, "PortBinding", "HostIp", str, "")
            host_port = _get(host, "PortBinding", "HostPort", str, "")
            ip_part = f"[{ip}]" if ":" in ip else ip
            out.append(
                f"{ip_part}:{host_port}:{port}" if ip else f"{host_port}:{port}" if host_port else port
            )
    return tuple(out)


def _mount_text(mount: Mapping[str, Any], version: tuple[int, int]) -> str:
    """A ``HostConfig.Mounts`` entry as ``--mount`` fields (one parser for both); a volume subpath
    needs API 1.45."""
    fields = [f"type={_get(mount, 'Mount', 'Type', str, 'volume')}"]
    source = _get(mount, "Mount", "Source", str, "")
    if source:
        fields.append(f"source={source}")
    fields.append(f"target={_get(mount, 'Mount', 'Target', str, '')}")
    if _get(mount, "Mount", "ReadOnly", bool, False):
        fields.append("readonly")
    bind = _get(mount, "Mount", "BindOptions", dict, {})
    if bind.get("Propagation"):
        fields.append(f"bind-propagation={bind['Propagation']}")
    volume = _get(mount, "Mount", "VolumeOptions", dict, {})
    if volume.get("NoCopy"):
        fields.append("volume-nocopy")
    for key, value in (volume.get("Labels") or {}).items():
        fields.append(f"volume-label={key}={value}")
    subpath = _get(volume, "VolumeOptions", "Subpath", str, "")
    if subpath:
        if version < (1, 45):
            raise InvalidArgument(
                "Mount.VolumeOptions.Subpath is only supported in API version 1.45 and above"
            )
        fields.append(f"volume-subpath={subpath}")
    tmpfs = _get(mount, "Mount", "TmpfsOptions", dict, {})
    if tmpfs.get("SizeBytes"):
        fields.append(f"tmpfs-size={tmpfs['SizeBytes']}")
    if tmpfs.get("Mode"):
        fields.append(f"tmpfs-mode={tmpfs['Mode']:o}")
    return ",".join(f'"{f}"' if "," in f else f for f in fields)


def _healthcheck(config: Mapping[str, Any]) -> Healthcheck | None:
    """``Config.Healthcheck`` (durations in ns; 0 and an empty ``Test`` mean "the image's")."""
    from pallet.oci.image_spec import Healthcheck

    doc = _get(config, "Config", "Healthcheck", dict, None)
    if doc is None:
        return None
    return Healthcheck(
        test=_strings(doc, "HealthConfig", "Test") or None,
        interval=_get(doc, "HealthConfig", "Interval", int, 0) or None,
        timeout=_get(doc, "HealthConfig", "Timeout", int, 0) or None,
        start_period=_get(doc, "HealthConfig", "StartPeriod", int, 0) or None,
        start_interval=_get(doc, "HealthConfig", "StartInterval", int, 0) or None,
        retries=_get(doc, "HealthConfig", "Retries", int, 0) or None,
    )


def _endpoints(
    networking: Mapping[str, Any], mode: str, version: tuple[int, int]
) -> tuple[Mapping[str, Any], list[tuple[str, Mapping[str, Any]]]]:
    """The ``NetworkingConfig.EndpointsConfig`` entry of the network the mode names (a lone entry is
    taken as its, whatever its key), and the other entries in order (network, settings): the
    networks joined at create besides the mode's. Before API 1.44 more than one entry is docker's 400."""
    endpoints = dict(_get(networking, "NetworkingConfig", "EndpointsConfig", dict, {}))
    if mode in ("", "default") and "default" in endpoints:  # dockerd's name of the default network
        endpoints["bridge"] = endpoints.pop("default")
        mode = "bridge"
    if version < (1, 44) and len(endpoints) > 1:
        raise InvalidArgument(
            f"Container cannot be created with multiple network endpoints: {', '.join(endpoints)}"
        )
    for value in endpoints.values():
        if value is not None and not isinstance(value, dict):
            raise InvalidArgument(
                "json: cannot unmarshal into Go struct field NetworkingConfig.EndpointsConfig"
            )
    key = mode or "bridge"
    if key not in endpoints:
        key = next(iter(endpoints)) if len(endpoints) == 1 else ""
    others = [(name, value or {}) for name, value in endpoints.items() if name != key]
    return endpoints.get(key) or {}, others


def _more_networks(entries: list[tuple[str, Mapping[str, Any]]]) -> tuple[Any, ...]:
    """The other ``EndpointsConfig`` entries as the engine's ``EndpointOptions`` (``GwPriority`` is
    API 1.48's: dockerd zeroes it before, as here)."""
    from pallet.engine.spec.options import EndpointOptions

    out = []
    for name, endpoint in entries:
        ipam = _get(endpoint, "EndpointSettings", "IPAMConfig", dict, {})
        out.append(
            EndpointOptions(
                network=name,
                aliases=_strings(endpoint, "EndpointSettings", "Aliases"),
                ip=_get(ipam, "EndpointIPAMConfig", "IPv4Address", str, ""),
                ip6=_get(ipam, "EndpointIPAMConfig", "IPv6Address", str, ""),
                link_local_ips=_strings(ipam, "EndpointIPAMConfig", "LinkLocalIPs"),
                links=_strings(endpoint, "EndpointSettings", "Links"),
                driver_opts=_string_map(endpoint, "EndpointSettings", "DriverOpts"),
                mac_address=_get(endpoint, "EndpointSettings", "MacAddress", str, ""),
            )
        )
    return tuple(out)


def run_options(
    body: Mapping[str, Any], name: str | None, version: tuple[int, int] = (1, 47)
) -> tuple[str, RunOptions]:
    """(the image, the run options) of a ``POST /containers/create`` body at API ``version``;
    ``InvalidArgument`` if bad."""
    from pallet.engine.spec import options as o
    from pallet.engine.spec import syntax as s

    config = body
    host = _get(body, "Config", "HostConfig", dict, {})
    image = _get(config, "Config", "Image", str, "")
    if not image:
        raise InvalidArgument("config cannot be empty in order to create a container")
    entrypoint = _command(config, "Entrypoint")
    process = o.ProcessOptions(
        cmd=_command(config, "Cmd") or None,
        entrypoint=entrypoint,
        env=_strings(config, "Config", "Env"),
        workdir=_get(config, "Config", "WorkingDir", str, ""),
        user=_get(config, "Config", "User", str, ""),
        group_add=_strings(host, "HostConfig", "GroupAdd"),
        tty=_get(config, "Config", "Tty", bool, False),
        interactive=_get(config, "Config", "OpenStdin", bool, False),
        init=_get(host, "HostConfig", "Init", bool, False),
        stop_signal=s.parse_signal(sig) if (sig := _get(config, "Config", "StopSignal", str, "")) else "",
        stop_timeout=_get(config, "Config", "StopTimeout", int, None),
    )
    ulimits = tuple(
        s.Ulimit(
            name=_get(u, "Ulimit", "Name", str, ""),
            soft=_get(u, "Ulimit", "Soft", int, 0),
            hard=_get(u, "Ulimit", "Hard", int, 0),
        )
        for u in _get(host, "HostConfig", "Ulimits", list, [])
        if isinstance(u, dict)
    )
    devices = tuple(
        s.DeviceMapping(
            path_on_host=_get(d, "DeviceMapping", "PathOnHost", str, ""),
            path_in_container=_get(d, "DeviceMapping", "PathInContainer", str, "")
            or _get(d, "DeviceMapping", "PathOnHost", str, ""),
            permissions=_get(d, "DeviceMapping", "CgroupPermissions", str, "") or "rwm",
        )
        for d in _get(host, "HostConfig", "Devices", list, [])
        if isinstance(d, dict)
    )
    pids = _get(host, "HostConfig", "PidsLimit", int, 0)
    swap = _get(host, "HostConfig", "MemorySwap", int, 0)
    swappiness = _get(host, "HostConfig", "MemorySwappiness", int, None)
    resources = o.ResourceOptions(
        memory=_positive(host, "HostConfig", "Memory"),
        memory_swap=swap if swap else None,
        memory_reservation=_positive(host, "HostConfig", "MemoryReservation"),
        cpus=_positive(host, "HostConfig", "NanoCpus"),
        cpu_shares=_positive(host, "HostConfig", "CpuShares"),
        cpu_period=_positive(host, "HostConfig", "CpuPeriod"),
        cpu_quota=_positive(host, "HostConfig", "CpuQuota"),
        blkio_weight=_positive(host, "HostConfig", "BlkioWeight"),
        cpuset_cpus=_get(host, "HostConfig", "CpusetCpus", str, ""),
        cpuset_mems=_get(host, "HostConfig", "CpusetMems", str, ""),
        pids_limit=pids if pids > 0 else None,
        ulimits=ulimits,
        devices=devices,
        device_cgroup_rules=_strings(host, "HostConfig", "DeviceCgroupRules"),
        shm_size=_positive(host, "HostConfig", "ShmSize"),
        memory_swappiness=swappiness if swappiness != -1 else None,
    )
    namespaces = o.NamespaceOptions(
        pid=s.parse_pid_mode(_get(host, "HostConfig", "PidMode", str, "")),
        ipc=s.parse_ipc_mode(_get(host, "HostConfig", "IpcMode", str, "")),
        uts=s.parse_uts_mode(_get(host, "HostConfig", "UTSMode", str, "")),
        cgroupns=s.parse_cgroupns_mode(_get(host, "HostConfig", "CgroupnsMode", str, "")),
    )
    security = o.security_options(
        _strings(host, "HostConfig", "SecurityOpt"),
        privileged=_get(host, "HostConfig", "Privileged", bool, False),
        cap_add=_strings(host, "HostConfig", "CapAdd"),
        cap_drop=_strings(host, "HostConfig", "CapDrop"),
        read_only=_get(host, "HostConfig", "ReadonlyRootfs", bool, False),
        sysctls=_string_map(host, "HostConfig", "Sysctls"),
    )
    mode_text = _get(host, "HostConfig", "NetworkMode", str, "")
    endpoint, others = _endpoints(_get(body, "Config", "NetworkingConfig", dict, {}), mode_text, version)
    ipam = _get(endpoint, "EndpointSettings", "IPAMConfig", dict, {})
    mode = s.parse_network(mode_text)
    network = o.NetworkOptions(
        mode=mode,
        hostname=_get(config, "Config", "Hostname", str, ""),
        domainname=_get(config, "Config", "Domainname", str, ""),
        publish=_publish(_get(host, "HostConfig", "PortBindings", dict, {})),
        publish_all=_get(host, "HostConfig", "PublishAllPorts", bool, False),
        expose=tuple(_get(config, "Config", "ExposedPorts", dict, {})),
        aliases=_strings(endpoint, "EndpointSettings", "Aliases"),
        ip=_get(ipam, "EndpointIPAMConfig", "IPv4Address", str, ""),
        ip6=_get(ipam, "EndpointIPAMConfig", "IPv6Address", str, ""),
        link_local_ips=_strings(ipam, "EndpointIPAMConfig", "LinkLocalIPs"),
        endpoint_links=_strings(endpoint, "EndpointSettings", "Links"),
        driver_opts=_string_map(endpoint, "EndpointSettings", "DriverOpts"),
        mac_address=_get(endpoint, "EndpointSettings", "MacAddress", str, "")
        or _get(config, "Config", "MacAddress", str, ""),
        dns=_strings(host, "HostConfig", "Dns"),
        dns_search=_strings(host, "HostConfig", "DnsSearch"),
        dns_options=_strings(host, "HostConfig", "DnsOptions"),
        extra_hosts=_strings(host, "HostConfig", "ExtraHosts"),
        links=tuple(s.parse_link(text) for text in _strings(host, "HostConfig", "Links")),
        # with a mode of no endpoints (host, none, container:) the other entries have no use, as dockerd
        networks=_more_networks(others) if mode.on_bridge else (),
    )
    given = (
        *(s.parse_volume(text) for text in _strings(host, "HostConfig", "Binds")),
        *(
            s.parse_mount(_mount_text(m, version))
            for m in _get(host, "HostConfig", "Mounts", list, [])
            if isinstance(m, dict)
        ),
    )
    tmpfs = _string_map(host, "HostConfig", "Tmpfs")
    # docker makes an anonymous volume only for a Config.Volumes path nothing else mounts (compose
    # sends the image's VOLUME paths there beside the Binds that cover them)
    taken = {posixpath.normpath(spec.target) for spec in given} | {posixpath.normpath(t) for t in tmpfs}
    anonymous = tuple(
        s.MountSpec(type="volume", target=target)
        for target in _get(config, "Config", "Volumes", dict, {})
        if posixpath.normpath(target) not in taken
    )
    mounts = o.MountOptions(
        specs=(*given, *anonymous),
        tmpfs=tmpfs,
        volumes_from=_strings(host, "HostConfig", "VolumesFrom"),
        volume_driver=_get(host, "HostConfig", "VolumeDriver", str, ""),
    )
    policy = _get(host, "HostConfig", "RestartPolicy", dict, {})
    policy_name = _get(policy, "RestartPolicy", "Name", str, "") or "no"
    retries = _get(policy, "RestartPolicy", "MaximumRetryCount", int, 0)
    restart = s.parse_restart(f"{policy_name}:{retries}" if retries else policy_name)
    log_config = _get(host, "HostConfig", "LogConfig", dict, {})
    options = o.RunOptions(
        name=name or None,
        labels=_string_map(config, "Config", "Labels"),
        restart=restart,
        auto_remove=_get(host, "HostConfig", "AutoRemove", bool, False),
        runtime=_get(host, "HostConfig", "Runtime", str, ""),
        log_driver=_get(log_config, "LogConfig", "Type", str, ""),
        log_opts=_string_map(log_config, "LogConfig", "Config"),
        isolation=_get(host, "HostConfig", "Isolation", str, ""),
        process=process,
        resources=resources,
        security=security,
        network=network,
        namespaces=namespaces,
        mounts=mounts,
        healthcheck=_healthcheck(config),
    )
    return image, options


def update_request(body: Mapping[str, Any]) -> UpdateRequest:
    """``POST /containers/{id}/update``'s body (docker's ``UpdateConfig``: the resource fields and
    ``RestartPolicy``) as the engine's request; a zero or absent field changes nothing, as docker's."""
    from pallet.engine.service import UpdateRequest
    from pallet.engine.spec import syntax as s

    struct = "UpdateConfig"
    policy = _get(body, struct, "RestartPolicy", dict, {})
    name = _get(policy, "RestartPolicy", "Name", str, "")
    retries = _get(policy, "RestartPolicy", "MaximumRetryCount", int, 0)
    pids = body.get("PidsLimit")
    return UpdateRequest(
        memory=_get(body, struct, "Memory", int, 0) or None,
        memory_swap=_get(body, struct, "MemorySwap", int, 0) or None,
        memory_reservation=_get(body, struct, "MemoryReservation", int, 0) or None,
        cpus=_get(body, struct, "NanoCpus", int, 0) or None,
        cpu_shares=_get(body, struct, "CpuShares", int, 0) or None,
        cpu_period=_get(body, struct, "CpuPeriod", int, 0) or None,
        cpu_quota=_get(body, struct, "CpuQuota", int, 0) or None,
        cpuset_cpus=_get(body, struct, "CpusetCpus", str, "") or None,
        cpuset_mems=_get(body, struct, "CpusetMems", str, "") or None,
        pids_limit=None if pids is None else _get(body, struct, "PidsLimit", int),
        blkio_weight=_get(body, struct, "BlkioWeight", int, 0) or None,
        restart=s.parse_restart(f"{name}:{retries}" if retries else name) if name else None,
    )
