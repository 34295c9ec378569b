"""Resumable, verified blob downloads into the content store.

A blob being downloaded lives in ``<root>/content/partial/<alg>-<hex>`` (the
same file system as the blobs, so the final step is a rename), locked with
``flock`` by the one process writing it. Contracts:

- Nothing enters ``content/blobs`` unverified: the file is hashed as it is
  written, and renamed into place only when size and digest match the
  descriptor, after an fsync (``PartialBlob.commit``). A mismatch removes the
  partial file and raises ``DigestMismatch``.
- A download killed at any point (SIGKILL included) leaves at most a partial
  file, never a visible bad blob; the next pull of the blob re-hashes what is
  there and asks only for the rest (``Range: bytes=<n>-``).
- A connection that breaks mid-blob is resumed the same way, inside one pull,
  up to ``_RESUMES`` times.
- Two processes pulling the same blob do not both download it: the second
  waits for the first's lock, then finds the blob in the store.

``BlobReader`` is a readable stream of the *whole* blob (the resumed prefix
from the partial file, then the network), so a layer can be unpacked while it
downloads; whatever reads it, the bytes land in the partial file too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time

from urllib3.exceptions import HTTPError

from pallet.oci.digest import Digest, hasher
from pallet.registry.client.errors import DigestMismatch, Unreachable

__all__ = ["CHUNK", "BlobReader", "PartialBlob", "cleanup_stale", "complete", "partial_dir"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from urllib3 import BaseHTTPResponse

    from pallet.image.content import ContentStore
    from pallet.oci.image_spec import Descriptor
    from pallet.registry.client.repository import Repository

CHUNK = 1 << 20
#: how often one pull reopens a blob whose connection broke
_RESUMES = 5
#: partial files untouched this long belong to pulls nobody will resume
_STALE_SECONDS = 7 * 24 * 3600


def partial_dir(content: ContentStore) -> Path:
    path = content.root / "partial"
    path.mkdir(exist_ok=True)
    return path


def cleanup_stale(content: ContentStore, *, older_than: float = _STALE_SECONDS) -> int:
    """Remove partial downloads untouched for ``older_than`` seconds and not locked; returns how many."""
    removed = 0
    now = time.time()
    with os.scandir(partial_dir(content)) as entries:
        for entry in entries:
            try:
                if now - entry.stat().st_mtime < older_than:
                    continue
                fd = os.open(entry.path, os.O_RDWR | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.unlink(entry.path)
                removed += 1
            except OSError:
                pass  # being written: not stale
            finally:
                os.close(fd)
    return removed


class PartialBlob:
    """The partial file of one blob, locked by this process; ``load`` before use, ``close`` after."""

    def __init__(self, content: ContentStore, descriptor: Descriptor) -> None:
        self.content = content
        self.descriptor = descriptor
        digest = descriptor.digest
        self.path = partial_dir(content) / f"{digest.algorithm}-{digest.hex}"
        self.fd = -1
        self.size = 0
        self.resumed = 0
        #: hash what is written; a caller whose reader hashes the stream anyway may turn it off
        self.hashing = True
        self._hash = hasher(digest.algorithm)

    def acquire(self) -> bool:
        """Lock the partial file (waiting for another writer); False if the blob is in the store by then."""
        while True:
            if self.content.has(self.descriptor.digest):
                return False
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                self._load()
                return True
            os.close(fd)  # the writer we waited for committed or removed it: look again

    def _load(self) -> None:
        """Hash what an earlier, interrupted download left, so only the rest is fetched."""
        size = os.fstat(self.fd).st_size
        if size > self.descriptor.size:
            os.ftruncate(self.fd, 0)
            size = 0
        self._hash_file(size)
        self.resumed = self.size

    def rehash(self) -> None:
        """Hash the file as it is and hash writes again (after ``hashing`` was turned off)."""
        self._hash = hasher(self.descriptor.digest.algorithm)
        self._hash_file(self.size)
        self.hashing = True

    def _hash_file(self, size: int) -> None:
        offset = 0
        while offset < size:
            data = os.pread(self.fd, min(CHUNK, size - offset), offset)
            if not data:
                break
            self._hash.update(data)
            offset += len(data)
        self.size = offset

    def reset(self) -> None:
        """Start over (the registry ignored ``Range``, or the resumed bytes were bad)."""
        os.ftruncate(self.fd, 0)
        self._hash = hasher(self.descriptor.digest.algorithm)
        self.size = 0

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        offset = self.size
        while view:
            n = os.pwrite(self.fd, view, offset)
            view = view[n:]
            offset += n
        if self.hashing:
            self._hash.update(data)
        self.size = offset

    def commit(self, found: Digest | None = None) -> None:
        """Verify size and digest, then move the blob into the store (atomic). ``DigestMismatch`` if wrong.

        ``found`` is the digest of the whole file when the caller hashed it itself
        (with ``hashing`` off); otherwise this object's own hash is used.
        """
        want = self.descriptor
        if found is None:
            if not self.hashing:
                self.rehash()
            found = Digest.from_hasher(self._hash)
        if self.size != want.size or found != want.digest:
            self.path.unlink(missing_ok=True)  # nothing worth resuming
            self.reset()
            raise DigestMismatch(
                f"digest mismatch: blob {want.digest} ({want.size} bytes) arrived as {found} ({self.size} bytes);"
                " nothing was stored; pull again, and report the registry if it persists"
            )
        os.fsync(self.fd)
        final = self.content.path(want.digest)
        os.rename(self.path, final)
        dir_fd = os.open(final.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # releases the lock
            self.fd = -1


class BlobReader:
    """The whole blob as a stream: the resumed prefix from disk, then the network, written through to ``partial``.

    Broken connections are reopened at the current offset (``Range``) up to
    ``_RESUMES`` times; the reader of this stream never sees them.
    ``on_bytes(n)`` is called for every chunk that came over the network.
    """

    def __init__(
        self,
        repository: Repository,
        partial: PartialBlob,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        self.repository = repository
        self.partial = partial
        self.on_bytes = on_bytes
        self.position = 0
        self._response: BaseHTTPResponse | None = None
        self._skip = 0
        self._failures = 0

    def read(self, n: int = -1) -> bytes:
        want = CHUNK if n is None or n < 0 else n
        partial = self.partial
        if self.position < partial.size:
            data = os.pread(partial.fd, min(want, partial.size - self.position), self.position)
            self.position += len(data)
            return data
        while partial.size < partial.descriptor.size:
            try:
                data = self._network_read(want)
            except (HTTPError, OSError) as e:
                self._broken(str(e))
                continue
            if not data:
                self._broken("the connection ended before the end of the blob")
                continue
            partial.write(data)
            self.position += len(data)
            if self.on_bytes is not None:
                self.on_bytes(len(data))
            return data
        self._close_response()
        return b""

    def _network_read(self, want: int) -> bytes:
        if self._response is None:
            blob = self.partial.descriptor
            response, start = self.repository.open_blob(blob.digest, self.partial.size)
            self._response = response
            self._skip = self.partial.size - start  # a registry without Range support resends the start
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) != blob.size - start:
                self._close_response()
                raise DigestMismatch(
                    f"blob {blob.digest} should be {blob.size} bytes but the registry sends {int(length) + start};"
                    " nothing was stored"
                )
        response = self._response
        while self._skip:
            dropped = response.read(min(self._skip, CHUNK), decode_content=False)
            if not dropped:
                return b""
            self._skip -= len(dropped)
        return response.read(
            min(want, self.partial.descriptor.size - self.partial.size), decode_content=False
        )

    def _broken(self, why: str) -> None:
        self._close_response()
        self._failures += 1
        if self._failures > _RESUMES:
            raise Unreachable(
                f"downloading blob {self.partial.descriptor.digest} failed {self._failures} times ({why}); "
                "run the pull again: it resumes where it stopped"
            )

    def _close_response(self) -> None:
        if self._response is not None:
            with contextlib.suppress(HTTPError, OSError):  # a broken connection is dropped by the pool
                self._response.release_conn()
            self._response = None

    def close(self) -> None:
        self._close_response()


def complete(
    repository: Repository, partial: PartialBlob, on_bytes: Callable[[int], None] | None = None
) -> None:
    """Fetch the rest of ``partial``'s blob and move it into the store (``DigestMismatch``: nothing is kept)."""
    reader = BlobReader(repository, partial, on_bytes)
    try:
        reader.position = partial.size  # the prefix is hashed already: skip re-reading it
        while reader.read(CHUNK):
            pass
    finally:
        reader.close()
    partial.commit()
