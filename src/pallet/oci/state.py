"""The state of a container as ``pallet-runtime state`` reports it (runtime-spec state.md).

The JSON is runc's: the spec's fields (``ociVersion``, ``id``, ``status``,
``pid``, ``bundle``, ``annotations``) plus runc's ``rootfs``, ``created`` and
``owner``, in runc's key order, because engines and scripts parse ``runc
state`` output and some compare it as text.
"""

from __future__ import annotations

import types

from pallet.errors import SpecError
from pallet.oci.record import EMPTY, Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Self

__all__ = ["CREATED", "CREATING", "PAUSED", "RUNNING", "STATUSES", "STOPPED", "State"]

#: the runtime is creating the container (``create`` has not returned)
CREATING = "creating"
#: created, the user process waits for ``start``
CREATED = "created"
#: the user process runs
RUNNING = "running"
#: the container's processes are frozen (runc's extension of the spec)
PAUSED = "paused"
#: the user process has exited
STOPPED = "stopped"
STATUSES = frozenset((CREATING, CREATED, RUNNING, PAUSED, STOPPED))


def _string(obj: dict[str, object], key: str, *, required: bool = True) -> str:
    value = obj.get(key)
    if value is None:
        if required:
            raise SpecError(key, "required")
        return ""
    if not isinstance(value, str):
        raise SpecError(key, "must be a string")
    return value


def _pid(obj: dict[str, object]) -> int:
    value = obj.get("pid")
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError("pid", "must be an integer")
    if value < 0:
        raise SpecError("pid", f"must not be negative, got {value}")
    return value


def _annotations(obj: dict[str, object]) -> Mapping[str, str]:
    value = obj.get("annotations")
    if not value:
        return EMPTY
    if not isinstance(value, dict):
        raise SpecError("annotations", "must be an object of strings")
    for key, item in value.items():
        if not isinstance(item, str):
            raise SpecError(f'annotations["{key}"]', "must be a string")
    return types.MappingProxyType(dict(value))


class State(Record):
    """One container's state. ``created`` is an RFC 3339 UTC time with nanoseconds."""

    oci_version: str
    id: str
    status: str
    pid: int = 0
    bundle: str
    annotations: Mapping[str, str] = EMPTY
    rootfs: str = ""
    created: str = ""
    owner: str = ""

    def to_json(self) -> dict[str, object]:
        """The object ``runc state`` prints, keys in its order; ``annotations`` only when set."""
        out: dict[str, object] = {
            "ociVersion": self.oci_version,
            "id": self.id,
            "pid": self.pid,
            "status": self.status,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        out["owner"] = self.owner
        return out

    @classmethod
    def from_json(cls, obj: object, path: str = "") -> Self:
        """Read a state object (as written by ``to_json`` or by runc); ``path`` prefixes errors."""
        try:
            return cls._from_json(obj)
        except SpecError as exc:
            if not path:
                raise
            raise SpecError(f"{path}.{exc.path}" if exc.path else path, exc.problem) from None

    @classmethod
    def _from_json(cls, obj: object) -> Self:
        if not isinstance(obj, dict):
            raise SpecError("", "a container state must be a JSON object")
        status = _string(obj, "status")
        if status not in STATUSES:
            raise SpecError(
                "status", f'unknown status "{status}" (want one of {", ".join(sorted(STATUSES))})'
            )
        return cls(
            oci_version=_string(obj, "ociVersion"),
            id=_string(obj, "id"),
            status=status,
            pid=_pid(obj),
            bundle=_string(obj, "bundle"),
            annotations=_annotations(obj),
            rootfs=_string(obj, "rootfs", required=False),
            created=_string(obj, "created", required=False),
            owner=_string(obj, "owner", required=False),
        )
