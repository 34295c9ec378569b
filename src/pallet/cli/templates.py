"""The small subset of Go templates that docker users pass to ``--format``.

Supported: literal text with ``\\t``/``\\n`` escapes (docker replaces them),
``{{.Field}}`` and ``{{.A.B}}`` lookups, ``{{.}}``, ``{{json X}}``,
``{{join X "sep"}}``, ``{{upper X}}``, ``{{lower X}}``, ``{{index X "key"}}``
(or a list's position), the blocks ``{{range X}}``/``{{if X}}`` with
``{{else}}`` and ``{{end}}`` (``range`` over a map goes in key order, as
Go's), ``{{-``/``-}}`` trimming, and the ``table`` prefix that prints a
header row and aligns columns like docker. Values print as Go's ``fmt``
prints them (``[a b]`` for lists, ``map[k:v]`` for maps,
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


def _value_of(action: str) -> Callable[[object], object]:
    """What an action evaluates to, before it is printed: a field, a string, a number or a call."""
    words = _split_args(action)
    if not words:
        raise UsageError("template: empty action {{}}")

    def arg(word: str) -> Callable[[object], object]:
        if word.startswith("."):
            return lambda v: _lookup(v, word, action)
        if word.startswith('"'):
            text = word[1:-1]
            return lambda v: text
        if word.isdigit():
            number = int(word)
            return lambda v: number
        raise UsageError(f"template: {{{{{action}}}}}: unsupported argument {word!r}")

    func, args = words[0], [arg(w) for w in words[1:]]
    if func.startswith(".") and not args:
        return arg(func)
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
    if func == "index" and len(args) >= 2:

        def index(v: object) -> object:
            found = args[0](v)
            for key in (a(v) for a in args[1:]):
                if isinstance(found, dict):
                    found = found.get(key, _MISSING)
                elif isinstance(found, list | tuple) and isinstance(key, int) and 0 <= key < len(found):
                    found = found[key]
                else:
                    raise UsageError(f"template: {{{{{action}}}}}: can't index {go_text(found)} with {key!r}")
            return found

        return index
    raise UsageError(
        f"template: {{{{{action}}}}}: unsupported action (supported: .Field, json, join, index, upper, lower, "
        "range, if, else, end)"
    )


def _compile_action(action: str) -> Callable[[object], str]:
    value = _value_of(action)
    return lambda v: str(got) if (got := value(v)) is _MISSING else go_text(got)


def _truthy(value: object) -> bool:
    """Go's truth of ``if``: false, 0, nil, and empty strings, lists and maps are false."""
    return value is not _MISSING and bool(value)


class _Action:
    """``{{...}}`` that prints a value."""

    __slots__ = ("render", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.render = _compile_action(source)


class _Block:
    """``{{range X}}...{{else}}...{{end}}`` or ``{{if X}}...{{else}}...{{end}}``."""

    __slots__ = ("alternative", "body", "kind", "value")

    def __init__(self, kind: str, source: str) -> None:
        self.kind = kind
        self.value = _value_of(source)
        self.body: list[_Part] = []
        self.alternative: list[_Part] = []

    def render(self, value: object) -> str:
        got = self.value(value)
        if self.kind == "if":
            return _render(self.body if _truthy(got) else self.alternative, value)
        if isinstance(got, dict):
            items = [got[k] for k in sorted(got)]  # Go ranges over a map in key order
        elif isinstance(got, list | tuple):
            items = list(got)
        elif got is _MISSING or got is None:
            items = []
        else:
            raise UsageError(f"template: range can't iterate over {go_text(got)}")
        if not items:
            return _render(self.alternative, value)
        return "".join(_render(self.body, item) for item in items)


_Part = str | _Action | _Block


def _render(parts: list[_Part], value: object) -> str:
    return "".join(p if isinstance(p, str) else p.render(value) for p in parts)


def _parse(text: str) -> list[_Part]:
    """The template's parts; blocks nest (``range``/``if`` ... ``end``). ``{{-`` and ``-}}`` trim the
    white space beside them, as Go's do."""
    source = text
    top: list[_Part] = []
    current = top
    open_blocks: list[tuple[_Block, list[_Part]]] = []
    trim_next = False
    while text:
        start = text.find(_OPEN)
        literal = text if start < 0 else text[:start]
        if trim_next:
            literal = literal.lstrip()
        if start < 0:
            if literal:
                current.append(literal)
            break
        end = text.find(_CLOSE, start)
        if end < 0:
            raise UsageError(f"template: unclosed action in {source!r}")
        raw = text[start + 2 : end]
        if raw.startswith("- "):
            literal = literal.rstrip()
        trim_next = raw.endswith(" -")
        if literal:
            current.append(literal)
        action = raw.strip().removeprefix("- ").removesuffix(" -").strip()
        head, _, rest = action.partition(" ")
        if head in ("range", "if"):
            if ":=" in rest:
                raise UsageError(f"template: {{{{{action}}}}}: variables are not supported")
            block = _Block(head, rest)
            current.append(block)
            open_blocks.append((block, current))
            current = block.body
        elif head == "else" and not rest:
            if not open_blocks or current is open_blocks[-1][0].alternative:
                raise UsageError(f"template: unexpected {{{{else}}}} in {source!r}")
            current = open_blocks[-1][0].alternative
        elif head == "end" and not rest:
            if not open_blocks:
                raise UsageError(f"template: unexpected {{{{end}}}} in {source!r}")
            current = open_blocks.pop()[1]
        else:
            current.append(_Action(action))
        text = text[end + 2 :]
    if open_blocks:
        raise UsageError(
            f"template: unclosed {{{{{open_blocks[-1][0].kind}}}}} (no {{{{end}}}}) in {source!r}"
        )
    return top


class Template:
    """A parsed ``--format`` string; ``render(obj)`` gives one line of output."""

    def __init__(self, text: str) -> None:
        self.table = text.startswith("table")
        if self.table:
            text = text[len("table") :]
        text = text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
        self.source = text
        self._parts = _parse(text)
        self.fields = [p.source for p in self._parts if isinstance(p, _Action)]

    def render(self, value: object) -> str:
        return _render(self._parts, value)

    def header(self, names: Mapping[str, str]) -> str:
        """The header row of a ``table`` template: each action's docker column name.

        ``{{.ID}}`` becomes ``names["ID"]``, or ``ID`` upper-cased when unnamed (a block: nothing).
        """
        out: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, _Action):
                words = _split_args(part.source)
                field = next((w for w in words if w.startswith(".")), ".")
                key = field.rsplit(".", 1)[-1]
                out.append(names.get(key, key.upper()))
        return "".join(out)
