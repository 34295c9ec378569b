"""How an error becomes an HTTP answer: docker's ``{"message": …}`` and the status of its category.

The status comes from ``pallet.errors``' one table (``http_status_of``): not
found 404, conflicts and wrong states 409, bad input 400, unsupported 501, the
rest 500. What only HTTP knows (an unknown path, a body over the limit) is an
``HttpError`` carrying its own status.
"""

from __future__ import annotations

from pallet.errors import InvalidArgument, PalletError, http_status_of

__all__ = ["HttpError", "error_body", "status_of"]


class HttpError(InvalidArgument):
    """A request refused for an HTTP reason, with the status to answer (404 page not found, 413, 405…)."""

    category = InvalidArgument.category  # the status carried is what the client sees

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def status_of(error: PalletError) -> int:
    if isinstance(error, HttpError):
        return error.status
    return http_status_of(error)


def error_body(message: str) -> bytes:
    """docker's error document."""
    import json

    return json.dumps({"message": message}).encode() + b"\n"
