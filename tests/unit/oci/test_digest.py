from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pallet.errors import InvalidArgument, Unsupported
from pallet.oci.digest import Digest, hasher

EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_parse_accepts_sha256_and_exposes_parts() -> None:
    d = Digest.parse(EMPTY_SHA256)
    assert d == EMPTY_SHA256
    assert (d.algorithm, d.hex[:8], d.short) == ("sha256", "e3b0c442", "e3b0c44298fc")


def test_parse_accepts_sha512() -> None:
    text = "sha512:" + hashlib.sha512(b"").hexdigest()
    assert Digest.parse(text).algorithm == "sha512"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "expected <algorithm>:<hex>"),
        ("e3b0c44298fc", "expected <algorithm>:<hex>"),
        ("sha256:", "expected <algorithm>:<hex>"),
        (":abc", "expected <algorithm>:<hex>"),
        ("sha256:abc", "needs 64 hex digits, got 3"),
        ("SHA256:" + "a" * 64, "bad algorithm name"),
        ("md5:" + "a" * 32, 'unsupported algorithm "md5"'),
        ("sha256:" + "A" * 64, "lowercase"),
        ("sha256:" + "g" * 64, "lowercase"),
        ("sha512:" + "a" * 64, "needs 128 hex digits"),
    ],
)
def test_parse_rejects_bad_digests_saying_why(text: str, problem: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid digest") as info:
        Digest.parse(text)
    assert problem in str(info.value)


def test_of_bytes_is_the_sha256_of_the_content() -> None:
    assert Digest.of_bytes(b"") == EMPTY_SHA256
    assert Digest.of_bytes(b"abc", "sha512") == "sha512:" + hashlib.sha512(b"abc").hexdigest()


def test_hasher_refuses_unknown_algorithms() -> None:
    with pytest.raises(Unsupported, match="md5"):
        hasher("md5")


@given(st.binary(max_size=256), st.sampled_from(["sha256", "sha512"]))
def test_any_computed_digest_parses_back_to_itself(data: bytes, algorithm: str) -> None:
    d = Digest.of_bytes(data, algorithm)
    assert Digest.parse(str(d)) == d
    assert Digest.parse(str(d)).hex == hashlib.new(algorithm, data).hexdigest()
