"""The one exception hierarchy of pallet.

Every error a user can see is a ``PalletError``; its category says what kind of
failure it is, and the message says what was wrong and what to do about it.
The CLI maps categories to exit codes, the API server to HTTP statuses::

    PalletError                 anything pallet reports on purpose
    ├── NotFound                the named thing does not exist        (404)
    ├── AlreadyExists           the name or id is taken               (409)
    ├── InvalidArgument         bad input: flag, config field, file   (400)
    │   └── SpecError           a spec document with a bad field; carries its JSON path
    ├── Conflict                the thing is in use or changed under us (409)
    ├── FailedPrecondition      not in a state that allows this       (409)
    ├── Unavailable             a peer or resource cannot be reached  (503)
    ├── Unsupported             not possible on this host or by design (501)
    └── SystemError_            the kernel refused an operation       (500)

Messages follow Go's lowercase style (``no such file or directory``): engines
that drive pallet match on that wording (see ``shared/runtime-contract.md``).
This module is imported by ``pallet-runtime`` on every call: standard library
only, nothing at import time.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "Conflict",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "PalletError",
    "SpecError",
    "SystemError_",
    "Unavailable",
    "Unsupported",
    "errno_text",
]


class PalletError(Exception):
    """Base of every error pallet reports to a user."""

    #: the HTTP status the API server answers with for this category
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(PalletError):
    http_status = 404


class AlreadyExists(PalletError):
    http_status = 409


class InvalidArgument(PalletError):
    http_status = 400


class SpecError(InvalidArgument):
    """A field of a spec document (config.json, a manifest, ...) is wrong.

    ``path`` is the JSON path of the field, e.g. ``linux.namespaces[2].type``;
    the message then reads ``linux.namespaces[2].type: unknown namespace "foo"``.
    """

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


class Conflict(PalletError):
    http_status = 409


class FailedPrecondition(PalletError):
    http_status = 409


class Unavailable(PalletError):
    http_status = 503


class Unsupported(PalletError):
    http_status = 501


class SystemError_(PalletError):  # noqa: N801 - the builtin name is taken
    """The kernel refused an operation; ``errno`` is kept for callers that care."""

    def __init__(self, what: str, errno: int) -> None:
        super().__init__(f"{what}: {errno_text(errno)}")
        self.errno = errno


# Go's syscall error strings for the errnos a runtime meets. Engines match on
# these exact lowercase words (docker: "no such file or directory" -> exit 127),
# and Python's os.strerror() capitalises them, which breaks that matching.
_ERRNO_TEXT = {
    1: "operation not permitted",
    2: "no such file or directory",
    3: "no such process",
    4: "interrupted system call",
    5: "input/output error",
    7: "argument list too long",
    8: "exec format error",
    9: "bad file descriptor",
    11: "resource temporarily unavailable",
    12: "cannot allocate memory",
    13: "permission denied",
    16: "device or resource busy",
    17: "file exists",
    18: "invalid cross-device link",
    19: "no such device",
    20: "not a directory",
    21: "is a directory",
    22: "invalid argument",
    24: "too many open files",
    26: "text file busy",
    28: "no space left on device",
    30: "read-only file system",
    36: "file name too long",
    38: "function not implemented",
    39: "directory not empty",
    40: "too many levels of symbolic links",
    95: "operation not supported",
    110: "connection timed out",
    111: "connection refused",
}


def errno_text(errno: int) -> str:
    """Go-style (lowercase) text for an errno."""
    text = _ERRNO_TEXT.get(errno)
    if text is None:
        import os

        text = os.strerror(errno)
        text = text[:1].lower() + text[1:]
    return text
