"""``GET /system/df``: images, containers, volumes and build cache with their sizes (docker's shape)."""

from __future__ import annotations

import time
from typing import Any

from pallet.api.messages import Json, Request, Response
from pallet.api.routing import RouteTable
from pallet.errors import InvalidArgument

__all__ = ["ROUTES"]

ROUTES = RouteTable()

_TYPES = ("container", "image", "volume", "build-cache")


@ROUTES.route("GET", "/system/df")
def disk_usage(request: Request) -> Response:
    from pallet.engine.service import status_text

    wanted = request.args("type") or list(_TYPES)
    for kind in wanted:
        if kind not in _TYPES:
            raise InvalidArgument(f"unknown object type: {kind}")
    usage = request.service.disk_usage()
    now = time.time()
    doc: dict[str, Any] = {"LayersSize": usage.layers_size}
    if "image" in wanted:
        doc["Images"] = [
            {
                "Containers": i.containers,
                "Created": int(i.image.added),
                "Id": str(i.image.id),
                "Labels": None,
                "ParentId": "",
                "RepoDigests": [r.familiar_string() for r in i.image.references if r.digest is not None],
                "RepoTags": [r.familiar_string() for r in i.image.references if r.tag is not None],
                "SharedSize": i.shared_size,
                "Size": i.size,
                "VirtualSize": i.size,
            }
            for i in usage.images
        ]
    if "container" in wanted:
        doc["Containers"] = [
            {
                "Id": c.container.id,
                "Names": ["/" + c.container.name],
                "Image": c.container.image,
                "ImageID": c.container.image_id,
                "Created": int(c.container.created),
                "State": c.container.state,
                "Status": status_text(c.container, now),
                "Labels": dict(c.container.labels),
                "SizeRw": c.size,
                "SizeRootFs": c.size,
            }
            for c in usage.containers
        ]
    if "volume" in wanted:
        doc["Volumes"] = [
            {**v.volume.to_inspect(), "UsageData": {"Size": v.size, "RefCount": len(v.volume.users)}}
            for v in usage.volumes
        ]
    if "build-cache" in wanted:
        doc["BuildCache"] = []  # pallet keeps no build cache (yet): nothing to show
    return Json(doc)
