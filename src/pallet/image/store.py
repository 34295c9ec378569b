"""The image store: the one facade the CLI, the engine and the registry client use for images.

It ties together the content store (blobs), the metadata database (images,
references, layers, users) and the snapshotter (unpacked layers). Images are
identified by their config digest (docker's image id). Contracts:

- Multi-step changes that touch files and rows hold the store's file lock
  (``<root>/images.lock``) and run in one SQLite transaction, so concurrent
  pallet processes serialise (two ``load``s at once both succeed).
- Blobs are deleted only by ``gc``/``remove_image``/``prune``, only when no
  image references them, and never while a *lease* is held: wrap "ingest
  blobs, then ``add_image``" in ``with store.lease():`` so a concurrent gc
  cannot take the freshly ingested, not yet referenced blobs.
- An image a container uses (``set_in_use``) is not removed without ``force``;
  with ``force`` it is only untagged, as docker does.
"""

from __future__ import annotations

import os
import time

from pallet.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound, SpecError, Unsupported
from pallet.image import snapshots as _snapshots
from pallet.image.content import ContentStore
from pallet.image.metadata import SCHEMA, FileLock, open_database, setting
from pallet.image.paths import normalise
from pallet.image.unpack import remove_abandoned
from pallet.oci import mediatypes
from pallet.oci.digest import Digest
from pallet.oci.image_spec import (
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    chain_ids,
    loads,
    parse_manifest,
)
from pallet.oci.record import Record
from pallet.oci.reference import Reference, parse

__all__ = [
    "GcReport",
    "HistoryEntry",
    "ImageRecord",
    "ImageStore",
    "LayerRecord",
    "RemoveReport",
]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Mapping, Sequence
    from contextlib import AbstractContextManager
    from pathlib import Path
    from typing import Self

    from pallet.database import Database


_DRIVER_SETTING = "snapshot_driver"


# --- records ----------------------------------------------------------------------------------


class ImageRecord(Record):
    """An image as the store knows it (what ``pallet images`` lists)."""

    id: Digest  # the config digest
    manifest_digest: Digest
    manifest_media_type: str
    config_media_type: str
    index_digest: Digest | None = None
    created: str | None = None
    added: float
    #: bytes of the layer blobs (compressed as stored)
    size: int
    platform: Platform
    #: the canonical references that name it, sorted: tags (repo:tag) and repo digests (repo@digest,
    #: the manifest or index a push or pull gave it on a registry: docker's RepoDigests)
    references: tuple[Reference, ...] = ()
    #: the image a build step made this one on (docker's Parent), if any
    parent: Digest | None = None

    @property
    def short_id(self) -> str:
        return self.id.short

    @property
    def tags(self) -> tuple[Reference, ...]:
        """The references that are tags (docker's RepoTags)."""
        return tuple(r for r in self.references if r.digest is None)

    @property
    def repo_digests(self) -> tuple[Reference, ...]:
        """The ``repo@digest`` references (docker's RepoDigests)."""
        return tuple(r for r in self.references if r.digest is not None)

    @property
    def dangling(self) -> bool:
        """No tag names it (repo digests alone leave an image dangling, as docker's prune sees it)."""
        return not self.tags


class LayerRecord(Record):
    """One layer of an image, bottom first."""

    chain_id: Digest
    diff_id: Digest
    parent: Digest | None
    blob: Descriptor
    #: uncompressed tar size, known once unpacked
    uncompressed_size: int | None = None
    #: the committed snapshot holding it, once unpacked
    snapshot_key: str | None = None


class HistoryEntry(Record):
    """One line of ``pallet history``, newest first; ``image_id`` only on the top line, as docker shows it."""

    image_id: Digest | None
    created: str | None
    created_by: str | None
    author: str | None
    comment: str | None
    empty_layer: bool
    size: int


class RemoveReport(Record):
    """What a removal did, in docker's terms: references untagged, images deleted, and for a deleted
    image the layers (chain ids, top first) that went with it because no other image has them."""

    untagged: tuple[Reference, ...] = ()
    deleted: tuple[Digest, ...] = ()
    layers: tuple[tuple[Digest, tuple[Digest, ...]], ...] = ()

    def layers_of(self, image: Digest) -> tuple[Digest, ...]:
        return next((chains for owner, chains in self.layers if owner == image), ())


class GcReport(Record):
    blobs: int = 0
    bytes: int = 0
    snapshots: int = 0


