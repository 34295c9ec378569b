"""docker's stream framing and detach keys.

Without a tty, attach, exec and logs output is multiplexed: each frame is an
8-byte header (stream: 0 stdin, 1 stdout, 2 stderr; three zero bytes; the
payload's length, big-endian 32 bits) and the payload. With a tty the bytes
go raw. API 1.42 and later name the two kinds by content type.
"""

from __future__ import annotations

import struct

from pallet.api.versions import Version
from pallet.errors import InvalidArgument

__all__ = ["DEFAULT_DETACH_KEYS", "DetachMatcher", "content_type", "frame", "parse_detach_keys"]

STDOUT = 1
STDERR = 2

#: ctrl-p ctrl-q
DEFAULT_DETACH_KEYS = b"\x10\x11"

_HEADER = struct.Struct(">BxxxI")


def frame(stream: int, data: bytes) -> bytes:
    return _HEADER.pack(stream, len(data)) + data


def content_type(tty: bool, version: Version) -> str:
    """The hijacked stream's content type: raw with a tty, multiplexed (named so from 1.42) without."""
    if tty or version < (1, 42):
        return "application/vnd.docker.raw-stream"
    return "application/vnd.docker.multiplexed-stream"


def parse_detach_keys(text: str) -> bytes:
    """docker's ``detachKeys`` (``ctrl-p,ctrl-q``, ``a``, ``ctrl-@``…) as the bytes typed."""
    if not text:
        return DEFAULT_DETACH_KEYS
    out = bytearray()
    for key in text.split(","):
        if len(key) == 1:
            out.append(ord(key))
        elif key.startswith("ctrl-") and len(key) == 6:
            char = key[5].lower()
            if "a" <= char <= "z":
                out.append(ord(char) - ord("a") + 1)
            elif char in "@[\\]^_":
                out.append({"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}[char])
            else:
                raise InvalidArgument(f"Unknown character: '{key}'")
        else:
            raise InvalidArgument(f"Unknown character: '{key}'")
    return bytes(out)


class DetachMatcher:
    """Finds the detach keys in a client's stdin, across reads: what to send on, and whether they were typed."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self._held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to send to the container now, whether the user detached)."""
        data = self._held + data
        self._held = b""
        index = data.find(self.keys)
        if index >= 0:
            return data[:index], True
        # a prefix of the keys at the end waits for the next read
        for size in range(min(len(self.keys) - 1, len(data)), 0, -1):
            if data.endswith(self.keys[:size]):
                self._held = data[-size:]
                return data[:-size], False
        return data, False
