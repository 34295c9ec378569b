"""``.dockerignore`` rules as docker applies them: patterns, ``**``, ``!`` exceptions, order."""

from __future__ import annotations

import pytest

from pallet.build.dockerignore import parse_ignore
from pallet.errors import InvalidArgument


@pytest.mark.parametrize(
    ("rules", "path", "ignored"),
    [
        ("*.log", "a.log", True),
        ("*.log", "dir/a.log", False),  # * stays within one component
        ("**/*.log", "dir/sub/a.log", True),
        ("**/*.log", "a.log", True),  # ** matches zero directories too
        ("dir", "dir/anything/below", True),  # a parent matching hides its children
        ("/dir", "dir/x", True),  # a leading slash is dropped
        ("dir/**", "dir/x/y", True),
        ("d?r", "dir", True),
        ("[a-c]x", "bx", True),
        ("[!a-c]x", "bx", False),
        ("# comment\n\n  spaced.txt  ", "spaced.txt", True),
        ("a\\*b", "a*b", True),
        ("a\\*b", "axb", False),
        ("./x/../y", "y", True),  # cleaned like a path
    ],
)
def test_patterns(rules: str, path: str, ignored: bool) -> None:
    assert parse_ignore(rules).ignored(path) is ignored


def test_exceptions_and_order() -> None:
    rules = parse_ignore("docs\n!docs/keep.md\n**/*.md\n!README.md\n")
    assert rules.ignored("docs/other.txt")
    assert rules.ignored("docs/keep.md")  # the last matching pattern decides
    assert not rules.ignored("README.md")
    assert rules.ignored("CHANGES.md")
    reordered = parse_ignore("*.md\ndocs\n!docs/keep.md\n")
    assert not reordered.ignored("docs/keep.md")
    assert reordered.has_exclusions


def test_the_context_root_is_never_ignored() -> None:
    assert not parse_ignore("*\n").ignored(".")


def test_a_lone_bang_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match="illegal exclusion pattern"):
        parse_ignore("!\n")
