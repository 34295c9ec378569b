"""The content-addressable store: blobs by digest under ``<root>/content/blobs/<alg>/<hex>``.

Contract: a blob is complete and correct or absent. ``ingest`` writes to a temp
file in ``<root>/content/ingest/``, checks digest and size, fsyncs, then
renames it into place (and fsyncs the directory), so a writer killed at any
point leaves at most a temp file, never a visible bad blob. Temp files are named
after their writer (see ``owners``); ``cleanup_leftovers`` removes those whose
writer is gone, and runs whenever the store is opened.

The content store knows nothing of images: what references a blob, and when it
may be deleted, is the image store's business (``store.ImageStore.gc``).
"""

from __future__ import annotations

import io
import os

from pallet.errors import DataLoss, InvalidArgument, NotFound
from pallet.image import owners
from pallet.image.paths import normalise
from pallet.oci.digest import ALGORITHMS, Digest, hasher
from pallet.oci.image_spec import Descriptor

__all__ = ["ContentStore", "VerifyingReader"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from hashlib import _Hash
    from pathlib import Path
    from typing import BinaryIO

    from _typeshed import WriteableBuffer

_CHUNK = 1 << 20
_OCTET_STREAM = "application/octet-stream"


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class VerifyingReader(io.RawIOBase):
    """Reads a blob and raises ``DataLoss`` at end of file if its digest or size is wrong.

    Catches blobs corrupted on disk after they were written (verify-on-read).
    """

    def __init__(self, f: BinaryIO, digest: Digest) -> None:
        super().__init__()
        self._f = f
        self._digest = digest
        self._hash: _Hash = hasher(digest.algorithm)
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        n = self._f.readinto(view)  # type: ignore[attr-defined]
        if n:
            self._hash.update(view[:n])
        elif not self._checked:
            self._checked = True
            found = Digest.from_hasher(self._hash)
            if found != self._digest:
                raise DataLoss(
                    f"blob {self._digest} is corrupt on disk (content hashes to {found}); remove the image and load or pull it again"
                )
        return int(n or 0)

    def close(self) -> None:
        self._f.close()
        super().close()


class ContentStore:
    """Blobs by digest under ``<root>/content``; safe for concurrent processes.

    Paths are kept as ``str`` (``pathlib`` costs ~20 ms at import); ``root``,
    ``blobs``, ``ingest_dir`` and ``path()`` give ``Path`` views for callers
    that want one, importing it then.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = os.path.join(normalise(root), "content")
        self._blobs = os.path.join(self._root, "blobs")
        self._ingest = os.path.join(self._root, "ingest")
        for algorithm in ALGORITHMS:
            os.makedirs(os.path.join(self._blobs, algorithm), exist_ok=True)
        os.makedirs(self._ingest, exist_ok=True)

    @property
    def root(self) -> Path:
        """``<root>/content``."""
        from pathlib import Path

        return Path(self._root)

    @property
    def blobs(self) -> Path:
        from pathlib import Path

        return Path(self._blobs)

    @property
    def ingest_dir(self) -> Path:
        from pathlib import Path

        return Path(self._ingest)

    # --- reading ------------------------------------------------------------------------------

    def path(self, digest: str) -> Path:
        """Where the blob lives (whether or not it is there)."""
        from pathlib import Path

        return Path(self._file(digest))

    def _file(self, digest: str) -> str:
        d = Digest.parse(digest)
        return os.path.join(self._blobs, d.algorithm, d.hex)

    def has(self, digest: str) -> bool:
        return os.path.isfile(self._file(digest))

    def size(self, digest: str) -> int:
        """The blob's size in bytes; ``NotFound`` if absent."""
        try:
            return os.stat(self._file(digest)).st_size
        except FileNotFoundError:
            raise self._missing(digest) from None

    def open(self, digest: str, *, verify: bool = False) -> BinaryIO:
        """Open a blob for reading; with ``verify`` the digest is checked as it is read to the end."""
        d = Digest.parse(digest)
        try:
            f = open(self._file(d), "rb")  # noqa: SIM115 - returned to the caller
        except FileNotFoundError:
            raise self._missing(d) from None
        if not verify:
            return f
        return io.BufferedReader(VerifyingReader(f, d), _CHUNK)

    def read_bytes(self, digest: str) -> bytes:
        """The whole blob, verified (for manifests and configs: small).

        Hashed in one go with ``Digest.of_bytes``, which needs no OpenSSL for
        small blobs (reading an image config on ``pallet run``); same check,
        same error as ``open(verify=True)``.
        """
        d = Digest.parse(digest)
        with self.open(d) as f:
            data = f.read()
        found = Digest.of_bytes(data, d.algorithm)
        if found != d:
            raise DataLoss(
                f"blob {d} is corrupt on disk (content hashes to {found}); remove the image and load or pull it again"
            )
        return data

    def walk(self) -> Iterator[tuple[Digest, int]]:
        """Every blob present, as (digest, size)."""
        for algorithm in ALGORITHMS:
            with os.scandir(os.path.join(self._blobs, algorithm)) as entries:
                for entry in entries:
                    if entry.is_file(follow_symlinks=False):
                        try:
                            yield Digest.parse(f"{algorithm}:{entry.name}"), entry.stat().st_size
                        except InvalidArgument:
                            continue  # not a blob name: ignore, never delete what we did not write
                        except FileNotFoundError:
                            continue  # deleted while walking

    # --- writing ------------------------------------------------------------------------------

    def ingest(
        self,
        stream: BinaryIO,
        expected: Descriptor | str | None = None,
        *,
        media_type: str | None = None,
    ) -> Descriptor:
        """Store a blob read from ``stream``; atomic (complete and verified, or absent).

        ``expected`` is a descriptor (digest and size checked), a digest, or None
        (the sha256 of what was read becomes the digest). If the blob is already
        present the stream is not read. A mismatch raises ``InvalidArgument`` and
        leaves nothing behind.
        """
        want: Digest | None = None
        want_size: int | None = None
        if isinstance(expected, Descriptor):
            want, want_size = expected.digest, expected.size
            media_type = media_type or expected.media_type
        elif expected is not None:
            want = Digest.parse(expected)
        media_type = media_type or _OCTET_STREAM
        if want is not None and self.has(want):
            size = self.size(want)
            if want_size is None or size == want_size:
                return Descriptor(media_type=media_type, digest=want, size=size)

        h = hasher(want.algorithm if want is not None else "sha256")
        tmp = os.path.join(self._ingest, f"{owners.owner_tag()}.part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            size = 0
            # read1 returns what a pipe or socket has now instead of waiting for a full chunk
            read = getattr(stream, "read1", stream.read)
            with os.fdopen(fd, "wb", buffering=0) as out:
                while chunk := read(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                    if want_size is not None and size > want_size:
                        raise InvalidArgument(
                            f"blob {want} is larger than the {want_size} bytes its descriptor says"
                        )
                found = Digest.from_hasher(h)
                if want is not None and found != want:
                    raise InvalidArgument(f"blob digest mismatch: expected {want}, the content is {found}")
                if want_size is not None and size != want_size:
                    raise InvalidArgument(f"blob {found} has {size} bytes; its descriptor says {want_size}")
                os.fsync(out.fileno())
            final = self._file(found)
            os.rename(tmp, final)  # atomic; an existing identical blob is simply replaced
            _fsync_dir(os.path.dirname(final))
        except BaseException:
            try:  # noqa: SIM105 - contextlib costs ~7 ms at start
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return Descriptor(media_type=media_type, digest=found, size=size)

    def put_bytes(self, data: bytes, media_type: str = _OCTET_STREAM) -> Descriptor:
        """Store ``data`` (a manifest, a config); idempotent."""
        return self.ingest(
            io.BytesIO(data), Descriptor(media_type=media_type, digest=Digest.of_bytes(data), size=len(data))
        )

    def delete(self, digest: str) -> bool:
        """Remove a blob; idempotent. True if it was there."""
        try:
            os.unlink(self._file(digest))
        except FileNotFoundError:
            return False
        return True

    def cleanup_leftovers(self) -> int:
        """Remove temp files of writers that are gone; returns how many. Never touches a live writer's file."""
        removed = 0
        with os.scandir(self._ingest) as entries:
            for entry in entries:
                owner = owners.parse_owner(entry.name)
                if owner is not None and owners.is_alive(*owner):
                    continue
                try:
                    os.unlink(entry.path)
                    removed += 1
                except FileNotFoundError:
                    pass
        return removed

    @staticmethod
    def _missing(digest: str) -> NotFound:
        return NotFound(f"blob {digest} not found in the content store; load or pull the image again")
