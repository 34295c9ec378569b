"""Variable expansion where docker expands (BuildKit's ``shell.Lex``): ``$V``, ``${V}``, the modifiers, quotes.

``expand_word`` gives one word with quotes removed (ENV values, COPY paths,
WORKDIR, USER, FROM, flags…); ``expand_words`` also splits at blanks outside
quotes. Supported: ``$V ${V} ${V:-w} ${V-w} ${V:+w} ${V+w} ${V:?msg} ${V?msg}``,
``${V#p} ${V##p} ${V%p} ${V%%p}`` (shell patterns), ``${V/p/r} ${V//p/r}``;
single quotes literal; in double quotes the escape character escapes only
``" $`` and itself; outside quotes it escapes anything (``\\$`` is a dollar).
An unset variable expands to nothing. Errors are ``ExpansionError`` with
docker's words; the caller adds the Dockerfile line.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping

__all__ = ["ExpansionError", "expand_word", "expand_words"]

_SPECIAL = "@*#?-$!0"


class ExpansionError(ValueError):
    """A malformed substitution or a ``${V?}`` on an unset variable."""


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape
        self.words: list[str] = []
        self.current: list[str] = []
        self.in_word = False
        self.track = True  # words are tracked at the top level only, never inside ${...}

    # words: an unquoted blank ends a word; quoted text never does
    def _add_char(self, ch: str) -> None:
        if not self.track:
            return
        if ch.isspace():
            if self.in_word:
                self.words.append("".join(self.current))
                self.current, self.in_word = [], False
            return
        self._add_raw(ch)

    def _add_raw(self, text: str) -> None:
        if not self.track:
            return
        self.current.append(text)
        self.in_word = True

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1 if ch else 0
        return ch

    def run(self, stop: str = "") -> str:
        tracked = self.track
        self.track = tracked and not stop
        try:
            return self._run(stop)
        finally:
            self.track = tracked

    def _run(self, stop: str) -> str:
        result: list[str] = []
        while self.peek():
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(result)
            if ch == "'":
                self.next()
                value = self._single_quoted()
                result.append(value)
                self._add_raw(value)
            elif ch == '"':
                self.next()
                value = self._double_quoted()
                result.append(value)
                self._add_raw(value)
            elif ch == "$":
                self.next()
                value = self._dollar()
                result.append(value)
                for c in value:
                    self._add_char(c)
            else:
                ch = self.next()
                if ch == self.escape:
                    ch = self.next()
                    if not ch:
                        break
                    self._add_raw(ch)
                else:
                    self._add_char(ch)
                result.append(ch)
        if stop:
            raise ExpansionError("syntax error: missing '}'")
        return "".join(result)

    def _single_quoted(self) -> str:
        out: list[str] = []
        while True:
            ch = self.next()
            if not ch:
                raise ExpansionError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def _double_quoted(self) -> str:
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise ExpansionError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                self.next()
                out.append(self._dollar())
                continue
            ch = self.next()
            if ch == self.escape and self.peek() in ('"', "$", self.escape) and self.peek():
                ch = self.next()
            out.append(ch)

    def _name(self) -> str:
        ch = self.peek()
        if ch.isdigit():
            start = self.pos
            while self.peek().isdigit():
                self.next()
            return self.text[start : self.pos]
        if ch and ch in _SPECIAL:
            return self.next()
        start = self.pos
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            self.next()
        return self.text[start : self.pos]

    def _dollar(self) -> str:
        if self.peek() != "{":
            name = self._name()
            return self.env.get(name, "") if name else "$"
        self.next()
        if not self.peek():
            raise ExpansionError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise ExpansionError("syntax error: bad substitution")
        name = self._name()
        ch = self.next()
        value = self.env.get(name)
        if ch == "}":
            return value or ""
        if ch == ":":
            modifier = self.next()
            word = self.run(stop="}")
            if modifier == "-":
                return value if value else word
            if modifier == "+":
                return word if value else ""
            if modifier == "?":
                if not value:
                    raise ExpansionError(f"{name}: {word or 'is not allowed to be empty'}")
                return value
            raise ExpansionError(f"unsupported modifier ({modifier}) in substitution")
        if ch in ("-", "+", "?"):
            word = self.run(stop="}")
            if ch == "-":
                return word if value is None else value
            if ch == "+":
                return "" if value is None else word
            if value is None:
                raise ExpansionError(f"{name}: {word or 'is not allowed to be unset'}")
            return value
        if ch in ("#", "%"):
            longest = self.peek() == ch
            if longest:
                self.next()
            pattern = self.run(stop="}")
            return _trim(value or "", pattern, prefix=ch == "#", longest=longest)
        if ch == "/":
            every = self.peek() == "/"
            if every:
                self.next()
            pattern, ended = self._until("/", "}")
            replacement = self.run(stop="}") if ended == "/" else ""
            return _replace(value or "", pattern, replacement, every=every)
        if not ch:
            raise ExpansionError("syntax error: missing '}'")
        raise ExpansionError(f"unsupported modifier ({ch}) in substitution")

    def _until(self, *stops: str) -> tuple[str, str]:
        out: list[str] = []
        while True:
            ch = self.next()
            if not ch:
                raise ExpansionError("syntax error: missing '}'")
            if ch in stops:
                return "".join(out), ch
            if ch == self.escape and self.peek():
                ch = self.next()
            out.append(ch)


def _pattern(glob: str) -> str:
    return fnmatch.translate(glob)[4:-3]  # strip "(?s:" and ")\Z"


def _trim(value: str, glob: str, *, prefix: bool, longest: bool) -> str:
    pattern = _pattern(glob)
    if prefix:
        cuts = range(len(value), -1, -1) if longest else range(len(value) + 1)
        for cut in cuts:
            if re.fullmatch(pattern, value[:cut], re.S):
                return value[cut:]
        return value
    cuts = range(len(value) + 1) if longest else range(len(value), -1, -1)
    for cut in cuts:
        if re.fullmatch(pattern, value[cut:], re.S):
            return value[:cut]
    return value


def _replace(value: str, glob: str, replacement: str, *, every: bool) -> str:
    if not glob:
        return value
    return re.sub(_pattern(glob), lambda _m: replacement, value, count=0 if every else 1, flags=re.S)


def expand_word(text: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """One word: variables substituted, quotes and escapes removed."""
    return _Lexer(text, env, escape).run()


def expand_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Words: as ``expand_word``, then split at blanks that were not quoted or escaped."""
    lexer = _Lexer(text, env, escape)
    lexer.run()
    if lexer.in_word:
        lexer.words.append("".join(lexer.current))
    return lexer.words
