"""``pull``: resolve a reference on its registry, fetch the image, unpack it, register it.

The pipeline, per layer, in parallel threads:

1. Resolve the tag to a manifest; an index / manifest list is narrowed to one
   platform's manifest (``platforms.choose``). The config comes next (small;
   its ``diff_ids`` give each layer's chain id, i.e. its snapshot key).
2. Each layer is downloaded (``downloads``: resumable, verified before it
   enters the store) *and unpacked while it downloads* when the snapshot
   driver allows it: overlay snapshots hold one layer each, so any layer can
   be extracted on its own; the copy driver needs the parent's tree first, so
   there a layer streams only if its parent is already committed, else it is
   unpacked from the store once the parent is in. Snapshots are committed in
   order (a layer's parent first) and only after the blob's digest and the
   layer's diff id were both checked. Either way a layer goes through the
   image layer's one unpack path, ``pallet.image.unpack.unpack_layer`` (given
   the download stream, or the stored blob), which also records the layer's
   uncompressed size, as ``load`` does.
3. ``ImageStore.add_image`` records image and tag; ``ImageStore.unpack`` then
   finds every snapshot in place.

Layers already in the store are not fetched again; snapshots that exist are
reused. An image whose config is in the store already, with every layer
blob, is not looked at layer by layer at all: as dockerd, the pull then
reports no layer lines (``ImageStore.unpack`` unpacks what is not yet). The whole pull holds the store's lease, so
a concurrent gc cannot take blobs between their download and ``add_image``.
The image gets the reference's tag and, as docker's RepoDigests,
``repo@digest`` of what the reference resolved to.
"""

from __future__ import annotations

import threading

from pallet.errors import NotFound, PalletError, SpecError, Unsupported
from pallet.image import snapshots as _snapshots
from pallet.oci.digest import Digest
from pallet.oci.image_spec import ImageConfig, Index, Manifest, chain_ids, loads, parse_manifest
from pallet.oci.record import Record
from pallet.registry.client import downloads, platforms
from pallet.registry.client.errors import DigestMismatch
from pallet.registry.client.repository import Registry, Repository

