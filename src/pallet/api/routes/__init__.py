"""The API's routes, one module per resource, each with a ``ROUTES`` table (``routing.RouteTable``).

To add a resource: write ``routes/<resource>.py`` with ``ROUTES = RouteTable()``
and handlers decorated with ``@ROUTES.route(METHOD, "/path/{param}")``, then
add its name to ``MODULES``. The modules are imported when the service starts
(``table``), never on a CLI path.
"""

from __future__ import annotations

import importlib

from pallet.api.routing import RouteTable

__all__ = ["MODULES", "table"]

#: the route modules, in the order their patterns are tried
MODULES = (
    "system",
    "containers",
    "exec",
    "events",
    "images",
    "volumes",
    "networks",
    "build",
    "diskusage",
    "swarm",
    "distribution",
)


def table() -> RouteTable:
    """Every route of every module in ``MODULES``."""
    merged = RouteTable()
    for name in MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        merged.extend(module.ROUTES)
    return merged
