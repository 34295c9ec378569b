"""pallet's Dockerfile parser agrees with BuildKit's own, the PyPI ``dockerfile`` package (its Go parser, bound).

The package is BuildKit's AST parser (``parser.Parse``): it does not check an
instruction's own arguments (counts, flags, stage order), so pallet's
``parse_ast`` (the same stage) is compared with it, generated Dockerfiles may
hold instructions ``parse`` refuses (``COPY`` with one argument, ``EXPOSE``
alone), and over the corpus the typed ``parse`` must also give the same rows.

The oracle is ``dockerfile==3.4.0`` (the dev extra pins it): ``parse_string``
gives, per instruction, ``Command(cmd, sub_cmd, json, original, start_line,
end_line, flags, value, heredocs)``. Both parsers read the same text, once over
Dockerfiles hypothesis makes (directives, comments and blank lines, line
continuations with comments and empty lines inside, both escape characters,
JSON and shell forms, flags, keywords in any case, heredocs, ONBUILD) and once
over every Dockerfile of the build corpus (tests/integration/build/corpus).

How the two shapes map (``_ours`` and ``_theirs``):

- ``cmd``: pallet lowercases the keyword; the package keeps it as written, so
  it is lowercased too. ONBUILD: ``sub_cmd`` is the trigger's keyword, and
  ``json`` and ``value`` are the trigger's in both; ``flags`` are the ONBUILD
  node's own (none): the package does not report the trigger's flags (its
  ``value`` leaves them out), so pallet's ``Onbuild.flags`` are compared.
- ``value`` of ENV and LABEL: pallet keeps BuildKit's current node triples
  (name, value, ``"="`` or ``""`` for the legacy ``ENV NAME value`` form); the
  package's parser is older and gives pairs (name, value). Compared as pairs.
- ``original`` with heredocs: the package appends the heredoc bodies and their
  terminators to the first line; pallet keeps the logical line and the bodies
  in ``heredocs``. The package's text is rebuilt from pallet's (the line, then
  per heredoc its body as written and its name on a line), and the heredocs
  are compared by name, body and file descriptor.

Where the package (an older BuildKit) reads differently from the BuildKit
docker ships today, the generator steers clear and the difference is written
here:

- the package's parser knows nothing of ``# check=`` (a later directive): it
  is generated only as an ordinary comment position, never compared for its
  meaning (pallet's ``Directives.check`` is tested in test_dockerfile_parser).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pallet.build.dockerfile import Instruction, parse, parse_ast
from pallet.errors import InvalidArgument

dockerfile = pytest.importorskip("dockerfile", reason="the dev extra's dockerfile==3.4.0 is not installed")

CORPUS = Path(__file__).resolve().parents[2] / "integration" / "build" / "corpus"

Row = tuple[Any, ...]


def _pairs(values: tuple[str, ...]) -> tuple[str, ...]:
    """ENV/LABEL triples as the package's pairs."""
    out: list[str] = []
    for i in range(0, len(values), 3):
        out += values[i : i + 2]
    return tuple(out)


def _ours(text: str) -> list[Row]:
    return _rows(parse_ast(text))


def _rows(instructions: tuple[Instruction, ...]) -> list[Row]:
    rows: list[Row] = []
    for ins in instructions:
        node = ins.trigger if ins.command == "onbuild" else ins  # type: ignore[attr-defined]
        values = tuple(node.args)
        if node.command in ("env", "label"):
            values = _pairs(values)
        original = ins.original
        if ins.heredocs:
            original += "\n" + "".join(h.content + h.name + "\n" for h in ins.heredocs)
        rows.append(
            (
                ins.command,
                node.command if ins.command == "onbuild" else None,
                node.json,
                original,
                ins.line,
                ins.end_line,
                tuple(ins.flags),
                values,
                tuple((h.name, h.content, h.fd) for h in ins.heredocs),
            )
        )
    return rows


def _theirs(text: str) -> list[Row]:
    return [
        (
            c.cmd.lower(),
            c.sub_cmd.lower() if c.sub_cmd else None,
            c.json,
            c.original,
            c.start_line,
            c.end_line,
            tuple(c.flags),
            tuple(c.value),
            tuple((h.name, h.content, h.file_descriptor) for h in c.heredocs),
        )
        for c in dockerfile.parse_string(text)
    ]


