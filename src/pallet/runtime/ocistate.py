"""The OCI state document (runtime-spec ``state``) of a container, as ``state`` prints and hooks read."""

from __future__ import annotations

from pallet.oci.jsonfast import dumps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


def oci_state(
    saved: Mapping[str, object], status: str, *, with_runc_fields: bool = True
) -> dict[str, object]:
    """The state object; ``pid`` is 0 once stopped. ``rootfs``/``created``/``owner`` as runc adds them."""
    pid = saved.get("pid", 0)
    doc: dict[str, object] = {
        "ociVersion": saved.get("ociVersion", "1.2.0"),
        "id": saved.get("id", ""),
        "pid": pid if status != "stopped" and isinstance(pid, int) else 0,
        "status": status,
        "bundle": saved.get("bundle", ""),
    }
    if with_runc_fields:
        doc["rootfs"] = saved.get("rootfs", "")
        doc["created"] = saved.get("created", "")
        doc["owner"] = saved.get("owner", "")
    annotations = saved.get("annotations")
    if annotations:
        doc["annotations"] = annotations
    return doc


def state_json(saved: Mapping[str, object], status: str, pid: int | None = None) -> str:
    """The state JSON a hook reads on stdin."""
    doc = oci_state(saved, status, with_runc_fields=False)
    if pid is not None:
        doc["pid"] = pid
    return dumps(doc)
