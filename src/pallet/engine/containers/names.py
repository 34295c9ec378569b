"""Container ids and names: 64-hex ids, docker-like ``adjective_surname`` names, name validation.

The words are our own list (the shape is docker's: an adjective and the
surname of a scientist or engineer, joined by ``_``); when a generated name
is taken, a digit is appended, as docker does on retries.
"""

from __future__ import annotations

import os

from pallet.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["generate_name", "new_id", "validate_name"]

_ADJECTIVES = (
    "agile", "amazing", "bold", "brave", "bright", "busy", "calm", "careful", "cheerful", "clever",
    "cool", "curious", "daring", "eager", "elated", "epic", "fervent", "fond", "friendly", "gallant",
    "gentle", "happy", "hardy", "honest", "humble", "jolly", "keen", "kind", "lively", "loyal",
    "lucid", "merry", "modest", "nifty", "noble", "patient", "peaceful", "plucky", "polite", "proud",
    "quick", "quiet", "rapid", "serene", "sharp", "shy", "steady", "stoic", "sunny", "swift",
    "tender", "thirsty", "tidy", "upbeat", "vibrant", "vigilant", "warm", "wise", "witty", "zealous",
)  # fmt: skip

_SURNAMES = (
    "agnesi", "babbage", "bardeen", "bohr", "boole", "cerf", "curie", "darwin", "dijkstra", "einstein",
    "euler", "faraday", "fermat", "fermi", "feynman", "franklin", "galileo", "gauss", "goodall", "hamilton",
    "hawking", "hopper", "hypatia", "johnson", "kepler", "knuth", "lamarr", "lamport", "leakey", "liskov",
    "lovelace", "maxwell", "meitner", "mendel", "newton", "noether", "pascal", "pasteur", "planck", "ritchie",
    "sammet", "shannon", "shaw", "snyder", "tesla", "thompson", "torvalds", "turing", "volta", "wilson",
    "wozniak", "wright", "yalow", "yonath",
)  # fmt: skip

_NAME_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_REST = _NAME_FIRST | frozenset("_.-")


def new_id() -> str:
    """A fresh container id: 64 lowercase hex digits from the kernel's random source."""
    return os.urandom(32).hex()


def _random_index(n: int) -> int:
    return int.from_bytes(os.urandom(4), "big") % n


def generate_name(taken: Callable[[str], bool], *, attempts: int = 10) -> str:
    """A random ``adjective_surname`` that ``taken`` does not report as used.

    After the first try, a digit is appended (docker's retry shape). The
    caller still inserts under the database's UNIQUE index, so a race between
    two processes is settled there, not here.
    """
    for attempt in range(attempts):
        name = f"{_ADJECTIVES[_random_index(len(_ADJECTIVES))]}_{_SURNAMES[_random_index(len(_SURNAMES))]}"
        if attempt:
            name += str(_random_index(10))
        if not taken(name):
            return name
    # astronomically unlikely with thousands of combinations; a long suffix always ends it
    return f"{name}_{os.urandom(4).hex()}"


def validate_name(name: str) -> str:
    """``name`` without a leading ``/``, or ``InvalidArgument`` in docker's words if it is not allowed."""
    bare = name[1:] if name.startswith("/") else name
    if len(bare) < 2 or bare[0] not in _NAME_FIRST or any(c not in _NAME_REST for c in bare[1:]):
        raise InvalidArgument(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return bare
