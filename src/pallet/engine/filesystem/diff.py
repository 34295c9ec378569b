"""What a container changed in its root filesystem: ``pallet diff``, and the input of ``commit``.

A container's writable layer is its active snapshot (``container-<id>``).
``diff_dirs`` gives the directories to compare, per snapshot driver:

- ``overlay``: the snapshot's ``upper`` dir holds exactly the changes; the
  image's merged rootfs (its one layer's dir, or a read-only overlay mount of
  its layer chain in a temp dir, unmounted afterwards) only tells an addition
  from a change;
- ``copy``: the snapshot's full tree against the parent's full tree.

``container_changes`` lists docker's ``A``/``C``/``D`` lines (via
``pallet.image.layerdiff``), leaving out the container's own mount points:
the runtime creates them in the writable layer (docker keeps them in an
"init" layer that ``diff`` does not show).
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager

from pallet.errors import FailedPrecondition
from pallet.image import layerdiff, owners
from pallet.image import snapshots as _snapshots

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from pallet.image.layerdiff import Change
    from pallet.image.store import ImageStore

__all__ = ["container_changes", "diff_dirs"]


@contextmanager
def diff_dirs(images: ImageStore, key: str) -> Iterator[tuple[str, str | None, str]]:
    """``(upper, lower, upper_kind)`` of snapshot ``key`` for ``layerdiff``; lower None: no image layers."""
    snaps = images.snapshots
    info = snaps.stat(key)
    if info is None:
        raise FailedPrecondition(
            f'the container has no writable layer (snapshot "{key}" is gone); remove and recreate it'
        )
    if snaps.driver == _snapshots.COPY:
        lower = str(snaps.get(info.parent).path / "fs") if info.parent else None
        yield str(info.path / "fs"), lower, layerdiff.FULL
        return
    upper = str(info.path / "upper")
    if info.parent is None:
        yield upper, None, layerdiff.OVERLAY
        return
    chain = snaps.chain(info.parent)
    if len(chain) == 1:
        yield upper, str(chain[0].path / "fs"), layerdiff.OVERLAY
        return
    # several layers: look at them merged, read-only, in a private temp mount point
    # (named after this process, so another store's leftover cleanup leaves it alone while we live)
    scratch = snaps.tmp / owners.owner_tag()
    scratch.mkdir()
    try:
        _snapshots.mount(snaps.mounts(info.parent), scratch)
        try:
            yield upper, str(scratch), layerdiff.OVERLAY
        finally:
            _snapshots.unmount(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _hidden(path: str, mount_points: frozenset[str]) -> bool:
    return path in mount_points


def container_changes(
    images: ImageStore, key: str, *, mount_points: Iterable[str] = ()
) -> tuple[Change, ...]:
    """docker diff's lines for snapshot ``key``, sorted by path, without the container's mount points."""
    hidden = frozenset(os.path.normpath(p) for p in mount_points)
    with diff_dirs(images, key) as (upper, lower, kind):
        found = layerdiff.diff_changes(upper, lower=lower, upper_kind=kind)
    shown = [c for c in found if not _hidden(c.path, hidden)]
    # a directory changed only by the mount points made in it (/etc by /etc/hosts) is no change to
    # show: docker keeps those in an init layer below the container's
    made_in = {os.path.dirname(c.path) for c in found if _hidden(c.path, hidden)}
    return tuple(
        c
        for c in shown
        if not (
            c.kind == "C"
            and c.path in made_in
            and not any(o.path.startswith(c.path.rstrip("/") + "/") for o in shown)
        )
    )
