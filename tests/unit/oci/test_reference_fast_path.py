"""The hand-written parser for common references agrees with docker's grammar (the regular expressions)."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pallet.errors import InvalidArgument
from pallet.oci.reference import Reference, _parse_fast, _parse_full, parse

HEX = "0123456789abcdef"
D = "sha256:" + "ab" * 32

COMMON = [
    "busybox",
    "busybox:latest",
    "busybox:1.36.1",
    "library/busybox",
    "docker.io/library/busybox:latest",
    "index.docker.io/user/app:v1",
    "user/app",
    "localhost/app",
    "localhost:5000/team/app:v1",
    "registry.example.com:443/a/b/c:1.0_RC-2",
    "ghcr.io/owner/image@" + D,
    "busybox:latest@" + D,
    "Foo/bar",
]

components = st.text(alphabet="ab09._-A", max_size=6)
hosts = st.one_of(
    st.sampled_from(
        [
            "localhost",
            "localhost:5000",
            "docker.io",
            "index.docker.io",
            "example.com",
            "ex-ample.com:443",
            "Foo",
            "[::1]:5000",
            "a.",
            "-a.b",
            "a.b:",
            "a_b.c",
            "a..b",
            "a.b:5x",
        ]
    ),
    st.text(alphabet="aZ09.-:_[]", min_size=1, max_size=10),
)
tags = st.one_of(
    st.text(alphabet="aZ09_.-:/", max_size=6),
    st.sampled_from(["x" * 128, "x" * 129, "_" + "a" * 127, "-a", ".a"]),
)
digests = st.one_of(
    st.text(alphabet=HEX, min_size=64, max_size=64).map(lambda h: "sha256:" + h),
    st.text(alphabet=HEX + "ABCDEF", min_size=60, max_size=66).map(lambda h: "sha256:" + h),
    st.text(alphabet=HEX, min_size=128, max_size=128).map(lambda h: "sha512:" + h),
    st.sampled_from(["sha256:", "md5:" + "a" * 32, "sha256:" + "a" * 32, "SHA256:" + "a" * 64]),
)


@st.composite
def structured(draw: st.DrawFn) -> str:
    """References built from (maybe invalid) parts, in the shapes people type."""
    text = ""
    if draw(st.booleans()):
        text = draw(hosts) + "/"
    text += "/".join(draw(st.lists(components, min_size=1, max_size=4)))
    if draw(st.booleans()):
        text += ":" + draw(tags)
    if draw(st.booleans()):
        text += "@" + draw(digests)
    return text


texts = st.one_of(
    structured(),
    st.text(alphabet="ab0A._-:/@[]", max_size=30),
    st.text(alphabet=HEX, min_size=63, max_size=65),
    st.integers(min_value=200, max_value=300).map(lambda n: "a" * n),
    st.integers(min_value=1, max_value=130).map(lambda n: "h.io/" + "/".join(["ab"] * n)),
)


def _outcome(text: str, default_tag: bool) -> tuple[str, Reference | str]:
    try:
        return "ok", _parse_full(text, default_tag)
    except InvalidArgument as e:
        return "error", str(e)


@settings(max_examples=2000)
@given(texts, st.booleans())
@example("a" * 64, True)
@example("localhost:5000", True)
@example("a_b.c/app", True)
@example("docker.io/" + "a" * 245, True)
@example("docker.io/" + "a" * 246, True)
def test_the_fast_path_returns_what_the_grammar_returns_or_defers(text: str, default_tag: bool) -> None:
    expected = _outcome(text, default_tag)
    fast = _parse_fast(text, default_tag)
    if fast is not None:
        assert expected == ("ok", fast)
    try:
        got: tuple[str, Reference | str] = "ok", parse(text, default_tag=default_tag)
    except InvalidArgument as e:
        got = "error", str(e)
    assert got == expected


@pytest.mark.parametrize("text", COMMON)
def test_common_references_take_the_fast_path(text: str) -> None:
    found = _parse_fast(text, True)
    assert found is not None
    assert found == _parse_full(text, True)
