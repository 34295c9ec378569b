"""A request as a route handler sees it, and the answers a handler returns.

A handler is a function ``Request -> Response`` (``routing.py``). The request
gives the path's parameters, docker's query conventions (``1``/``true``
booleans, JSON ``filters``), the body (as JSON, bytes or a stream; chunked or
sized) and the engine (``request.service``, opened on first use and closed
once the answer is sent). Answers:

- ``Json(doc, status=200)``; ``Empty(status=204)``; ``Raw(data, content_type)``;
- ``Stream(chunks, content_type)``: sent with chunked encoding as the
  iterator yields (a log follow, a JSON progress stream); if the client goes
  away the iterator is closed, so a generator's ``finally`` undoes its work;
- ``Hijack(run)``: the connection is taken over (attach, exec start):
  ``101 UPGRADED`` when the client asked for ``Upgrade: tcp``, else docker's
  older ``200`` hijack; then ``run(conn)`` owns the raw connection (``hijack.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol

from pallet.api.errors import HttpError
from pallet.api.versions import Version
from pallet.errors import InvalidArgument

if TYPE_CHECKING:
    from pallet.api.hijack import Connection
    from pallet.engine.service import Service

__all__ = ["Body", "Empty", "Hijack", "Json", "Raw", "Request", "Response", "Stream", "WholeBody"]

#: the largest JSON body a request may carry (a create's config is a few KiB); streams have no limit
JSON_BODY_LIMIT = 4 << 20

_TRUE = frozenset({"1", "true", "True", "TRUE", "yes"})
_FALSE = frozenset({"", "0", "false", "False", "FALSE", "no"})


class Reader(Protocol):
    """The connection's buffered reader."""

    def read(self, size: int = -1, /) -> bytes: ...
    def readline(self, size: int = -1, /) -> bytes: ...
    def read1(self, size: int = -1, /) -> bytes: ...


class Body:
    """A request body read as it arrives: ``Content-Length`` bytes, or HTTP/1.1 chunks."""

    def __init__(self, rfile: Reader, *, length: int | None, chunked: bool) -> None:
        self._rfile = rfile
        self._left = length if length is not None else 0
        self._chunked = chunked
        self._chunk_left = 0
        self._done = not chunked and not self._left

    def read(self, size: int = 65536) -> bytes:
        """Up to ``size`` bytes; b"" at the end. ``HttpError`` 400 if the framing is broken."""
        if self._done or size <= 0:
            return b""
        if self._chunked:
            return self._read_chunked(size)
        data = self._rfile.read(min(size, self._left))
        if not data:
            raise HttpError(400, "unexpected EOF in request body")
        self._left -= len(data)
        self._done = self._left == 0
        return data

    def _read_chunked(self, size: int) -> bytes:
        if self._chunk_left == 0:
            line = self._rfile.readline(1024)
            try:
                self._chunk_left = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise HttpError(400, "malformed chunked request body") from None
            if self._chunk_left < 0:
                raise HttpError(400, "malformed chunked request body")
            if self._chunk_left == 0:
                while self._rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                self._done = True
                return b""
        data = self._rfile.read(min(size, self._chunk_left))
        if not data:
            raise HttpError(400, "unexpected EOF in request body")
        self._chunk_left -= len(data)
        if self._chunk_left == 0:
            self._rfile.readline(16)  # the CRLF after the chunk
        return data

    def read_all(self, limit: int) -> bytes:
        """The whole body; ``HttpError`` 413 past ``limit`` bytes."""
        parts: list[bytes] = []
        total = 0
        while data := self.read():
            total += len(data)
            if total > limit:
                raise HttpError(413, f"request body is larger than the limit of {limit} bytes")
            parts.append(data)
        return b"".join(parts)

    def drain(self) -> None:
        """Read and drop what is left, so the connection can serve its next request."""
        while self.read():
            pass

    @property
    def done(self) -> bool:
        return self._done


class WholeBody:
    """A request body whose ``read(n)`` returns ``n`` bytes unless the body ends first, as a file's does
    (chunked bodies arrive in pieces; the archive readers count on whole reads)."""

    def __init__(self, body: Body) -> None:
        self._body = body

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            return b"".join(iter(self._body.read, b""))
        parts: list[bytes] = []
        while n > 0 and (data := self._body.read(n)):
            parts.append(data)
            n -= len(data)
        return b"".join(parts)


