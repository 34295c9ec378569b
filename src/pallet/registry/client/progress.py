"""Progress of a pull or push, for people: bars on a terminal, one line per event otherwise.

Transfers report through ``Progress`` (thread-safe: layers move in parallel):
``start`` a task (a layer) with its size, ``advance`` it by bytes, set its
``status`` (``Already exists``, ``Verifying Checksum``, ``Download complete``,
``Pull complete``, ``Pushed``, …) or its ``phase`` (``Downloading``,
``Extracting``, ``Pushing``: what its bytes are doing, which dockerd reports
only with byte counts, so a line printer shows no line for it), print a
``message`` (docker's daemon sends these lines too), or end with the
``result`` (the reference that docker's CLI prints itself).

- ``BarProgress``: one ``rich`` bar per layer with size and speed. ``rich`` is
  imported only here, only when stderr is a terminal (+62 ms; never on ``run``).
- ``LineProgress``: docker's non-terminal form, ``<short id>: <status>`` per
  event; byte counts are not printed (a log gets no bar noise).
- ``QuietProgress``: nothing but the ``result`` (``-q``).
"""

from __future__ import annotations

import threading

__all__ = ["BarProgress", "LineProgress", "Progress", "QuietProgress", "open_progress"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO


class Progress:
    """The interface, and the quiet implementation's base: every method may be called from any thread."""

    def start(self, key: str, total: int, status: str) -> None:
        """A task ``key`` (a short id) of ``total`` bytes appears with ``status``."""

    def advance(self, key: str, n: int) -> None:
        """``n`` more bytes of ``key`` moved."""

    def status(self, key: str, text: str) -> None:
        """``key`` reached a step (``Verifying Checksum``, ``Pull complete``)."""

    def phase(self, key: str, text: str) -> None:
        """``key``'s bytes now move as ``text`` (``Downloading``, ``Extracting``, ``Pushing``): a bar's label,
        and the status of the byte counts that follow; no line of its own."""

    def message(self, text: str) -> None:
        """A line for the user (``Digest: sha256:…``), not printed with ``-q``."""

    def result(self, text: str, *, quiet_only: bool = False) -> None:
        """The reference the work ended with: the line docker's CLI prints itself, never its daemon.

        After a pull it is printed always, after a push only with ``-q``
        (``quiet_only``), as ``docker pull``/``docker push`` do.
        """

    def done(self) -> None:
        """Every transfer is over: the summary lines that follow go below the bars."""

    def close(self) -> None:
        """Stop drawing; call at the end (also on failure); idempotent."""


class QuietProgress(Progress):
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._lock = threading.Lock()

    def result(self, text: str, *, quiet_only: bool = False) -> None:
        with self._lock:
            self.out.write(text + "\n")
            self.out.flush()


class LineProgress(Progress):
    """``<key>: <status>`` lines, like ``docker pull`` into a pipe."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        with self._lock:
            self.out.write(text + "\n")
            self.out.flush()

    def start(self, key: str, total: int, status: str) -> None:
        self._line(f"{key}: {status}")

    def status(self, key: str, text: str) -> None:
        self._line(f"{key}: {text}")

    def message(self, text: str) -> None:
        self._line(text)

    def result(self, text: str, *, quiet_only: bool = False) -> None:
        if not quiet_only:
            self._line(text)


class BarProgress(Progress):
    """One ``rich`` progress bar per task, with size and speed."""

    def __init__(self, out: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TransferSpeedColumn,
        )
        from rich.progress import (
            Progress as RichProgress,
        )

        self._console = Console(file=out, highlight=False)
        self._bars = RichProgress(
            TextColumn("{task.fields[key]}:"),
            TextColumn("{task.fields[status]:<18}"),
            BarColumn(bar_width=30),
            DownloadColumn(binary_units=False),
            TransferSpeedColumn(),
            console=self._console,
            transient=False,
            refresh_per_second=8,
        )
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stopped = False
        self._bars.start()

    def start(self, key: str, total: int, status: str) -> None:
        with self._lock:
            self._tasks[key] = self._bars.add_task("", total=max(total, 1), key=key, status=status)

    def advance(self, key: str, n: int) -> None:
        task = self._tasks.get(key)
        if task is not None:
            self._bars.advance(task, n)

    def status(self, key: str, text: str) -> None:
        task = self._tasks.get(key)
        if task is None:
            self.start(key, 0, text)
            return
        done = text in (
            "Already exists",
            "Pull complete",
            "Pushed",
            "Layer already exists",
        ) or text.startswith("Mounted from")
        if done:
            total = self._bars.tasks[task].total or 1
            self._bars.update(task, status=text, completed=total)
        else:
            self._bars.update(task, status=text)

    def phase(self, key: str, text: str) -> None:
        self.status(key, text)

    def message(self, text: str) -> None:
        # soft_wrap: a long digest line stays one line, as docker prints it
        self._console.print(text, markup=False, highlight=False, soft_wrap=True)

    def result(self, text: str, *, quiet_only: bool = False) -> None:
        if not quiet_only:
            self.message(text)

    def done(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._bars.stop()

    def close(self) -> None:
        self.done()


def open_progress(out: TextIO, *, quiet: bool = False) -> Progress:
    """Bars if ``out`` is a terminal, lines if not, or only the result with ``quiet``."""
    if quiet:
        return QuietProgress(out)
    isatty = getattr(out, "isatty", None)
    if isatty is not None and isatty():
        return BarProgress(out)
    return LineProgress(out)
