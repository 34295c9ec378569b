"""``builder prune``: the build cache's entries, their images, cache mounts and abandoned leftovers.

Without ``all``: entries whose image no tag names (docker's "dangling"
cache); with ``all``: every entry, and the ``RUN --mount=type=cache``
directories. ``older_than`` (``--filter until=``) keeps entries used since.
Step containers and stdin contexts of killed builds go as well.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

__all__ = ["PruneReport", "prune_cache"]


@dataclass(frozen=True, slots=True)
class PruneReport:
    entries: int
    images: tuple[str, ...]
    bytes: int


def _tree_size(path: str) -> int:
    total = 0
    for top, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(top, name)).st_size
            except OSError:
                continue
    return total


def prune_cache(root: str, run_root: str, *, all: bool, older_than: float | None) -> PruneReport:
    from pallet.build.cache import BuildCache
    from pallet.build.context import remove_abandoned_contexts
    from pallet.build.mounts import cache_mounts_dir
    from pallet.engine.service import sweep_owned

    sweep_owned(root, run_root)  # step containers of killed builds
    remove_abandoned_contexts(root)
    from pallet.image.store import ImageStore

    with ImageStore.open(root) as images:
        result = BuildCache(root).prune(images, all=all, older_than=older_than)
    freed = result.bytes
    mounts = cache_mounts_dir(root)
    if all and os.path.isdir(mounts) and older_than is None:
        for name in os.listdir(mounts):
            path = os.path.join(mounts, name)
            freed += _tree_size(path)
            shutil.rmtree(path, ignore_errors=True)
    from pallet.engine.events import prune_event

    prune_event(root, "builder", freed)  # dockerd's builder prune event, from the CLI and the API alike
    return PruneReport(entries=result.entries, images=result.images, bytes=freed)
