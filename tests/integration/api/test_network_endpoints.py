"""A network's IPAM and a container's endpoint as dockerd keeps and shows them, through raw API requests:
the IPAM options (null when none were sent), auxiliary addresses, an IPv6 range, and connect's
IPAMConfig (IPv4, IPv6, link-local), MacAddress, Links (the alias resolves for the linking container
only) and DriverOpts; a disconnect of a container that is not connected fails, force or not."""

from __future__ import annotations

import ipaddress
import json
import secrets
from typing import TYPE_CHECKING, Any

import pytest

from pallet.testing.hostnet import free_subnet

if TYPE_CHECKING:
    from conftest import ApiService

pytestmark = pytest.mark.root


def _run(api: ApiService, name: str, network: str, endpoint: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {
        "Image": "busybox",
        "Cmd": ["sleep", "300"],
        "HostConfig": {"NetworkMode": network},
    }
    if endpoint is not None:
        body["NetworkingConfig"] = {"EndpointsConfig": {network: endpoint}}
    created = api.json("POST", f"/v1.47/containers/create?name={name}", body)
    api.json("POST", f"/v1.47/containers/{created['Id']}/start")
    return str(created["Id"])


def _exec(api: ApiService, container: str, *cmd: str) -> tuple[int, str]:
    made = api.json("POST", f"/v1.47/containers/{container}/exec", {"Cmd": list(cmd), "AttachStdout": True})
    status, _, body = api.request("POST", f"/v1.47/exec/{made['Id']}/start", {"Detach": False, "Tty": True})
    assert status == 200
    code = api.json("GET", f"/v1.47/exec/{made['Id']}/json")["ExitCode"]
    return int(code), body.decode(errors="replace")


def _ula() -> str:
    """A random unique local /64, written as docker writes it back (canonical)."""
    return str(ipaddress.IPv6Network((b"\xfd" + secrets.token_bytes(7) + bytes(8), 64)))


def _settings(api: ApiService, container: str, network: str) -> dict[str, Any]:
    doc = api.json("GET", f"/v1.47/containers/{container}/json")
    return dict(doc["NetworkSettings"]["Networks"][network])


def test_ipam_options_aux_addresses_and_an_ipv6_range_read_back_as_sent(api: ApiService) -> None:
    subnet = free_subnet(233)
    net = ipaddress.IPv4Network(subnet)
    aux = str(net.network_address + 2)
    six = _ula()
    six_range = six.replace("::/64", "::/96")
    made = api.json(
        "POST",
        "/v1.47/networks/create",
        {
            "Name": "ipamnet",
            "EnableIPv6": True,
            "IPAM": {
                "Driver": "default",
                "Config": [
                    {"Subnet": subnet, "AuxiliaryAddresses": {"router": aux}},
                    {"Subnet": six, "IPRange": six_range},
                ],
            },
        },
    )
    doc = api.json("GET", f"/v1.47/networks/{made['Id']}")
    assert doc["EnableIPv6"] is True
    assert doc["IPAM"]["Options"] is None  # none sent: docker's null
    first, second = doc["IPAM"]["Config"]
    assert first["AuxiliaryAddresses"] == {"router": aux}
    assert (second["Subnet"], second["IPRange"]) == (six, six_range)
    box = _run(api, "ipambox", "ipamnet")
    settings = _settings(api, box, "ipamnet")
    assert settings["IPAddress"] == str(net.network_address + 3)  # the auxiliary address is never given
    assert ipaddress.IPv6Address(settings["GlobalIPv6Address"]) in ipaddress.IPv6Network(six_range)
    assert settings["IPAMConfig"] is None  # nothing was asked for
    cli = api.json(
        "POST", "/v1.47/networks/create", {"Name": "clinet", "IPAM": {"Driver": "default", "Options": {}}}
    )
    assert api.json("GET", f"/v1.47/networks/{cli['Id']}")["IPAM"]["Options"] == {}  # the CLI sends {}
    status, _, _ = api.request(
        "POST",
        "/v1.47/networks/create",
        {
            "Name": "badaux",
            "IPAM": {"Config": [{"Subnet": free_subnet(233), "AuxiliaryAddresses": {"a": "10.9.9.9"}}]},
        },
    )
    assert status == 400
    assert "badaux" not in [n["Name"] for n in api.json("GET", "/v1.47/networks")]


def test_connect_keeps_and_applies_the_endpoint_config(api: ApiService) -> None:
    subnet = free_subnet(233)
    net = ipaddress.IPv4Network(subnet)
    six = _ula()
    api.json(
        "POST",
        "/v1.47/networks/create",
        {"Name": "epnet", "EnableIPv6": True, "IPAM": {"Config": [{"Subnet": subnet}, {"Subnet": six}]}},
    )
    upstream = _run(api, "upstream", "epnet")
    box = _run(api, "linker", "epnet")  # started on it: its resolver is the network's
    other = _run(api, "bystander", "epnet")
    api.json("POST", "/v1.47/networks/epnet/disconnect", {"Container": box})
    want4 = str(net.network_address + 77)
    want6 = six.replace("::/64", "::f00d")
    api.json(
        "POST",
        "/v1.47/networks/epnet/connect",
        {
            "Container": box,
            "EndpointConfig": {
                "IPAMConfig": {"IPv4Address": want4, "IPv6Address": want6, "LinkLocalIPs": ["169.254.8.8"]},
                "MacAddress": "02:42:ac:11:00:99",
                "Links": ["upstream:bar"],
                "DriverOpts": {"com.example.setting": "on"},
            },
        },
    )
    settings = _settings(api, box, "epnet")
    assert settings["IPAMConfig"] == {
        "IPv4Address": want4,
        "IPv6Address": want6,
        "LinkLocalIPs": ["169.254.8.8"],
    }
    assert (settings["IPAddress"], settings["GlobalIPv6Address"]) == (want4, want6)
    assert settings["MacAddress"] == "02:42:ac:11:00:99"
    assert settings["Links"] == ["upstream:bar"]
    assert settings["DriverOpts"] == {"com.example.setting": "on"}
    code, out = _exec(api, box, "ip", "addr")
    assert code == 0
    assert "169.254.8.8/16" in out
    assert "02:42:ac:11:00:99" in out
    assert want6 in out
    upstream_ip = _settings(api, upstream, "epnet")["IPAddress"]
    code, out = _exec(api, box, "nslookup", "bar")
    assert code == 0, out
    assert upstream_ip in out
    code, _ = _exec(api, other, "nslookup", "bar")
    assert code != 0  # the link's alias is the linking container's only
    # docker's refusal: a container not on the network cannot be disconnected, force or not
    api.json("POST", "/v1.47/networks/epnet/disconnect", {"Container": box, "Force": True})
    status, _, body = api.request(
        "POST", "/v1.47/networks/epnet/disconnect", {"Container": box, "Force": True}
    )
    assert status >= 400
    assert b"is not connected to network epnet" in body
    status, _, body = api.request(
        "POST", "/v1.47/networks/epnet/connect", {"Container": box, "EndpointConfig": {"MacAddress": "nope"}}
    )
    assert status == 400
    assert b"nope" in body
    assert "epnet" not in api.json("GET", f"/v1.47/containers/{box}/json")["NetworkSettings"]["Networks"]


def test_a_create_with_two_endpoints_joins_both_and_before_1_44_is_refused(api: ApiService) -> None:
    for name in ("epfront", "epback"):
        api.json("POST", "/v1.47/networks/create", {"Name": name})
    back_net = ipaddress.IPv4Network(api.json("GET", "/v1.47/networks/epback")["IPAM"]["Config"][0]["Subnet"])
    want = str(back_net.network_address + 66)
    body: dict[str, Any] = {
        "Image": "busybox",
        "Cmd": ["sleep", "300"],
        "HostConfig": {"NetworkMode": "epfront"},
        "NetworkingConfig": {
            "EndpointsConfig": {
                "epback": {
                    "Aliases": ["twin"],
                    "IPAMConfig": {"IPv4Address": want},
                    "DriverOpts": {"k": "v"},
                },
                "epfront": {"Aliases": ["one"]},
            }
        },
    }
    status, _, data = api.request("POST", "/v1.43/containers/create?name=old", body)
    assert (status, json.loads(data)) == (
        400,
        {"message": "Container cannot be created with multiple network endpoints: epback, epfront"},
    )
    assert api.request("GET", "/v1.47/containers/old/json")[0] == 404

    created = api.json("POST", "/v1.47/containers/create?name=both", body)
    api.json("POST", f"/v1.47/containers/{created['Id']}/start")
    networks = api.json("GET", "/v1.47/containers/both/json")["NetworkSettings"]["Networks"]
    assert sorted(networks) == ["epback", "epfront"]
    assert (networks["epback"]["IPAddress"], networks["epback"]["Aliases"]) == (want, ["twin"])
    assert networks["epback"]["DriverOpts"] == {"k": "v"}
    assert networks["epfront"]["Aliases"] == ["one"]
    code, out = _exec(api, created["Id"], "ip", "-o", "-4", "addr", "show", "eth1")
    assert (code, f"inet {want}/" in out) == (0, True), out

    body["NetworkingConfig"]["EndpointsConfig"]["epnosuch"] = {}
    status, _, data = api.request("POST", "/v1.47/containers/create?name=lost", body)
    # dockerd's words; a 400, not a 404, which the docker CLI would take for a missing image to pull
    assert (status, json.loads(data)) == (400, {"message": "network epnosuch not found"})
    assert api.request("GET", "/v1.47/containers/lost/json")[0] == 404
    lost = api.docker("run", "--network", "epnosuch", "busybox", "true")
    assert (lost.returncode, lost.stderr.splitlines()[0]) == (
        125,
        "docker: Error response from daemon: network epnosuch not found",
    )  # as dockerd's, and nothing was made
    assert "Unable to find image" not in lost.stderr
    attached = api.json("GET", "/v1.47/networks/epfront")["Containers"]
    assert list(attached) == [created["Id"]]
