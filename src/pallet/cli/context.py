"""What every command handler gets: the global flags and the process's streams."""

from __future__ import annotations

from pallet.cli.exits import EXIT_FAILURE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO, TextIO

    from pallet.image.store import ImageStore

__all__ = ["Context"]


class Context:
    """The global options of one ``pallet`` invocation and where it reads and writes.

    Handlers write through ``ctx.out``/``ctx.err`` (never ``print`` to
    ``sys.stdout``) so tests can run commands in-process and capture output.
    """

    __slots__ = (
        "debug",
        "err",
        "exits_after",
        "failure",
        "out",
        "root",
        "run_root",
        "stdin",
        "stdout_binary",
    )

    def __init__(
        self,
        *,
        root: str,
        run_root: str,
        debug: bool,
        out: TextIO,
        err: TextIO,
        stdin: BinaryIO,
        stdout_binary: BinaryIO,
        exits_after: bool = False,
    ) -> None:
        self.root = root
        self.run_root = run_root
        self.debug = debug
        self.out = out
        self.err = err
        self.stdin = stdin
        self.stdout_binary = stdout_binary
        #: the process ends with ``os._exit`` after the command (the console script): stores
        #: need not be closed (see ``Engine.open``)
        self.exits_after = exits_after
        #: the exit code of a failure whose category has none (``pallet/errors.py``): 1, or
        #: docker's 125 once ``run``, ``create``, ``start -a`` or ``exec`` is under way
        self.failure = EXIT_FAILURE

    def image_store(self) -> ImageStore:
        """Open the image store under ``--root`` (created on first use); close it when done."""
        from pallet.image.store import ImageStore

        return ImageStore.open(self.root)
