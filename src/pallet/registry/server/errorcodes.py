"""The error codes of the OCI distribution spec and the HTTP status each one answers with.

A handler raises ``RegistryError``; the request loop turns it into the spec's
body ``{"errors": [{"code": ..., "message": ..., "detail": ...}]}`` with the
status below. The statuses are those of the spec's endpoint table, and where
the spec leaves a choice, those of distribution (docker-registry), which
clients have been written against.
"""

from __future__ import annotations

import json

__all__ = ["STATUS", "RegistryError", "error_body"]

#: code -> (HTTP status, the spec's message for it)
STATUS: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (400, "manifest references a manifest or blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown to registry"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "the operation is unsupported"),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "RANGE_INVALID": (416, "invalid content range"),
    "PAGINATION_NUMBER_INVALID": (400, "invalid number of results requested"),
    "UNKNOWN": (500, "unknown error"),
}


class RegistryError(Exception):
    """A request the registry refuses, with the spec's error code.

    ``status`` overrides the code's usual status where an endpoint of the spec
    asks for another one (e.g. 416 for an out-of-order chunk). ``headers`` are
    sent with the error (a 401's ``WWW-Authenticate`` challenge).
    """

    def __init__(
        self,
        code: str,
        message: str = "",
        detail: object = None,
        *,
        status: int = 0,
        headers: dict[str, str] | None = None,
    ) -> None:
        default_status, default_message = STATUS[code]
        super().__init__(message or default_message)
        self.code = code
        self.message = message or default_message
        self.detail = detail
        self.status = status or default_status
        self.headers = headers or {}


def error_body(errors: list[RegistryError]) -> bytes:
    """The JSON body the spec defines for one or more errors."""
    items: list[dict[str, object]] = []
    for err in errors:
        item: dict[str, object] = {"code": err.code, "message": err.message}
        if err.detail is not None:
            item["detail"] = err.detail
        items.append(item)
    return json.dumps({"errors": items}).encode()
