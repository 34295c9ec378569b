"""The small subset of Go templates that docker users pass to ``--format``.

Supported: literal text with ``\\t``/``\\n`` escapes (docker replaces them),
``{{.Field}}`` and ``{{.A.B}}`` lookups, ``{{.}}``, ``{{json X}}``,
``{{join X "sep"}}``, ``{{upper X}}``, ``{{lower X}}``, ``{{index X "key"}}``
(or a list's position), the blocks ``{{range X}}``/``{{if X}}`` with
``{{else}}`` and ``{{end}}`` (``range`` over a map goes in key order, as
Go's; ``{{range $k, $v := X}}`` binds variables, ``$`` is the whole input),
parenthesized expressions (``{{(index $conf 0).HostPort}}``), ``{{-``/``-}}``
trimming, and the ``table`` prefix that prints a
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

    #: what an expression reads: the dot, and the variables in scope (``$`` is ``""``: the whole input)
    _Getter = Callable[[object, Mapping[str, object]], object]

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
    """An action's words: strings, parenthesized expressions (with any ``.Field`` after them), the rest
    split on spaces."""
    words: list[str] = []
    rest = action.strip()
    while rest:
        if rest[0] == '"':
            end = rest.find('"', 1)
            if end < 0:
                raise UsageError(f"template: {action}: unterminated string")
            words.append(rest[: end + 1])
            rest = rest[end + 1 :].lstrip()
        elif rest[0] == "(":
            depth, end = 0, -1
            for i, char in enumerate(rest):
                depth += {"(": 1, ")": -1}.get(char, 0)
                if depth == 0:
                    end = i
                    break
            if end < 0:
                raise UsageError(f"template: {action}: unclosed '('")
            tail, _, after = rest[end + 1 :].partition(" ")
            words.append(rest[: end + 1] + tail)
            rest = after.lstrip()
        else:
            word, _, rest = rest.partition(" ")
            words.append(word)
            rest = rest.lstrip()
    return words


def _value_of(action: str) -> _Getter:
    """What an action evaluates to, before it is printed: a field, a variable, a string, a number, a
    parenthesized expression or a call."""
    words = _split_args(action)
    if not words:
        raise UsageError("template: empty action {{}}")

    def arg(word: str) -> _Getter:
        if word.startswith("."):
            return lambda v, scope: _lookup(v, word, action)
        if word.startswith("$"):
            name, dot, path = word[1:].partition(".")

            def variable(v: object, scope: Mapping[str, object]) -> object:
                if name not in scope:
                    raise UsageError(f"template: {{{{{action}}}}}: undefined variable ${name}")
                return _lookup(scope[name], "." + path, action) if dot else scope[name]

            return variable
        if word.startswith("("):
            inner, _, path = word[1:].rpartition(")")
            value = _value_of(inner)
            if not path:
                return value
            return lambda v, scope: _lookup(value(v, scope), path, action)
        if word.startswith('"'):
            text = word[1:-1]
            return lambda v, scope: text
        if word.isdigit():
            number = int(word)
            return lambda v, scope: number
        raise UsageError(f"template: {{{{{action}}}}}: unsupported argument {word!r}")

    func, args = words[0], [arg(w) for w in words[1:]]
    if func.startswith((".", "$", "(")) and not args:
        return arg(func)
    if func == "json" and len(args) == 1:
        return lambda v, scope: json.dumps(
            None if (got := args[0](v, scope)) is _MISSING else got, separators=(",", ":")
        )
    if func in ("upper", "lower") and len(args) == 1:
        change = str.upper if func == "upper" else str.lower
        return lambda v, scope: change(go_text(args[0](v, scope)))
    if func == "join" and len(args) == 2:

        def join(v: object, scope: Mapping[str, object]) -> str:
            items, sep = args[0](v, scope), args[1](v, scope)
            if not isinstance(items, list | tuple):
                raise UsageError(f"template: {{{{{action}}}}}: join needs a list")
            return str(sep).join(go_text(i) for i in items)

        return join
    if func == "index" and len(args) >= 2:

        def index(v: object, scope: Mapping[str, object]) -> object:
            found = args[0](v, scope)
            for key in (a(v, scope) for a in args[1:]):
                if isinstance(found, dict):
                    found = found.get(key, _MISSING)
                elif isinstance(found, list | tuple) and isinstance(key, int) and 0 <= key < len(found):
                    found = found[key]
                else:
                    raise UsageError(f"template: {{{{{action}}}}}: can't index {go_text(found)} with {key!r}")
            return found

        return index
    raise UsageError(
        f"template: {{{{{action}}}}}: unsupported action (supported: .Field, $var, (expr), json, join, index, "
        "upper, lower, range, if, else, end)"
    )


def _truthy(value: object) -> bool:
    """Go's truth of ``if``: false, 0, nil, and empty strings, lists and maps are false."""
    return value is not _MISSING and bool(value)


class _Action:
    """``{{...}}`` that prints a value."""

    __slots__ = ("source", "value")

    def __init__(self, source: str) -> None:
        self.source = source
        self.value = _value_of(source)

    def render(self, value: object, scope: Mapping[str, object]) -> str:
        got = self.value(value, scope)
        return str(got) if got is _MISSING else go_text(got)


class _Block:
    """``{{range [$k, $v :=] X}}...{{else}}...{{end}}`` or ``{{if X}}...{{else}}...{{end}}``."""

    __slots__ = ("alternative", "body", "kind", "value", "variables")

    def __init__(self, kind: str, source: str) -> None:
        self.kind = kind
        self.variables: list[str] = []
        names, assign, expression = source.partition(":=")
        if assign:
            self.variables = [n.strip().removeprefix("$") for n in names.split(",")]
            if (
                kind != "range"
                or not 1 <= len(self.variables) <= 2
                or not all(n.isidentifier() for n in self.variables)
            ):
                raise UsageError(
                    f"template: {{{{{kind} {source}}}}}: want range $v := X or range $k, $v := X"
                )
            source = expression
        self.value = _value_of(source)
        self.body: list[_Part] = []
        self.alternative: list[_Part] = []

    def render(self, value: object, scope: Mapping[str, object]) -> str:
        got = self.value(value, scope)
        if self.kind == "if":
            return _render(self.body if _truthy(got) else self.alternative, value, scope)
        if isinstance(got, dict):
            items = [(k, got[k]) for k in sorted(got)]  # Go ranges over a map in key order
        elif isinstance(got, list | tuple):
            items = list(enumerate(got))
        elif got is _MISSING or got is None:
            items = []
        else:
            raise UsageError(f"template: range can't iterate over {go_text(got)}")
        if not items:
            return _render(self.alternative, value, scope)
        out = []
        for key, item in items:
            inner = dict(scope)
            if len(self.variables) == 2:
                inner[self.variables[0]] = key
            if self.variables:
                inner[self.variables[-1]] = item
            out.append(_render(self.body, item, inner))
        return "".join(out)


_Part = str | _Action | _Block


def _render(parts: list[_Part], value: object, scope: Mapping[str, object]) -> str:
    return "".join(p if isinstance(p, str) else p.render(value, scope) for p in parts)


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
        return _render(self._parts, value, {"": value})

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
