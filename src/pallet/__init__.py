"""pallet: a container engine in Python, layered like the Docker stack.

``import pallet; client = pallet.Client(root=...)`` gives the engine as a
library (``pallet.engine.client``). The name is resolved lazily, on first
use: every console script imports this package first, and
``pallet-runtime`` must start in a few milliseconds (see ``../DESIGN.md``),
so nothing is imported here at import time.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.engine.client import Client

__all__ = ["Client"]


def __getattr__(name: str) -> object:
    if name == "Client":
        from pallet.engine.client import Client

        return Client
    raise AttributeError(f"module 'pallet' has no attribute {name!r}")
