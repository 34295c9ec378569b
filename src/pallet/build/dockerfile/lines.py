"""Physical lines to logical lines: directives, comments, continuations with the escape character, heredoc bodies.

BuildKit's reading loop, step for step: a line ending in the escape
character (then only blanks) continues on the next; comment lines and empty
lines inside a continuation are dropped; a comment or empty line between
instructions is skipped. Heredoc bodies are read by ``LineReader.heredoc``
right after the logical line that opened them.
"""

from __future__ import annotations

import re

from pallet.build.dockerfile.directives import Directives, DirectiveScanner
from pallet.build.dockerfile.heredocs import Heredoc, HeredocOpener

__all__ = ["LineReader", "LogicalLine"]

_BLANKS = " \t"


class LogicalLine:
    """An instruction's text with continuations joined; ``start``/``end`` are 1-based physical lines."""

    __slots__ = ("end", "start", "text")

    def __init__(self, text: str, start: int, end: int) -> None:
        self.text = text
        self.start = start
        self.end = end


def _is_comment(line: str) -> bool:
    return line.lstrip(_BLANKS).startswith("#")


def _without_newline(line: str) -> str:
    if line.endswith("\r\n"):
        return line[:-2]
    return line[:-1] if line.endswith("\n") else line


class LineReader:
    """Reads one Dockerfile's logical lines in order; the directives are known after the first call."""

    def __init__(self, text: str, name: str) -> None:
        self._lines = text.splitlines(keepends=True) if text else []
        if self._lines and self._lines[0].startswith("\ufeff"):
            self._lines[0] = self._lines[0][1:]
        self._next = 0
        self._name = name
        self._scanner = DirectiveScanner(name)
        self._continuation: re.Pattern[str] | None = None

    @property
    def directives(self) -> Directives:
        return self._scanner.directives

    @property
    def line_number(self) -> int:
        """The number of the last physical line read."""
        return self._next

    def _take(self) -> str | None:
        if self._next >= len(self._lines):
            return None
        line = self._lines[self._next]
        self._next += 1
        return line

    def _continues(self, line: str) -> tuple[str, bool]:
        if self._continuation is None:
            self._continuation = re.compile(re.escape(self._scanner.directives.escape) + r"[ \t]*$")
        match = self._continuation.search(line)
        if match is None:
            return line, False
        return line[: match.start()], True

    def next_line(self) -> LogicalLine | None:
        """The next instruction's logical line, or None at the end of the file."""
        while True:
            raw = self._take()
            if raw is None:
                return None
            stripped = _without_newline(raw)
            self._scanner.feed(stripped.lstrip(_BLANKS), self._next)
            stripped = stripped.lstrip(_BLANKS)
            if _is_comment(stripped):
                continue
            start = self._next
            text, more = self._continues(stripped)
            if not more and text == "":
                continue
            while more:
                raw = self._take()
                if raw is None:
                    break
                body = _without_newline(raw)
                if _is_comment(body) or body.strip(_BLANKS) == "":
                    continue
                part, more = self._continues(body)
                text += part
            return LogicalLine(text, start, self._next)

    def heredoc(self, opener: HeredocOpener) -> Heredoc | None:
        """The body of one heredoc, read up to its terminator line; None when the file ends first."""
        content: list[str] = []
        while True:
            raw = self._take()
            if raw is None:
                return None
            candidate = _without_newline(raw)
            if opener.chomp:
                candidate = candidate.lstrip("\t")
            if candidate == opener.name:
                return Heredoc(
                    name=opener.name,
                    content="".join(content),
                    expand=opener.expand,
                    chomp=opener.chomp,
                    fd=opener.fd,
                )
            content.append(raw)
