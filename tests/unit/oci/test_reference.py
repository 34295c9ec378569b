from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pallet.errors import InvalidArgument
from pallet.oci.reference import Reference, parse

D = "sha256:" + "ab" * 32

# (input, full normalised form, familiar form) — docker's normalisation (distribution/reference)
NORMALISED = [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/library/busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"),
    ("user/app", "docker.io/user/app:latest", "user/app:latest"),
    ("index.docker.io/user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
    ("docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/app@" + D, "localhost:5000/app@" + D, "localhost:5000/app@" + D),
    ("host:5000/a/b:tag@" + D, "host:5000/a/b:tag@" + D, "host:5000/a/b:tag@" + D),
    (
        "example.com/a_b/c-d__e.f:1.0_RC-2",
        "example.com/a_b/c-d__e.f:1.0_RC-2",
        "example.com/a_b/c-d__e.f:1.0_RC-2",
    ),
    ("Foo/bar", "Foo/bar:latest", "Foo/bar:latest"),
    ("[::1]:5000/app:v", "[::1]:5000/app:v", "[::1]:5000/app:v"),
    ("a--b/c", "docker.io/a--b/c:latest", "a--b/c:latest"),
    # docker prints "a.b/c" here, which would read back as registry a.b
    ("docker.io/a.b/c", "docker.io/a.b/c:latest", "docker.io/a.b/c:latest"),
]


@pytest.mark.parametrize(("text", "full", "familiar"), NORMALISED)
def test_references_normalise_as_docker_does(text: str, full: str, familiar: str) -> None:
    ref = parse(text)
    assert str(ref) == full
    assert ref.familiar_string() == familiar


def test_parts_of_a_full_reference() -> None:
    ref = parse("host:5000/a/b:tag@" + D)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("host:5000", "a/b", "tag", D)
    assert ref.familiar_name() == "host:5000/a/b"
    assert str(ref.canonical()) == "host:5000/a/b@" + D  # docker keeps the digest, drops the tag


def test_without_default_tag_nothing_is_added() -> None:
    assert parse("busybox", default_tag=False).tag is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("BusyBox", "invalid reference format: repository name must be lowercase"),
        ("user/App:v1", "invalid reference format: repository name must be lowercase"),
        ("Example.com/App", "invalid reference format: repository name must be lowercase"),
        ("", "repository name must have at least one component"),
        ("busybox:", "invalid reference format"),
        (":tag", "invalid reference format"),
        ("-app", "invalid reference format"),
        ("app-", "invalid reference format"),
        ("a//b", "invalid reference format"),
        ("busybox:tag with space", "invalid reference format"),
        ("busybox:" + "t" * 129, "invalid reference format"),
        ("busybox@sha256:abc", "invalid reference format"),
        ("busybox@md5:" + "a" * 32, "unsupported algorithm"),
        ("a/" + "b" * 250, "must not be more than 255 characters"),
        ("ab" * 32, "cannot specify 64-byte hexadecimal strings"),
    ],
)
def test_bad_references_are_rejected_with_docker_wording(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse(text)
    assert message in str(info.value)


def test_with_tag_validates_the_tag() -> None:
    assert str(parse("busybox").with_tag("v2")) == "docker.io/library/busybox:v2"
    with pytest.raises(InvalidArgument, match="invalid tag"):
        parse("busybox").with_tag("-bad")


_alnum = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
_component = st.builds(
    lambda parts, seps: parts[0] + "".join(s + p for s, p in zip(seps, parts[1:], strict=False)),
    st.lists(_alnum, min_size=1, max_size=3),
    st.lists(st.sampled_from([".", "_", "__", "-", "--"]), min_size=2, max_size=2),
)
_domain = st.one_of(
    st.just("docker.io"),
    st.builds(lambda a, b: f"{a}.{b}", _alnum, _alnum),
    st.builds(lambda a, p: f"{a}:{p}", st.just("localhost"), st.integers(1, 65535)),
)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_digest = st.binary(min_size=32, max_size=32).map(lambda b: "sha256:" + b.hex())


@st.composite
def references(draw: st.DrawFn) -> Reference:
    domain = draw(_domain)
    path = "/".join(draw(st.lists(_component, min_size=1, max_size=3)))
    if domain == "docker.io" and "/" not in path:
        path = "library/" + path
    tag = draw(st.one_of(st.none(), _tag))
    digest = draw(st.one_of(st.none(), _digest))
    if tag is None and digest is None:
        tag = "latest"
    return Reference(domain=domain, path=path, tag=tag, digest=digest)  # type: ignore[arg-type]


@given(references())
def test_a_reference_parses_back_from_its_string(ref: Reference) -> None:
    assert parse(str(ref)) == ref


@given(references())
def test_a_reference_parses_back_from_its_familiar_string(ref: Reference) -> None:
    assert parse(ref.familiar_string()) == ref
