"""The token signing key of a registry, kept in its storage directory so tokens outlive a restart.

``<storage>/token-signing.key`` holds 32 random bytes, mode 0600. It is made
once, atomically: the bytes go to a private temp file that is fsynced, then
hard-linked to the final name. ``link`` fails if the name exists, so when two
servers start on one directory at once, one key wins and both use it; a
reader never sees a half-written key. Removing the file rotates the key at
the next start (every token issued before is then refused, and clients fetch
new ones on their next 401).
"""

from __future__ import annotations

import contextlib
import os

from pallet.errors import InvalidArgument

__all__ = ["KEY_BYTES", "KEY_FILE", "load_or_create"]

KEY_FILE = "token-signing.key"

#: HMAC-SHA256 key length (the hash's block is 64 bytes; 32 random bytes are plenty)
KEY_BYTES = 32


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            key = f.read(KEY_BYTES + 1)
    except FileNotFoundError:
        return None
    if len(key) != KEY_BYTES:
        raise InvalidArgument(
            f"token signing key {path} holds {len(key)} bytes, not {KEY_BYTES}; remove it and a new key "
            "is made at the next start (tokens issued before are then refused)"
        )
    return key


def load_or_create(storage_dir: str) -> bytes:
    """The key in ``storage_dir``; made there first if absent. Idempotent, safe between processes."""
    path = os.path.join(storage_dir, KEY_FILE)
    key = _read(path)
    if key is not None:
        return key
    os.makedirs(storage_dir, exist_ok=True)
    tmp = os.path.join(storage_dir, f".{KEY_FILE}.{os.getpid()}-{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # exactly 0600, whatever the umask
        os.write(fd, os.urandom(KEY_BYTES))
        os.fsync(fd)
        os.close(fd)
        fd = -1
        with contextlib.suppress(FileExistsError):  # another server made it first: use theirs
            os.link(tmp, path)
    finally:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    dir_fd = os.open(storage_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)  # the key's name is durable before any token signed with it goes out
    finally:
        os.close(dir_fd)
    key = _read(path)
    assert key is not None  # linked above, by this process or another
    return key
