"""The registry's storage directory: the OCI distribution layout on disk.

Layout under ``root`` (blobs are shared by every repository; a repository
holds only links, so a layer pushed to ten repositories is stored once)::

    blobs/<alg>/<hex>                                  content, written once, immutable
    uploads/<uuid>/data, uploads/<uuid>/repository     upload sessions in progress
    repositories/<name>/_layers/<alg>/<hex>            empty file: the blob is in <name>
    repositories/<name>/_manifests/revisions/<alg>/<hex>   the manifest's media type
    repositories/<name>/_manifests/tags/<tag>          the digest the tag points at
    repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>.json
                                                       descriptor of a manifest whose subject is <hex>

Contracts:

- A blob under ``blobs/`` is complete and matches its name: uploads go to
  their own file, are verified against the client's digest, fsynced, then
  renamed into place. A digest mismatch leaves nothing behind.
- Concurrent uploads of the same blob are safe: each has its own file; the
  rename is atomic and any of them may win, all with the same bytes.
- Every metadata file is written atomically (temp file, fsync, rename), so a
  crash leaves the old or the new version, never a torn one.
- Deleting a blob or manifest removes the repository's link; the shared
  content stays until garbage collection (``gc.py``), so another
  repository that links it is unaffected.
- ``gc.lock`` in the root: a server holds it shared while it serves, garbage
  collection exclusively, so the two never overlap (``lock``).

An upload session survives a server restart: its state is the size of its
data file. The running hash is kept in memory as an optimisation and
recomputed from the file when it is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid

from pallet.image.metadata import FileLock
from pallet.linux import atomicfile
from pallet.oci.digest import Digest, hasher
from pallet.registry.server.errorcodes import RegistryError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from hashlib import _Hash

__all__ = ["Storage", "Upload", "write_atomic"]

_COPY_CHUNK = 1 << 20


def write_atomic(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` (fsynced), making its directories: readers see the old or the new."""
    atomicfile.write_atomic(path, data, parents=True)


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _hash_file(path: str, algorithm: str) -> Digest:
    h = hasher(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_COPY_CHUNK):
            h.update(chunk)
    return Digest.from_hasher(h)


class Upload:
    """One blob upload session: a data file that grows, and its running hash.

    ``lock`` serialises the requests of one session (a client sends its chunks
    in order; two requests racing on one session must not interleave bytes).
    """

    __slots__ = ("hash", "id", "lock", "name", "path", "size", "started")

    def __init__(self, upload_id: str, name: str, path: str, size: int) -> None:
        self.id = upload_id
        self.name = name
        self.path = path
        self.size = size
        self.started = time.time()
        self.lock = threading.Lock()
        #: sha256 of the bytes so far, or None once it cannot follow (restart)
        self.hash: _Hash | None = hasher("sha256") if size == 0 else None