class Request:
    """One API request: method, path parameters, query, headers, body, API version, and the engine."""

    def __init__(
        self,
        *,
        method: str,
        path: str,
        params: Mapping[str, str],
        query: Mapping[str, list[str]],
        headers: Mapping[str, str],
        body: Body,
        version: Version,
        open_service: Callable[[], Service],
        shared: MutableMapping[str, Any],
        client_gone: Callable[[], bool] = lambda: False,
    ) -> None:
        self.method = method
        self.path = path
        self.params = params
        self.query = query
        self.headers = headers
        self.body = body
        self.version = version
        self.open_service = open_service
        #: what requests share while the service runs (exec instances, attaches waiting for a start)
        self.shared = shared
        #: whether the client hung up (a long stream or wait stops its work then)
        self.client_gone = client_gone
        self._service: Service | None = None

    @property
    def service(self) -> Service:
        """The engine, opened on first use; closed by the server once the answer is sent."""
        if self._service is None:
            self._service = self.open_service()
        return self._service

    def close(self) -> None:
        if self._service is not None:
            self._service.close()
            self._service = None

    # --- the query, docker's way ---------------------------------------------------------------

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[-1] if values else default

    def args(self, name: str) -> list[str]:
        return list(self.query.get(name, ()))

    def has(self, name: str) -> bool:
        return name in self.query

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean parameter: ``1``/``true`` or ``0``/``false`` (empty is false, as docker's ``BoolValue``)."""
        if name not in self.query:
            return default
        value = self.arg(name)
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise InvalidArgument(f"invalid value for {name}: {value!r} is not a boolean")

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.arg(name)
        if not value:
            return default
        try:
            return int(value)
        except ValueError:
            raise InvalidArgument(f"invalid value for {name}: {value!r} is not an integer") from None

    def filters(self) -> dict[str, list[str]]:
        """docker's ``filters`` parameter: ``{"key": {"value": true}}`` or ``{"key": ["value"]}``."""
        raw = self.arg("filters")
        if not raw:
            return {}
        try:
            doc = json.loads(raw)
        except ValueError:
            raise InvalidArgument(f"invalid filter '{raw}'") from None
        if not isinstance(doc, dict):
            raise InvalidArgument(f"invalid filter '{raw}'")
        out: dict[str, list[str]] = {}
        for key, value in doc.items():
            if isinstance(value, dict):
                out[key] = [str(v) for v, on in value.items() if on]
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                out[key] = list(value)
            else:
                raise InvalidArgument(f"invalid filter '{raw}'")
        return out

    # --- the body ------------------------------------------------------------------------------

    def json(self, *, required: bool = True) -> Any:
        """The body parsed as JSON (an object unless ``required`` is false and the body is empty)."""
        data = self.body.read_all(JSON_BODY_LIMIT)
        if not data.strip():
            if required:
                raise InvalidArgument("Invalid JSON: the request body is empty")
            return None
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as e:
            raise InvalidArgument(f"Invalid JSON: {e}") from None

    def json_object(self, *, required: bool = True) -> dict[str, Any]:
        doc = self.json(required=required)
        if doc is None:
            return {}
        if not isinstance(doc, dict):
            raise InvalidArgument("Invalid JSON: the request body must be a JSON object")
        return doc


class Response:
    """What a handler answers (one of the classes below)."""

    status: int = 200
    headers: Mapping[str, str] = {}


class Json(Response):
    def __init__(self, doc: object, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        self.doc = doc
        self.status = status
        self.headers = headers or {}


class Empty(Response):
    def __init__(self, status: int = 204, headers: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.headers = headers or {}


class Raw(Response):
    def __init__(
        self,
        data: bytes,
        content_type: str = "text/plain; charset=utf-8",
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.data = data
        self.content_type = content_type
        self.status = status
        self.headers = headers or {}


class Stream(Response):
    """A body sent as ``chunks`` yields it (chunked encoding, flushed per chunk)."""

    def __init__(
        self,
        chunks: Iterable[bytes],
        content_type: str = "application/json",
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.chunks: Iterator[bytes] = iter(chunks)
        self.content_type = content_type
        self.status = status
        self.headers = headers or {}


class Hijack(Response):
    """The connection taken over: ``run(conn)`` owns it once the upgrade answer is sent."""

    def __init__(self, run: Callable[[Connection], None], content_type: str) -> None:
        self.run = run
        self.content_type = content_type
        self.status = 101
        self.headers = {}
