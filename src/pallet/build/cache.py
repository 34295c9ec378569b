"""The build cache: which image a step made, keyed by everything that decides the step's result.

A step's key is a hash chain: the previous step's key (the first one: the
base image's id), the instruction as expanded, the build args in scope, and
for COPY/ADD the content hash of its inputs (names, bytes, modes, owners,
link targets — never mtimes). An entry maps a key to the image the step
made; it is a small file ``<root>/build/cache/<key>`` written atomically, so
a killed build leaves either no entry or a whole one. An entry whose image
is gone (pruned) is a miss. ``prune`` removes entries (and their images when
nothing else names or uses them).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass

from pallet.errors import Conflict, FailedPrecondition, NotFound
from pallet.linux.atomicfile import write_atomic

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from pallet.image.store import ImageStore

__all__ = ["BuildCache", "PruneResult", "step_key"]


def step_key(parent: str, instruction: str, args: Iterable[tuple[str, str]] = (), content: str = "") -> str:
    """The key of one step (hex sha256)."""
    doc = json.dumps([parent, instruction, sorted(args), content], separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PruneResult:
    entries: int
    images: tuple[str, ...]
    bytes: int


class BuildCache:
    """The cache entries under one pallet root."""

    def __init__(self, root: str) -> None:
        self.dir = os.path.join(root, "build", "cache")
        os.makedirs(self.dir, exist_ok=True)

    def get(self, images: ImageStore, key: str) -> str | None:
        """The image id cached for ``key``, if the entry and its image both exist; marks it used."""
        path = os.path.join(self.dir, key)
        try:
            with open(path, "rb") as f:
                entry = json.loads(f.read())
        except (OSError, ValueError):
            return None
        image = entry.get("image") if isinstance(entry, dict) else None
        if not isinstance(image, str):
            return None
        try:
            images.get(image)
        except NotFound:
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # last used: what --filter until looks at
        return image

    def put(self, key: str, image: str) -> None:
        data = json.dumps({"image": image, "created": time.time()}).encode()
        write_atomic(os.path.join(self.dir, key), data)

    def entries(self) -> list[tuple[str, str, float]]:
        """(key, image id, last used) of every entry."""
        out = []
        for name in os.listdir(self.dir):
            if name.startswith("."):
                continue  # a write in progress (write_atomic's temp file)
            path = os.path.join(self.dir, name)
            try:
                with open(path, "rb") as f:
                    entry = json.loads(f.read())
                used = os.stat(path).st_mtime
            except (OSError, ValueError):
                continue
            image = entry.get("image") if isinstance(entry, dict) else None
            if isinstance(image, str):
                out.append((name, image, used))
        return out

    def prune(self, images: ImageStore, *, all: bool, older_than: float | None) -> PruneResult:
        """Remove entries (all of them with ``all``, else those whose image no tag names) last used
        before ``older_than`` (a time; None: any), and their images where nothing else needs them."""
        removed = 0
        doomed: set[str] = set()
        for key, image, used in self.entries():
            if older_than is not None and used >= older_than:
                continue
            try:
                record = images.get(image)
            except NotFound:
                record = None
            if not all and record is not None and record.references:
                continue
            try:
                os.unlink(os.path.join(self.dir, key))
            except FileNotFoundError:
                continue
            removed += 1
            if record is not None and not record.references:
                doomed.add(image)
        kept = {image for _, image, _ in self.entries()}
        freed = 0
        deleted: list[str] = []
        for image in sorted(doomed - kept):
            try:
                size = images.get(image).size
                images.remove_image(image)
            except (NotFound, Conflict, FailedPrecondition):
                continue
            deleted.append(image)
            freed += size
        return PruneResult(entries=removed, images=tuple(deleted), bytes=freed)