class Storage:
    """The registry's data under one directory; safe to use from many threads."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        for sub in ("blobs", "uploads", "repositories"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        self._uploads: dict[str, Upload] = {}
        self._lock = threading.Lock()

    def lock(self) -> FileLock:
        """The storage's lock: shared while a server serves, exclusive while garbage is collected."""
        return FileLock(os.path.join(self.root, "gc.lock"))

    # --- paths -------------------------------------------------------------

    def blob_path(self, digest: Digest) -> str:
        return os.path.join(self.root, "blobs", digest.algorithm, digest.hex)

    def _repo(self, name: str, *parts: str) -> str:
        return os.path.join(self.root, "repositories", name, *parts)

    def _layer_link(self, name: str, digest: Digest) -> str:
        return self._repo(name, "_layers", digest.algorithm, digest.hex)

    def _revision(self, name: str, digest: Digest) -> str:
        return self._repo(name, "_manifests", "revisions", digest.algorithm, digest.hex)

    def _tag(self, name: str, tag: str) -> str:
        return self._repo(name, "_manifests", "tags", tag)

    def _referrers_dir(self, name: str, subject: Digest) -> str:
        return self._repo(name, "_referrers", subject.algorithm, subject.hex)

    # --- blobs -------------------------------------------------------------

    def blob_size(self, name: str, digest: Digest) -> int | None:
        """The size of ``digest`` if repository ``name`` has it, else None."""
        if not os.path.exists(self._layer_link(name, digest)):
            return None
        try:
            return os.stat(self.blob_path(digest)).st_size
        except FileNotFoundError:
            return None

    def link_blob(self, name: str, digest: Digest) -> None:
        """Make ``digest`` (already in ``blobs/``) part of repository ``name``. Idempotent."""
        link = self._layer_link(name, digest)
        if not os.path.exists(link):
            write_atomic(link, b"")

    def delete_blob(self, name: str, digest: Digest) -> bool:
        """Remove ``digest`` from repository ``name``; False if it was not there."""
        try:
            os.unlink(self._layer_link(name, digest))
        except FileNotFoundError:
            return False
        return True

    def mount_blob(self, name: str, source: str | None, digest: Digest) -> bool:
        """Link a blob of repository ``source`` (of any, when None) into ``name``: a cross-repository mount."""
        if source is not None and self.blob_size(source, digest) is None:
            return False
        if source is None and not os.path.exists(self.blob_path(digest)):
            return False
        self.link_blob(name, digest)
        return True

    def _commit_blob(self, tmp: str, digest: Digest) -> None:
        """Move the verified file ``tmp`` to its place under ``blobs/`` (atomic, idempotent)."""
        final = self.blob_path(digest)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        if os.path.exists(final):
            # same digest, same bytes: the blob another upload already stored wins
            os.unlink(tmp)
            return
        os.rename(tmp, final)

    def store_blob(self, data: bytes, algorithm: str = "sha256") -> Digest:
        """Store a small blob from memory (a manifest's bytes). Idempotent."""
        digest = Digest.of_bytes(data, algorithm)
        if not os.path.exists(self.blob_path(digest)):
            tmp = os.path.join(self.root, "uploads", f".blob-{uuid.uuid4().hex}")
            write_atomic(tmp, data)
            self._commit_blob(tmp, digest)
        return digest

    # --- uploads -----------------------------------------------------------

    def start_upload(self, name: str) -> Upload:
        upload_id = str(uuid.uuid4())
        directory = os.path.join(self.root, "uploads", upload_id)
        os.makedirs(directory)
        write_atomic(os.path.join(directory, "repository"), name.encode())
        path = os.path.join(directory, "data")
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
        upload = Upload(upload_id, name, path, 0)
        with self._lock:
            self._uploads[upload_id] = upload
        return upload

    def upload(self, name: str, upload_id: str) -> Upload:
        """The session ``upload_id`` of repository ``name``; ``BLOB_UPLOAD_UNKNOWN`` if none."""
        with self._lock:
            found = self._uploads.get(upload_id)
        if found is None:
            # a session started before a restart: its state is on disk
            directory = os.path.join(self.root, "uploads", upload_id)
            owner = _read_text(os.path.join(directory, "repository")) if _is_uuid(upload_id) else None
            path = os.path.join(directory, "data")
            if owner is not None and os.path.exists(path):
                found = Upload(upload_id, owner, path, os.stat(path).st_size)
                with self._lock:
                    found = self._uploads.setdefault(upload_id, found)
        if found is None or found.name != name:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": upload_id})
        return found

    def append(self, upload: Upload, chunks: Iterable[bytes]) -> int:
        """Append ``chunks`` to the session, hashing as they arrive; return the bytes written.

        The caller holds ``upload.lock``. On an error mid-stream the data file
        is cut back to where it was, so the session stays consistent.
        """
        start = upload.size
        fd = os.open(upload.path, os.O_WRONLY | os.O_CLOEXEC)
        written = 0
        try:
            os.lseek(fd, start, os.SEEK_SET)
            h = upload.hash
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
                if h is not None:
                    h.update(chunk)
                written += len(chunk)
        except BaseException:
            os.ftruncate(fd, start)
            upload.hash = None  # the hash saw bytes that were cut: recompute at the end
            raise
        finally:
            os.close(fd)
        upload.size = start + written
        return written

    def finish_upload(self, upload: Upload, expected: Digest) -> None:
        """Verify the session's bytes against ``expected``, store the blob, link it, end the session.

        ``DIGEST_INVALID`` when the bytes do not match: the session and its
        data are removed and nothing is stored.
        """
        if upload.hash is not None and upload.hash.name == expected.algorithm:
            actual = Digest.from_hasher(upload.hash)
        else:
            actual = _hash_file(upload.path, expected.algorithm)
        if actual != expected:
            self.cancel_upload(upload)
            raise RegistryError("DIGEST_INVALID", detail={"expected": str(expected), "actual": str(actual)})
        fd = os.open(upload.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._commit_blob(upload.path, expected)
        self.link_blob(upload.name, expected)
        self.cancel_upload(upload)

    def cancel_upload(self, upload: Upload) -> None:
        """End the session and remove its files. Idempotent."""
        with self._lock:
            self._uploads.pop(upload.id, None)
        directory = os.path.dirname(upload.path)
        for leaf in ("data", "repository"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, leaf))
        with contextlib.suppress(FileNotFoundError, OSError):
            os.rmdir(directory)

    def purge_uploads(self, older_than: float, now: float | None = None) -> int:
        """Remove upload sessions and stray temp files untouched for ``older_than`` seconds.

        Distribution's default is a week: a client may resume an upload until
        then. Returns how many were removed.
        """
        import shutil

        cutoff = (time.time() if now is None else now) - older_than
        base = os.path.join(self.root, "uploads")
        removed = 0
        for entry in os.scandir(base):
            try:
                if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    data = os.path.join(entry.path, "data")
                    if os.path.exists(data) and os.stat(data).st_mtime >= cutoff:
                        continue
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
            except FileNotFoundError:
                continue
            with self._lock:
                self._uploads.pop(entry.name, None)
            removed += 1
        return removed

    # --- manifests and tags --------------------------------------------------

    def put_manifest(
        self,
        name: str,
        data: bytes,
        media_type: str,
        *,
        tags: Sequence[str],
        subject: Digest | None,
        referrer: dict[str, object] | None,
        algorithm: str = "sha256",
    ) -> Digest:
        """Store a validated manifest, link it into ``name``, point ``tags`` at it, index its subject."""
        digest = self.store_blob(data, algorithm)
        write_atomic(self._revision(name, digest), media_type.encode())
        if subject is not None and referrer is not None:
            leaf = f"{digest.algorithm}-{digest.hex}.json"
            write_atomic(
                os.path.join(self._referrers_dir(name, subject), leaf), json.dumps(referrer).encode()
            )
        for tag in tags:
            write_atomic(self._tag(name, tag), digest.encode())
        return digest

    def manifest_type(self, name: str, digest: Digest) -> str | None:
        """The media type of manifest ``digest`` in ``name``, or None when ``name`` does not have it."""
        media_type = _read_text(self._revision(name, digest))
        if media_type is None or not os.path.exists(self.blob_path(digest)):
            return None
        return media_type

    def resolve(self, name: str, reference: str) -> Digest | None:
        """The digest a tag or digest reference names in ``name``, if the manifest is there."""
        if ":" in reference:
            digest = Digest.parse(reference)
        else:
            text = _read_text(self._tag(name, reference))
            if text is None:
                return None
            digest = Digest.parse(text)
        return digest if self.manifest_type(name, digest) is not None else None

    def manifest(self, name: str, reference: str) -> tuple[Digest, str, int] | None:
        """``(digest, media type, size)`` of the manifest a tag or digest names in ``name``, or None.

        The read path of a manifest GET/HEAD: one tag read, one revision read
        and one ``stat``, where ``resolve`` + ``manifest_type`` + ``stat``
        would read the revision twice.
        """
        if ":" in reference:
            digest = Digest.parse(reference)
        else:
            text = _read_text(self._tag(name, reference))
            if text is None:
                return None
            digest = Digest.parse(text)
        media_type = _read_text(self._revision(name, digest))
        if media_type is None:
            return None
        try:
            size = os.stat(self.blob_path(digest)).st_size
        except FileNotFoundError:
            return None
        return digest, media_type, size

    def delete_manifest(self, name: str, digest: Digest, subject: Digest | None) -> bool:
        """Remove manifest ``digest`` from ``name`` with every tag on it and its referrer entry."""
        try:
            os.unlink(self._revision(name, digest))
        except FileNotFoundError:
            return False
        for tag in self.tags(name):
            if _read_text(self._tag(name, tag)) == digest:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._tag(name, tag))
        if subject is not None:
            leaf = f"{digest.algorithm}-{digest.hex}.json"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self._referrers_dir(name, subject), leaf))
        return True

    def delete_tag(self, name: str, tag: str) -> bool:
        try:
            os.unlink(self._tag(name, tag))
        except FileNotFoundError:
            return False
        return True

    def tags(self, name: str) -> list[str]:
        """The tags of ``name``, sorted; empty when it has none."""
        try:
            entries = os.listdir(self._repo(name, "_manifests", "tags"))
        except FileNotFoundError:
            return []
        return sorted(e for e in entries if not e.startswith("."))

    def has_repository(self, name: str) -> bool:
        return os.path.isdir(self._repo(name, "_manifests")) or os.path.isdir(self._repo(name, "_layers"))

    def repositories(self) -> list[str]:
        """Every repository name, sorted (a repository exists once it has a blob or manifest)."""
        base = os.path.join(self.root, "repositories")
        found: list[str] = []
        for directory, subdirs, _files in os.walk(base):
            if "_manifests" in subdirs or "_layers" in subdirs:
                found.append(os.path.relpath(directory, base))
            subdirs[:] = [d for d in subdirs if not d.startswith("_")]
        return sorted(found)

    def referrers(self, name: str, subject: Digest) -> list[dict[str, object]]:
        """Descriptors of the manifests in ``name`` whose subject is ``subject``, by digest."""
        directory = self._referrers_dir(name, subject)
        try:
            leaves = sorted(os.listdir(directory))
        except FileNotFoundError:
            return []
        found: list[dict[str, object]] = []
        for leaf in leaves:
            if leaf.startswith(".") or not leaf.endswith(".json"):
                continue
            text = _read_text(os.path.join(directory, leaf))
            if text:
                found.append(json.loads(text))
        return found


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
