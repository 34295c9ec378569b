"""``push``: send an image of the store to a registry: blobs first (in parallel), the manifest last.

For each blob (layers, then the config) the cheapest way wins:

1. ``HEAD`` — the repository has it: nothing is sent (never twice).
2. Cross-repository mount — ``sources`` knows another repository of the same
   registry holding it: ``POST …/blobs/uploads/?mount=<digest>&from=<repo>``.
3. Upload — monolithic (``POST`` then one ``PUT`` with the bytes) up to
   ``MONOLITHIC_MAX``, chunked (``PATCH`` of ``CHUNK_SIZE`` pieces, then
   ``PUT``) above it. Bodies stream from the content store's file.

The manifest is sent byte for byte as stored, so its digest, and the digest a
puller sees, is the one ``pallet images --digests`` shows; the store records
``repo@digest`` as the image's repo digest, as dockerd does.

Progress is dockerd's: each layer is ``Preparing``, then moves (``advance``,
as its bytes are sent) and ends ``Pushed``, ``Layer already exists`` or
``Mounted from <repo>``; the config blob is sent without a line of its own.
"""

from __future__ import annotations

import io
import threading

from pallet.oci.digest import Digest
from pallet.oci.image_spec import Manifest, parse_manifest
from pallet.oci.record import Record
from pallet.registry.client.progress import Progress
from pallet.registry.client.repository import Registry, Repository

__all__ = ["CHUNK_SIZE", "MONOLITHIC_MAX", "PushResult", "push"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import BinaryIO

    from pallet.image.store import ImageStore
    from pallet.oci.image_spec import Descriptor
    from pallet.oci.reference import Reference
    from pallet.registry.client.credentials import Credentials
    from pallet.registry.client.sources import BlobSources
    from pallet.registry.client.transport import Transport

#: blobs up to this size go in one request
MONOLITHIC_MAX = 32 << 20
#: the piece size of a chunked upload
CHUNK_SIZE = 64 << 20
MAX_PARALLEL = 4


class PushResult(Record):
    digest: Digest
    size: int
    reference: Reference
    #: how each blob got there: "exists", "mounted", "uploaded"
    blobs: tuple[tuple[Digest, str], ...]


class _Sent:
    """How far into a blob an upload got; reports only bytes beyond that (a retry re-sends a body)."""

    def __init__(self, report: Callable[[int], None]) -> None:
        self._report = report
        self._lock = threading.Lock()
        self.reached = 0

    def at(self, position: int) -> None:
        with self._lock:
            moved = position - self.reached
            if moved <= 0:
                return
            self.reached = position
        self._report(moved)


class _Slice(io.RawIOBase):
    """``length`` bytes of a file from ``offset``: an upload body that can be reopened for a retry."""

    def __init__(self, path: Path, offset: int, length: int, sent: _Sent) -> None:
        super().__init__()
        self._f = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._f.seek(offset)
        self._position = offset
        self._left = length
        self._sent = sent

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if n is None or n < 0 else min(n, self._left)
        data = self._f.read(want)
        self._left -= len(data)
        self._position += len(data)
        self._sent.at(self._position)
        return data

    def close(self) -> None:
        self._f.close()
        super().close()


def _body(path: Path, offset: int, length: int, sent: _Sent) -> Callable[[], BinaryIO]:
    return lambda: _Slice(path, offset, length, sent)  # type: ignore[return-value]


def _upload(
    repository: Repository,
    path: Path,
    descriptor: Descriptor,
    sent: _Sent,
    *,
    chunk_size: int,
    monolithic_max: int,
) -> None:
    url = repository.start_upload()
    size = descriptor.size
    if size <= monolithic_max:
        repository.finish_upload(url, descriptor.digest, _body(path, 0, size, sent), size)
        return
    offset = 0
    while offset < size:
        length = min(chunk_size, size - offset)
        url = repository.upload_chunk(url, _body(path, offset, length, sent), offset, length)
        offset += length
    repository.finish_upload(url, descriptor.digest)


def push(
    store: ImageStore,
    image: str,
    target: Reference,
    *,
    transport: Transport,
    credentials: Credentials | None,
    progress: Progress,
    sources: BlobSources | None = None,
    chunk_size: int = CHUNK_SIZE,
    monolithic_max: int = MONOLITHIC_MAX,
    parallel: int = MAX_PARALLEL,
) -> PushResult:
    """Push the store's ``image`` (a name or id) to ``target`` (``registry/repo[:tag]``)."""
    from concurrent.futures import ThreadPoolExecutor

    record = store.resolve(image)
    manifest_bytes = store.content.read_bytes(record.manifest_digest)
    manifest = parse_manifest(manifest_bytes, record.manifest_media_type)
    assert isinstance(manifest, Manifest)
    registry = Registry(transport, target.domain, credentials)
    repository = Repository(registry, target.path, push=True)
    progress.message(f"The push refers to repository [{target.name}]")
    blobs = [*manifest.layers, manifest.config]
    for desc in blobs:
        if not store.content.has(desc.digest):
            from pallet.errors import FailedPrecondition

            raise FailedPrecondition(
                f"blob {desc.digest} of {image} is not in the content store (a foreign layer?); pull or load the image again"
            )

    def send(desc: Descriptor, shown: Progress) -> tuple[Digest, str]:
        key = desc.digest.hex[:12]
        shown.start(key, desc.size, "Preparing")
        if repository.blob_size(desc.digest) is not None:
            shown.status(key, "Layer already exists")
            return desc.digest, "exists"
        if sources is not None:
            for source in sources.other_repositories(desc.digest, target.domain, target.path)[:3]:
                if repository.mount(desc.digest, source):
                    shown.status(key, f"Mounted from {source}")
                    return desc.digest, "mounted"
        shown.phase(key, "Pushing")
        sent = _Sent(lambda n: shown.advance(key, n))
        _upload(
            repository,
            store.content.path(desc.digest),
            desc,
            sent,
            chunk_size=chunk_size,
            monolithic_max=monolithic_max,
        )
        shown.status(key, "Pushed")
        return desc.digest, "uploaded"

    # the config first, alone, so the auth challenge is learnt once, not per thread; as dockerd, it
    # has no progress line of its own (``Progress()`` reports nothing)
    outcomes = [send(blobs[-1], Progress())]
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(blobs)))) as pool:
        outcomes += list(pool.map(lambda desc: send(desc, progress), blobs[:-1]))
    tag = target.digest or target.tag or "latest"
    digest = repository.put_manifest(str(tag), manifest_bytes, record.manifest_media_type)
    if digest == record.manifest_digest:  # what the registry holds is the stored manifest, byte for byte
        store.add_repo_digest(str(record.id), target.replace(tag=None, digest=digest))
    progress.done()
    if sources is not None:
        sources.note([str(d.digest) for d in blobs], target.domain, target.path)
    progress.message(f"{target.tag or target.digest}: digest: {digest} size: {len(manifest_bytes)}")
    progress.result(str(target.canonical()), quiet_only=True)
    return PushResult(digest=digest, size=len(manifest_bytes), reference=target, blobs=tuple(outcomes))
