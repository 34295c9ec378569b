"""``update``: new resource limits and restart policy for an existing container, as docker's.

The request (``UpdateRequest``) holds only what changes: a field left None
(docker's zero) keeps the container's value. The merge follows docker's
daemon, with its words for what it refuses:

- NanoCPUs and a CFS period or quota exclude each other, across the request
  and what is already set ("Conflicting options: CPU Quota cannot be updated
  as NanoCPUs has already been set");
- a new memory limit above the swap limit already set (none or unlimited
  swap is no bound) needs a new swap limit too ("Memory limit should be smaller than already set memoryswap limit,
  update the memoryswap at the same time"); a container created with a
  memory limit and no swap limit has twice that memory as its swap limit;
- a restart policy other than ``no`` is refused for an ``--rm`` container.

The merged options go through ``ResourceOptions``' and ``RunOptions``' own
checks (the ones ``run`` gets: memory below 6 MiB, a blkio weight out of
range...). Then, under the container's lock, in this order so that a failure
leaves nothing changed: a running container's cgroups are changed through its
runtime's ``update --resources -``; the bundle's ``config.json`` gets the new
``linux.resources`` (the next start uses them); ``container.json`` gets the
new ``HostConfig`` values and options (``inspect``); a live shim is told the
new restart policy (``exitfile.write_restart_policy``). Errors read
``Cannot update container ID: ...``, as dockerd's.
"""

from __future__ import annotations

import os

from pallet.engine.containers.inspection import host_config_resources, swap_limit
from pallet.engine.containers.records import ACTIVE_STATES, write_document
from pallet.errors import FailedPrecondition, InvalidArgument, PalletError, from_category
from pallet.oci.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pallet.engine.containers.lifecycle import Engine
    from pallet.engine.containers.records import ContainerRecord
    from pallet.engine.spec.options import ResourceOptions, RunOptions
    from pallet.engine.spec.syntax import RestartPolicy

__all__ = ["UpdateRequest", "linux_resources", "merge", "update"]


class UpdateRequest(Record):
    """What ``update`` changes; None keeps the container's value. Sizes in bytes, ``cpus`` in
    nano-CPUs, ``memory_swap`` -1 unlimited, ``pids_limit`` 0 or less unlimited."""

    memory: int | None = None
    memory_swap: int | None = None
    memory_reservation: int | None = None
    cpus: int | None = None
    cpu_shares: int | None = None
    cpu_period: int | None = None
    cpu_quota: int | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids_limit: int | None = None
    blkio_weight: int | None = None
    restart: RestartPolicy | None = None


def _conflict(text: str) -> InvalidArgument:
    return InvalidArgument(f"Conflicting options: {text}")


def merge(options: RunOptions, request: UpdateRequest) -> RunOptions:
    """``options`` with ``request`` applied; ``InvalidArgument`` in docker's words if refused."""
    current = options.resources
    if request.cpus and current.cpu_period:
        raise _conflict("Nano CPUs cannot be updated as CPU Period has already been set")
    if request.cpus and current.cpu_quota:
        raise _conflict("Nano CPUs cannot be updated as CPU Quota has already been set")
    if request.cpu_period and current.cpus:
        raise _conflict("CPU Period cannot be updated as NanoCPUs has already been set")
    if request.cpu_quota and current.cpus:
        raise _conflict("CPU Quota cannot be updated as NanoCPUs has already been set")
    changes: dict[str, Any] = {}
    for name in ("cpus", "cpu_shares", "cpu_period", "cpu_quota", "blkio_weight", "memory_reservation"):
        value = getattr(request, name)
        if value:
            changes[name] = value
    for name in ("cpuset_cpus", "cpuset_mems"):
        if getattr(request, name):
            changes[name] = getattr(request, name)
    if request.memory:
        swap = swap_limit(current)
        if swap > 0 and request.memory > swap and not request.memory_swap:
            raise InvalidArgument(
                "Memory limit should be smaller than already set memoryswap limit, "
                "update the memoryswap at the same time"
            )
        changes["memory"] = request.memory
        if swap and not request.memory_swap and current.memory_swap in (None, 0):
            changes["memory_swap"] = swap  # the limit in force stays, not twice the new memory
    if request.memory_swap:
        changes["memory_swap"] = request.memory_swap
    if request.pids_limit is not None:
        changes["pids_limit"] = request.pids_limit if request.pids_limit > 0 else None
    resources = current.replace(**changes) if changes else current
    restart = options.restart
    if request.restart is not None and request.restart.name:
        if options.auto_remove and request.restart.name != "no":
            raise InvalidArgument(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
            )
        restart = request.restart
    return options.replace(resources=resources, restart=restart)


