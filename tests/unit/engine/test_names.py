"""Container ids and names: format, uniqueness against what is taken, docker's validation words."""

from __future__ import annotations

import re

import pytest

from pallet.engine.containers.names import generate_name, new_id, validate_name
from pallet.errors import InvalidArgument


def test_new_ids_are_64_hex_and_distinct() -> None:
    ids = {new_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[0-9a-f]{64}", i) for i in ids)


def test_generated_names_look_like_dockers() -> None:
    for _ in range(50):
        assert re.fullmatch(r"[a-z]+_[a-z]+", generate_name(lambda _: False))


def test_generated_name_avoids_taken_names() -> None:
    taken: set[str] = set()
    first = generate_name(taken.__contains__)
    taken.add(first)
    seen = [first]
    # every name generated while all earlier ones are taken is new
    for _ in range(30):
        name = generate_name(taken.__contains__)
        assert name not in taken
        taken.add(name)
        seen.append(name)
    assert len(set(seen)) == len(seen)


def test_when_everything_is_taken_a_random_suffix_ends_the_search() -> None:
    name = generate_name(lambda n: "_" in n and not re.search(r"_[0-9a-f]{8}$", n))
    assert re.fullmatch(r"[a-z]+_[a-z]+\d?_[0-9a-f]{8}", name)


@pytest.mark.parametrize(
    ("given", "bare"), [("web", "web"), ("/web", "web"), ("a.b-c_1", "a.b-c_1"), ("9x", "9x")]
)
def test_valid_names_lose_their_leading_slash(given: str, bare: str) -> None:
    assert validate_name(given) == bare


@pytest.mark.parametrize("bad", ["", "a", "-web", "_web", "we b", "wéb", "web/1", "/"])
def test_invalid_names_are_refused_in_dockers_words(bad: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_name(bad)
    assert (
        caught.value.message == f"Invalid container name ({bad}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
    )
