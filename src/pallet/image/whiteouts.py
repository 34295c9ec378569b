"""OCI whiteouts and their overlayfs form.

In a layer tar, ``dir/.wh.name`` deletes ``dir/name`` of the layers below and
``dir/.wh..wh..opq`` makes ``dir`` opaque (hides everything below it that the
layer itself does not add). Other ``.wh..wh.`` names are aufs bookkeeping and
carry no meaning for an image.

On an overlayfs lower or upper directory the same facts are stored the kernel's
way: a whiteout is a character device 0/0 named ``name``, an opaque directory
has the xattr ``trusted.overlay.opaque=y``. This module names both forms and
converts between them; ``extract`` and ``layerdiff`` decide when.
"""

from __future__ import annotations

import os
import stat

__all__ = [
    "OPAQUE_MARKER",
    "OPAQUE_XATTR",
    "PREFIX",
    "is_opaque_dir",
    "is_overlay_whiteout",
    "make_overlay_whiteout",
    "mark_opaque",
    "parse",
    "whiteout_name",
]

PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
_META_PREFIX = ".wh..wh."
OPAQUE_XATTR = "trusted.overlay.opaque"

#: what ``parse`` says about a base name
OPAQUE, DELETE, IGNORE = "opaque", "delete", "ignore"


def parse(base: str) -> tuple[str, str] | None:
    """Classify a base name: ``None`` (not a whiteout), ``(OPAQUE, "")``, ``(DELETE, name)`` or ``(IGNORE, "")``."""
    if not base.startswith(PREFIX):
        return None
    if base == OPAQUE_MARKER:
        return OPAQUE, ""
    if base.startswith(_META_PREFIX):
        return IGNORE, ""  # aufs hard-link directories and the like
    name = base[len(PREFIX) :]
    if name in ("", ".", ".."):
        return IGNORE, ""
    return DELETE, name


def whiteout_name(name: str) -> str:
    """The tar base name that deletes ``name``."""
    return PREFIX + name


def is_overlay_whiteout(st: os.stat_result) -> bool:
    """Whether an overlayfs upper-dir entry is a whiteout (a 0/0 character device)."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque_dir(path: str | int) -> bool:
    """Whether an overlayfs directory (path or fd) is marked opaque."""
    try:
        return os.getxattr(path, OPAQUE_XATTR) == b"y"
    except OSError:
        return False  # no xattr, or a file system without trusted xattrs


def make_overlay_whiteout(name: str, dir_fd: int) -> None:
    """Create the overlayfs whiteout for ``name`` in ``dir_fd`` (needs CAP_MKNOD)."""
    os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=dir_fd)


def mark_opaque(dir_fd: int) -> None:
    """Mark a directory opaque for overlayfs (needs CAP_SYS_ADMIN for trusted xattrs)."""
    os.setxattr(f"/proc/self/fd/{dir_fd}", OPAQUE_XATTR, b"y")
