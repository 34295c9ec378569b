"""How docker's parser cuts an instruction's text into its arguments (BuildKit ``parser/line_parsers.go``).

These keep quotes and escapes as written: removing them is variable
expansion's job at build time (``expansion.py``), exactly as docker splits the
work. Each function states which instructions use it.
"""

from __future__ import annotations

import json
import re

__all__ = [
    "NOT_STRING_ARRAY",
    "JsonArrayError",
    "extract_flags",
    "parse_json_array",
    "parse_words",
    "split_command",
    "split_whitespace",
]

#: docker's words for a JSON array with a non-string element
NOT_STRING_ARRAY = "when using JSON array syntax, arrays must be comprised of strings only"

_WHITESPACE = re.compile(r"[\t\v\f\r ]+")


class JsonArrayError(ValueError):
    """A JSON array with a non-string element: an error, never a fallback to the shell form."""


def split_command(line: str) -> tuple[str, str]:
    """The keyword (lowercase) and the rest of a logical line."""
    parts = _WHITESPACE.split(line.strip(), maxsplit=1)
    return parts[0].lower(), parts[1] if len(parts) == 2 else ""


def split_whitespace(rest: str) -> list[str]:
    """FROM, EXPOSE, and COPY/ADD/VOLUME in shell form: words between blanks, quotes not special."""
    if rest == "":
        return []
    return _WHITESPACE.split(rest)


def parse_json_array(rest: str) -> list[str] | None:
    """The exec form: a JSON array of strings, or None when ``rest`` is not a JSON array at all."""
    rest = rest.lstrip()
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(item, str) for item in value):
        raise JsonArrayError(NOT_STRING_ARRAY)
    return value


def extract_flags(line: str) -> tuple[list[str], str]:
    """The leading ``--flag[=value]`` words of an instruction's arguments, and the text after them.

    A word not starting with ``--`` ends the flags; a bare ``--`` ends them and is dropped.
    Quotes group and vanish inside a flag word; a backslash escapes the next character.
    """
    words: list[str] = []
    pos, end = 0, len(line)
    while True:
        while pos < end and line[pos].isspace():
            pos += 1
        if pos == end:
            return words, ""
        if not line.startswith("--", pos):
            return words, line[pos:]
        word: list[str] = []
        blank_ok = False
        quote = ""
        while pos < end:
            ch = line[pos]
            if quote:
                if ch == quote:
                    quote = ""
                elif ch == "\\" and pos + 1 < end:
                    pos += 1
                    word.append(line[pos])
                elif ch != "\\":
                    word.append(ch)
                pos += 1
                continue
            if ch.isspace():
                break
            if ch in "'\"":
                quote, blank_ok = ch, True
            elif ch == "\\":
                if pos + 1 < end:
                    pos += 1
                    word.append(line[pos])
            else:
                word.append(ch)
            pos += 1
        text = "".join(word)
        if text == "--":
            return words, line[pos:].lstrip() if pos < end else ""
        if blank_ok or text:
            words.append(text)


def parse_words(rest: str, escape: str) -> list[str]:
    """ARG, ENV and LABEL: words split at blanks outside quotes; quotes and escapes kept in the words."""
    words: list[str] = []
    word: list[str] = []
    in_word = False
    blank_ok = False
    quote = ""
    pos, end = 0, len(rest)
    while pos < end:
        ch = rest[pos]
        if not in_word:
            if ch.isspace():
                pos += 1
                continue
            in_word = True
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if pos + 1 == end:
                    pos += 1
                    continue
                word.append(ch)
                pos += 1
                ch = rest[pos]
            word.append(ch)
            pos += 1
            continue
        if ch.isspace():
            if blank_ok or word:
                words.append("".join(word))
            word, blank_ok, in_word = [], False, False
            pos += 1
            continue
        if ch in "'\"":
            quote, blank_ok = ch, True
        if ch == escape:
            if pos + 1 == end:
                pos += 1
                continue
            word.append(ch)
            pos += 1
            ch = rest[pos]
        word.append(ch)
        pos += 1
    if in_word and (blank_ok or word):
        words.append("".join(word))
    return words
