"""The OCI state document (runtime-spec ``state``) of a container, as ``state`` prints and hooks read."""

from __future__ import annotations

from pallet.oci.jsonfast import dumps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.runtime.savedstate import SavedState


def oci_state(saved: SavedState, status: str, *, with_runc_fields: bool = True) -> dict[str, object]:
    """The state object; ``pid`` is 0 once stopped. ``rootfs``/``created``/``owner`` as runc adds them."""
    doc: dict[str, object] = {
        "ociVersion": saved.oci_version,
        "id": saved.id,
        "pid": saved.pid if status != "stopped" else 0,
        "status": status,
        "bundle": saved.bundle,
    }
    if with_runc_fields:
        doc["rootfs"] = saved.rootfs
        doc["created"] = saved.created
        doc["owner"] = saved.owner
    if saved.annotations:
        doc["annotations"] = dict(saved.annotations)
    return doc


def state_json(saved: SavedState, status: str, pid: int | None = None) -> str:
    """The state JSON a hook reads on stdin."""
    doc = oci_state(saved, status, with_runc_fields=False)
    if pid is not None:
        doc["pid"] = pid
    return dumps(doc)
