"""Where pallet keeps its state: the root (images, containers, volumes) and the run dir.

Precedence, highest first: the ``--root``/``--run-root`` flag, then
``$PALLET_ROOT``/``$PALLET_RUN``, then ``/var/lib/pallet`` and ``/run/pallet``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_ROOT", "DEFAULT_RUN_ROOT", "resolve_roots"]

DEFAULT_ROOT = Path("/var/lib/pallet")
DEFAULT_RUN_ROOT = Path("/run/pallet")


def resolve_roots(root: str | None = None, run_root: str | None = None) -> tuple[Path, Path]:
    """The (root, run dir) to use, as absolute paths; nothing is created here."""
    chosen_root = root or os.environ.get("PALLET_ROOT") or str(DEFAULT_ROOT)
    chosen_run = run_root or os.environ.get("PALLET_RUN") or str(DEFAULT_RUN_ROOT)
    return Path(chosen_root).absolute(), Path(chosen_run).absolute()