__all__ = ["PullResult", "all_tags", "pull"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pallet.image.extract import LayerStats
    from pallet.image.store import ImageRecord, ImageStore
    from pallet.image.tarstream import Readable
    from pallet.oci.image_spec import Descriptor, Platform
    from pallet.oci.reference import Reference
    from pallet.registry.client.credentials import Credentials
    from pallet.registry.client.progress import Progress
    from pallet.registry.client.sources import BlobSources
    from pallet.registry.client.transport import Transport

#: parallel layer transfers (docker and containers/image use 3; loopback likes a little more)
MAX_PARALLEL = 4
#: the largest image config pallet reads
_CONFIG_MAX = 8 << 20


class PullResult(Record):
    image: ImageRecord
    #: the digest the reference resolved to (the index's, for a multi-platform image)
    digest: Digest
    reference: Reference
    #: False if the store already had this image under this name
    fresh: bool


class _Cancelled(Exception):
    """Another layer failed: stop this one quietly (its error is the one reported)."""


def _fetch_config(repository: Repository, descriptor: Descriptor) -> bytes:
    if descriptor.size > _CONFIG_MAX:
        raise SpecError("config.size", f"{descriptor.size} bytes is too large for an image config")
    response, _ = repository.open_blob(descriptor.digest)
    try:
        data = response.read(descriptor.size + 1, decode_content=False)
    finally:
        response.release_conn()
    found = Digest.of_bytes(data, descriptor.digest.algorithm)
    if found != descriptor.digest or len(data) != descriptor.size:
        raise DigestMismatch(
            f"digest mismatch: image config {descriptor.digest} arrived as {found} ({len(data)} bytes); nothing was stored"
        )
    return data


def _short(digest: Digest) -> str:
    return digest.hex[:12]


class _LayerJob:
    """Fetch and unpack the layers of one manifest; ``run(i)`` is one layer, on a worker thread."""

    def __init__(
        self,
        store: ImageStore,
        repository: Repository,
        layers: tuple[Descriptor, ...],
        diff_ids: tuple[Digest, ...],
        progress: Progress,
    ) -> None:
        self.store = store
        self.repository = repository
        self.layers = layers
        self.diff_ids = diff_ids
        self.chains = chain_ids(diff_ids)
        self.progress = progress
        self.committed = [threading.Event() for _ in layers]
        self.failed = threading.Event()
        #: any layer can be unpacked before its parent is committed (overlay: a layer holds its own files only)
        self.independent = store.snapshots.rebases
        self.downloaded = 0
        self._local = threading.local()

    @property
    def snaps(self) -> _snapshots.DirectorySnapshotter:
        """This worker thread's snapshotter."""
        snaps: _snapshots.DirectorySnapshotter = self._local.snaps
        return snaps

    @snaps.setter
    def snaps(self, value: _snapshots.DirectorySnapshotter) -> None:
        self._local.snaps = value

    def cancel(self) -> None:
        """Stop every worker at its next chunk or wait (a layer failed, or the user pressed Ctrl-C)."""
        self.failed.set()
        for event in self.committed:
            event.set()

    def _advance(self, key: str) -> Callable[[int], None]:
        def advance(n: int) -> None:
            if self.failed.is_set():
                raise _Cancelled  # partial downloads stay, for the next pull to resume
            self.progress.advance(key, n)

        return advance

    def _wait_parent(self, i: int) -> None:
        if i:
            self.committed[i - 1].wait()  # also set when any layer fails, so no waiter is left behind
        if self.failed.is_set():
            raise _Cancelled

    def run(self, i: int) -> None:
        # SQLite connections belong to one thread: each worker opens its own (Database's contract)
        from pallet.database import Database

        db = Database(self.store.db.path)
        try:
            self.snaps = _snapshots.open_snapshotter(self.store.root, db, self.store.snapshots.driver)
            self._run(i)
        except BaseException:
            self.cancel()
            raise
        finally:
            db.close()

    def _run(self, i: int) -> None:
        desc = self.layers[i]
        key = _short(desc.digest)
        need_unpack = self.snaps.stat(self.chains[i]) is None
        if self.store.content.has(desc.digest):
            if need_unpack:
                self._unpack_stored(i, key)
            self.progress.status(key, "Already exists")
            self.committed[i].set()
            return
        self.progress.start(key, desc.size, "Pulling fs layer")
        partial = downloads.PartialBlob(self.store.content, desc)
        try:
            if not partial.acquire():  # another pull stored it meanwhile
                partial.close()
                if need_unpack:
                    self._unpack_stored(i, key)
                self.committed[i].set()
                self.progress.status(key, "Pull complete")
                return
            if partial.resumed:
                self.progress.advance(key, partial.resumed)
            self.downloaded += 1
            self.progress.phase(key, "Downloading")
            if need_unpack and (self.independent or i == 0 or self.committed[i - 1].is_set()):
                self._stream(i, key, partial)
            else:
                self._download(key, partial)
                partial.close()  # unlock before waiting for the parent (see _stream)
                if need_unpack:
                    self._unpack_stored(i, key)
        finally:
            partial.close()
        self.committed[i].set()
        self.progress.status(key, "Pull complete")

    def _download(self, key: str, partial: downloads.PartialBlob) -> None:
        downloads.complete(self.repository, partial, self._advance(key))  # verified as it is stored
        self.progress.status(key, "Verifying Checksum")
        self.progress.status(key, "Download complete")

    def _unpack(self, i: int, stream: Readable, **hooks: Callable[..., None]) -> None:
        """Unpack layer ``i`` from ``stream`` through the image layer's one unpack path; see ``pallet.image.unpack``."""
        from pallet.image.unpack import LayerMismatch, unpack_layer

        desc = self.layers[i]
        try:
            unpack_layer(
                self.snaps,
                self.snaps.db,
                stream,
                blob=desc,
                diff_id=self.diff_ids[i],
                chain_id=self.chains[i],
                parent=self.chains[i - 1] if i else None,
                remedy="the image on the registry is corrupt",
                **hooks,
            )
        except LayerMismatch as e:
            raise DigestMismatch(str(e)) from None

    def _stream(self, i: int, key: str, partial: downloads.PartialBlob) -> None:
        """Download and extract at once: the extractor reads the blob as it arrives."""
        desc = self.layers[i]
        # the extractor hashes the whole blob (sha256) as it reads it: hashing it twice costs a core-second per GB
        partial.hashing = desc.digest.algorithm != "sha256"
        reader = downloads.BlobReader(self.repository, partial, self._advance(key))
        extracted = False

        def store_blob(stats: LayerStats) -> None:
            nonlocal extracted
            extracted = True
            unread = False
            while reader.read(downloads.CHUNK):  # never after finish(), which reads to the end
                unread = True
            digest = None if unread or partial.hashing else Digest.parse(stats.digest)
            self.progress.status(key, "Verifying Checksum")
            partial.commit(digest)  # verified: a mismatch is DigestMismatch, and nothing is stored
            # unlock before waiting for the parent: a worker for the same blob may be that parent
            partial.close()
            self.progress.status(key, "Download complete")  # and extracted: both happened at once

        try:
            self._unpack(i, reader, after_extract=store_blob, before_commit=lambda: self._wait_parent(i))
        except (PalletError, OSError) as unpack_error:
            if extracted:
                raise
            # a truncated or corrupt blob also breaks the tar: say "digest mismatch" when that is why
            reader.close()
            partial.rehash()
            try:
                downloads.complete(self.repository, partial)
            except DigestMismatch:
                raise
            except PalletError:
                pass
            raise unpack_error from None
        finally:
            reader.close()

    def _unpack_stored(self, i: int, key: str) -> None:
        """Unpack layer ``i`` from the store; with overlay while its parent is still unpacking."""
        desc = self.layers[i]
        if not self.independent:
            self._wait_parent(i)  # the copy driver starts from a copy of the parent's tree
        self.progress.phase(key, "Extracting")
        # blobs of another algorithm than sha256 are verified as read, by the content store
        with self.store.content.open(desc.digest, verify=desc.digest.algorithm != "sha256") as blob:
            self._unpack(i, blob, before_commit=lambda: self._wait_parent(i))


def _have_image(store: ImageStore, manifest: Manifest) -> bool:
    """The store has this manifest's image (its config) and every layer blob: nothing to fetch.

    Layers not unpacked yet are unpacked by ``store.unpack`` after ``add_image``, without a line.
    """
    try:
        store.get(str(manifest.config.digest))
    except NotFound:
        return False
    return all(store.content.has(layer.digest) for layer in manifest.layers)


def _resolve(
    repository: Repository, reference: Reference, platform: Platform | None
) -> tuple[bytes, str, Manifest, bytes | None, Digest]:
    """(manifest bytes, its media type, parsed, the index bytes if there was one, the digest the ref names)."""
    what = f"manifest for {reference.familiar_string()}"
    data, media_type, digest = repository.get_manifest(
        reference.digest or reference.tag or "latest", what=what
    )
    parsed = parse_manifest(data, media_type or None)
    index_bytes = None
    if isinstance(parsed, Index):
        chosen = platforms.choose(
            parsed, platform or platforms.host_platform(), what=reference.familiar_string()
        )
        index_bytes = data
        data, media_type, _ = repository.get_manifest(
            chosen.digest, what=f"manifest {chosen.digest} of {reference.familiar_name()}"
        )
        parsed = parse_manifest(data, media_type or chosen.media_type)
        if isinstance(parsed, Index):
            raise Unsupported(f"{reference.familiar_string()}: an index inside an index is not supported")
    assert isinstance(parsed, Manifest)
    return data, media_type or parsed.media_type or "", parsed, index_bytes, digest


def pull(
    store: ImageStore,
    reference: Reference,
    *,
    transport: Transport,
    credentials: Credentials | None,
    progress: Progress,
    platform: Platform | None = None,
    sources: BlobSources | None = None,
    parallel: int = MAX_PARALLEL,
) -> PullResult:
    """Pull ``reference`` into ``store`` and unpack it; see the module docstring."""
    from concurrent.futures import ThreadPoolExecutor

    registry = Registry(transport, reference.domain, credentials)
    repository = Repository(registry, reference.path)
    name = reference.canonical()
    try:
        before: str | None = store.resolve(str(name)).id
    except NotFound:
        before = None
    progress.message(
        f"{reference.tag or reference.digest}: Pulling from {reference.path}"
    )  # docker: the remote name
    manifest_bytes, media_type, manifest, index_bytes, digest = _resolve(repository, reference, platform)
    config = _fetch_config(repository, manifest.config)
    image_config = ImageConfig.from_json(loads(config, "image config"))
    diff_ids = image_config.rootfs.diff_ids
    if len(diff_ids) != len(manifest.layers):
        raise SpecError(
            "rootfs.diff_ids",
            f"the config lists {len(diff_ids)} layers but the manifest has {len(manifest.layers)}",
        )
    job = _LayerJob(store, repository, manifest.layers, diff_ids, progress)
    with store.lease():
        if manifest.layers and not _have_image(store, manifest):
            with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(manifest.layers)))) as pool:
                futures = [pool.submit(job.run, i) for i in range(len(manifest.layers))]
                errors: list[BaseException] = []
                try:
                    for future in futures:
                        error = future.exception()
                        if error is not None and not isinstance(error, _Cancelled):
                            errors.append(error)
                except BaseException:  # Ctrl-C: the workers stop at their next chunk, the pool is joined
                    job.cancel()
                    raise
            if errors:
                raise errors[0]
        image = store.add_image(
            manifest_bytes, config, manifest_media_type=media_type or None, index=index_bytes, ref=name
        )
        if name.digest is None and digest in (image.manifest_digest, image.index_digest):
            # docker's RepoDigests: what the tag resolved to (pulled by digest, the name is that already)
            store.add_repo_digest(str(image.id), name.replace(tag=None, digest=digest))
            image = store.get(str(image.id))
        store.unpack(image.id)  # finds every snapshot in place: links them
    if sources is not None:
        blobs = [str(d.digest) for d in manifest.layers] + [str(manifest.config.digest)]
        sources.note(blobs, reference.domain, reference.path)
    fresh = before != image.id or job.downloaded > 0
    progress.done()
    progress.message(f"Digest: {digest}")
    if fresh:
        progress.message(f"Status: Downloaded newer image for {name.familiar_string()}")
    else:
        progress.message(f"Status: Image is up to date for {name.familiar_string()}")
    progress.result(str(name))
    return PullResult(image=image, digest=digest, reference=name, fresh=fresh)


def all_tags(transport: Transport, reference: Reference, credentials: Credentials | None) -> list[str]:
    """The tags of ``reference``'s repository (``pull --all-tags``), sorted; ``ManifestUnknown`` if it has none."""
    from pallet.registry.client.errors import ManifestUnknown

    repository = Repository(Registry(transport, reference.domain, credentials), reference.path)
    tags = sorted(set(repository.tags()))
    if not tags:
        raise ManifestUnknown(f"repository {reference.familiar_name()} has no tags to pull")
    return tags
