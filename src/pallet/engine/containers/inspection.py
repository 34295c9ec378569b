"""Docker's shapes of a container: the ``container.json`` document and ``inspect``'s JSON.

``container_document`` records, at create time, what was decided (docker's
``Config``, ``HostConfig``, ``Path``/``Args``, ``Mounts``) plus the parsed
options under ``PalletOptions`` (so ``start`` and ``restart`` need nothing
else). ``inspect_container`` joins it with the live record into the object
``docker inspect`` prints.
"""

from __future__ import annotations

import time

from pallet.engine.shim.logfile import rfc3339nano

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from pallet.engine.containers.records import ContainerRecord
    from pallet.engine.healthcheck import Health
    from pallet.engine.spec.mounts import MountPoint
    from pallet.engine.spec.options import ResourceOptions, RunOptions
    from pallet.engine.spec.syntax import PortRequest
    from pallet.oci.image_spec import ContainerConfig
    from pallet.oci.runtime_spec import Spec

__all__ = ["container_document", "host_config_resources", "inspect_container", "status_fields", "swap_limit"]

_ZERO_TIME = "0001-01-01T00:00:00Z"


def container_document(
    *,
    record: ContainerRecord,
    options: RunOptions,
    image_config: ContainerConfig | None,
    spec: Spec,
    mounts: Sequence[MountPoint],
    driver: str,
    log_path: str,
    hosts_files: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``container.json`` of a new container (docker's config.v2 shape, the parts pallet has).

    ``hosts_files``: the container's own ``/etc/hosts``, ``/etc/resolv.conf``
    and ``/etc/hostname`` files (``HostsPath``, ``ResolvConfPath``,
    ``HostnamePath``)."""
    from pallet.engine.spec.options import options_to_json

    image = image_config
    asked = options.process
    process = spec.process
    args = list(process.args) if process is not None else []
    if asked.entrypoint is not None:
        entrypoint: list[str] | None = list(asked.entrypoint) or None
        cmd = list(asked.cmd) if asked.cmd else None
    else:
        entrypoint = list(image.entrypoint) if image is not None and image.entrypoint else None
        image_cmd = list(image.cmd) if image is not None and image.cmd else None
        cmd = list(asked.cmd) if asked.cmd else image_cmd
    labels = dict(image.labels) if image is not None else {}
    labels.update(options.labels)
    volumes: dict[str, object] = {v: {} for v in (image.volumes or ())} if image is not None else {}
    config: dict[str, Any] = {
        "Hostname": spec.hostname or record.id[:12],
        "Domainname": options.network.domainname,
        "User": asked.user or (image.user if image is not None and image.user else ""),
        "AttachStdin": asked.interactive,
        "AttachStdout": True,
        "AttachStderr": True,
        "Tty": asked.tty,
        "OpenStdin": asked.interactive,
        "StdinOnce": asked.interactive,
        # a name without a value is unset in the process, but stays in the config (dockerd's)
        "Env": [*(process.env if process is not None else ()), *(e for e in asked.env if "=" not in e)],
        "Cmd": cmd,
        "Image": record.image,
        "Volumes": volumes or None,
        "WorkingDir": asked.workdir or (image.working_dir if image is not None and image.working_dir else ""),
        "Entrypoint": entrypoint,
        "Labels": labels,
    }
    network = options.network
    exposed: dict[str, object] = {p: {} for p in (image.exposed_ports or () if image is not None else ())}
    requests = network.ports()
    for key in network.exposed():
        exposed.setdefault(key, {})
    for request in requests:
        for port in range(request.container_start, request.container_end + 1):
            exposed.setdefault(f"{port}/{request.protocol}", {})
    if exposed:
        config["ExposedPorts"] = exposed
    if network.mac_address:
        config["MacAddress"] = network.mac_address
    stop_signal = asked.stop_signal or (image.stop_signal if image is not None else None)
    if stop_signal:
        config["StopSignal"] = stop_signal
    if asked.stop_timeout is not None:
        config["StopTimeout"] = asked.stop_timeout
    from pallet.engine.healthcheck import merge

    healthcheck = merge(options.healthcheck, image.healthcheck if image is not None else None)
    if healthcheck is not None:  # dockerd merges the image's into the container's Config
        config["Healthcheck"] = healthcheck.to_json()
    if image is not None and image.shell:  # SHELL: what a CMD-SHELL healthcheck runs in
        config["Shell"] = list(image.shell)
    resources, security = options.resources, options.security
    host_config: dict[str, Any] = {
        "Binds": [
            f"{m.source}:{m.destination}" + ("" if m.rw else ":ro") for m in mounts if m.type == "bind"
        ],
        "LogConfig": {"Type": options.log_driver or "json-file", "Config": dict(options.log_opts)},
        "NetworkMode": options.network.mode.to_text(),
        "PortBindings": _port_bindings(requests),
        "PublishAllPorts": network.publish_all,
        "Dns": list(network.dns),
        "DnsOptions": list(network.dns_options),
        "DnsSearch": list(network.dns_search),
        "ExtraHosts": list(network.extra_hosts) or None,
        "RestartPolicy": {"Name": options.restart.name, "MaximumRetryCount": options.restart.max_retries},
        "AutoRemove": options.auto_remove,
        "CapAdd": list(security.cap_add) or None,
        "CapDrop": list(security.cap_drop) or None,
        "Init": asked.init or None,
        "Privileged": security.privileged,
        "ReadonlyRootfs": security.read_only,
        "SecurityOpt": list(security.opts()) or None,
        "Tmpfs": dict(options.mounts.tmpfs) or None,
        "ShmSize": resources.shm_size if resources.shm_size is not None else 64 * 1024 * 1024,
        "Runtime": record.runtime,
        "Sysctls": dict(security.sysctls) or None,
        "UsernsMode": security.userns,
        **_namespace_modes(options, spec),
        "Isolation": options.isolation,
        "VolumesFrom": list(options.mounts.volumes_from) or None,
        "VolumeDriver": options.mounts.volume_driver,
        "Links": None,
        "DeviceCgroupRules": list(resources.device_cgroup_rules) or None,
        **host_config_resources(resources),
        "Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in resources.ulimits] or None,
        "Devices": [
            {
                "PathOnHost": d.path_on_host,
                "PathInContainer": d.path_in_container,
                "CgroupPermissions": d.permissions,
            }
            for d in resources.devices
        ],
    }
    return {
        "Id": record.id,
        "Created": rfc3339nano(int(record.created * 1e9)),
        "Path": args[0] if args else "",
        "Args": args[1:],
        "Name": "/" + record.name,
        "Image": record.image_id,
        "Driver": driver,
        "Platform": "linux",
        "LogPath": log_path if options.log_driver != "none" else "",
        "Config": config,
        "HostConfig": host_config,
        "Mounts": [m.to_inspect() for m in mounts],
        "ResolvConfPath": (hosts_files or {}).get("/etc/resolv.conf", ""),
        "HostnamePath": (hosts_files or {}).get("/etc/hostname", ""),
        "HostsPath": (hosts_files or {}).get("/etc/hosts", ""),
        "NetworkAliases": list(network.aliases),
        "PalletOptions": options_to_json(options),
    }


def _port_bindings(requests: Sequence[PortRequest]) -> dict[str, list[dict[str, str]]]:
    """docker's ``HostConfig.PortBindings``: what ``-p`` asked for (``HostPort`` "" for any free port)."""
    out: dict[str, list[dict[str, str]]] = {}
    for r in requests:
        count = r.container_end - r.container_start
        for offset in range(count + 1):
            if not r.host_start:
                host = ""
            elif count:
                host = str(r.host_start + offset)
            else:
                host = str(r.host_start) if r.host_start == r.host_end else f"{r.host_start}-{r.host_end}"
            out.setdefault(f"{r.container_start + offset}/{r.protocol}", []).append(
                {"HostIp": r.host_ip, "HostPort": host}
            )
    return out


def status_fields(record: ContainerRecord, health: Health | None = None) -> dict[str, Any]:
    """Docker's ``State`` object for a record (``Health`` when the container has a healthcheck state)."""
    state = record.state if record.state != "creating" else "created"
    fields = {
        "Status": state,
        "Running": state in ("running", "paused", "restarting"),
        "Paused": state == "paused",
        "Restarting": state == "restarting",
        "OOMKilled": record.oom_killed,
        "Dead": state == "dead",
        "Pid": record.pid if state in ("running", "paused") else 0,
        "ExitCode": record.exit_code if record.exit_code is not None else 0,
        "Error": "",
        "StartedAt": record.started_at or _ZERO_TIME,
        "FinishedAt": record.finished_at or _ZERO_TIME,
    }
    if health is not None:
        fields["Health"] = health.to_docker()
    return fields


def swap_limit(resources: ResourceOptions) -> int:
    """The swap limit in force, docker's way: as set (-1 unlimited), or twice the memory limit (0: none)."""
    if resources.memory_swap not in (None, 0):
        return resources.memory_swap
    return 2 * resources.memory if resources.memory else 0


def host_config_resources(resources: ResourceOptions) -> dict[str, Any]:
    """The resource fields of docker's ``HostConfig`` (``inspect``) for ``resources``."""
    return {
        "Memory": resources.memory or 0,
        "MemoryReservation": resources.memory_reservation or 0,
        "MemorySwap": swap_limit(resources),
        "NanoCpus": resources.cpus or 0,
        "CpuShares": resources.cpu_shares or 0,
        "CpuPeriod": resources.cpu_period or 0,
        "CpuQuota": resources.cpu_quota or 0,
        "CpusetCpus": resources.cpuset_cpus,
        "CpusetMems": resources.cpuset_mems,
        "PidsLimit": resources.pids_limit,
        "BlkioWeight": resources.blkio_weight or 0,
        "MemorySwappiness": resources.memory_swappiness,
    }


def _namespace_modes(options: RunOptions, spec: Spec) -> dict[str, str]:
    """docker's ``PidMode``, ``IpcMode`` (``private`` by default), ``UTSMode`` and ``CgroupnsMode`` (the
    one in force: ``private`` where the spec has a cgroup namespace, else ``host``)."""
    namespaces = options.namespaces
    own = {n.type for n in spec.linux.namespaces} if spec.linux is not None else set()
    return {
        "PidMode": namespaces.pid,
        "IpcMode": namespaces.ipc_mode,
        "UTSMode": namespaces.uts,
        "CgroupnsMode": "private" if "cgroup" in own else "host",
    }


def inspect_container(
    record: ContainerRecord,
    document: Mapping[str, Any],
    *,
    bundle: str,
    run_dir: str,
    networks: Mapping[str, Mapping[str, Any]] | None = None,
    ports: Sequence[tuple[str, str, int]] = (),
) -> dict[str, Any]:
    """What ``docker inspect`` prints for the container (keys in docker's order).

    ``networks``: ``NetworkSettings.Networks`` (network name -> docker's
    endpoint settings) of the container's endpoints; ``ports`` the published
    ports it holds (``80/tcp``, host address, host port) while it runs;
    ``State.Health`` is what its shim's healthcheck last wrote in ``run_dir``."""
    from pallet.engine.healthcheck import read_health

    out: dict[str, Any] = {
        "Id": record.id,
        "Created": document.get("Created") or rfc3339nano(int(record.created * 1e9)),
        "Path": document.get("Path", ""),
        "Args": document.get("Args", []),
        "State": status_fields(record, read_health(run_dir) if record.state != "creating" else None),
        "Image": record.image_id,
        "ResolvConfPath": document.get("ResolvConfPath", ""),
        "HostnamePath": document.get("HostnamePath", ""),
        "HostsPath": document.get("HostsPath", ""),
        "LogPath": document.get("LogPath", ""),
        "Name": "/" + record.name,
        "RestartCount": record.restart_count,
        "Driver": document.get("Driver", ""),
        "Platform": "linux",
        "AppArmorProfile": "",
        "HostConfig": document.get("HostConfig", {}),
        "Mounts": document.get("Mounts", []),
        "Config": document.get("Config", {}),
        "NetworkSettings": network_settings(
            document, networks or {}, ports, running=record.state in ("running", "paused", "restarting")
        ),
        "Pallet": {"Bundle": bundle, "RunDir": run_dir, "Runtime": record.runtime},
    }
    return out


def network_settings(
    document: Mapping[str, Any],
    networks: Mapping[str, Mapping[str, Any]],
    ports: Sequence[tuple[str, str, int]],
    *,
    running: bool,
) -> dict[str, Any]:
    """docker's ``NetworkSettings``: ``Ports`` (every exposed port, its host bindings while running),
    ``Networks``, and the default network's address fields at the top level."""
    mode = str(document.get("HostConfig", {}).get("NetworkMode") or "default")
    bound: dict[str, list[dict[str, str]] | None] = {
        port: None for port in document.get("Config", {}).get("ExposedPorts") or {}
    }
    if running:
        for private, host_ip, host_port in ports:
            entry = bound.get(private) or []
            entry.append({"HostIp": host_ip, "HostPort": str(host_port)})
            bound[private] = entry
    if mode in ("host", "none"):  # dockerd's predefined networks: the mode's, its endpoint while running
        shown: dict[str, Any] = {mode: dict(networks.get(mode) or _empty_endpoint())}
        if not running:
            shown[mode]["EndpointID"] = ""
    elif mode.startswith("container:"):
        shown = {}
    else:
        shown = {name: dict(settings) for name, settings in networks.items()}
        if not running:  # a stopped container holds its addresses, but docker shows them only while it runs
            for entry in shown.values():
                entry.update(
                    EndpointID="", Gateway="", IPAddress="", IPPrefixLen=0, IPv6Gateway="", GlobalIPv6Address="",
                    GlobalIPv6PrefixLen=0,
                )  # fmt: skip
    settings: dict[str, Any] = {
        "Bridge": "",
        "SandboxID": "",
        "SandboxKey": "",
        "Ports": bound if running else {},
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": "",
        "Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "MacAddress": "",
        "Networks": shown,
    }
    default = shown.get("bridge")
    if default is not None and default.get("IPAddress"):
        for key in (
            "EndpointID", "Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "IPAddress", "IPPrefixLen",
            "IPv6Gateway", "MacAddress",
        ):  # fmt: skip
            settings[key] = default.get(key, settings[key])
    return settings


def _empty_endpoint() -> dict[str, Any]:
    return {
        "IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "", "NetworkID": "", "EndpointID": "",
        "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0, "DNSNames": None,
    }  # fmt: skip


def now_rfc3339() -> str:
    return rfc3339nano(time.time_ns())
