"""``run_options(**flat)``: a ``RunOptions`` from docker's flat option names, for tests.

Tests that vary one or two options write ``run_options(memory=64 << 20,
network="host")`` instead of the groups; each name goes to the group that
owns it (``security_opt`` texts through ``security_options``, ``network`` a
mode text, ``tmpfs`` to the mounts). The options check themselves as usual.
"""

from __future__ import annotations

from pallet.engine.spec.options import (
    MountOptions,
    NamespaceOptions,
    NetworkOptions,
    ProcessOptions,
    ResourceOptions,
    RunOptions,
    SecurityOptions,
    security_options,
)
from pallet.engine.spec.syntax import parse_network

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["run_options"]

_GROUPS: dict[str, Any] = {
    "process": ProcessOptions,
    "resources": ResourceOptions,
    "security": SecurityOptions,
    "network": NetworkOptions,
    "namespaces": NamespaceOptions,
    "mounts": MountOptions,
}


def run_options(**flat: Any) -> RunOptions:
    """``RunOptions`` whose fields (container-wide or of a group) are given by name."""
    groups: dict[str, dict[str, Any]] = {name: {} for name in _GROUPS}
    top: dict[str, Any] = {}
    for name, value in flat.items():
        if name == "network":
            groups["network"]["mode"] = parse_network(value)
        elif name == "security_opt":
            groups["security"]["security_opt"] = value
        elif name in RunOptions._fields:
            top[name] = value
        else:
            group = next((g for g, cls in _GROUPS.items() if name in cls._fields), None)
            if group is None:
                raise TypeError(f"run_options: no option {name!r}")
            groups[group][name] = value
    security = groups.pop("security")
    return RunOptions(
        **top,
        security=security_options(security.pop("security_opt", ()), **security),
        **{name: _GROUPS[name](**values) for name, values in groups.items()},
    )
