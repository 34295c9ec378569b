"""``ShimConfig``: everything a shim needs to know, as the engine writes it to ``shim.json``.

The engine writes the file (``save``) in the container's directory before it
calls ``launch``; the shim reads it (``load``) and never writes it. Standard
library only.
"""

from __future__ import annotations

import os

from pallet.errors import InvalidArgument
from pallet.oci.jsonfast import dumps, loads
from pallet.oci.record import EMPTY, Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["RESTART_POLICIES", "ShimConfig", "load", "parse", "save"]

#: docker's restart policy names
RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")


class ShimConfig(Record):
    #: the container id, as the OCI runtime knows it
    id: str
    #: the bundle directory (config.json, rootfs)
    bundle: str
    runtime_name: str
    runtime_path: str
    #: the runtime's ``--root``
    runtime_root: str
    #: the container's dir under the run root: attach.sock, exit.json, init.json, shim.pid
    run_dir: str
    #: the json-file log; ``log_max_size`` 0 means unlimited
    log_path: str
    log_max_size: int = 0
    log_max_file: int = 1
    #: the process has a terminal (``process.terminal`` in config.json)
    tty: bool = False
    #: extra global arguments of the runtime (``runtimeArgs`` of the engine's config file)
    runtime_args: tuple[str, ...] = ()
    #: keep the container's stdin open for attach clients (``-i``)
    open_stdin: bool = False
    #: ``no | always | on-failure | unless-stopped``; ``restart_max_retries`` 0 = unlimited
    restart_name: str = "no"
    restart_max_retries: int = 0
    #: the signal that stops the container (informational for the shim: the engine stops it)
    stop_signal: int = 15
    #: ``--rm``: the engine's exit command removes the container; the shim never restarts it
    auto_remove: bool = False
    #: run (without waiting) once the container is gone for good, like conmon's ``--exit-command``
    exit_command: tuple[str, ...] = ()
    #: wait for an attach client to ask for the start (``start: true``), so it misses no output;
    #: without a request within ``start_gate_seconds`` (its client was killed), start anyway
    start_on_attach: bool = False
    start_gate_seconds: float = 30.0
    #: the pallet root whose events file gets the container's ``die`` (and ``oom``); "" for none
    events_root: str = ""
    #: the Actor attributes of those events (name, image, labels), as the engine knew them at start
    event_attributes: Mapping[str, str] = EMPTY
    #: the healthcheck's command (empty: none) and its settings in nanoseconds (``engine.healthcheck``)
    health_argv: tuple[str, ...] = ()
    health_interval: int = 0
    health_timeout: int = 0
    health_start_period: int = 0
    health_start_interval: int = 0
    health_retries: int = 0


def save(config: ShimConfig, path: str) -> None:
    """Write ``config`` to ``path`` atomically."""
    from pallet.linux.atomicfile import write_atomic

    if config.restart_name not in RESTART_POLICIES:
        raise InvalidArgument(f"invalid restart policy {config.restart_name!r}")
    doc = {name: getattr(config, name) for name in ShimConfig._fields}
    doc["exit_command"] = list(config.exit_command)
    doc["runtime_args"] = list(config.runtime_args)
    doc["health_argv"] = list(config.health_argv)
    doc["event_attributes"] = dict(config.event_attributes)
    # not fsynced: the file matters only while the container runs, and is written at each start
    write_atomic(path, dumps(doc, indent=2).encode(), durable=False)


def load(path: str) -> ShimConfig:
    try:  # no file object: a forked shim pays a page for each object it makes (zygote)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.read(fd, 1 << 20)
        finally:
            os.close(fd)
    except OSError as e:
        raise InvalidArgument(f"read shim config {path}: {e.strerror or e}") from None
    return parse(data, path)


def parse(data: bytes, path: str) -> ShimConfig:
    """``load`` of ``data``, read from ``path``."""
    doc = loads(data)
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{path}: not a shim config (a JSON object)")
    values = {k: v for k, v in doc.items() if k in ShimConfig._fields}
    for name in ("exit_command", "runtime_args", "health_argv"):
        values[name] = tuple(values.get(name) or ())
    attributes = values.get("event_attributes")
    if attributes is not None:
        if not isinstance(attributes, dict):
            raise InvalidArgument(f"{path}: event_attributes must be a JSON object")
        values["event_attributes"] = {str(k): str(v) for k, v in attributes.items()}
    try:
        config = ShimConfig(**values)
    except TypeError as e:
        raise InvalidArgument(f"{path}: {e}") from None
    if not os.path.isabs(config.run_dir):
        raise InvalidArgument(f"{path}: run_dir must be absolute")
    return config
