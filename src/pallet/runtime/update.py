"""``update``: change a container's cgroup limits, as ``runc update``.

The new limits come from ``--resources FILE`` (``-``: stdin, what containerd
sends) as LinuxResources JSON, and from flags, a flag overriding the same
field of the file. Only the fields given are written, planned by
``cgroup_limits`` like create's; device rules cannot be changed here (runc
refuses them too). The container's saved state keeps the merged resources.
"""

from __future__ import annotations

import os

from pallet.errors import FailedPrecondition, InvalidArgument, SystemError_
from pallet.runtime.containers import ContainerDir, status_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}

# flag -> (section, field, kind): "bytes" takes k/m/g suffixes and -1, "int" a signed number
_FLAGS: dict[str, tuple[str, str, str]] = {
    "memory": ("memory", "limit", "bytes"),
    "memory-swap": ("memory", "swap", "bytes"),
    "memory-reservation": ("memory", "reservation", "bytes"),
    "kernel-memory": ("memory", "kernel", "bytes"),
    "kernel-memory-tcp": ("memory", "kernelTCP", "bytes"),
    "cpu-shares": ("cpu", "shares", "int"),
    "cpu-quota": ("cpu", "quota", "int"),
    "cpu-period": ("cpu", "period", "int"),
    "cpu-rt-runtime": ("cpu", "realtimeRuntime", "int"),
    "cpu-rt-period": ("cpu", "realtimePeriod", "int"),
    "cpuset-cpus": ("cpu", "cpus", "str"),
    "cpuset-mems": ("cpu", "mems", "str"),
    "pids-limit": ("pids", "limit", "int"),
    "blkio-weight": ("blockIO", "weight", "int"),
}


def parse_bytes(text: str, flag: str) -> int:
    """``100``, ``64k``, ``512m``, ``1g`` (binary units, as runc's RAMInBytes), or ``-1`` (unlimited)."""
    value = text.strip().lower()
    if value == "-1":
        return -1
    for suffix in ("ib", "b"):
        if value.endswith(suffix) and len(value) > len(suffix):
            value = value[: -len(suffix)]
            break
    scale = _UNITS.get(value[-1:], 1)
    number = value[:-1] if scale > 1 else value
    try:
        return int(float(number) * scale)
    except ValueError:
        raise InvalidArgument(
            f'invalid value "{text}" for flag --{flag}: a size such as 512m is required'
        ) from None


def requested(resources_arg: str, flags: Mapping[str, str], stdin: int = 0) -> dict[str, object]:
    """The LinuxResources JSON object asked for: the file (or stdin), then the flags on top."""
    from pallet.oci.jsonfast import loads

    doc: dict[str, object] = {}
    if resources_arg:
        if resources_arg == "-":
            data = b""
            while chunk := os.read(stdin, 65536):
                data += chunk
        else:
            try:
                with open(resources_arg, "rb") as file:
                    data = file.read()
            except OSError as e:
                raise SystemError_(f"open {resources_arg}", e.errno or 0) from None
        loaded = loads(data) if data.strip() else {}
        if not isinstance(loaded, dict):
            raise InvalidArgument("update --resources: a LinuxResources JSON object is required")
        doc = loaded
    for flag, (section, field, kind) in _FLAGS.items():
        text = flags.get(flag)
        if text is None:
            continue
        value: object
        if kind == "bytes":
            value = parse_bytes(text, flag)
        elif kind == "int":
            try:
                value = int(text)
            except ValueError:
                raise InvalidArgument(
                    f'invalid value "{text}" for flag --{flag}: a number is required'
                ) from None
        else:
            value = text
        part = doc.setdefault(section, {})
        if not isinstance(part, dict):
            raise InvalidArgument(f"update --resources: {section} must be an object")
        part[field] = value
    return doc


def _merge(old: Mapping[str, object], new: Mapping[str, object]) -> dict[str, object]:
    merged = dict(old)
    for key, value in new.items():
        current = merged.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merged[key] = _merge(current, value)
        else:
            merged[key] = value
    return merged


def update(root: str, container_id: str, resources_arg: str, flags: Mapping[str, str]) -> None:
    from pallet.oci.runtime_spec import Resources
    from pallet.runtime.cgroup_driver import from_saved

    doc = requested(resources_arg, flags)
    if doc.get("devices"):
        raise InvalidArgument("update: device rules cannot be changed on a running container")
    resources = Resources.from_json(doc, "resources").replace(devices=())
    cdir = ContainerDir(root, container_id)
    cdir.lock()
    try:
        saved = cdir.load()
        if status_of(cdir, saved) in ("stopped", "creating"):
            raise FailedPrecondition("container not running")
        cgroups = from_saved(saved.cgroups)
        if cgroups is None:
            raise FailedPrecondition(f"container {container_id} has no cgroup to update")
        cgroups.set(resources)
        merged = _merge(saved.resources, {k: v for k, v in doc.items() if k != "devices"})
        cdir.save(saved.replace(resources=merged))
    finally:
        cdir.unlock()
