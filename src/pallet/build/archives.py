"""Compressed streams a build reads: a context tar on stdin, and ``ADD`` of a local archive.

docker's rule for ``ADD``: a local file that is a tar (plain, gzip, bzip2,
xz or zstd compressed — told by its first bytes, never by its name) is
unpacked into the destination; anything else is copied as it is.
"""

from __future__ import annotations

import bz2
import contextlib
import lzma
import zlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO

__all__ = ["compression_of_head", "decompressed", "looks_like_tar"]

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


def compression_of_head(head: bytes) -> str:
    """``gzip``, ``bzip2``, ``xz``, ``zstd`` or ``none``, from a stream's first bytes."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return "none"


class _Prefixed:
    """A readable that gives ``head`` first, then the rest of ``raw``."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        self._head = head
        self._raw = raw

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0:
                data, self._head = self._head + self._raw.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._raw.read(n)


class _Decompressing:
    """A readable of the decompressed bytes of ``raw`` (one of the stream decompressors)."""

    def __init__(self, raw: _Prefixed, kind: str) -> None:
        self._raw = raw
        self._kind = kind
        self._decoder = self._new()
        self._buffer = b""
        self._eof = False

    def _new(self) -> zlib._Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor | object:
        if self._kind == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        if self._kind == "bzip2":
            return bz2.BZ2Decompressor()
        if self._kind == "xz":
            return lzma.LZMADecompressor()
        from backports.zstd import ZstdDecompressor

        return ZstdDecompressor()

    def read(self, n: int = -1) -> bytes:
        want = n if n >= 0 else 1 << 62
        while len(self._buffer) < want and not self._eof:
            chunk = self._raw.read(1 << 16)
            if not chunk:
                self._eof = True
                break
            self._buffer += self._decoder.decompress(chunk)  # type: ignore[attr-defined]
            if getattr(self._decoder, "eof", False):
                rest = getattr(self._decoder, "unused_data", b"")
                if (
                    rest
                    and self._kind in ("gzip", "bzip2", "xz", "zstd")
                    and compression_of_head(rest) == self._kind
                ):
                    self._decoder = self._new()  # concatenated members
                    self._buffer += self._decoder.decompress(rest)  # type: ignore[attr-defined]
                else:
                    self._eof = True
        if n < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data


@contextlib.contextmanager
def decompressed(raw: BinaryIO) -> Iterator[_Prefixed | _Decompressing]:
    """The bytes of ``raw`` decompressed by what its magic says (plain when it says nothing)."""
    head = raw.read(6)
    prefixed = _Prefixed(head, raw)
    kind = compression_of_head(head)
    yield prefixed if kind == "none" else _Decompressing(prefixed, kind)


def looks_like_tar(raw: BinaryIO) -> bool:
    """Whether a file (positioned at its start; left at an unknown offset) holds a tar, maybe compressed."""
    try:
        with decompressed(raw) as stream:
            block = b""
            while len(block) < 512:
                more = stream.read(512 - len(block))
                if not more:
                    break
                block += more
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError):
        return False
    if len(block) < 512:
        return False
    if block[257:262] == b"ustar":
        return True
    # a v7 tar: the header checksum is the only sign
    try:
        recorded = int(block[148:156].split(b"\x00")[0].strip() or b"-1", 8)
    except ValueError:
        return False
    computed = sum(block[:148]) + 8 * 32 + sum(block[156:])
    return recorded == computed
