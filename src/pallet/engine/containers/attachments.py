"""A container's networks: which ones its network options ask for, and docker's rules about joining them.

``attachments(options)`` turns ``NetworkOptions`` into the network
requests recorded with the container (``networking.Attachment``): the
default network ``bridge`` for docker's default mode, the named user network
for ``--network NAME``, none for ``none``, ``host`` and ``container:X``
(which make or join a namespace without an endpoint).
"""

from __future__ import annotations

from pallet.errors import FailedPrecondition

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["check_connectable"]


def check_connectable(document: Mapping[str, Any], name: str) -> None:
    """docker's refusal to ``network connect`` a container whose mode has no endpoints of its own."""
    mode = str((document.get("HostConfig") or {}).get("NetworkMode") or "default")
    if mode == "host":
        raise FailedPrecondition(
            "container cannot be disconnected from host network or connected to host network"
        )
    if mode == "none":
        raise FailedPrecondition(
            f"container {name} is on the none network: it cannot be connected to another network"
        )
    if mode.startswith("container:"):
        raise FailedPrecondition(
            "container sharing network namespace with another container or host cannot be connected to any other network"
        )
