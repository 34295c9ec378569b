"""Layer compression: decompressing readers and compressing writers that also compute digests.

Reading (``LayerReader``): the compression is detected from the data's magic
bytes, as containerd does (``docker save`` archives label gzip blobs as plain
tar and the reverse happens too); the media type only has to name a layer.
gzip goes through ``zlib`` (it releases the GIL, so layers can be unpacked in
parallel threads), zstd through ``backports.zstd``. Like Go's gzip reader, a
gzip stream may hold several members and ends at the end of a member when what
follows is not another member (trailing garbage is ignored); a member cut short
is an error. While reading, ``digest`` (sha256 of the blob as stored) and
``diff_id`` (sha256 of the uncompressed tar) are computed; ``finish`` reads the
rest of both streams so the digests cover every byte.

With ``threaded=True`` reading, hashing and decompressing run in a helper
thread that stays at most a few chunks ahead of the consumer (bounded memory),
overlapping with the consumer's file writes on another core.

Writing (``LayerWriter``): compress (or not) a tar stream into ``out``, computing
the same two digests.
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from collections import deque

from pallet.errors import InvalidArgument, Unsupported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from pallet.image.tarstream import Readable, Writable

__all__ = ["GZIP", "NONE", "ZSTD", "LayerReader", "LayerWriter", "compression_of"]

NONE, GZIP, ZSTD = "none", "gzip", "zstd"
RAW_CHUNK = 1 << 20
OUT_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_QUEUE_DEPTH = 4


def _zstd_skippable(data: bytes) -> bool:
    """Whether ``data`` starts with a zstd skippable frame (zstd:chunked puts its TOC in one)."""
    return len(data) >= 4 and int.from_bytes(data[:4], "little") & 0xFFFFFFF0 == 0x184D2A50


def compression_of(media_type: str) -> str:
    """The compression a layer media type names (``none``, ``gzip`` or ``zstd``)."""
    if media_type.endswith(("+gzip", ".gzip")):
        return GZIP
    if media_type.endswith(("+zstd", ".zstd")):
        return ZSTD
    if media_type.endswith((".tar", "+tar")) or media_type == "tar":
        return NONE
    raise Unsupported(
        f"unsupported layer media type {media_type!r}; "
        "expected a tar layer, plain, gzip or zstd (application/vnd.oci.image.layer.v1.tar[+gzip|+zstd])"
    )


class LayerReader:
    """A decompressed view of a layer blob, with its digests; ``read(n)`` may return less than ``n``."""

    def __init__(self, raw: Readable, media_type: str, *, threaded: bool = False) -> None:
        compression_of(media_type)  # reject what is not a layer before reading anything
        self._raw = raw
        self._blob_hash = hashlib.sha256()
        self._tar_hash = hashlib.sha256()
        self.compressed_size = 0
        self.size = 0
        self.compression = NONE
        self._current = b""
        self._pos = 0
        self._raw_done = False
        self._gen: Iterator[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._queue: deque[bytes | BaseException | None] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._ended = False
        first = self._read_raw()
        self._first = first
        if first.startswith(_GZIP_MAGIC):
            self.compression = GZIP
        elif first.startswith(_ZSTD_MAGIC) or _zstd_skippable(first):
            self.compression = ZSTD
        if threaded:
            self._thread = threading.Thread(target=self._pump, name="layer-decompress", daemon=True)
            self._thread.start()
        else:
            self._gen = self._produce()

    # -- producer side -------------------------------------------------------------------
    def _read_raw(self) -> bytes:
        if self._raw_done:
            return b""
        data = self._raw.read(RAW_CHUNK)
        if not data:
            self._raw_done = True
            return b""
        self._blob_hash.update(data)
        self.compressed_size += len(data)
        return data

    def _raw_chunks(self) -> Iterator[bytes]:
        first, self._first = self._first, b""
        if first:
            yield first
        while data := self._read_raw():
            yield data

    def _produce(self) -> Iterator[bytes]:
        if self.compression == GZIP:
            chunks = self._gunzip()
        elif self.compression == ZSTD:
            chunks = self._unzstd()
        else:
            # An uncompressed blob is the tar itself: one hash serves as digest and diff id.
            for chunk in self._raw_chunks():
                self.size += len(chunk)
                yield chunk
            return
        for chunk in chunks:
            self._tar_hash.update(chunk)
            self.size += len(chunk)
            yield chunk
        while self._read_raw():  # bytes after the compressed stream still count for the blob digest
            pass

    def _gunzip(self) -> Iterator[bytes]:
        member: zlib._Decompress | None = zlib.decompressobj(31)
        fed = False
        pending = b""
        for data in self._raw_chunks():
            data = pending + data if pending else data
            pending = b""
            while data:
                if member is None:
                    if len(data) < 2:
                        pending = data
                        break
                    if data[:2] != _GZIP_MAGIC:
                        return  # garbage after a complete member ends the stream, as in Go
                    member = zlib.decompressobj(31)
                try:
                    while True:
                        out = member.decompress(data, OUT_CHUNK)
                        data = member.unconsumed_tail
                        fed = True
                        if out:
                            yield out
                        if member.eof or (not data and len(out) < OUT_CHUNK):
                            break
                except zlib.error as e:
                    raise InvalidArgument(f"layer is not valid gzip: {e}; the blob is damaged") from None
                if member.eof:
                    data = member.unused_data
                    member = None
        if member is not None and fed:
            raise InvalidArgument("layer gzip stream ends early (unexpected EOF); the blob is truncated")
        if member is not None and not fed:
            raise InvalidArgument("layer blob is empty; expected a gzip stream")

    def _unzstd(self) -> Iterator[bytes]:
        from backports.zstd import ZstdDecompressor, ZstdError

        frame: ZstdDecompressor | None = ZstdDecompressor()
        pending = b""
        for data in self._raw_chunks():
            data = pending + data if pending else data
            pending = b""
            while data:
                if frame is None:
                    if len(data) < 4:
                        pending = data
                        break
                    if data[:4] != _ZSTD_MAGIC and not _zstd_skippable(data):
                        return  # garbage after a complete frame ends the stream
                    frame = ZstdDecompressor()
                try:
                    while True:
                        out = frame.decompress(data, OUT_CHUNK)
                        data = b""
                        if out:
                            yield out
                        if frame.eof or frame.needs_input:
                            break
                except ZstdError as e:
                    raise InvalidArgument(f"layer is not valid zstd: {e}; the blob is damaged") from None
                if frame.eof:
                    data = frame.unused_data
                    frame = None
        if frame is not None:
            raise InvalidArgument("layer zstd stream ends early (unexpected EOF); the blob is truncated")

    def _pump(self) -> None:
        try:
            for chunk in self._produce():
                with self._cond:
                    while len(self._queue) >= _QUEUE_DEPTH and not self._stopping:
                        self._cond.wait()
                    if self._stopping:
                        return
                    self._queue.append(chunk)
                    self._cond.notify_all()
            item: BaseException | None = None
        except BaseException as e:  # noqa: BLE001 - handed to the consumer thread, re-raised there
            item = e
        with self._cond:
            self._queue.append(item)
            self._cond.notify_all()

    def _next_chunk(self) -> bytes:
        if self._ended:
            return b""
        if self._gen is not None:
            chunk = next(self._gen, None)
            if chunk is None:
                self._ended = True
                return b""
            return chunk
        with self._cond:
            while not self._queue:
                self._cond.wait()
            item = self._queue.popleft()
            self._cond.notify_all()
        if item is None:
            self._ended = True
            return b""
        if isinstance(item, BaseException):
            self._ended = True
            raise item
        return item

    # -- consumer side -------------------------------------------------------------------
    def read(self, n: int = -1) -> bytes:
        """Some (at most ``n``) decompressed bytes; ``b""`` at the end."""
        if self._pos >= len(self._current):
            self._current = self._next_chunk()
            self._pos = 0
        end = len(self._current) if n < 0 else self._pos + n
        if self._pos == 0 and end >= len(self._current):
            data, self._current = self._current, b""
            return data
        data = self._current[self._pos : end]
        self._pos += len(data)
        return data

    def finish(self) -> None:
        """Read both streams to their ends so that ``digest`` and ``diff_id`` are complete."""
        self._current = b""
        while self._next_chunk():
            pass

    def close(self) -> None:
        """Stop the helper thread (if any) without reading further; idempotent."""
        if self._thread is not None:
            with self._cond:
                self._stopping = True
                self._queue.clear()
                self._cond.notify_all()
            self._thread.join()
            self._thread = None

    @property
    def digest(self) -> str:
        return "sha256:" + self._blob_hash.hexdigest()

    @property
    def diff_id(self) -> str:
        if self.compression == NONE:
            return self.digest
        return "sha256:" + self._tar_hash.hexdigest()


class LayerWriter:
    """Compress a tar stream into ``out``, computing ``diff_id`` and ``digest``; call ``close`` at the end."""

    def __init__(self, out: Writable, compression: str = GZIP, *, level: int | None = None) -> None:
        self._out = out
        self.compression = compression
        self._tar_hash = hashlib.sha256()
        self._blob_hash = hashlib.sha256()
        self.size = 0
        self.compressed_size = 0
        self._gz: zlib._Compress | None = None
        self._zstd: object = None
        if compression == GZIP:
            self._gz = zlib.compressobj(6 if level is None else level, zlib.DEFLATED, 31)
        elif compression == ZSTD:
            from backports.zstd import ZstdCompressor

            self._zstd = ZstdCompressor(3 if level is None else level)
        elif compression != NONE:
            raise Unsupported(f"unknown layer compression {compression!r}; use none, gzip or zstd")

    def _emit(self, data: bytes | bytearray | memoryview) -> None:
        if data:
            self._blob_hash.update(data)
            self.compressed_size += len(data)
            self._out.write(data)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._tar_hash.update(data)
        self.size += len(data)
        if self._gz is not None:
            self._emit(self._gz.compress(data))
        elif self._zstd is not None:
            from backports.zstd import ZstdCompressor

            assert isinstance(self._zstd, ZstdCompressor)
            self._emit(self._zstd.compress(data))
        else:
            self._emit(data)
        return len(data)

    def close(self) -> None:
        """Flush the compressor (does not close ``out``)."""
        if self._gz is not None:
            self._emit(self._gz.flush())
            self._gz = None
        elif self._zstd is not None:
            from backports.zstd import ZstdCompressor

            assert isinstance(self._zstd, ZstdCompressor)
            self._emit(self._zstd.flush(ZstdCompressor.FLUSH_FRAME))
            self._zstd = None

    @property
    def digest(self) -> str:
        return "sha256:" + self._blob_hash.hexdigest()

    @property
    def diff_id(self) -> str:
        return "sha256:" + self._tar_hash.hexdigest()
