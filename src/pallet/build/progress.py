"""What a build prints: BuildKit's plain progress (``#N [stage i/n] INSTRUCTION``, output lines with
their time, ``#N CACHED``, ``#N DONE 0.2s``, ``#N ERROR: …``), or nothing with ``-q``.

``--progress=tty`` and ``auto`` on a terminal print the same lines: the
steps run one at a time, so each step's lines are already grouped.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
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
        progress.line(f"#{number} {title}")

    def output(self, data: bytes) -> None:
        self._partial += data
        *lines, self._partial = self._partial.split(b"\n")
        for raw in lines:
            self._emit(raw)

    def _emit(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        self.tail = [*self.tail[-19:], text]
        self._progress.line(f"#{self.number} {time.monotonic() - self.started:.3f} {text}")

    def flush(self) -> None:
        if self._partial:
            self._emit(self._partial)
            self._partial = b""

    def note(self, text: str) -> None:
        self._progress.line(f"#{self.number} {text}")

    def cached(self) -> None:
        self.finished = True
        self._progress.line(f"#{self.number} CACHED")

    def done(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.flush()
        self._progress.line(f"#{self.number} DONE {time.monotonic() - self.started:.1f}s")

    def error(self, message: str) -> None:
        self.finished = True
        self.flush()
        self._progress.line(f"#{self.number} ERROR: {message}")


class Progress:
    """Numbers the steps and writes their lines to ``out`` (None: quiet)."""

    def __init__(self, out: TextIO | None) -> None:
        self._out = out
        self._next = 0

    def step(self, title: str) -> Step:
        self._next += 1
        return Step(self, self._next, title)

    def line(self, text: str) -> None:
        if self._out is not None:
            self._out.write(text + "\n")
            self._out.flush()
