"""API versions: which the service speaks, and the version a request's path asks for.

The service speaks API 1.41 to 1.47. A path ``/v1.45/containers/json`` asks
for 1.45; an unversioned path means the newest. A version outside the range
is refused with dockerd's words (``middleware/version.go``), as a 400.
"""

from __future__ import annotations

import re

from pallet.errors import InvalidArgument

__all__ = ["MAX_VERSION", "MIN_VERSION", "Version", "split_version"]

Version = tuple[int, int]

MIN_VERSION: Version = (1, 41)
MAX_VERSION: Version = (1, 47)

_PREFIX = re.compile(r"/v([0-9]+)\.([0-9]+)(?=/)")


def text(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


def split_version(path: str) -> tuple[Version, str]:
    """(the API version asked for, the path without its ``/vX.Y`` prefix); ``InvalidArgument`` if out of range."""
    match = _PREFIX.match(path)
    if match is None:
        return MAX_VERSION, path
    version = (int(match.group(1)), int(match.group(2)))
    if version < MIN_VERSION:
        raise InvalidArgument(
            f"client version {text(version)} is too old. Minimum supported API version is "
            f"{text(MIN_VERSION)}, please upgrade your client to a newer version"
        )
    if version > MAX_VERSION:
        raise InvalidArgument(
            f"client version {text(version)} is too new. Maximum supported API version is {text(MAX_VERSION)}"
        )
    return version, path[match.end() :]