def linux_resources(resources: ResourceOptions, *, unlimited_pids: bool = False) -> dict[str, Any]:
    """The OCI ``linux.resources`` sections (memory, cpu, pids, blockIO) ``run`` makes of ``resources``;
    ``unlimited_pids`` adds ``pids.limit`` -1 where no limit is set (an update lifting one)."""
    from pallet.engine.spec.generate import compose, host_facts, resource_spec_options
    from pallet.oci.runtime_spec import Spec

    cgroup_only = resources.replace(shm_size=None, ulimits=(), devices=())
    spec = compose(Spec(oci_version="1.0.2"), *resource_spec_options(cgroup_only, host_facts()))
    found = spec.linux.resources if spec.linux is not None else None
    doc: dict[str, Any] = dict(found.to_json()) if found is not None else {}
    doc.pop("devices", None)
    if unlimited_pids and "pids" not in doc:
        doc["pids"] = {"limit": -1}
    return doc


_SECTIONS = ("memory", "cpu", "pids", "blockIO")


def _rewrite_config(path: str, sections: dict[str, Any]) -> None:
    """The bundle's ``config.json`` with ``sections`` as its ``linux.resources`` cgroup sections
    (devices and the rest kept); atomic."""
    from pallet.engine.containers.records import dumps_compact
    from pallet.linux.atomicfile import write_atomic
    from pallet.oci.jsonfast import loads

    with open(path, "rb") as f:
        config = loads(f.read())
    if not isinstance(config, dict):
        raise InvalidArgument(f"{path}: not a JSON object")
    linux = config.setdefault("linux", {})
    resources = linux.setdefault("resources", {})
    for key in _SECTIONS:
        resources.pop(key, None)
    resources.update({k: v for k, v in sections.items() if k in _SECTIONS})
    write_atomic(path, dumps_compact(config).encode())


def update(engine: Engine, ref: str, request: UpdateRequest) -> ContainerRecord:
    """Apply ``request`` to container ``ref`` (the module's rules); returns its record."""
    from pallet.engine.shim import exitfile
    from pallet.engine.spec.options import options_from_json, options_to_json

    record = engine.get(ref)
    with engine.lock(record.id).held():
        record = engine.containers.by_id(record.id)
        try:
            if record.state in ("removing", "creating", "dead"):
                raise FailedPrecondition(f'container is {record.state} and cannot be "update"')
            doc = engine.document(record)
            options = options_from_json(doc.get("PalletOptions") or {})
            merged = merge(options, request)
            pids_lifted = request.pids_limit is not None and request.pids_limit <= 0
            sections = linux_resources(merged.resources, unlimited_pids=pids_lifted)
            resources_changed = merged.resources != options.resources
            if resources_changed and record.state in ACTIVE_STATES:
                engine.runtime(record.runtime).update(record.id, sections)
            if resources_changed:
                _rewrite_config(
                    os.path.join(engine.layout.bundle(record.id), "config.json"),
                    linux_resources(merged.resources),
                )
        except PalletError as e:
            raise from_category(
                e.category.name, f"Cannot update container {record.id}: {e.message}"
            ) from None
        host = dict(doc.get("HostConfig") or {})
        host.update(host_config_resources(merged.resources))
        host["RestartPolicy"] = {"Name": merged.restart.name, "MaximumRetryCount": merged.restart.max_retries}
        doc["HostConfig"] = host
        doc["PalletOptions"] = options_to_json(merged)
        write_document(engine.layout.document(record.id), doc)
        if merged.restart != options.restart and record.state in ACTIVE_STATES:
            exitfile.write_restart_policy(
                engine.layout.run_dir(record.id), merged.restart.name, merged.restart.max_retries
            )
    engine.event(record, "update")
    return record
