"""How a ``pallet`` command ends: the exit-code table and the one-line error.

Every failure a user sees passes through :func:`report`; it prints exactly one
line, ``pallet: <message>``, on stderr and returns the exit code. A traceback
is printed only with ``--debug``.

Exit codes follow docker's CLI convention; they come from the error's category
(the table in ``pallet/errors.py``), a class's refinement of it, or the
command's own failure code:

====  ==========================================================================
code  when
====  ==========================================================================
0     success
1     the command failed: any ``PalletError`` (not found, conflict, already
      exists, invalid argument such as a bad reference, unavailable, ...), or an
      operating-system error reading or writing a file the user named
65    registry transfer: content does not match its digest (``DigestMismatch``)
66    registry transfer: unknown repository, tag or digest (``ManifestUnknown``)
69    registry transfer: the registry cannot be reached (``Unreachable``)
76    registry transfer: TLS handshake or certificate check failed (``TLSFailure``)
77    registry transfer: unauthorized or denied (``Unauthorized``)
125   usage error: unknown command, unknown flag, bad flag value (``UsageError``);
      and any other failure of ``run``, ``create``, ``start -a``, ``exec``
126   ``run``/``start``/``exec``: the container's program cannot be run (``CommandNotExecutable``)
127   ``run``/``start``/``exec``: the container's program does not exist (``CommandNotFound``)
130   interrupted by SIGINT (Ctrl-C)
141   stdout was closed early (``pallet images | head -1``): nothing is printed
====  ==========================================================================

An exception that is none of these is a bug in pallet: it is reported as
``pallet: internal error: ...`` with exit code 1, still without a traceback
unless ``--debug`` is given.
"""

from __future__ import annotations

from pallet.errors import INVALID_ARGUMENT, InvalidArgument, PalletError, exit_code_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

__all__ = [
    "EXIT_ENGINE",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_PIPE",
    "EXIT_USAGE",
    "UsageError",
    "report",
]

EXIT_FAILURE = 1
#: docker's code for a failure of the engine in ``run``/``create``/``start -a``/``exec``
EXIT_ENGINE = 125
EXIT_USAGE = 125
EXIT_INTERRUPTED = 130
EXIT_PIPE = 141


class UsageError(InvalidArgument):
    """The command line itself is wrong: unknown command or flag, bad flag value.

    ``command`` names the command whose ``--help`` tells the right usage.
    """

    category = INVALID_ARGUMENT
    exit_code = EXIT_USAGE  # docker's code for a usage error, whatever the command

    def __init__(self, message: str, command: str = "") -> None:
        help_cmd = f"pallet {command} --help" if command else "pallet --help"
        super().__init__(f"{message}; see '{help_cmd}'")
        self.command = command


def report(err: BaseException, stderr: TextIO, *, debug: bool, failure: int = EXIT_FAILURE) -> int:
    """Print ``err`` as one line on ``stderr`` and return the exit code for it.

    ``failure``: the command's own code for an error whose category has none
    (``run``, ``create``, ``start -a`` and ``exec`` use docker's 125).
    """
    if debug:
        import traceback

        traceback.print_exception(err, file=stderr)
    if isinstance(err, PalletError):
        # the category's code (errors.py's table), a class's refinement, or the command's own
        code, text = exit_code_of(err, failure), err.message
    elif isinstance(err, KeyboardInterrupt):
        code, text = EXIT_INTERRUPTED, "interrupted"
    elif isinstance(err, OSError):
        # a file the user named (-o, -i, a tarball): say which and why, Go style
        from pallet.errors import errno_text

        what = f"{err.filename}: " if err.filename else ""
        code, text = EXIT_FAILURE, f"{what}{errno_text(err.errno) if err.errno else err}"
    else:
        code = EXIT_FAILURE
        text = f"internal error: {type(err).__name__}: {err} (run with --debug for the traceback)"
    text = " ".join(text.split("\n"))
    stderr.write(f"pallet: {text}\n")
    stderr.flush()
    return code
