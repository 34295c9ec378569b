"""Variable expansion as docker does it in ENV, COPY, WORKDIR, FROM …: substitution, modifiers, quotes, escapes."""

from __future__ import annotations

import pytest

from pallet.build.dockerfile.expansion import ExpansionError, expand_word, expand_words

ENV = {"A": "x y", "EMPTY": "", "P": "/usr/local/bin", "F": "archive.tar.gz"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$A", "x y"),
        ("${A}b", "x yb"),
        ("$UNSET-", "-"),
        ("${EMPTY:-w}", "w"),
        ("${EMPTY-w}", ""),
        ("${UNSET-w}", "w"),
        ("${A:+set}", "set"),
        ("${EMPTY:+set}", ""),
        ("${EMPTY+set}", "set"),
        ("\\$A", "$A"),
        ("'$A'", "$A"),
        ('"$A"', "x y"),
        ('"a\\"b"', 'a"b'),
        ('"a\\b"', "a\\b"),
        ("a\\ b", "a b"),
        ("$", "$"),
        ("${P##*/}", "bin"),
        ("${P#*/}", "usr/local/bin"),
        ("${F%.*}", "archive.tar"),
        ("${F%%.*}", "archive"),
        ("${P/usr/opt}", "/opt/local/bin"),
        ("${P//l/L}", "/usr/LocaL/bin"),
        ("${UNSET:-${A}}", "x y"),
    ],
)
def test_expand_word(text: str, expected: str) -> None:
    assert expand_word(text, ENV) == expected


def test_backtick_escape() -> None:
    assert expand_word("`$A", ENV, "`") == "$A"
    assert expand_word("c:\\dir", ENV, "`") == "c:\\dir"


def test_words_split_unquoted_values_only() -> None:
    assert expand_words('$A "q r" ${EMPTY:-a b} c\\ d', ENV) == ["x", "y", "q r", "a", "b", "c d"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${A", "missing '}'"),
        ("${}", "bad substitution"),
        ("${A:=x}", "unsupported modifier (=)"),
        ("${UNSET?must be set}", "UNSET: must be set"),
        ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
        ("'abc", "matching single-quote"),
        ('"abc', "matching double-quote"),
    ],
)
def test_expansion_errors(text: str, message: str) -> None:
    with pytest.raises(ExpansionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        expand_word(text, ENV)
