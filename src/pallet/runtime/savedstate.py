"""``SavedState``: what ``create`` records in a container's ``state.json`` for the commands after it.

The OCI state fields (``oci_state`` makes the document ``state`` prints from
them) plus what later commands need and cannot recompute: the init's start
time (to detect pid reuse), the cgroup directories, whether the rootfs mounts
live in the runtime's own namespace, the hooks that run after ``create``, and
the resources ``update`` merged in.

Contracts:
- the JSON keys are the ones every earlier version wrote (``ociVersion``,
  ``init_start``, ``host_mounts``...), in the same order: a state.json of the
  previous version loads here, and one written here loads there;
- a key missing from the file takes its default (null counts as missing, as
  Go's encoding/json reads it); a key this version does not know is kept in
  ``unknown`` and written back, so an ``update`` run by this version erases
  nothing a newer one recorded;
- a known key of the wrong type raises ``SpecError`` with the key's JSON path.

``Record``, not ``dataclasses``: every ``pallet-runtime`` command reads this
file, and ``import dataclasses`` alone costs more than such a command may.
The hooks' parser (``oci.runtime_spec``) is imported only for a file that has
hooks.
"""

from __future__ import annotations

from pallet.errors import SpecError
from pallet.oci.record import EMPTY, MappingProxy, Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from pallet.oci.runtime_spec import Hook

__all__ = ["SavedState"]

#: the keys of the file, in the order they are written
_KEYS = (
    "ociVersion", "id", "status", "pid", "bundle", "rootfs", "created", "owner", "annotations",
    "host_mounts", "poststart", "poststop", "cgroups", "init_start", "resources",
)  # fmt: skip
_KNOWN = frozenset(_KEYS)


class SavedState(Record):
    """One container as ``create`` left it; ``status`` is what create last wrote (``creating``
    until its init is ready, then ``created``), never the live status (``containers.status_of``)."""

    oci_version: str = "1.2.0"
    id: str
    status: str = "creating"
    #: the init's host pid, 0 until create knows it
    pid: int = 0
    bundle: str = ""
    rootfs: str = ""
    #: RFC 3339 UTC, with nanoseconds
    created: str = ""
    owner: str = ""
    annotations: Mapping[str, str] = EMPTY
    #: the init's start time in clock ticks (``/proc/<pid>/stat`` field 22); 0 until create knows it
    init_start: int = 0
    #: hierarchy -> cgroup directory (v1), or ``""`` -> the v2 cgroup
    cgroups: Mapping[str, str] = EMPTY
    #: no mount namespace: the rootfs mounts are in the runtime's own namespace, delete unmounts them
    host_mounts: bool = False
    poststart: tuple[Hook, ...] = ()
    poststop: tuple[Hook, ...] = ()
    #: the LinuxResources JSON that ``update`` calls merged, as given
    resources: Mapping[str, object] = EMPTY
    #: keys this version does not know, written back as they were
    unknown: Mapping[str, object] = EMPTY

    @classmethod
    def from_json(cls, obj: Mapping[str, object], *, default_id: str = "") -> SavedState:
        """The record of a state.json object; ``default_id`` where the file has no ``id``."""
        get = obj.get
        poststart = get("poststart")
        poststop = get("poststop")
        return cls(
            oci_version=_string(get("ociVersion"), "ociVersion") or "1.2.0",
            id=_string(get("id"), "id") or default_id,
            status=_string(get("status"), "status") or "creating",
            pid=_integer(get("pid"), "pid"),
            bundle=_string(get("bundle"), "bundle"),
            rootfs=_string(get("rootfs"), "rootfs"),
            created=_string(get("created"), "created"),
            owner=_string(get("owner"), "owner"),
            annotations=_strings(get("annotations"), "annotations"),
            init_start=_integer(get("init_start"), "init_start"),
            cgroups=_strings(get("cgroups"), "cgroups"),
            host_mounts=_boolean(get("host_mounts"), "host_mounts"),
            poststart=_hooks(poststart, "poststart") if poststart else (),
            poststop=_hooks(poststop, "poststop") if poststop else (),
            resources=_object(get("resources"), "resources"),
            unknown=MappingProxy({k: v for k, v in obj.items() if k not in _KNOWN}),
        )

    def to_json(self) -> dict[str, object]:
        """The state.json object: optional keys only when set, as earlier versions wrote them."""
        out: dict[str, object] = {
            "ociVersion": self.oci_version,
            "id": self.id,
            "status": self.status,
            "pid": self.pid,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.host_mounts:
            out["host_mounts"] = True
        if self.poststart:
            out["poststart"] = [hook.to_json() for hook in self.poststart]
        if self.poststop:
            out["poststop"] = [hook.to_json() for hook in self.poststop]
        out["cgroups"] = dict(self.cgroups)
        if self.init_start:
            out["init_start"] = self.init_start
        if self.resources:
            out["resources"] = dict(self.resources)
        out.update(self.unknown)
        return out


def _string(value: object, key: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SpecError(key, "must be a string")
    return value


def _integer(value: object, key: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError(key, "must be a non-negative integer")
    return value


def _boolean(value: object, key: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise SpecError(key, "must be true or false")
    return value


def _object(value: object, key: str) -> Mapping[str, object]:
    if value is None:
        return EMPTY
    if not isinstance(value, dict):
        raise SpecError(key, "must be an object")
    return MappingProxy(value)


def _strings(value: object, key: str) -> Mapping[str, str]:
    mapping = _object(value, key)
    for name, item in mapping.items():
        if not isinstance(item, str):
            raise SpecError(f'{key}["{name}"]', "must be a string")
    return mapping  # type: ignore[return-value]  # checked above


def _hooks(value: object, key: str) -> tuple[Hook, ...]:
    from pallet.oci.runtime_spec import Hook

    if not isinstance(value, list):
        raise SpecError(key, "must be an array of hooks")
    return tuple(Hook.from_json(item, f"{key}[{index}]") for index, item in enumerate(value))
