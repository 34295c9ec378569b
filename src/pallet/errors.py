"""The one exception hierarchy of pallet, and the one table of what each kind of error means.

Every error a user can see is a ``PalletError``. Its *category* says what kind
of failure it is, and the category alone decides the HTTP status the API server
answers with and the exit code of a ``pallet`` command (containerd's error
categories, docker's exit codes)::

    category                class                   HTTP  exit  when
    not-found               NotFound                404   -     the named thing does not exist
    already-exists          AlreadyExists           409   -     the name or id is taken
    invalid-argument        InvalidArgument         400   -     bad input: flag, config field, file
                            └── SpecError                       a spec document's field; carries its JSON path
    conflict                Conflict                409   -     the thing is in use or changed under us
    failed-precondition     FailedPrecondition      409   -     not in a state that allows this
    unauthenticated         Unauthenticated         401   -     credentials missing or refused
    unavailable             Unavailable             503   -     a peer or resource cannot be reached
    unsupported             Unsupported             501   -     not possible on this host or by design
    data-loss               DataLoss                500   -     stored or received content is corrupt
    system                  SystemError_            500   -     the kernel refused an operation
    unknown                 Unknown                 500   -     a program pallet drives failed in its own words
    command-not-found       CommandNotFound         400   127   the container's program does not exist
    command-not-executable  CommandNotExecutable    400   126   the container's program cannot be run

"-" is the command's own failure code: 1, or docker's 125 for the verbs that
create and start containers (``run``, ``create``, ``start -a``, ``exec``). A
class may refine its category's exit code in its class body (the registry
client's transfer errors use sysexits: 65, 66, 69, 76, 77); nothing else sets
one, and nobody derives a category from a message's words except where a
foreign program's words are all there is (``engine/runtimes.py``, as dockerd
does with runc's). ``exit_code_of`` and ``http_status_of`` read this table.

Every class below ``PalletError`` states its category in its own body (a test
walks them); the shim reports an error by its category's name, and
``from_category`` turns that name back into the error.

Messages follow Go's lowercase style (``no such file or directory``): engines
that drive pallet match on that wording (see ``shared/runtime-contract.md``).
This module is imported by ``pallet-runtime`` on every call: standard library
only, nothing at import time.
"""

from __future__ import annotations

