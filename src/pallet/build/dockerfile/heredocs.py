"""Heredocs (``RUN <<EOF``, ``COPY <<EOF /path``): which words open one, and their bodies' rules.

A word ``[fd]<<[-]NAME`` opens a heredoc on RUN, COPY and ADD in shell form.
Several may open on one line; their bodies follow in order, each ending at a
line equal to its name. ``<<-`` strips leading tabs from the body's lines and
from the terminator line; a name with any quote in it (``<<'EOF'``,
``<<"EOF"``) turns variable expansion in the body off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pallet.build.dockerfile.expansion import ExpansionError, expand_words

__all__ = ["Heredoc", "HeredocOpener", "chomp", "openers_in", "parse_opener"]

_OPENER = re.compile(r"^(\d*)<<(-?)([^<]*)$")


@dataclass(frozen=True, slots=True, kw_only=True)
class HeredocOpener:
    """What a ``<<NAME`` word says before its body is read."""

    name: str
    expand: bool
    chomp: bool
    fd: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Heredoc:
    """One heredoc: ``content`` is its body as written (every line with its newline, tabs not yet stripped)."""

    name: str
    content: str
    expand: bool
    chomp: bool
    fd: int

    @property
    def data(self) -> str:
        """The body as the build uses it: leading tabs stripped for ``<<-``."""
        return chomp(self.content) if self.chomp else self.content


def chomp(content: str) -> str:
    return "".join(line.lstrip("\t") for line in content.splitlines(keepends=True))


def parse_opener(word: str) -> HeredocOpener | None:
    """The heredoc a word opens, or None when the word is not ``[fd]<<[-]NAME``."""
    match = _OPENER.match(word)
    if match is None or match.group(3) == "":
        return None
    rest = match.group(3)
    try:
        words = expand_words(rest, {})
    except ExpansionError:
        return None
    if len(words) != 1:
        return None
    name = words[0]
    quotes_after = name.count("'") + name.count('"')
    quotes_before = rest.count("'") + rest.count('"')
    return HeredocOpener(
        name=name,
        expand=quotes_after == quotes_before,
        chomp=match.group(2) == "-",
        fd=int(match.group(1) or "0"),
    )


def _raw_words(line: str) -> list[str]:
    """Words split at blanks outside quotes, quotes and backslash escapes kept."""
    words: list[str] = []
    word: list[str] = []
    quote = ""
    pos = 0
    while pos < len(line):
        ch = line[pos]
        if quote:
            word.append(ch)
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"' and pos + 1 < len(line):
                pos += 1
                word.append(line[pos])
        elif ch.isspace():
            if word:
                words.append("".join(word))
                word = []
        else:
            word.append(ch)
            if ch in "'\"":
                quote = ch
            elif ch == "\\" and pos + 1 < len(line):
                pos += 1
                word.append(line[pos])
        pos += 1
    if word:
        words.append("".join(word))
    return words


def openers_in(line: str) -> list[HeredocOpener]:
    """The heredocs a logical line opens, in order."""
    return [opener for word in _raw_words(line) if (opener := parse_opener(word)) is not None]
