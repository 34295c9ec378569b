"""Finding the program to run, with Go's ``exec.LookPath`` wording (engines map it to exit 127/126)."""

from __future__ import annotations

import os
import stat
from errno import ENOENT

from pallet.errors import FailedPrecondition, NotFound, errno_text


def _executable(path: str) -> int:
    """0 if ``path`` is an executable regular file, else the errno Go would report."""
    try:
        st = os.stat(path)
    except OSError as e:
        return e.errno or 2
    if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
        return 13  # EACCES: Go's LookPath says "permission denied" for both
    return 0


def resolve(name: str, env: tuple[str, ...] | list[str]) -> str:
    """The path to execute for ``args[0]``; looks in the container's ``$PATH`` when it has no slash.

    Must run inside the container's root (after pivot_root).
    """
    if "/" in name:
        errno = _executable(name)
        if errno == ENOENT:
            raise NotFound(f'exec: "{name}": stat {name}: {errno_text(errno)}')
        if errno:
            raise FailedPrecondition(f'exec: "{name}": {errno_text(errno)}')
        return name
    path = ""
    for item in env:
        if item.startswith("PATH="):
            path = item[5:]
    for directory in path.split(":") if path else ():
        candidate = os.path.join(directory or ".", name)
        if _executable(candidate) == 0:
            return candidate
    raise NotFound(f'exec: "{name}": executable file not found in $PATH')
