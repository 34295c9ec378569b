"""Network routes: ``/networks`` list, create, inspect, remove, prune, connect, disconnect.

docker's JSON onto the engine's network verbs (``Service.network_*``): a
create's ``IPAM.Config`` gives the subnet, gateway and range of each address
family (and its auxiliary addresses); an endpoint config's ``IPAMConfig``,
``Aliases``, ``Links``, ``MacAddress`` and ``DriverOpts`` go to connect.
"""

from __future__ import annotations

from typing import Any

from pallet.api.messages import Empty, Json, Request, Response
from pallet.api.routes.volumes import filter_texts
from pallet.api.routing import RouteTable
from pallet.errors import InvalidArgument

__all__ = ["ROUTES"]

ROUTES = RouteTable()

_BUILTIN = ("bridge", "host", "none")
_LIST_KEYS = ("dangling", "driver", "id", "label", "name", "scope", "type")


def _matches(document: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """docker's network list filters: name and id by substring, label ``KEY[=VALUE]``, the rest exactly."""
    name = str(document.get("Name", ""))
    builtin = name in _BUILTIN
    labels = document.get("Labels") or {}
    for key, wanted in filters.items():
        if key == "name":
            ok = any(w in name for w in wanted)
        elif key == "id":
            ok = any(w in str(document.get("Id", "")) for w in wanted)
        elif key == "driver":
            ok = document.get("Driver") in wanted
        elif key == "scope":
            ok = document.get("Scope", "local") in wanted
        elif key == "type":
            ok = ("builtin" if builtin else "custom") in wanted
        elif key == "dangling":
            ok = any((not builtin and not document.get("Containers")) == (w in ("1", "true")) for w in wanted)
        else:  # label
            ok = all(
                w.partition("=")[0] in labels
                and (not w.partition("=")[1] or labels[w.partition("=")[0]] == w.partition("=")[2])
                for w in wanted
            )
        if not ok:
            return False
    return True


@ROUTES.route("GET", "/networks")
def list_networks(request: Request) -> Response:
    filters = request.filters()
    for key in filters:
        if key not in _LIST_KEYS:
            raise InvalidArgument(f"invalid filter '{key}'")
    service = request.service
    documents = [service.network_inspect(n.id) for n in service.network_list()]
    return Json([d for d in documents if _matches(d, filters)])


def _ipam(doc: dict[str, Any]) -> dict[str, Any]:
    """The subnets, gateways, ranges and auxiliary addresses of a create's ``IPAM.Config`` (one IPv4,
    one IPv6 at most), and its ``Options`` (None when absent: docker shows them as null)."""
    import ipaddress

    ipam = doc.get("IPAM") or {}
    if not isinstance(ipam, dict):
        raise InvalidArgument("invalid IPAM: expected an object")
    driver = ipam.get("Driver") or "default"
    if driver != "default":
        raise InvalidArgument(f'IPAM driver "{driver}" not found: pallet has the default one only')
    options = ipam.get("Options")
    if options is not None and not isinstance(options, dict):
        raise InvalidArgument("invalid IPAM.Options: expected an object")
    out: dict[str, Any] = {
        "ipam_options": None if options is None else {str(k): str(v) for k, v in options.items()},
    }
    aux: dict[str, str] = {}
    for entry in ipam.get("Config") or ():
        if not isinstance(entry, dict):
            raise InvalidArgument("invalid IPAM.Config: expected a list of objects")
        subnet = str(entry.get("Subnet") or "")
        if not subnet:
            if entry.get("Gateway") or entry.get("IPRange"):
                raise InvalidArgument("every ip-range or gateway must have a corresponding subnet")
            continue
        try:
            six = ipaddress.ip_network(subnet, strict=False).version == 6
        except ValueError:
            raise InvalidArgument(f"invalid subnet {subnet}: not a CIDR") from None
        prefix = "6" if six else ""
        if "subnet" + prefix in out:
            raise InvalidArgument(f"pallet's bridge networks take one IPv{6 if six else 4} subnet")
        out["subnet" + prefix] = subnet
        out["gateway" + prefix] = str(entry.get("Gateway") or "")
        out["ip_range" + prefix] = str(entry.get("IPRange") or "")
        given = entry.get("AuxiliaryAddresses") or entry.get("AuxAddress") or {}
        if not isinstance(given, dict):
            raise InvalidArgument("invalid IPAM.Config AuxiliaryAddresses: expected an object")
        aux.update({str(k): str(v) for k, v in given.items()})
    out["aux_addresses"] = aux
    return out


def _strings(doc: dict[str, Any], key: str) -> dict[str, str]:
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid {key}: expected an object")
    return {str(k): str(v) for k, v in value.items()}


@ROUTES.route("POST", "/networks/create")
def create_network(request: Request) -> Response:
    doc = request.json_object()
    name = doc.get("Name")
    if not isinstance(name, str) or not name:
        raise InvalidArgument("network name is required")
    ipam = _ipam(doc)
    ipv6 = bool(doc.get("EnableIPv6"))
    if ipam.get("subnet6") and not ipv6:
        raise InvalidArgument(f"subnet {ipam['subnet6']} is an IPv6 subnet: set EnableIPv6")
    network = request.service.network_create(
        name,
        driver=str(doc.get("Driver") or "bridge"),
        internal=bool(doc.get("Internal")),
        labels=_strings(doc, "Labels"),
        options=_strings(doc, "Options"),
        ipv6=ipv6,
        **ipam,
    )
    return Json({"Id": network.id, "Warning": ""}, status=201)


@ROUTES.route("POST", "/networks/prune")
def prune_networks(request: Request) -> Response:
    from pallet.engine.service import prune_filters

    removed = request.service.network_prune(prune_filters(filter_texts(request)))
    return Json({"NetworksDeleted": [n.name for n in removed]})


@ROUTES.route("GET", "/networks/{name}")
def inspect_network(request: Request) -> Response:
    return Json(request.service.network_inspect(request.params["name"]))


@ROUTES.route("DELETE", "/networks/{name}")
def remove_network(request: Request) -> Response:
    request.service.network_remove(request.params["name"])
    return Empty()


def _container(doc: dict[str, Any]) -> str:
    container = doc.get("Container")
    if not isinstance(container, str) or not container:
        raise InvalidArgument("a container is required (Container)")
    return container


@ROUTES.route("POST", "/networks/{name}/connect")
def connect(request: Request) -> Response:
    doc = request.json_object()
    endpoint = doc.get("EndpointConfig") or {}
    if not isinstance(endpoint, dict):
        raise InvalidArgument("invalid EndpointConfig: expected an object")
    ipam = endpoint.get("IPAMConfig") or {}
    if not isinstance(ipam, dict):
        raise InvalidArgument("invalid EndpointConfig: IPAMConfig is an object")
    request.service.network_connect(
        request.params["name"],
        _container(doc),
        aliases=_list(endpoint, "Aliases"),
        ip=str(ipam.get("IPv4Address") or ""),
        ip6=str(ipam.get("IPv6Address") or ""),
        link_local_ips=_list(ipam, "LinkLocalIPs"),
        links=_list(endpoint, "Links"),
        mac=str(endpoint.get("MacAddress") or ""),
        driver_opts=_strings(endpoint, "DriverOpts"),
    )
    return Empty(status=200)


def _list(doc: dict[str, Any], key: str) -> list[str]:
    """A list of strings of an endpoint config (absent or null: none)."""
    value = doc.get(key) or []
    if not isinstance(value, list):
        raise InvalidArgument(f"invalid EndpointConfig: {key} is a list")
    return [str(v) for v in value]


@ROUTES.route("POST", "/networks/{name}/disconnect")
def disconnect(request: Request) -> Response:
    doc = request.json_object()
    request.service.network_disconnect(request.params["name"], _container(doc), force=bool(doc.get("Force")))
    return Empty(status=200)
