"""Unpacking a layer: the one place a layer blob becomes a committed snapshot.

``unpack_layer`` is the only code that extracts a layer into a snapshot.
``ImageStore.unpack_layers`` (``unpack`` at run and create, ``load``,
``import``) gives it blobs from the content store; ``pull`` gives it the blob
as it downloads (``registry.client.downloads.BlobReader``). The steps, in
containerd's terms:

1. ``prepare`` an active snapshot ``unpack/<owner>`` on the parent. A
   snapshotter that ``rebases`` (overlay: a layer holds only its own files)
   prepares it on nothing and sets the parent at commit, so layers can be
   unpacked in parallel; the copy driver prepares on the parent, which the
   caller must have committed first.
2. Extract the stream into the directory the snapshot's mount names (its
   ``upperdir``, or a bind mount's source), as containerd's applier does for
   overlay: nothing is mounted. ``extract.apply_layer`` never writes outside
   that directory, and hashes the blob and the uncompressed tar as it reads.
3. ``after_extract(stats)`` (pull: store the downloaded blob, verified), then
   the checks: the blob's digest (sha256 blobs; the caller verifies any other
   algorithm as it reads) and the diff id the image config names.
4. ``before_commit()`` (pull: wait for the parent layer's commit), then
   ``commit`` under the chain id and record the layer's row (chain id, diff
   id, parent, uncompressed size, snapshot) in the image tables. If another
   process committed the same chain id first, ours is removed and theirs used:
   it holds the same layer.

Any failure removes the active snapshot. A killed unpack leaves an active
``unpack/<owner>`` snapshot of a dead owner, which ``remove_abandoned`` (run
when the store opens) removes. The caller holds the store's lease
(``ImageStore.lease()``) from before the unpack until an image that uses the
layer is recorded: until then the layer's row references no image, and gc
takes unreferenced rows and snapshots when no lease is held.
"""

from __future__ import annotations

from pallet.errors import DATA_LOSS, AlreadyExists, Conflict, DataLoss, NotFound
from pallet.image import owners
from pallet.image.snapshots import OVERLAY, writable_dir
from pallet.oci.record import Record

__all__ = ["LayerMismatch", "UnpackedLayer", "record_layer", "remove_abandoned", "unpack_layer"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pallet.database import Database
    from pallet.image.extract import LayerStats
    from pallet.image.snapshots import Snapshotter
    from pallet.image.tarstream import Readable
    from pallet.oci.digest import Digest
    from pallet.oci.image_spec import Descriptor

#: the keys of active snapshots a layer is unpacked into, followed by the owner tag
_PREFIX = "unpack/"


class LayerMismatch(DataLoss):
    """A layer blob does not hash to its digest, or unpacks to another diff id than its image says."""

    category = DATA_LOSS


class UnpackedLayer(Record):
    """A layer in its committed snapshot (``key``, the chain id); ``size``: its uncompressed tar's bytes."""

    key: str
    diff_id: Digest
    size: int
    #: False if another process had committed it first (its snapshot is the one kept)
    fresh: bool = True


def unpack_layer(
    snapshots: Snapshotter,
    db: Database,
    stream: Readable,
    *,
    blob: Descriptor,
    diff_id: Digest,
    chain_id: Digest,
    parent: Digest | str | None,
    remedy: str,
    after_extract: Callable[[LayerStats], None] | None = None,
    before_commit: Callable[[], None] | None = None,
) -> UnpackedLayer:
    """Apply layer ``blob`` read from ``stream`` onto a new snapshot over ``parent``; commit it as ``chain_id``.

    See the module docstring for the steps and contracts. ``remedy`` ends the
    message of a ``LayerMismatch`` (what the user should do). Atomic: the
    snapshot ``chain_id`` exists, verified, or nothing new does.
    """
    from pallet.image import extract

    key = _PREFIX + owners.owner_tag()
    base = None if snapshots.rebases or parent is None else str(parent)
    mounts = snapshots.prepare(key, base)
    try:
        mode = extract.OVERLAY if snapshots.driver == OVERLAY else extract.NAIVE
        stats = extract.apply_layer(writable_dir(mounts), stream, media_type=blob.media_type, mode=mode)
        if after_extract is not None:
            after_extract(stats)
        if blob.digest.algorithm == "sha256" and stats.digest != blob.digest:
            raise LayerMismatch(f"digest mismatch: blob {blob.digest} hashes to {stats.digest}; {remedy}")
        if stats.diff_id != diff_id:
            raise LayerMismatch(
                f"layer {blob.digest} does not match the image config: it unpacks to {stats.diff_id}, "
                f"the config says {diff_id}; {remedy}"
            )
        if before_commit is not None:
            before_commit()
        fresh = True
        try:
            snapshots.commit(str(chain_id), key, onto=str(parent) if parent is not None else None)
        except AlreadyExists:
            fresh = False
            snapshots.remove(key)
    except BaseException:
        _discard(snapshots, key)
        raise
    record_layer(db, chain_id, diff_id, parent, size=stats.size)
    return UnpackedLayer(key=str(chain_id), diff_id=diff_id, size=stats.size, fresh=fresh)


def record_layer(
    db: Database, chain_id: Digest, diff_id: Digest, parent: Digest | str | None, *, size: int | None
) -> None:
    """Record that layer ``chain_id`` is unpacked in the snapshot of that key (with its size, if known); idempotent.

    A size already recorded is kept (the same layer has one size).
    """
    with db.transaction() as conn:
        conn.execute(
            """INSERT INTO layers(chain_id, diff_id, parent, uncompressed_size, snapshot_key)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT(chain_id) DO UPDATE SET
                   snapshot_key = excluded.snapshot_key,
                   uncompressed_size = coalesce(layers.uncompressed_size, excluded.uncompressed_size)""",
            (str(chain_id), str(diff_id), str(parent) if parent is not None else None, size, str(chain_id)),
        )


def _discard(snapshots: Snapshotter, key: str) -> None:
    try:
        snapshots.remove(key)
    except NotFound:
        return  # committed after all, or never made


def remove_abandoned(snapshots: Snapshotter) -> int:
    """Remove the unpack snapshots of processes that are gone (killed mid-unpack); returns how many."""
    removed = 0
    for info in list(snapshots.walk()):
        if not info.key.startswith(_PREFIX):
            continue
        owner = owners.parse_owner(info.key.removeprefix(_PREFIX))
        if owner is not None and owners.is_alive(*owner):
            continue
        try:
            snapshots.remove(info.key)
        except (NotFound, Conflict):
            continue  # another process got there first (an unpack snapshot never has children)
        removed += 1
    return removed
