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
    from pallet.engine.spec.mounts import MountPoint
    from pallet.engine.spec.options import RunOptions
    from pallet.oci.image_spec import ContainerConfig
    from pallet.oci.runtime_spec import Spec

__all__ = ["container_document", "inspect_container", "status_fields"]

_ZERO_TIME = "0001-01-01T00:00:00Z"


def _network_mode(network: str) -> str:
    return "default" if network == "private" else network


def container_document(
    *,
    record: ContainerRecord,
    options: RunOptions,
    image_config: ContainerConfig | None,
    spec: Spec,
    mounts: Sequence[MountPoint],
    driver: str,
    log_path: str,
) -> dict[str, Any]:
    """The ``container.json`` of a new container (docker's config.v2 shape, the parts pallet has)."""
    from pallet.engine.spec.options import options_to_json

    image = image_config
    process = spec.process
    args = list(process.args) if process is not None else []
    if options.entrypoint is not None:
        entrypoint: list[str] | None = list(options.entrypoint) or None
        cmd = list(options.cmd) if options.cmd else None
    else:
        entrypoint = list(image.entrypoint) if image is not None and image.entrypoint else None
        if options.cmd:
            cmd = list(options.cmd)
        else:
            cmd = list(image.cmd) if image is not None and image.cmd else None
    labels = dict(image.labels) if image is not None else {}
    labels.update(options.labels)
    volumes: dict[str, object] = {v: {} for v in (image.volumes or ())} if image is not None else {}
    config: dict[str, Any] = {
        "Hostname": spec.hostname or record.id[:12],
        "Domainname": options.domainname,
        "User": options.user or (image.user if image is not None and image.user else ""),
        "AttachStdin": options.interactive,
        "AttachStdout": True,
        "AttachStderr": True,
        "Tty": options.tty,
        "OpenStdin": options.interactive,
        "StdinOnce": options.interactive,
        "Env": list(process.env) if process is not None else [],
        "Cmd": cmd,
        "Image": record.image,
        "Volumes": volumes or None,
        "WorkingDir": options.workdir
        or (image.working_dir if image is not None and image.working_dir else ""),
        "Entrypoint": entrypoint,
        "Labels": labels,
    }
    stop_signal = options.stop_signal or (image.stop_signal if image is not None else None)
    if stop_signal:
        config["StopSignal"] = stop_signal
    if options.stop_timeout is not None:
        config["StopTimeout"] = options.stop_timeout
    host_config: dict[str, Any] = {
        "Binds": [
            f"{m.source}:{m.destination}" + ("" if m.rw else ":ro") for m in mounts if m.type == "bind"
        ],
        "LogConfig": {"Type": "json-file", "Config": dict(options.log_opts)},
        "NetworkMode": _network_mode(options.network),
        "RestartPolicy": {"Name": options.restart.name, "MaximumRetryCount": options.restart.max_retries},
        "AutoRemove": options.auto_remove,
        "CapAdd": list(options.cap_add) or None,
        "CapDrop": list(options.cap_drop) or None,
        "Init": options.init or None,
        "Privileged": options.privileged,
        "ReadonlyRootfs": options.read_only,
        "SecurityOpt": list(options.security_opt) or None,
        "Tmpfs": dict(options.tmpfs) or None,
        "ShmSize": options.shm_size if options.shm_size is not None else 64 * 1024 * 1024,
        "Runtime": record.runtime,
        "Sysctls": dict(options.sysctls) or None,
        "Memory": options.memory or 0,
        "MemorySwap": options.memory_swap or 0,
        "NanoCpus": options.cpus or 0,
        "CpuShares": options.cpu_shares or 0,
        "CpusetCpus": options.cpuset_cpus,
        "PidsLimit": options.pids_limit,
        "Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in options.ulimits] or None,
        "Devices": [
            {
                "PathOnHost": d.path_on_host,
                "PathInContainer": d.path_in_container,
                "CgroupPermissions": d.permissions,
            }
            for d in options.devices
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
        "LogPath": log_path,
        "Config": config,
        "HostConfig": host_config,
        "Mounts": [m.to_inspect() for m in mounts],
        "PalletOptions": options_to_json(options),
    }


def status_fields(record: ContainerRecord) -> dict[str, Any]:
    """Docker's ``State`` object for a record."""
    state = record.state if record.state != "creating" else "created"
    return {
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


def inspect_container(
    record: ContainerRecord, document: Mapping[str, Any], *, bundle: str, run_dir: str
) -> dict[str, Any]:
    """What ``docker inspect`` prints for the container (keys in docker's order)."""
    out: dict[str, Any] = {
        "Id": record.id,
        "Created": document.get("Created") or rfc3339nano(int(record.created * 1e9)),
        "Path": document.get("Path", ""),
        "Args": document.get("Args", []),
        "State": status_fields(record),
        "Image": record.image_id,
        "ResolvConfPath": "",
        "HostnamePath": "",
        "HostsPath": "",
        "LogPath": document.get("LogPath", ""),
        "Name": "/" + record.name,
        "RestartCount": record.restart_count,
        "Driver": document.get("Driver", ""),
        "Platform": "linux",
        "AppArmorProfile": "",
        "HostConfig": document.get("HostConfig", {}),
        "Mounts": document.get("Mounts", []),
        "Config": document.get("Config", {}),
        "NetworkSettings": {
            "Networks": {_network_mode(document.get("HostConfig", {}).get("NetworkMode", "default")): {}}
        },
        "Pallet": {"Bundle": bundle, "RunDir": run_dir, "Runtime": record.runtime},
    }
    return out


def now_rfc3339() -> str:
    return rfc3339nano(time.time_ns())
