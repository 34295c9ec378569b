"""What a build prints: BuildKit's two progress modes, or nothing with ``-q``.

- ``plain`` (and ``auto`` off a terminal): ``#N [stage i/n] INSTRUCTION``,
  output lines with their time since the step began, ``#N CACHED``,
  ``#N DONE 0.2s``, ``#N ERROR: …``;
- ``tty`` (and ``auto`` on a terminal): a live view — the running step as
  ``=> [i/n] INSTRUCTION`` with its output below as ``=> => # line``; when it
  ends its output is folded away (ANSI cursor moves) and it is reprinted as
  ``=> [i/n] INSTRUCTION  0.3s`` or ``=> CACHED [i/n] …``; a failed step
  keeps its output.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

__all__ = ["Progress", "Step"]


class Step:
    """One numbered vertex of the build's progress."""

    def __init__(self, progress: Progress, number: int, title: str) -> None:
        self._progress = progress
        self.number = number
        self.title = title
        self.started = time.monotonic()
        self.tail: list[str] = []  # the last output lines, for an error message
        self._partial = b""
        self.finished = False
        self._shown = 0  # live view: lines printed below the title, folded away at the end
        if progress.tty:
            progress.line(f"=> {title}")
        else:
            progress.line(f"#{number} {title}")

    def output(self, data: bytes) -> None:
        self._partial += data
        *lines, self._partial = self._partial.split(b"\n")
        for raw in lines:
            self._emit(raw)

    def _emit(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        self.tail = [*self.tail[-19:], text]
        if self._progress.tty:
            self._progress.line(f"=> => # {text}")
            self._shown += 1
        else:
            self._progress.line(f"#{self.number} {time.monotonic() - self.started:.3f} {text}")

    def output_stderr(self, data: bytes) -> None:
        """What the step wrote to its stderr: to the progress's ``stderr`` sink as written, when it
        has one (docker's legacy builder marks it), else as ``output``."""
        sink = self._progress.stderr
        if sink is None:
            self.output(data)
            return
        self.flush()
        text = data.decode("utf-8", "replace")
        self.tail = [*self.tail, *text.splitlines()][-20:]
        sink(text)

    def flush(self) -> None:
        if self._partial:
            self._emit(self._partial)
            self._partial = b""

    def note(self, text: str) -> None:
        if self._progress.tty:
            self._progress.line(f"=> => {text}")
            self._shown += 1
        else:
            self._progress.line(f"#{self.number} {text}")

    def _fold(self, final: str) -> None:
        """Live view: replace the title and the lines below it with the step's final line."""
        self._progress.raw(f"\033[{self._shown + 1}F\033[J")
        self._shown = 0
        self._progress.line(final)

    def cached(self) -> None:
        self.finished = True
        if self._progress.tty:
            self._fold(f"=> CACHED {self.title}")
        else:
            self._progress.line(f"#{self.number} CACHED")

    def done(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.flush()
        elapsed = time.monotonic() - self.started
        if self._progress.tty:
            self._fold(f"=> {self.title}  {elapsed:.1f}s")
        else:
            self._progress.line(f"#{self.number} DONE {elapsed:.1f}s")

    def error(self, message: str) -> None:
        self.finished = True
        self.flush()
        if self._progress.tty:
            self._progress.line(f"=> ERROR {self.title}: {message}")
        else:
            self._progress.line(f"#{self.number} ERROR: {message}")


class Progress:
    """Numbers the steps and writes their lines to ``out`` (None: quiet)."""

    def __init__(
        self, out: TextIO | None, *, tty: bool = False, stderr: Callable[[str], None] | None = None
    ) -> None:
        self._out = out
        self._next = 0
        self.tty = tty and out is not None
        self.stderr = stderr

    def step(self, title: str) -> Step:
        self._next += 1
        return Step(self, self._next, title)

    def line(self, text: str) -> None:
        self.raw(text + "\n")

    def raw(self, text: str) -> None:
        if self._out is not None:
            self._out.write(text)
            self._out.flush()