from errno import (
    E2BIG,
    EACCES,
    EAGAIN,
    EBADF,
    EBUSY,
    ECONNREFUSED,
    EEXIST,
    EINTR,
    EINVAL,
    EIO,
    EISDIR,
    ELOOP,
    EMFILE,
    ENAMETOOLONG,
    ENODEV,
    ENOENT,
    ENOEXEC,
    ENOMEM,
    ENOSPC,
    ENOSYS,
    ENOTDIR,
    ENOTEMPTY,
    EOPNOTSUPP,
    EPERM,
    EROFS,
    ESRCH,
    ETIMEDOUT,
    ETXTBSY,
    EXDEV,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar

__all__ = [
    "AlreadyExists",
    "Category",
    "CommandNotExecutable",
    "CommandNotFound",
    "Conflict",
    "DataLoss",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "PalletError",
    "SpecError",
    "SystemError_",
    "Unauthenticated",
    "Unavailable",
    "Unknown",
    "Unsupported",
    "errno_text",
    "exit_code_of",
    "from_category",
    "http_status_of",
    "report_line",
]


class Category:
    """A kind of failure: its name, its HTTP status and, where it has one of its own, its exit code."""

    __slots__ = ("exit_code", "http_status", "name")

    def __init__(self, name: str, http_status: int, exit_code: int | None = None) -> None:
        self.name = name
        self.http_status = http_status
        #: None: the failing command's own code (1, or 125 for run/create/start/exec)
        self.exit_code = exit_code

    def __repr__(self) -> str:
        return f"Category({self.name!r})"


# the table of the module docstring; the order is the docstring's
NOT_FOUND = Category("not-found", 404)
ALREADY_EXISTS = Category("already-exists", 409)
INVALID_ARGUMENT = Category("invalid-argument", 400)
CONFLICT = Category("conflict", 409)
FAILED_PRECONDITION = Category("failed-precondition", 409)
UNAUTHENTICATED = Category("unauthenticated", 401)
UNAVAILABLE = Category("unavailable", 503)
UNSUPPORTED = Category("unsupported", 501)
DATA_LOSS = Category("data-loss", 500)
SYSTEM = Category("system", 500)
UNKNOWN = Category("unknown", 500)
COMMAND_NOT_FOUND = Category("command-not-found", 400, 127)
COMMAND_NOT_EXECUTABLE = Category("command-not-executable", 400, 126)


class PalletError(Exception):
    """Base of every error pallet reports to a user; raise one of its categories, never it."""

    category: ClassVar[Category] = UNKNOWN
    #: set only where a class refines its category's exit code (see the table above)
    exit_code: ClassVar[int | None] = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    @property
    def http_status(self) -> int:
        return self.category.http_status


class NotFound(PalletError):
    category = NOT_FOUND


class AlreadyExists(PalletError):
    category = ALREADY_EXISTS


class InvalidArgument(PalletError):
    category = INVALID_ARGUMENT


class SpecError(InvalidArgument):
    """A field of a spec document (config.json, a manifest, ...) is wrong.

    ``path`` is the JSON path of the field, e.g. ``linux.namespaces[2].type``;
    the message then reads ``linux.namespaces[2].type: unknown namespace "foo"``.
    """

    category = INVALID_ARGUMENT

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


class Conflict(PalletError):
    category = CONFLICT


class FailedPrecondition(PalletError):
    category = FAILED_PRECONDITION


class Unauthenticated(PalletError):
    category = UNAUTHENTICATED


class Unavailable(PalletError):
    category = UNAVAILABLE


class Unsupported(PalletError):
    category = UNSUPPORTED


class DataLoss(PalletError):
    """Content that should be intact is not: a blob whose bytes no longer hash to its digest."""

    category = DATA_LOSS


class SystemError_(PalletError):  # noqa: N801 - the builtin name is taken
    """The kernel refused an operation; ``errno`` is kept for callers that care."""

    category = SYSTEM

    def __init__(self, what: str, errno: int) -> None:
        super().__init__(f"{what}: {errno_text(errno)}")
        self.errno = errno

    @classmethod
    def reported(cls, message: str) -> SystemError_:
        """One reported by another process: its whole message, the errno unknown (0)."""
        error = cls.__new__(cls)
        PalletError.__init__(error, message)
        error.errno = 0
        return error


class Unknown(PalletError):
    """A program pallet drives (an OCI runtime, a credential helper) failed; the message keeps its words."""

    category = UNKNOWN


class CommandNotFound(InvalidArgument):
    """The container's program does not exist (docker: exit 127)."""

    category = COMMAND_NOT_FOUND


class CommandNotExecutable(InvalidArgument):
    """The container's program exists but cannot be run (docker: exit 126)."""

    category = COMMAND_NOT_EXECUTABLE


# the class that stands for each category when an error crosses a process boundary by name
_CLASS_OF = {
    c.category.name: c
    for c in (
        NotFound,
        AlreadyExists,
        InvalidArgument,
        Conflict,
        FailedPrecondition,
        Unauthenticated,
        Unavailable,
        Unsupported,
        DataLoss,
        Unknown,
        CommandNotFound,
        CommandNotExecutable,
    )
}


def from_category(name: str, message: str) -> PalletError:
    """The error a category's name and message stand for (what the shim reports); ``Unknown`` if unknown."""
    if name == SYSTEM.name:
        return SystemError_.reported(message)
    return _CLASS_OF.get(name, Unknown)(message)


def report_line(error: PalletError | OSError) -> str:
    """``<category> <message>``: how an error crosses a process boundary (the shim's report).

    An ``OSError`` is the kernel's refusal: category ``system``, Go-style words.
    ``from_category`` reads it back.
    """
    if isinstance(error, PalletError):
        return f"{error.category.name} {error.message}"
    what = f"{error.filename}: " if error.filename else ""
    text = errno_text(error.errno) if error.errno else str(error)
    return f"{SYSTEM.name} {what}{text}"


def exit_code_of(error: PalletError, default: int) -> int:
    """The exit code of a command that failed with ``error``; ``default`` is the command's own failure code."""
    if error.exit_code is not None:
        return error.exit_code
    code = error.category.exit_code
    return default if code is None else code


def http_status_of(error: PalletError) -> int:
    """The HTTP status the API server answers ``error`` with."""
    return error.category.http_status


# Go's syscall error strings for the errnos a runtime meets. Engines match on
# these exact lowercase words (docker: "no such file or directory" -> exit 127),
# and Python's os.strerror() capitalises them, which breaks that matching.
_ERRNO_TEXT = {
    EPERM: "operation not permitted",
    ENOENT: "no such file or directory",
    ESRCH: "no such process",
    EINTR: "interrupted system call",
    EIO: "input/output error",
    E2BIG: "argument list too long",
    ENOEXEC: "exec format error",
    EBADF: "bad file descriptor",
    EAGAIN: "resource temporarily unavailable",
    ENOMEM: "cannot allocate memory",
    EACCES: "permission denied",
    EBUSY: "device or resource busy",
    EEXIST: "file exists",
    EXDEV: "invalid cross-device link",
    ENODEV: "no such device",
    ENOTDIR: "not a directory",
    EISDIR: "is a directory",
    EINVAL: "invalid argument",
    EMFILE: "too many open files",
    ETXTBSY: "text file busy",
    ENOSPC: "no space left on device",
    EROFS: "read-only file system",
    ENAMETOOLONG: "file name too long",
    ENOSYS: "function not implemented",
    ENOTEMPTY: "directory not empty",
    ELOOP: "too many levels of symbolic links",
    EOPNOTSUPP: "operation not supported",
    ETIMEDOUT: "connection timed out",
    ECONNREFUSED: "connection refused",
}


def errno_text(errno: int) -> str:
    """Go-style (lowercase) text for an errno."""
    text = _ERRNO_TEXT.get(errno)
    if text is None:
        import os

        text = os.strerror(errno)
        text = text[:1].lower() + text[1:]
    return text