# --- the store --------------------------------------------------------------------------------


class ImageStore:
    """Images under one pallet root. Open with ``ImageStore.open(root)``; use as a context manager."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        content: ContentStore,
        db: Database,
        snapshots: _snapshots.DirectorySnapshotter,
        *,
        owns_db: bool = True,
    ) -> None:
        self._root = normalise(root)
        self.content = content
        self.db = db
        self._owns_db = owns_db
        self.snapshots = snapshots
        self._lock = FileLock(os.path.join(self._root, "images.lock"))
        self._gc_lock_path = os.path.join(self._root, "gc.lock")

    @property
    def root(self) -> Path:
        """The store's directory as a ``Path`` (pathlib is imported on first use; the store keeps a ``str``)."""
        from pathlib import Path

        return Path(self._root)

    @classmethod
    def open(
        cls,
        root: str | os.PathLike[str],
        *,
        snapshot_driver: str | None = None,
        db: Database | None = None,
    ) -> Self:
        """Open (creating if needed) the store under ``root`` and clean what crashed writers left.

        ``snapshot_driver`` (``overlay`` or ``copy``) is fixed when the store is
        first created, detected if not given; opening with another driver later
        is refused. ``db``: the root's database already open (the engine's),
        shared rather than opened again, and left open by ``close``; its
        transactions then cover this store's writes too.
        """
        root = normalise(root)
        os.makedirs(root, exist_ok=True)
        content = ContentStore(root)
        owns_db = db is None
        if db is None:
            db = open_database(root)
        else:
            db.ensure(SCHEMA)
        try:
            lock = FileLock(os.path.join(root, "images.lock"))
            with lock.held():
                recorded = setting(db, _DRIVER_SETTING)
                if recorded is None:
                    driver = snapshot_driver or _snapshots.detect_driver(root)
                    if driver not in _snapshots.DRIVERS:
                        raise InvalidArgument(f'unknown snapshot driver "{driver}"; use overlay or copy')
                    with db.transaction() as conn:
                        conn.execute(
                            "INSERT OR IGNORE INTO settings(name, value) VALUES (?, ?)",
                            (_DRIVER_SETTING, driver),
                        )
                    recorded = setting(db, _DRIVER_SETTING) or driver
                elif snapshot_driver is not None and snapshot_driver != recorded:
                    raise FailedPrecondition(
                        f'the store at {root} uses the "{recorded}" snapshot driver, not "{snapshot_driver}"; '
                        "use another --root to change drivers"
                    )
                snaps = _snapshots.open_snapshotter(root, db, recorded)
                content.cleanup_leftovers()
                snaps.cleanup_leftovers()
                remove_abandoned(snaps)
        except BaseException:
            if owns_db:
                db.close()
            raise
        return cls(root, content, db, snaps, owns_db=owns_db)

    def close(self) -> None:
        if self._owns_db:
            self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lease(self) -> AbstractContextManager[None]:
        """Keep gc from deleting unreferenced blobs while held (shared; many leases may coexist).

        Use as ``with store.lease():``, from the first ``content.ingest`` of an
        image until ``add_image`` returns.
        """
        return FileLock(self._gc_lock_path).held(shared=True)

    # --- adding and naming ----------------------------------------------------------------------

    def add_image(
        self,
        manifest: bytes,
        config: bytes,
        *,
        manifest_media_type: str | None = None,
        index: bytes | None = None,
        ref: str | Reference | None = None,
    ) -> ImageRecord:
        """Record an image whose layer blobs are already in ``content``; stores manifest, config (and index).

        ``manifest`` is one image manifest (OCI or Docker schema2); when it was
        chosen from an index / manifest list, pass that as ``index``. The config
        must match the manifest's config descriptor, every layer blob must be
        present with the descriptor's size, and the config must list one diff id
        per layer. ``ref`` (a tag, or ``repo@digest`` of the manifest or index)
        is pointed at the image, moving it off any other image. Idempotent.
        """
        # a lease of our own: the blobs checked below cannot be collected before the rows reference them
        with self.lease():
            config_digest = self._add_image(manifest, config, manifest_media_type, index, ref)
        return self.get(config_digest)

    def _add_image(
        self,
        manifest: bytes,
        config: bytes,
        manifest_media_type: str | None,
        index: bytes | None,
        ref: str | Reference | None,
    ) -> Digest:
        parsed = parse_manifest(manifest, manifest_media_type)
        if isinstance(parsed, Index):
            raise InvalidArgument(
                "add_image takes one image manifest; choose a platform's manifest from the index and pass the index as index="
            )
        manifest_digest = Digest.of_bytes(manifest)
        config_digest = Digest.of_bytes(config)
        if config_digest != parsed.config.digest or len(config) != parsed.config.size:
            raise InvalidArgument(
                f"config does not match the manifest: manifest names {parsed.config.digest} "
                f"({parsed.config.size} bytes), the config given is {config_digest} ({len(config)} bytes)"
            )
        if not mediatypes.is_config(parsed.config.media_type):
            raise Unsupported(
                f'"{parsed.config.media_type}" is not an image config; pallet stores container images only'
            )
        image_config = ImageConfig.from_json(loads(config, "image config"))
        diff_ids = image_config.rootfs.diff_ids
        if len(diff_ids) != len(parsed.layers):
            raise SpecError(
                "rootfs.diff_ids",
                f"the config lists {len(diff_ids)} layers but the manifest has {len(parsed.layers)}",
            )
        for i, layer in enumerate(parsed.layers):
            if not mediatypes.is_layer(layer.media_type):
                raise Unsupported(f'layers[{i}]: unsupported layer media type "{layer.media_type}"')
            if not self.content.has(layer.digest):
                raise FailedPrecondition(
                    f"layer blob {layer.digest} is not in the content store; ingest the layers before add_image"
                )
            if self.content.size(layer.digest) != layer.size:
                raise InvalidArgument(
                    f"layer blob {layer.digest} has {self.content.size(layer.digest)} bytes; the manifest says {layer.size}"
                )
        manifest_type = manifest_media_type or parsed.media_type or mediatypes.OCI_MANIFEST
        index_digest = None
        if index is not None:
            if not isinstance(parse_manifest(index), Index):
                raise InvalidArgument("index= must be an image index or manifest list")
            index_digest = self.content.put_bytes(index, _index_type(index)).digest
        self.content.put_bytes(manifest, manifest_type)
        self.content.put_bytes(config, parsed.config.media_type)
        target = self._parse_ref(ref) if ref is not None else None
        if (
            target is not None
            and target.digest is not None
            and target.digest not in (manifest_digest, index_digest)
        ):
            raise InvalidArgument(f"{target} does not name this image: its manifest is {manifest_digest}")

        chains = chain_ids(diff_ids)
        platform = image_config.platform
        with self._lock.held(), self.db.transaction() as conn:
            conn.execute(
                """INSERT INTO images(id, manifest_digest, manifest_media_type, config_media_type, index_digest,
                                      created, added, size, os, architecture, variant)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(id) DO UPDATE SET manifest_digest = excluded.manifest_digest,
                       manifest_media_type = excluded.manifest_media_type,
                       index_digest = coalesce(excluded.index_digest, images.index_digest),
                       size = excluded.size""",
                (
                    config_digest,
                    manifest_digest,
                    manifest_type,
                    parsed.config.media_type,
                    index_digest,
                    image_config.created,
                    time.time(),
                    sum(layer.size for layer in parsed.layers),
                    platform.os,
                    platform.architecture,
                    platform.variant,
                ),
            )
            conn.execute("DELETE FROM image_layers WHERE image_id = ?", (config_digest,))
            for position, (layer, diff_id, chain) in enumerate(
                zip(parsed.layers, diff_ids, chains, strict=True)
            ):
                conn.execute(
                    "INSERT OR IGNORE INTO layers(chain_id, diff_id, parent) VALUES (?, ?, ?)",
                    (chain, diff_id, chains[position - 1] if position else None),
                )
                conn.execute(
                    """INSERT INTO image_layers(image_id, position, chain_id, blob_digest, media_type, compressed_size)
                       VALUES (?, ?, ?, ?, ?, ?)""",
                    (config_digest, position, chain, layer.digest, layer.media_type, layer.size),
                )
            if target is not None:
                self._set_ref(conn, target, config_digest)
        return config_digest

    def tag(self, image: str, ref: str | Reference) -> Reference:
        """Point tag ``ref`` at ``image`` (anything ``resolve`` accepts); moves it off another image."""
        record = self.resolve(image)
        target = self._parse_ref(ref)
        if target.digest is not None:
            raise InvalidArgument(
                f"refusing to create a tag with a digest reference: {target.familiar_string()}"
            )
        with self._lock.held(), self.db.transaction() as conn:
            self._set_ref(conn, target, record.id)
        return target

    def add_repo_digest(self, image: str, ref: Reference) -> Reference:
        """Record that registry repository ``ref`` (``repo@digest``) holds ``image`` (docker's RepoDigests).

        A push records the digest of the manifest it sent, a pull the one its
        reference resolved to (an index's for a multi-platform image), as
        dockerd does. ``InvalidArgument`` if the digest is neither the image's
        manifest nor its index. The reference names the image from then on
        (``rmi repo@digest``), and goes with the repository's last tag.
        """
        record = self.resolve(image)
        target = self._parse_ref(ref)
        if target.digest is None:
            raise InvalidArgument(f"{target.familiar_string()} is not a repo digest (repo@sha256:...)")
        if target.digest not in (record.manifest_digest, record.index_digest):
            raise InvalidArgument(
                f"{target.familiar_string()} does not name image {record.short_id}: "
                f"its manifest is {record.manifest_digest}"
            )
        with self._lock.held(), self.db.transaction() as conn:
            self._set_ref(conn, target, record.id)
        return target

    def untag(self, ref: str | Reference) -> Reference:
        """Remove the name ``ref``; the image stays (maybe dangling). ``NotFound`` if no such name."""
        target = self._parse_ref(ref)
        with self._lock.held(), self.db.transaction() as conn:
            gone = conn.execute("DELETE FROM refs WHERE name = ?", (str(target),)).rowcount
        if not gone:
            raise NotFound(f'no such image reference "{target.familiar_string()}"')
        return target

    # --- looking up -----------------------------------------------------------------------------

    def resolve(self, name: str) -> ImageRecord:
        """Find an image by full or short id (``sha256:`` optional), ``repo:tag`` or ``repo@digest``.

        Names are tried first, then id prefixes, as docker does.
        ``NotFound`` says ``image "busybx" not found locally; pull it or check the name``;
        an ambiguous short id is ``InvalidArgument``.
        """
        return self._resolve(name)[0]

    def get(self, image_id: str) -> ImageRecord:
        """The image with this exact id (config digest)."""
        rows = self.db.query("SELECT * FROM images WHERE id = ?", (image_id,))
        if not rows:
            raise NotFound(f'image "{image_id}" not found locally; pull it or check the name')
        return self._record(rows[0])

    def set_parent(self, image: str, parent: str) -> None:
        """Record that a build step made ``image`` on ``parent`` (kept if one is recorded already)."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE images SET parent = ? WHERE id = ? AND parent IS NULL AND id != ?",
                (parent, image, parent),
            )

    def intermediate_ids(self) -> set[str]:
        """Untagged images that are another image's parent (docker's intermediate images)."""
        return {
            str(r[0])
            for r in self.db.query(
                """SELECT i.id FROM images i
                   WHERE EXISTS (SELECT 1 FROM images c WHERE c.parent = i.id)
                     AND NOT EXISTS (SELECT 1 FROM refs r WHERE r.image_id = i.id)"""
            )
        }

    def list_images(self) -> list[ImageRecord]:
        """Every image, newest added first (dangling ones included: filter on ``.dangling``)."""
        return [self._record(r) for r in self.db.query("SELECT * FROM images ORDER BY added DESC, id")]

    def manifest(self, image: str) -> Manifest:
        record = self.resolve(image)
        parsed = parse_manifest(self.content.read_bytes(record.manifest_digest), record.manifest_media_type)
        assert isinstance(parsed, Manifest)
        return parsed

    def config(self, image: str) -> ImageConfig:
        record = self.resolve(image)
        return ImageConfig.from_json(loads(self.content.read_bytes(record.id), "image config"))

    def layers(self, image: str) -> list[LayerRecord]:
        """The image's layers, bottom first, with chain ids."""
        record = self.resolve(image)
        rows = self.db.query(
            """SELECT il.chain_id, l.diff_id, l.parent, il.blob_digest, il.media_type, il.compressed_size,
                      l.uncompressed_size, l.snapshot_key
               FROM image_layers il JOIN layers l ON l.chain_id = il.chain_id
               WHERE il.image_id = ? ORDER BY il.position""",
            (record.id,),
        )
        return [
            LayerRecord(
                chain_id=Digest(r["chain_id"]),
                diff_id=Digest(r["diff_id"]),
                parent=Digest(r["parent"]) if r["parent"] else None,
                blob=Descriptor(
                    media_type=r["media_type"], digest=Digest(r["blob_digest"]), size=r["compressed_size"]
                ),
                uncompressed_size=r["uncompressed_size"],
                snapshot_key=r["snapshot_key"],
            )
            for r in rows
        ]

    def layer_usage(self, chain_id: str) -> int:
        """How many images use the layer (its reference count; computed, so it cannot drift)."""
        rows = self.db.query("SELECT images FROM layer_usage WHERE chain_id = ?", (chain_id,))
        return int(rows[0][0]) if rows else 0

    def history(self, image: str) -> list[HistoryEntry]:
        """The image's build history, newest first, with each layer's size (uncompressed once unpacked)."""
        record = self.resolve(image)
        config = self.config(record.id)
        layers = self.layers(record.id)
        entries = list(config.history)
        out: list[HistoryEntry] = []
        position = 0
        for h in entries:
            size = 0
            if not h.empty_layer and position < len(layers):
                layer = layers[position]
                size = layer.uncompressed_size if layer.uncompressed_size is not None else layer.blob.size
                position += 1
            out.append(
                HistoryEntry(
                    image_id=None,
                    created=h.created,
                    created_by=h.created_by,
                    author=h.author,
                    comment=h.comment,
                    empty_layer=bool(h.empty_layer),
                    size=size,
                )
            )
        for layer in layers[position:]:  # layers the history does not describe
            size = layer.uncompressed_size if layer.uncompressed_size is not None else layer.blob.size
            out.append(
                HistoryEntry(
                    image_id=None,
                    created=None,
                    created_by=None,
                    author=None,
                    comment=None,
                    empty_layer=False,
                    size=size,
                )
            )
        out.reverse()
        if out:
            out[0] = out[0].replace(image_id=record.id)
        return out

    # --- users (containers) ---------------------------------------------------------------------

    def set_in_use(self, image_id: str, holder: str) -> None:
        """Record that ``holder`` (a container id) uses the image; idempotent."""
        record = self.get(image_id)
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO image_users(image_id, holder) VALUES (?, ?)", (record.id, holder)
            )

    def release(self, image_id: str, holder: str) -> None:
        """``holder`` no longer uses the image; idempotent."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM image_users WHERE image_id = ? AND holder = ?", (image_id, holder))

    def users(self, image_id: str) -> list[str]:
        return [
            r[0]
            for r in self.db.query(
                "SELECT holder FROM image_users WHERE image_id = ? ORDER BY holder", (image_id,)
            )
        ]

    # --- removing -------------------------------------------------------------------------------

    def remove_image(self, name: str, *, force: bool = False) -> RemoveReport:
        """``pallet rmi``: untag, and delete the image once nothing names or uses it (docker's rules).

        By name: untags that name (a repository's last tag takes the
        repository's repo digests with it); the image goes with its last name unless a
        container uses it (``Conflict`` without ``force``; with ``force`` it is
        untagged and kept). By id: ``Conflict`` if it is used, or named in
        several repositories, unless ``force``.
        """
        record, by_ref = self._resolve(name)
        users = self.users(record.id)
        refs = record.references
        if self.db.query("SELECT 1 FROM images WHERE parent = ? LIMIT 1", (str(record.id),)):
            # docker: an image others were made on (a build's steps, a commit) loses its name only
            if by_ref is None or by_ref not in refs:
                raise Conflict(
                    f"conflict: unable to delete {record.short_id} (cannot be forced) - image has dependent child images"
                )
            self._unref(by_ref)
            return RemoveReport(untagged=(by_ref,))
        if by_ref is not None and by_ref in refs:  # by name: that name (and maybe its repo digests) goes
            if users and not force and _single_reference(refs):
                raise Conflict(
                    f'unable to remove repository reference "{name}" (must force) - '
                    f"container {users[0][:12]} is using its referenced image {record.short_id}"
                )
            untagged = [by_ref]
            if by_ref.digest is None and not any(r.name == by_ref.name for r in record.tags if r != by_ref):
                # docker: the repository's last tag takes the repository's digests with it
                untagged += [r for r in record.repo_digests if r.name == by_ref.name]
            if users or len(untagged) < len(refs):
                self._unref(*untagged)
                return RemoveReport(untagged=tuple(untagged))
            refs = tuple(untagged)  # every name: the image goes too, the names in docker's order
        elif users and not force:
            raise Conflict(
                f"unable to delete {record.short_id} (must be forced) - image is being used by container {users[0][:12]}"
            )
        elif not force and len({r.name for r in refs}) > 1:
            raise Conflict(
                f"unable to delete {record.short_id} (must be forced) - image is referenced in multiple repositories"
            )
        with self._lock.held(), self.db.transaction() as conn:
            conn.execute("DELETE FROM refs WHERE image_id = ?", (record.id,))
            if users:  # forced while in use: untag only, as docker does
                return RemoveReport(untagged=refs)
            chains = {record.id: _chains(conn, record.id)}
            conn.execute("DELETE FROM images WHERE id = ?", (record.id,))
            deleted = [record.id]
            # docker: its untagged parents (a build's intermediate images) go with it, while
            # no other image is made on them and no container uses them
            parent = record.parent
            while parent is not None:
                row = conn.execute(
                    """SELECT i.parent FROM images i WHERE i.id = ?
                         AND NOT EXISTS (SELECT 1 FROM refs r WHERE r.image_id = i.id)
                         AND NOT EXISTS (SELECT 1 FROM image_users u WHERE u.image_id = i.id)
                         AND NOT EXISTS (SELECT 1 FROM images c WHERE c.parent = i.id)""",
                    (str(parent),),
                ).fetchone()
                if row is None:
                    break
                chains[parent] = _chains(conn, parent)
                conn.execute("DELETE FROM images WHERE id = ?", (str(parent),))
                deleted.append(parent)
                parent = Digest(row[0]) if row[0] else None
            kept = {r[0] for r in conn.execute("SELECT DISTINCT chain_id FROM image_layers")}
        self._collect()
        return RemoveReport(untagged=refs, deleted=tuple(deleted), layers=_released(deleted, chains, kept))

    def prune(self, *, all: bool = False, only: Callable[[ImageRecord], bool] | None = None) -> RemoveReport:
        """Delete dangling images no container uses (``all``: every image no container uses).

        ``only``: of those, just the ones it accepts (``--filter``); it is asked
        before the store's lock is taken, and an image a container started to
        use meanwhile is kept all the same.
        """
        # dangling: no tag (an image only repo digests name is dangling, as for docker)
        condition = (
            ""
            if all
            else "AND NOT EXISTS (SELECT 1 FROM refs r WHERE r.image_id = i.id AND r.tag IS NOT NULL)"
        )
        accepted = None if only is None else {str(r.id) for r in self.list_images() if only(r)}
        deleted: list[Digest] = []
        untagged: list[Reference] = []
        with self._lock.held(), self.db.transaction() as conn:
            # docker: an image with children goes only with them; its untagged parents follow it
            while True:
                rows = conn.execute(
                    f"""SELECT i.id FROM images i
                        WHERE NOT EXISTS (SELECT 1 FROM image_users u WHERE u.image_id = i.id)
                          AND NOT EXISTS (SELECT 1 FROM images c WHERE c.parent = i.id) {condition}"""
                ).fetchall()
                ids = tuple(Digest(r[0]) for r in rows if accepted is None or r[0] in accepted)
                if not ids:
                    break
                untagged.extend(
                    parse(r[0], default_tag=False)
                    for r in conn.execute(
                        f"SELECT name FROM refs WHERE image_id IN ({','.join('?' * len(ids))}) ORDER BY name",
                        ids,
                    )
                )
                conn.executemany("DELETE FROM images WHERE id = ?", [(i,) for i in ids])
                deleted.extend(ids)
            ids = tuple(deleted)
        self._collect()
        return RemoveReport(untagged=tuple(untagged), deleted=ids)

    def gc(self) -> GcReport:
        """Delete every blob and snapshot no image references; waits for leases to end. Idempotent.

        Never call it while this process holds a ``lease()``: it would wait for itself.
        """
        lock = FileLock(self._gc_lock_path)
        with lock.held():
            return self._sweep()

    # --- unpacking ------------------------------------------------------------------------------

    def unpack(self, image: str) -> str | None:
        """Unpack the image's layers into committed snapshots; returns the top one's key (None: no layers).

        Layers already unpacked (by any image) are reused. Give the key to
        ``snapshots.prepare(container_key, parent=key)`` for a writable root.
        """
        layers = self.layers(image)
        if all(layer.snapshot_key is not None for layer in layers):
            # the run path: every layer unpacked before, nothing to take a lease for
            top = str(layers[-1].chain_id) if layers else None
            if top is None or self.snapshots.stat(top) is not None:
                return top
        return self.unpack_layers([layer.blob for layer in layers], [layer.diff_id for layer in layers])

    def unpack_layers(
        self,
        blobs: Sequence[Descriptor],
        diff_ids: Sequence[Digest],
        *,
        remedy: str = "the stored image is corrupt: remove it and load or pull it again",
    ) -> str | None:
        """Unpack layer blobs from the content store, bottom first, each verified; returns the top chain id.

        Each layer goes through ``pallet.image.unpack.unpack_layer`` (the one
        place layers are extracted), which checks the blob's digest and its
        diff id and records the layer's uncompressed size. Layers already
        unpacked are reused. ``load`` and ``import`` call this before
        ``add_image``, so an image whose layers do not unpack to its config's
        diff ids is never added. Holds a lease meanwhile. ``remedy`` ends the
        message of a ``LayerMismatch`` (a corrupt layer).
        """
        from pallet.image.unpack import record_layer, unpack_layer

        if len(blobs) != len(diff_ids):
            raise SpecError(
                "rootfs.diff_ids", f"the config lists {len(diff_ids)} layers but there are {len(blobs)} blobs"
            )
        top: Digest | None = None
        with self.lease():
            for blob, diff_id, chain in zip(blobs, diff_ids, chain_ids(list(diff_ids)), strict=True):
                if self.snapshots.stat(str(chain)) is None:
                    # blobs of another algorithm than sha256 are verified as read, by the content store
                    with self.content.open(blob.digest, verify=blob.digest.algorithm != "sha256") as f:
                        unpack_layer(
                            self.snapshots,
                            self.db,
                            f,
                            blob=blob,
                            diff_id=diff_id,
                            chain_id=chain,
                            parent=top,
                            remedy=remedy,
                        )
                else:
                    record_layer(self.db, chain, diff_id, top, size=None)
                top = chain
        return str(top) if top is not None else None

    # --- internals ------------------------------------------------------------------------------

    def _parse_ref(self, ref: str | Reference) -> Reference:
        target = parse(ref) if isinstance(ref, str) else ref
        return target.canonical()

    def _set_ref(self, conn: sqlite3.Connection, target: Reference, image_id: str) -> None:
        conn.execute(
            """INSERT INTO refs(name, repository, tag, digest, image_id, added) VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id, added = excluded.added""",
            (str(target), target.name, target.tag, target.digest, image_id, time.time()),
        )

    def _unref(self, *targets: Reference) -> None:
        with self._lock.held(), self.db.transaction() as conn:
            conn.executemany("DELETE FROM refs WHERE name = ?", [(str(t),) for t in targets])

    def _record(self, row: sqlite3.Row) -> ImageRecord:
        refs = self.db.query("SELECT name FROM refs WHERE image_id = ? ORDER BY name", (row["id"],))
        return ImageRecord(
            id=Digest(row["id"]),
            manifest_digest=Digest(row["manifest_digest"]),
            manifest_media_type=row["manifest_media_type"],
            config_media_type=row["config_media_type"],
            index_digest=Digest(row["index_digest"]) if row["index_digest"] else None,
            created=row["created"],
            added=row["added"],
            size=row["size"],
            platform=Platform(architecture=row["architecture"], os=row["os"], variant=row["variant"]),
            references=tuple(parse(r[0], default_tag=False) for r in refs),
            parent=Digest(row["parent"]) if row["parent"] else None,
        )

    def _resolve(self, name: str) -> tuple[ImageRecord, Reference | None]:
        """The image ``name`` means, and the reference it was found through (None: found by id)."""
        not_found = NotFound(f'image "{name}" not found locally; pull it or check the name')
        text = name.strip()
        if text.startswith("sha256:"):
            return self._by_id_prefix(text.removeprefix("sha256:"), not_found), None
        if len(text) == 64 and _is_hex(text):
            return self._by_id_prefix(text, not_found), None
        try:
            ref = parse(text).canonical()
        except InvalidArgument:
            if _is_hex(text):
                return self._by_id_prefix(text, not_found), None
            raise
        rows = self.db.query("SELECT image_id FROM refs WHERE name = ?", (str(ref),))
        if rows:
            return self.get(rows[0][0]), ref
        if ref.digest is not None:
            # repo@digest of an image pulled by tag: any image of that repository with this manifest or index
            rows = self.db.query(
                """SELECT i.id FROM images i JOIN refs r ON r.image_id = i.id
                   WHERE r.repository = ? AND (i.manifest_digest = ? OR i.index_digest = ?) LIMIT 1""",
                (ref.name, ref.digest, ref.digest),
            )
            if rows:
                return self.get(rows[0][0]), None
        if _is_hex(text):
            return self._by_id_prefix(text, not_found), None
        raise not_found

    def _by_id_prefix(self, prefix: str, not_found: NotFound) -> ImageRecord:
        if not prefix or not _is_hex(prefix):
            raise not_found
        rows = self.db.query("SELECT * FROM images WHERE substr(id, 8, ?) = ? LIMIT 2", (len(prefix), prefix))
        if not rows:
            raise not_found
        if len(rows) > 1:
            raise InvalidArgument(f'short id "{prefix}" matches more than one image; give more characters')
        return self._record(rows[0])

    def _collect(self) -> None:
        """Delete what removed images left unreferenced, unless a lease is held (gc does it later)."""
        lock = FileLock(self._gc_lock_path)
        if not lock.acquire(blocking=False):
            return
        try:
            self._sweep()
        finally:
            lock.release()

    def _sweep(self) -> GcReport:
        """Caller holds the gc lock exclusively: no lease is open, so unreferenced blobs are garbage."""
        blobs = freed = snaps = 0
        with self._lock.held():
            referenced: set[str] = set()
            for row in self.db.query("SELECT id, manifest_digest, index_digest FROM images"):
                referenced.update(v for v in row if v)
            referenced.update(r[0] for r in self.db.query("SELECT DISTINCT blob_digest FROM image_layers"))
            for digest, size in list(self.content.walk()):
                if digest not in referenced and self.content.delete(digest):
                    blobs += 1
                    freed += size
            with self.db.transaction() as conn:
                conn.execute("DELETE FROM layers WHERE chain_id NOT IN (SELECT chain_id FROM image_layers)")
            # committed snapshots no layer row claims, leaves first (a parent goes once its children are gone)
            while True:
                rows = self.db.query(
                    """SELECT s.key FROM snapshots s
                       WHERE s.kind = 'committed'
                         AND NOT EXISTS (SELECT 1 FROM layers l WHERE l.chain_id = s.key)
                         AND NOT EXISTS (SELECT 1 FROM snapshots c WHERE c.parent = s.key)"""
                )
                if not rows:
                    break
                for row in rows:
                    self.snapshots.remove(row[0])
                    snaps += 1
        self.content.cleanup_leftovers()
        return GcReport(blobs=blobs, bytes=freed, snapshots=snaps)


# --- layer streams ----------------------------------------------------------------------------


def _chains(conn: sqlite3.Connection, image: Digest) -> tuple[Digest, ...]:
    rows = conn.execute(
        "SELECT chain_id FROM image_layers WHERE image_id = ? ORDER BY position DESC", (str(image),)
    )
    return tuple(Digest(r[0]) for r in rows)


def _released(
    deleted: Sequence[Digest], chains: Mapping[Digest, tuple[Digest, ...]], kept: set[str]
) -> tuple[tuple[Digest, tuple[Digest, ...]], ...]:
    """Each deleted image's layers no remaining image has, top first; a layer that several deleted
    images share goes with the last of them (docker: the release that drops its last reference)."""
    last = {chain: image for image in deleted for chain in chains.get(image, ()) if str(chain) not in kept}
    return tuple(
        (image, tuple(c for c in chains.get(image, ()) if last.get(c) == image))
        for image in deleted
        if any(last.get(c) == image for c in chains.get(image, ()))
    )


def _single_reference(refs: Sequence[Reference]) -> bool:
    """docker's "single reference": at most one tag, and every repo digest in that tag's repository.

    Removing such a name would leave an image a container uses dangling, so it needs ``force``.
    """
    tags = [r for r in refs if r.digest is None]
    if len(tags) > 1:
        return False
    repositories = {r.name for r in refs}
    return len(repositories) == 1


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdef" for c in text)


def _index_type(data: bytes) -> str:
    found = loads(data, "index")
    kind = found.get("mediaType") if isinstance(found, dict) else None
    return kind if isinstance(kind, str) else mediatypes.OCI_INDEX
