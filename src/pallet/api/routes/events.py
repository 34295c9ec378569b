"""``GET /events``: the root's events as docker streams them, one JSON document per event.

The events are what every process recorded (``pallet.engine.events``): this
service's requests, daemonless ``pallet`` commands and the containers'
shims. ``since``/``until`` and ``filters`` as docker takes them; without
``until`` the stream follows until the client goes away (checked about
once a second while nothing happens).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from pallet.api.messages import Request, Response, Stream
from pallet.api.routing import RouteTable

__all__ = ["ROUTES"]

ROUTES = RouteTable()


@ROUTES.route("GET", "/events")
def events(request: Request) -> Response:
    from pallet.engine.service import event_filters

    # a bad filter or time fails here, as a 400, before the answer's head is sent
    stream = request.service.events(
        since=request.arg("since") or None,
        until=request.arg("until") or None,
        filters=event_filters(request.filters()),
        alive=lambda: not request.client_gone(),
    )

    def chunks() -> Iterator[bytes]:
        try:
            for event in stream:
                if event is not None:  # None: a quiet second, after which the client was still there
                    yield json.dumps(event.to_json()).encode() + b"\n"
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    return Stream(chunks())