def _agree(text: str) -> None:
    try:
        theirs = _theirs(text)
    except dockerfile.GoParseError:
        with pytest.raises(InvalidArgument):
            parse_ast(text)
        return
    ours = _ours(text)
    assert len(ours) == len(theirs), f"{len(ours)} instructions, BuildKit {len(theirs)}\n{text}"
    for a, b in zip(ours, theirs, strict=True):
        assert a == b, f"pallet  {a}\nBuildKit {b}\nin:\n{text}"


# --- generated Dockerfiles ------------------------------------------------------------------

_WORD = st.text(alphabet="abcxyzABC0123_-./:@%+,", min_size=1, max_size=8)
_ODD = st.sampled_from(["a\\b", "it's", "x=y", "#notcomment", "é", "a\\ b", "[x]", "{}"])
_VAR = st.sampled_from(["$V", "${V}", "${V:-dflt}", "${V:+alt}", "\\$V"])
_SPACE = st.sampled_from([" ", "  ", "\t"])


def _case(keyword: str, draw: st.DrawFn) -> str:
    style = draw(st.sampled_from(["upper", "lower", "mixed"]))
    if style == "upper":
        return keyword.upper()
    if style == "lower":
        return keyword.lower()
    return "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(keyword))


@st.composite
def _words(draw: st.DrawFn, n_min: int = 1, n_max: int = 4) -> list[str]:
    word = st.one_of(_WORD, _WORD, _VAR, _ODD, _WORD.map(lambda w: f'"{w} q"'))
    return draw(st.lists(word, min_size=n_min, max_size=n_max))


@st.composite
def _json_array(draw: st.DrawFn, n_min: int = 1) -> str:
    odd = st.sampled_from(['say "hi"', "back\\slash", "tab\there", "é"])
    items = draw(st.lists(st.one_of(_WORD, odd, _WORD.map(lambda w: f"{w} {w}")), min_size=n_min, max_size=3))
    sep = draw(st.sampled_from([", ", ",", " , "]))
    ascii_only = draw(st.booleans())
    return "[" + sep.join(json.dumps(i, ensure_ascii=ascii_only) for i in items) + "]"


_FLAGS = {
    "run": ["--mount=type=cache,target=/c", "--mount=type=bind,source=.,target=/src", "--network=none"],
    "copy": ["--from=build", "--chown=1:2", "--chmod=755", "--link"],
    "add": ["--chown=app", "--chmod=0644"],
    "from": ["--platform=linux/amd64"],
    "healthcheck": ["--interval=5s", "--retries=3", "--timeout=1s"],
}


@st.composite
def _instruction(draw: st.DrawFn) -> list[str]:
    """One instruction as a list of pieces that a continuation may separate (heredoc bodies attached)."""
    kind = draw(
        st.sampled_from(
            [
                "run",
                "cmd",
                "entrypoint",
                "copy",
                "add",
                "env",
                "label",
                "arg",
                "expose",
                "workdir",
                "user",
                "volume",
                "shell",
                "stopsignal",
                "healthcheck",
                "onbuild",
                "maintainer",
                "heredoc",
            ]
        )
    )
    if kind == "heredoc":
        which = draw(st.sampled_from(["run", "copy"]))
        name = draw(st.sampled_from(["EOF", "END", "X1"]))
        opener = draw(st.sampled_from([f"<<{name}", f"<<-{name}", f"<<'{name}'", f'<<"{name}"']))
        body_lines = draw(st.lists(st.one_of(_WORD, _VAR), min_size=0, max_size=3))
        tab = "\t" if opener.startswith("<<-") and draw(st.booleans()) else ""
        body = "".join(f"{tab}{line}\n" for line in body_lines)
        head = f"{_case(which, draw)} {opener}" + (" /dst" if which == "copy" else " sh")
        return [head + "\n" + body + tab + name]
    keyword = _case(kind, draw)
    flags = [f for f in _FLAGS.get(kind, []) if draw(st.booleans())] if draw(st.booleans()) else []
    pieces = [keyword, *flags]
    if (
        kind in ("run", "cmd", "entrypoint", "copy", "add", "volume") and draw(st.booleans())
    ) or kind == "shell":
        pieces.append(draw(_json_array()))
    elif kind in ("env", "label"):
        if kind == "env" and draw(st.booleans()):
            pieces += [draw(_WORD.filter(lambda w: w[0].isalpha())), *draw(_words())]
        else:
            for _ in range(draw(st.integers(1, 3))):
                key = draw(_WORD.filter(lambda w: w[0].isalpha()))
                value = draw(st.one_of(_WORD, _VAR, _WORD.map(lambda w: f'"{w} {w}"')))
                pieces.append(f"{key}={value}")
    elif kind == "arg":
        name = draw(_WORD.filter(lambda w: w[0].isalpha()))
        pieces.append(name + (f"={draw(_WORD)}" if draw(st.booleans()) else ""))
    elif kind == "healthcheck":
        if draw(st.booleans()):
            pieces = [keyword, "NONE"]
        else:
            pieces += ["CMD", *(draw(_words()) if draw(st.booleans()) else [draw(_json_array())])]
    elif kind == "onbuild":
        trigger = draw(st.sampled_from(["RUN", "copy", "Env", "label", "workdir"]))
        rest = draw(_words(1, 4)) if trigger.lower() not in ("env", "label") else [f"K={draw(_WORD)}"]
        pieces += [trigger, *rest]
    elif kind in ("copy", "add"):
        pieces += draw(_words(1, 4))  # one word: parse refuses it, the AST keeps it
    else:
        pieces += draw(_words(0, 4))
    return pieces


