"""Writing a test root's ``config.toml`` without losing what other fixtures put there.

``add_config(root, keys=..., tables=...)``: top-level ``keys`` go first (a
key after a ``[table]`` header would belong to that table), ``tables`` last;
what the file held (a fixture's address pools) stays in between.
"""

from __future__ import annotations

import os

__all__ = ["add_config"]


def add_config(root: str | os.PathLike[str], *, keys: str = "", tables: str = "") -> None:
    path = os.path.join(os.fspath(root), "config.toml")
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    parts = [part.rstrip("\n") + "\n" for part in (keys, text, tables) if part]
    with open(path, "w") as f:
        f.write("".join(parts))
