"""Where pallet keeps its state: the root (images, containers, volumes) and the run dir.

Precedence, highest first: the ``--root``/``--run-root`` flag, then
``$PALLET_ROOT``/``$PALLET_RUN``, then ``/var/lib/pallet`` and ``/run/pallet``.
Paths are ``str`` here: ``pathlib`` costs ~20 ms at import, too much for ``pallet run``.
"""

from __future__ import annotations

import os

__all__ = ["DEFAULT_ROOT", "DEFAULT_RUN_ROOT", "normalise", "resolve_roots"]

DEFAULT_ROOT = "/var/lib/pallet"
DEFAULT_RUN_ROOT = "/run/pallet"


def normalise(path: str | os.PathLike[str]) -> str:
    """``str(pathlib.Path(path))`` without pathlib: repeated ``/`` and ``.`` components and a trailing ``/`` go.

    ``..`` is kept (unlike ``os.path.normpath``), and so is a leading ``//``, as
    pathlib does; the image store spells the paths it records this way.
    """
    text = os.fspath(path)
    stripped = text.lstrip("/")
    slashes = len(text) - len(stripped)
    root = "//" if slashes == 2 else "/" if slashes else ""
    parts = [p for p in stripped.split("/") if p and p != "."]
    return root + "/".join(parts) if root or parts else "."


def resolve_roots(root: str | None = None, run_root: str | None = None) -> tuple[str, str]:
    """The (root, run dir) to use, as absolute paths; nothing is created here."""
    chosen_root = root or os.environ.get("PALLET_ROOT") or DEFAULT_ROOT
    chosen_run = run_root or os.environ.get("PALLET_RUN") or DEFAULT_RUN_ROOT
    return _absolute(chosen_root), _absolute(chosen_run)


def _absolute(path: str) -> str:
    # pathlib's absolute(): the cwd in front of a relative path, ".." left alone
    return normalise(path if path.startswith("/") else os.path.join(os.getcwd(), path))