@st.composite
def _continuation(draw: st.DrawFn, escape: str) -> str:
    """An escape + newline, maybe followed by comment and empty lines (dropped by the parser)."""
    extra = draw(st.lists(st.sampled_from(["# inside\n", "\n", "   # indented\n", "  \n"]), max_size=2))
    return f" {escape}\n" + "".join(extra) + draw(st.sampled_from(["", "  ", "\t"]))


@st.composite
def dockerfiles(draw: st.DrawFn) -> str:
    escape = draw(st.sampled_from(["\\", "`"]))
    lines: list[str] = []
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(["# syntax=docker/dockerfile:1", "#syntax=docker/dockerfile:1.7"])))
    if escape == "`" or draw(st.booleans()):
        lines.append(
            draw(st.sampled_from([f"# escape={escape}", f"#escape={escape}", f"# ESCAPE = {escape}"]))
        )
    if draw(st.booleans()):
        lines.append("ARG BASE=busybox")
    lines.append(f"{_case('from', draw)} busybox AS build")
    for _ in range(draw(st.integers(1, 8))):
        between = draw(
            st.lists(st.sampled_from(["", "# a comment", "   ", "  # indented comment"]), max_size=2)
        )
        lines += between
        pieces = draw(_instruction())
        text = pieces[0]
        for piece in pieces[1:]:
            text += draw(_continuation(escape)) if draw(st.integers(0, 4)) == 0 else draw(_SPACE)
            text += piece
        lead = draw(st.sampled_from(["", "  "]))
        lines.append(lead + text)
    newline = draw(st.sampled_from(["\n", "\n", "\r\n"]))
    return newline.join(lines) + draw(st.sampled_from(["", newline, newline * 2]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dockerfiles())
def test_generated_dockerfiles_parse_as_buildkit_parses_them(text: str) -> None:
    _agree(text)


@pytest.mark.parametrize(
    "path",
    sorted(
        p
        for p in CORPUS.rglob("*")
        if p.is_file() and "Dockerfile" in p.name and not p.name.endswith(".dockerignore")
    ),
    ids=lambda p: str(p.relative_to(CORPUS)),
)
def test_corpus_dockerfiles_parse_as_buildkit_parses_them(path: Path) -> None:
    text = path.read_text()
    _agree(text)
    # the typed parse (what the builder uses) keeps every field of the AST
    assert _rows(parse(text).instructions) == _ours(text)


@pytest.mark.parametrize(
    "text",
    [
        "FROM busybox\nRUN echo a \\\n# comment inside\n\n  b\n",
        "# escape=`\nFROM busybox\nRUN dir c:\\ `\n  && echo done\n",
        'from busybox\nrun ["echo", "json"]\nCmd echo shell\n',
        "FROM busybox\nCOPY <<A <<B /dst/\na\nA\nb\nB\n",
        "FROM busybox\nRUN <<-EOT sh\n\techo tab\n\tEOT\n",
        "FROM busybox\nONBUILD COPY --from=x a b\n",
        'FROM busybox\nENV A=1 B="two words" C\\ D=e\nENV LEGACY some value\n',
        'FROM busybox\nHEALTHCHECK --interval=5s --retries=3 CMD ["true"]\n',
        'FROM busybox\nRUN [ "not json\n',
    ],
)
def test_known_shapes_parse_as_buildkit_parses_them(text: str) -> None:
    _agree(text)
