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
        "Env": list(process.env) if process is not None else [],
        "Cmd": cmd,
        "Image": record.image,
        "Volumes": volumes or None,
        "WorkingDir": asked.workdir or (image.working_dir if image is not None and image.working_dir else ""),
        "Entrypoint": entrypoint,
        "Labels": labels,
    }
    stop_signal = asked.stop_signal or (image.stop_signal if image is not None else None)
    if stop_signal:
        config["StopSignal"] = stop_signal
    if asked.stop_timeout is not None:
        config["StopTimeout"] = asked.stop_timeout
    resources, security = options.resources, options.security
    host_config: dict[str, Any] = {
        "Binds": [
            f"{m.source}:{m.destination}" + ("" if m.rw else ":ro") for m in mounts if m.type == "bind"
        ],
        "LogConfig": {"Type": "json-file", "Config": dict(options.log_opts)},
        "NetworkMode": options.network.mode.to_text(),
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
        "Memory": resources.memory or 0,
        "MemorySwap": resources.memory_swap or 0,
        "NanoCpus": resources.cpus or 0,
        "CpuShares": resources.cpu_shares or 0,
        "CpusetCpus": resources.cpuset_cpus,
        "PidsLimit": resources.pids_limit,
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
        "NetworkSettings": {"Networks": {document.get("HostConfig", {}).get("NetworkMode", "default"): {}}},
        "Pallet": {"Bundle": bundle, "RunDir": run_dir, "Runtime": record.runtime},
    }
    return out


def now_rfc3339() -> str:
    return rfc3339nano(time.time_ns())
