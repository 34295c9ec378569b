"""Engine records for unit tests: a container row with sane defaults, any field overridden."""

from __future__ import annotations

from pallet.engine.containers.records import ContainerRecord

__all__ = ["container_record"]


def container_record(**fields: object) -> ContainerRecord:
    """A running container ``web`` of ``busybox`` under runc, created at t=1000; ``fields`` override."""
    values: dict[str, object] = {
        "id": "a" * 64,
        "name": "web",
        "image_id": "sha256:" + "e" * 64,
        "image": "busybox",
        "created": 1000.0,
        "state": "running",
        "runtime": "runc",
    }
    values.update(fields)
    return ContainerRecord(**values)  # type: ignore[arg-type]
