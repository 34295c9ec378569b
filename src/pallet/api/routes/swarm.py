"""Swarm routes, answered as a docker engine that is not part of a swarm answers them.

pallet is a single-node engine and never joins a swarm: ``GET /swarm`` and
``POST /swarm/leave`` get dockerd's 503 words for a node outside a swarm
(clients such as docker-py treat a forced leave's 503 as done), and the
verbs that would make or join one are docker's 501.
"""

from __future__ import annotations

from pallet.api.messages import Request, Response
from pallet.api.routing import RouteTable
from pallet.errors import Unavailable, Unsupported

__all__ = ["ROUTES"]

ROUTES = RouteTable()

_NOT_MANAGER = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node '
    "to swarm and try again."
)


@ROUTES.route("GET", "/swarm")
def inspect(request: Request) -> Response:
    raise Unavailable(_NOT_MANAGER)


@ROUTES.route("POST", "/swarm/leave")
def leave(request: Request) -> Response:
    raise Unavailable("This node is not part of a swarm")


@ROUTES.route("POST", "/swarm/init")
def init(request: Request) -> Response:
    request.body.drain()
    raise Unsupported("not implemented: pallet is a single-node engine without swarm mode")


@ROUTES.route("POST", "/swarm/join")
def join(request: Request) -> Response:
    request.body.drain()
    raise Unsupported("not implemented: pallet is a single-node engine without swarm mode")
