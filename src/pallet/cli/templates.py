"""The small subset of Go templates that docker users pass to ``--format``.

Supported: literal text with ``\\t``/``\\n`` escapes (docker replaces them),
``{{.Field}}`` and ``{{.A.B}}`` lookups, ``{{.}}``, ``{{json X}}``,
``{{join X "sep"}}``, ``{{upper X}}``, ``{{lower X}}``, and the ``table``
prefix that prints a header row and aligns columns like docker. Values print as
Go's ``fmt`` prints them (``[a b]`` for lists, ``map[k:v]`` for maps,
``<no value>`` for a missing map key). Anything else is a usage error naming
the action, so a user never gets a silently wrong output.
"""

from __future__ import annotations

import json

from pallet.cli.exits import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["Template", "go_text"]

_OPEN, _CLOSE = "{{", "}}"


def go_text(value: object) -> str:
    """``value`` as Go's ``fmt.Sprint`` shows the decoded JSON equivalent."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_text(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)


class _Missing:
    def __str__(self) -> str:
        return "<no value>"


_MISSING = _Missing()


def _lookup(value: object, path: str, action: str) -> object:
    if path == ".":
        return value
    for name in path[1:].split("."):
        if not isinstance(value, dict):
            raise UsageError(f"template: {action}: can't evaluate field {name} in a non-object value")
        value = value.get(name, _MISSING)
        if value is _MISSING:
            return value
    return value


def _split_args(action: str) -> list[str]:
    words: list[str] = []
    rest = action.strip()
    while rest:
        if rest[0] == '"':
            end = rest.find('"', 1)
            if end < 0:
                raise UsageError(f"template: {action}: unterminated string")
            words.append(rest[: end + 1])
            rest = rest[end + 1 :].lstrip()
        else:
            word, _, rest = rest.partition(" ")
            words.append(word)
            rest = rest.lstrip()
    return words


def _compile_action(action: str) -> Callable[[object], str]:
    words = _split_args(action)
    if not words:
        raise UsageError("template: empty action {{}}")

    def arg(word: str) -> Callable[[object], object]:
        if word.startswith("."):
            return lambda v: _lookup(v, word, action)
        if word.startswith('"'):
            text = word[1:-1]
            return lambda v: text
        raise UsageError(f"template: {{{{{action}}}}}: unsupported argument {word!r}")

    func, args = words[0], [arg(w) for w in words[1:]]
    if func.startswith(".") and not args:
        get = arg(func)
        return lambda v: str(get(v)) if get(v) is _MISSING else go_text(get(v))
    if func == "json" and len(args) == 1:
        return lambda v: json.dumps(None if args[0](v) is _MISSING else args[0](v), separators=(",", ":"))
    if func in ("upper", "lower") and len(args) == 1:
        change = str.upper if func == "upper" else str.lower
        return lambda v: change(go_text(args[0](v)))
    if func == "join" and len(args) == 2:

        def join(v: object) -> str:
            items, sep = args[0](v), args[1](v)
            if not isinstance(items, list | tuple):
                raise UsageError(f"template: {{{{{action}}}}}: join needs a list")
            return str(sep).join(go_text(i) for i in items)

        return join
    raise UsageError(
        f"template: {{{{{action}}}}}: unsupported action (supported: .Field, json, join, upper, lower)"
    )


class Template:
    """A parsed ``--format`` string; ``render(obj)`` gives one line of output."""

    def __init__(self, text: str) -> None:
        self.table = text.startswith("table")
        if self.table:
            text = text[len("table") :]
        text = text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
        self.source = text
        self._parts: list[str | Callable[[object], str]] = []
        self.fields: list[str] = []
        while text:
            start = text.find(_OPEN)
            if start < 0:
                self._parts.append(text)
                break
            end = text.find(_CLOSE, start)
            if end < 0:
                raise UsageError(f"template: unclosed action in {self.source!r}")
            if start:
                self._parts.append(text[:start])
            action = text[start + 2 : end].strip().strip("-").strip()
            self._parts.append(_compile_action(action))
            self.fields.append(action)
            text = text[end + 2 :]

    def render(self, value: object) -> str:
        return "".join(p if isinstance(p, str) else p(value) for p in self._parts)

    def header(self, names: Mapping[str, str]) -> str:
        """The header row of a ``table`` template: each action's docker column name.

        ``{{.ID}}`` becomes ``names["ID"]``, or ``ID`` upper-cased when unnamed.
        """
        out: list[str] = []
        actions = iter(self.fields)
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
                continue
            words = _split_args(next(actions))
            field = next((w for w in words if w.startswith(".")), ".")
            key = field.rsplit(".", 1)[-1]
            out.append(names.get(key, key.upper()))
        return "".join(out)
