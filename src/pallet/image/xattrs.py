"""Reading a file's extended attributes as a layer or an archive carries them.

The overlay snapshotter's ``trusted.overlay.*`` and SELinux's label belong to
the host, not to the file: they are left out. A file system without xattrs
(or that refuses to list them) has none.
"""

from __future__ import annotations

import errno
import os

__all__ = ["read_xattrs"]

_SKIPPED = ("trusted.overlay.", "security.selinux")


def read_xattrs(target: int | str) -> dict[str, bytes]:
    """The attributes of an open file (``target`` an fd) or of a path (a symlink itself, not followed), by name."""
    follow = isinstance(target, int)  # an fd: nothing to follow (os refuses fd with follow_symlinks=False)
    try:
        names = os.listxattr(target, follow_symlinks=follow)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            return {}
        raise
    found = {}
    for name in sorted(names):
        if name.startswith(_SKIPPED):
            continue
        try:
            found[name] = os.getxattr(target, name, follow_symlinks=follow)
        except OSError as e:
            if e.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EPERM):
                raise
    return found
