"""``POST /build`` (docker's legacy builder protocol) and ``POST /build/prune``.

pallet's builder (``pallet.build``) has its Dockerfile parser but no build
entry point yet: ``/build`` answers docker's 501 with that reason, after
reading the context the client sent, so the connection stays usable. There
is no build cache, so ``/build/prune`` truly has nothing to remove.
"""

from __future__ import annotations

from pallet.api.messages import Json, Request, Response
from pallet.api.routing import RouteTable
from pallet.errors import Unsupported

__all__ = ["ROUTES"]

ROUTES = RouteTable()


@ROUTES.route("POST", "/build")
def build(request: Request) -> Response:
    request.body.drain()
    raise Unsupported(
        "not implemented: pallet's builder has no build entry point yet (its Dockerfile parser is in "
        "pallet.build); build images with buildah or docker and load them (docker save | pallet load)"
    )


@ROUTES.route("POST", "/build/prune")
def prune(request: Request) -> Response:
    return Json({"CachesDeleted": None, "SpaceReclaimed": 0})
