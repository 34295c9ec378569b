"""The failures of a registry transfer, each with its own message and exit code.

Each class is a ``pallet.errors`` category (so the API server maps it to an
HTTP status like any other) and carries ``exit_code``, which the CLI uses
instead of the generic 1 (see ``pallet.cli.exits``). The codes are the BSD
``sysexits.h`` ones whose meaning fits:

====  ====================  ========================================================
code  class                 when
====  ====================  ========================================================
65    ``DigestMismatch``    content does not hash to the digest that names it
66    ``ManifestUnknown``   the repository, tag or digest does not exist there
69    ``Unreachable``       the registry cannot be reached (DNS, refused, timeout, 5xx)
76    ``TLSFailure``        the TLS handshake or the certificate check failed
77    ``Unauthorized``      no credentials, wrong credentials, or access denied
====  ====================  ========================================================
"""

from __future__ import annotations

import json

from pallet.errors import (
    DATA_LOSS,
    NOT_FOUND,
    UNAUTHENTICATED,
    UNAVAILABLE,
    Conflict,
    DataLoss,
    InvalidArgument,
    NotFound,
    PalletError,
    Unauthenticated,
    Unavailable,
    Unknown,
    Unsupported,
)

__all__ = [
    "DigestMismatch",
    "ManifestUnknown",
    "TLSFailure",
    "Unauthorized",
    "Unreachable",
    "error_codes",
    "from_status",
]


# a transfer's exit codes refine their categories' with sysexits (cli/exits.py lists them)
class DigestMismatch(DataLoss):
    category = DATA_LOSS
    exit_code = 65  # EX_DATAERR


class ManifestUnknown(NotFound):
    category = NOT_FOUND
    exit_code = 66  # EX_NOINPUT


class Unreachable(Unavailable):
    category = UNAVAILABLE
    exit_code = 69  # EX_UNAVAILABLE


class TLSFailure(Unavailable):
    category = UNAVAILABLE
    exit_code = 76  # EX_PROTOCOL


class Unauthorized(Unauthenticated):
    category = UNAUTHENTICATED
    exit_code = 77  # EX_NOPERM


def error_codes(body: bytes) -> list[tuple[str, str]]:
    """The ``(code, message)`` pairs of a registry error body (``{"errors": [...]}``), if it is one."""
    try:
        doc = json.loads(body)
    except ValueError:
        return []
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return []
    out = []
    for item in errors:
        if isinstance(item, dict):
            out.append((str(item.get("code", "")), str(item.get("message", ""))))
    return out


def _detail(body: bytes) -> str:
    codes = error_codes(body)
    if codes:
        return "; ".join(f"{message or code.lower()}" for code, message in codes)
    return body[:200].decode("utf-8", "replace").strip()


def from_status(status: int, body: bytes, *, what: str, host: str) -> PalletError:
    """The error for a failed registry response: ``what`` names the object (``manifest for busybox:nope``)."""
    codes = {code for code, _ in error_codes(body)}
    detail = _detail(body)
    if status == 401 or "UNAUTHORIZED" in codes:
        return Unauthorized(f'unauthorized: authentication required; run "pallet login {host}"')
    if status == 403 or "DENIED" in codes:
        return Unauthorized(
            f'denied: access to {what} is forbidden for these credentials; run "pallet login {host}" as a user who may'
        )
    if status == 404:
        if "MANIFEST_UNKNOWN" in codes or what.startswith("manifest"):
            return ManifestUnknown(f"{what} not found: manifest unknown")
        if "NAME_UNKNOWN" in codes:
            return ManifestUnknown(f"{what} not found: repository name not known to registry")
        return ManifestUnknown(f"{what} not found: {detail or 'not found'}")
    if status in (400, 422) and ("DIGEST_INVALID" in codes or "SIZE_INVALID" in codes):
        return DigestMismatch(f"{what}: the registry rejected the content: {detail}")
    if status >= 500:
        return Unreachable(f"registry {host} failed serving {what}: HTTP {status} {detail}; try again later")
    if status == 429 or "TOOMANYREQUESTS" in codes:
        return Unreachable(f"registry {host} refused {what}: too many requests; wait and try again")
    text = f"registry {host} refused {what}: HTTP {status} {detail}".rstrip()
    kind = {400: InvalidArgument, 405: Unsupported, 409: Conflict, 413: InvalidArgument, 422: InvalidArgument}
    return kind.get(status, Unknown)(text)
