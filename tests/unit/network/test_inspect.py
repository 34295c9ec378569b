"""Docker's shapes: ``network inspect`` and a container's ``NetworkSettings.Networks.<name>``."""

from __future__ import annotations

from pallet.network.driver import bridge_mac, inspect_network, inspect_settings, veth_name
from pallet.network.store import Endpoint, Network

NET = Network(
    id="ab" * 32, name="app", bridge="br-abababababab", subnet="10.7.0.0/24", gateway="10.7.0.1",
    ip_range="10.7.0.128/25", created="2026-01-01T00:00:00Z", labels={"x": "y"}, ipam_options={},
)  # fmt: skip
EP = Endpoint(
    id="cd" * 32, network_id=NET.id, container_id="ef" * 32, name="web", ip="10.7.0.130", mac="02:42:0a:07:00:82",
    veth="vethcdcdcdcdcdc", netns="/run/pallet/netns/x", aliases=["www"],
)  # fmt: skip


def test_network_inspect_has_dockers_fields() -> None:
    doc = inspect_network(NET, [EP])
    assert doc["Name"] == "app"
    assert doc["Driver"] == "bridge"
    assert doc["IPAM"] == {
        "Driver": "default", "Options": {},
        "Config": [{"Subnet": "10.7.0.0/24", "Gateway": "10.7.0.1", "IPRange": "10.7.0.128/25"}],
    }  # fmt: skip
    assert doc["Containers"] == {
        EP.container_id: {
            "Name": "web", "EndpointID": EP.id, "MacAddress": EP.mac, "IPv4Address": "10.7.0.130/24",
            "IPv6Address": "",
        }
    }  # fmt: skip
    assert doc["Options"] == {}  # the generated bridge name stays internal, as docker's
    assert doc["Labels"] == {"x": "y"}


def test_container_network_settings_have_dockers_fields() -> None:
    doc = inspect_settings(NET, EP)
    assert (doc["IPAddress"], doc["IPPrefixLen"], doc["Gateway"], doc["MacAddress"]) == (
        "10.7.0.130", 24, "10.7.0.1", EP.mac,
    )  # fmt: skip
    assert (doc["NetworkID"], doc["EndpointID"], doc["Aliases"]) == (NET.id, EP.id, ["www"])
    assert doc["DNSNames"] == ["web", "www", "efefefefefef"]
    # nothing requested: docker's nulls
    assert (doc["IPAMConfig"], doc["Links"], doc["DriverOpts"]) == (None, None, None)


def test_requested_endpoint_settings_show_as_docker_keeps_them() -> None:
    """IPAMConfig holds what was asked (not what was given), Links in NAME:ALIAS form, DriverOpts."""
    endpoint = Endpoint(
        id="cd" * 32, network_id=NET.id, container_id="ef" * 32, name="web", ip="10.7.0.130", mac="02:42:0a:07:00:82",
        veth="vethcdcdcdcdcdc", netns="/run/pallet/netns/x", ipam_config={"IPv4Address": "10.7.0.130",
        "LinkLocalIPs": ["169.254.8.8"]}, links=["db:data"], driver_opts={"k": "v"},
    )  # fmt: skip
    doc = inspect_settings(NET, endpoint)
    assert doc["IPAMConfig"] == {"IPv4Address": "10.7.0.130", "LinkLocalIPs": ["169.254.8.8"]}
    assert (doc["Links"], doc["DriverOpts"]) == (["db:data"], {"k": "v"})
    assert endpoint.link_local_ips == ["169.254.8.8"]


def test_ipam_options_null_when_none_were_given_and_aux_addresses_per_subnet() -> None:
    """docker-py's create without IPAM options reads back null (the CLI's {} reads back {}); each
    auxiliary address shows in the config of the subnet that holds it; an IPv6 range shows."""
    network = Network(
        id="ab" * 32, name="app", bridge="br-abababababab", subnet="10.7.0.0/24", gateway="10.7.0.1",
        ip_range="10.7.0.0/24", subnet6="2001:db8::/64", gateway6="2001:db8::ffff", ip_range6="2001:db8::/96",
        aux_addresses={"a": "10.7.0.5", "b": "2001:db8::5"},
    )  # fmt: skip
    ipam = inspect_network(network, [])["IPAM"]
    assert ipam == {
        "Driver": "default", "Options": None,
        "Config": [
            {"Subnet": "10.7.0.0/24", "Gateway": "10.7.0.1", "AuxiliaryAddresses": {"a": "10.7.0.5"}},
            {"Subnet": "2001:db8::/64", "IPRange": "2001:db8::/96", "Gateway": "2001:db8::ffff",
             "AuxiliaryAddresses": {"b": "2001:db8::5"}},
        ],
    }  # fmt: skip


def test_interface_names_fit_and_the_bridge_mac_is_local_unicast() -> None:
    assert len(veth_name(EP.id)) == 15
    mac = bridge_mac(NET.id)
    first = int(mac.split(":")[0], 16)
    assert len(mac.split(":")) == 6
    assert first & 0b10
    assert not first & 0b1


def test_a_root_tag_is_stable_short_and_per_root(tmp_path: object) -> None:
    from pallet.network.driver import root_tag

    assert root_tag("/var/lib/pallet") == root_tag("/var/lib/pallet/")
    assert root_tag("/var/lib/pallet") != root_tag("/var/lib/pallet2")
    assert len(root_tag("/x")) == 8
