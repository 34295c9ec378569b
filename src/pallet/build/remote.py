"""``ADD https://…``: a remote file fetched for a build, checked against ``--checksum``.

docker's rules: the file lands at the destination (its name the URL's last
path component when the destination is a directory) with mode 0600, and is
not unpacked even if it is an archive. A URL that cannot be reached, or
answers other than 200, fails the step naming the URL; ``--checksum=sha256:…``
must match the bytes. Git URLs are not fetched.
"""

from __future__ import annotations

import hashlib
import posixpath
from urllib.parse import urlsplit

from pallet.errors import DataLoss, InvalidArgument, Unavailable, Unsupported

__all__ = ["fetch", "is_remote"]

_LIMIT = 1 << 31


def is_remote(source: str) -> bool:
    return source.startswith(("http://", "https://", "git@", "git://"))


def fetch(url: str, checksum: str | None) -> tuple[str, bytes]:
    """(file name, bytes) of ``url``; ``Unavailable`` if it cannot be fetched, ``DataLoss`` on a checksum mismatch."""
    if url.startswith(("git@", "git://")) or url.endswith(".git"):
        raise Unsupported(f"ADD {url}: git sources are not supported by this builder; clone into the context")
    if checksum is not None:
        algorithm, _, expected = checksum.partition(":")
        if algorithm != "sha256" or len(expected) != 64:
            raise InvalidArgument(f"invalid checksum {checksum!r}: use sha256:<64 hex digits>")
    import urllib3

    pool = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=10, read=60))
    try:
        response = pool.request("GET", url, preload_content=False)
    except urllib3.exceptions.HTTPError as e:
        raise Unavailable(f"ADD {url}: cannot fetch it: {e}") from None
    try:
        if response.status != 200:
            raise Unavailable(f"ADD {url}: the server answered {response.status} {response.reason}")
        data = response.read(_LIMIT)
    finally:
        response.release_conn()
        pool.clear()
    if checksum is not None:
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != checksum:
            raise DataLoss(f"ADD {url}: checksum mismatch: expected {checksum}, got {actual}")
    name = posixpath.basename(urlsplit(url).path.rstrip("/")) or "index.html"
    return name, data
