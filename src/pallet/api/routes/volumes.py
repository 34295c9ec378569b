"""Volume routes: ``/volumes`` list, create, inspect, remove, prune (docker's shapes, onto the engine's volumes)."""

from __future__ import annotations

from pallet.api.messages import Empty, Json, Request, Response
from pallet.api.routing import RouteTable
from pallet.errors import InvalidArgument

__all__ = ["ROUTES", "filter_texts"]

ROUTES = RouteTable()


def filter_texts(request: Request) -> list[str]:
    """docker's JSON ``filters`` as the engine's ``key=value`` texts."""
    return [f"{key}={value}" for key, values in request.filters().items() for value in values]


@ROUTES.route("GET", "/volumes")
def list_volumes(request: Request) -> Response:
    from pallet.engine.service import volume_filters

    found = request.service.volumes(volume_filters(filter_texts(request)))
    return Json({"Volumes": [v.to_inspect() for v in found], "Warnings": None})


def _string_map(doc: dict[str, object], key: str) -> dict[str, str]:
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidArgument(f"invalid {key}: expected an object of strings")
    return {str(k): v for k, v in value.items()}


@ROUTES.route("POST", "/volumes/create")
def create_volume(request: Request) -> Response:
    doc = request.json_object(required=False)
    name = doc.get("Name") or None
    driver = doc.get("Driver") or "local"
    if name is not None and not isinstance(name, str):
        raise InvalidArgument("invalid Name: expected a string")
    if not isinstance(driver, str):
        raise InvalidArgument("invalid Driver: expected a string")
    volume = request.service.create_volume(
        name, driver=driver, labels=_string_map(doc, "Labels"), options=_string_map(doc, "DriverOpts")
    )
    return Json(volume.to_inspect(), status=201)


@ROUTES.route("POST", "/volumes/prune")
def prune_volumes(request: Request) -> Response:
    from pallet.engine.service import volume_filters

    texts = filter_texts(request)
    # API 1.42+: anonymous volumes only, unless the filter all=true asks for named ones too
    everything = any(t.partition("=")[2].lower() in ("1", "true") for t in texts if t.startswith("all="))
    if request.version < (1, 42):
        everything = True
    rest = [t for t in texts if not t.startswith("all=")]
    removed, freed = request.service.prune_volumes(all=everything, filters=volume_filters(rest))
    return Json({"VolumesDeleted": removed, "SpaceReclaimed": freed})


@ROUTES.route("GET", "/volumes/{name}")
def inspect_volume(request: Request) -> Response:
    return Json(request.service.volume(request.params["name"]).to_inspect())


@ROUTES.route("DELETE", "/volumes/{name}")
def remove_volume(request: Request) -> Response:
    request.service.remove_volume(request.params["name"], force=request.flag("force"))
    return Empty()
