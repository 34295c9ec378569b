"""A request's body as a stream: ``Content-Length`` or ``Transfer-Encoding: chunked``.

``http.server`` leaves the body to the handler. This reader hands it out in
bounded pieces (a multi-GB layer never sits in memory), and makes sure a
keep-alive connection is left at the start of the next request: whatever a
handler did not read is drained, or the connection is closed when that would
mean reading too much.
"""

from __future__ import annotations

from pallet.registry.server.errorcodes import RegistryError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from email.message import Message
    from typing import BinaryIO

__all__ = ["CHUNK", "Body"]

#: the largest piece handed out at once (and the size of disk writes)
CHUNK = 1 << 20

#: at most this much unread body is drained to keep a connection; beyond, it is closed
_DRAIN_LIMIT = 1 << 20

_MAX_LINE = 4096


def _bad(reason: str) -> RegistryError:
    return RegistryError("BLOB_UPLOAD_INVALID", f"malformed request body: {reason}", status=400)


class Body:
    """The body of one request; read it once, through ``chunks`` or ``read_all``."""

    __slots__ = ("_chunked", "_remaining", "_stream", "done", "length")

    def __init__(self, stream: BinaryIO, headers: Message) -> None:
        self._stream = stream
        encoding = (headers.get("Transfer-Encoding") or "").lower()
        self._chunked = "chunked" in encoding
        #: the declared length, None for chunked bodies
        self.length: int | None = None
        if not self._chunked:
            text = headers.get("Content-Length")
            try:
                self.length = int(text) if text else 0
            except ValueError:
                raise _bad(f"Content-Length {text!r} is not a number") from None
            if self.length < 0:
                raise _bad("negative Content-Length")
        self._remaining = self.length or 0
        #: the whole body has been consumed
        self.done = not self._chunked and self._remaining == 0

    def _read_exact(self, size: int) -> bytes:
        data = self._stream.read(size)
        if len(data) != size:
            raise ConnectionResetError("client closed the connection in the middle of the body")
        return data

    def _chunk_size(self) -> int:
        line = self._stream.readline(_MAX_LINE)
        if not line.endswith(b"\n"):
            raise _bad("chunk size line missing or too long")
        text = line.split(b";", 1)[0].strip()
        try:
            return int(text, 16)
        except ValueError:
            raise _bad(f"bad chunk size {text!r}") from None

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        """The body in pieces of at most ``size`` bytes."""
        if self.done:
            return
        if not self._chunked:
            while self._remaining:
                piece = self._read_exact(min(size, self._remaining))
                self._remaining -= len(piece)
                yield piece
            self.done = True
            return
        while True:
            length = self._chunk_size()
            if length == 0:
                while self._stream.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                    pass  # trailers: nothing here uses them
                self.done = True
                return
            while length:
                piece = self._read_exact(min(size, length))
                length -= len(piece)
                yield piece
            if self._stream.readline(_MAX_LINE) not in (b"\r\n", b"\n"):
                raise _bad("chunk not followed by CRLF")

    def read_all(self, limit: int) -> bytes:
        """The whole body; ``limit`` bytes at most, else a 413 ``SIZE_INVALID``."""
        if self.length is not None and self.length > limit:
            raise RegistryError("SIZE_INVALID", f"body larger than {limit} bytes", status=413)
        parts: list[bytes] = []
        total = 0
        for piece in self.chunks():
            total += len(piece)
            if total > limit:
                raise RegistryError("SIZE_INVALID", f"body larger than {limit} bytes", status=413)
            parts.append(piece)
        return b"".join(parts)

    def drain(self) -> bool:
        """Consume the unread rest so the connection can carry the next request.

        False when the rest is too large (or malformed) to be worth reading:
        the caller must then close the connection.
        """
        if self.done:
            return True
        if self.length is not None and self._remaining > _DRAIN_LIMIT:
            return False
        total = 0
        try:
            for piece in self.chunks():
                total += len(piece)
                if total > _DRAIN_LIMIT:
                    return False
        except (RegistryError, OSError):
            return False
        return True
