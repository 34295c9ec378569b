"""Content digests (``sha256:<64 hex>``, ``sha512:<128 hex>``): parsing, validation, hashing.

A ``Digest`` is a ``str`` subclass holding the canonical text, so it can be used
wherever a digest string is expected (JSON, SQLite, file names) and is checked
once, when it is made. Only the algorithms registered by the OCI image spec are
accepted: pallet cannot verify content for any other.
"""

from __future__ import annotations

__all__ = ["ALGORITHMS", "Digest", "hasher"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hashlib import _Hash
    from typing import Self

#: algorithm -> length of its hex encoding
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}

_HEX = frozenset("0123456789abcdef")
_ALGORITHM_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789+._-")
#: up to this many bytes ``of_bytes`` hashes with CPython's built-in sha modules
_SMALL = 1 << 20


def hasher(algorithm: str = "sha256") -> _Hash:
    """A fresh hashlib object for ``algorithm`` (one of ``ALGORITHMS``); for streams of any size."""
    if algorithm not in ALGORITHMS:
        from pallet.errors import Unsupported

        raise Unsupported(f"unsupported digest algorithm {algorithm!r}; use sha256 or sha512")
    # imported here: hashlib loads OpenSSL (~5 ms), which reading a config on `pallet run` does not need
    import hashlib

    return hashlib.new(algorithm)


def _small_hasher(algorithm: str) -> _Hash:
    """A hasher for a few bytes: CPython's built-in sha modules load in microseconds, OpenSSL in ~5 ms.

    They compute the same digests, only slower per byte, so large inputs go to ``hasher``.
    """
    try:
        if algorithm == "sha256":
            from _sha256 import sha256 as new  # type: ignore[import-not-found]  # built in, no stub
        elif algorithm == "sha512":
            from _sha512 import sha512 as new  # type: ignore[import-not-found]
        else:
            return hasher(algorithm)  # raises Unsupported
    except ImportError:  # Python 3.12 merged them into _sha2
        return hasher(algorithm)
    h: _Hash = new()
    return h


class Digest(str):
    """A validated digest such as ``sha256:e3b0c442…``; compare and hash as its text."""

    __slots__ = ()

    @classmethod
    def parse(cls, text: str) -> Self:
        """Validate ``text``; raise ``InvalidArgument`` saying what is wrong with it."""
        if isinstance(text, cls):
            return text
        from pallet.errors import InvalidArgument

        if not isinstance(text, str):
            raise InvalidArgument(f"invalid digest {text!r}: not a string")
        algorithm, sep, encoded = text.partition(":")
        if not sep or not algorithm or not encoded:
            raise InvalidArgument(
                f'invalid digest "{text}": expected <algorithm>:<hex>, e.g. sha256:<64 hex digits>'
            )
        if not set(algorithm) <= _ALGORITHM_CHARS:
            raise InvalidArgument(f'invalid digest "{text}": bad algorithm name "{algorithm}"')
        length = ALGORITHMS.get(algorithm)
        if length is None:
            raise InvalidArgument(
                f'invalid digest "{text}": unsupported algorithm "{algorithm}" (sha256 or sha512)'
            )
        if len(encoded) != length:
            raise InvalidArgument(
                f'invalid digest "{text}": {algorithm} needs {length} hex digits, got {len(encoded)}'
            )
        if not set(encoded) <= _HEX:
            raise InvalidArgument(f'invalid digest "{text}": the hex part must be lowercase 0-9a-f')
        return cls(text)

    @classmethod
    def of_bytes(cls, data: bytes, algorithm: str = "sha256") -> Self:
        """The digest of ``data``."""
        h = _small_hasher(algorithm) if len(data) <= _SMALL else hasher(algorithm)
        h.update(data)
        return cls(f"{algorithm}:{h.hexdigest()}")

    @classmethod
    def from_hasher(cls, h: _Hash) -> Self:
        """The digest a finished hashlib object computed."""
        return cls(f"{h.name}:{h.hexdigest()}")

    @property
    def algorithm(self) -> str:
        return self.partition(":")[0]

    @property
    def hex(self) -> str:  # shadows str.hex(): a digest has no use for it
        return self.partition(":")[2]

    @property
    def short(self) -> str:
        """The 12-hex-digit short form docker shows as an image id."""
        return self.hex[:12]
