"""``pallet export``: a container's root filesystem as one flat tar, and reaching that filesystem.

``export_rootfs`` writes the merged root filesystem (image layers plus the
container's changes; not its volumes, as docker) as an uncompressed tar:
every file once, deterministic order, owners, modes, xattrs, links and device
nodes kept (``pallet.image.layerdiff`` with a full tree and no lower dir).

``mounted_rootfs`` yields the container's root filesystem on the host: its
``bundle/rootfs`` mount when present (the engine keeps it mounted while the
container exists), else the snapshot mounted there for the duration and
unmounted afterwards (after a reboot). The caller holds the container's lock
when the container may be started meanwhile.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from pallet.image import layerdiff
from pallet.image import snapshots as _snapshots
from pallet.image.compression import NONE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pallet.image.layerdiff import LayerResult
    from pallet.image.store import ImageStore
    from pallet.image.tarstream import Writable

__all__ = ["export_rootfs", "mounted_rootfs"]


@contextmanager
def mounted_rootfs(
    images: ImageStore, key: str, rootfs: str | os.PathLike[str], *, unshifted: bool = False
) -> Iterator[Path]:
    """``rootfs`` with snapshot ``key`` mounted on it, for as long as the block runs.

    ``unshifted`` (a ``--userns=remap`` container, whose rootfs shows its owners
    shifted): a read-only view beside it with the owners as stored instead.
    """
    from pathlib import Path

    if unshifted:
        from pallet.engine.userns import unshifted_view

        with unshifted_view(images.snapshots.mounts(key), f"{rootfs}.view.{os.getpid()}") as view:
            yield Path(view)
        return
    rootfs = Path(rootfs)
    if _snapshots.is_mounted(rootfs):
        yield rootfs
        return
    rootfs.mkdir(parents=True, exist_ok=True)
    _snapshots.mount(images.snapshots.mounts(key), rootfs)
    try:
        yield rootfs
    finally:
        _snapshots.unmount(rootfs)


def export_rootfs(rootfs: Path, out: Writable) -> LayerResult:
    """Write the tree at ``rootfs`` to ``out`` as a flat, uncompressed tar."""
    return layerdiff.write_layer(out, str(rootfs), lower=None, upper_kind=layerdiff.FULL, compression=NONE)
