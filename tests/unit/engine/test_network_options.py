"""The engine's side of networks without root: -p and its ranges, the /etc files, inspect's shapes, the pools.

(The engine's integration tests of networks are in
``tests/integration/engine/test_networking.py``.)
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pallet.engine.containers.attachments import attachments, port_mappings
from pallet.engine.containers.inspection import _port_bindings, network_settings
from pallet.engine.networking import Networks, PredefinedNetwork, address_pools, default_bridge_name
from pallet.engine.spec.hostsfiles import (
    container_lines,
    hosts_content,
    resolv_conf_content,
    update_hosts,
    update_resolv_conf,
)
from pallet.engine.spec.options import NetworkOptions
from pallet.engine.spec.syntax import PortRequest, parse_extra_host, parse_mac, parse_network, parse_publish
from pallet.errors import Conflict, InvalidArgument
from pallet.network.ipam import DEFAULT_POOLS
from pallet.network.ports import choose_free
from pallet.network.store import Network


@pytest.mark.parametrize(
    ("text", "request_"),
    [
        ("80", PortRequest(container_start=80, container_end=80)),
        ("8080:80", PortRequest(host_start=8080, host_end=8080, container_start=80, container_end=80)),
        (
            "127.0.0.1:8080:80/udp",
            PortRequest(
                host_ip="127.0.0.1",
                host_start=8080,
                host_end=8080,
                container_start=80,
                container_end=80,
                protocol="udp",
            ),
        ),
        ("127.0.0.1::80", PortRequest(host_ip="127.0.0.1", container_start=80, container_end=80)),
        (
            "8000-8002:80-82",
            PortRequest(host_start=8000, host_end=8002, container_start=80, container_end=82),
        ),
        ("8000-8010:80", PortRequest(host_start=8000, host_end=8010, container_start=80, container_end=80)),
        (
            "[::1]:8080:80",
            PortRequest(host_ip="::1", host_start=8080, host_end=8080, container_start=80, container_end=80),
        ),
        ("80-81/sctp", PortRequest(container_start=80, container_end=81, protocol="sctp")),
    ],
)
def test_publish_reads_dockers_syntax(text: str, request_: PortRequest) -> None:
    assert parse_publish(text) == request_


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("0:80", 'invalid host port "0"'),
        ("8080:65536", 'invalid container port "65536"'),
        ("8000-8001:80-82", "differ in length"),
        ("1.2.3:80:80", 'invalid IP address "1.2.3"'),
        ("a:b:c:d", "want [ip:][hostPort:]containerPort"),
        ("8080:", "no container port"),
        ("80/icmp", 'invalid protocol "icmp"'),
    ],
)
def test_bad_publish_names_what_was_wrong(text: str, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words.replace("[", r"\[")):
        parse_publish(text)


def test_extra_hosts_and_macs() -> None:
    assert parse_extra_host("db:10.0.0.5") == ("db", "10.0.0.5")
    assert parse_extra_host("gw=host-gateway") == ("gw", "host-gateway")
    assert parse_extra_host("v6:[::1]") == ("v6", "::1")
    assert parse_mac("02-42-AC-11-00-02") == "02:42:ac:11:00:02"
    with pytest.raises(InvalidArgument, match="multicast"):
        parse_mac("01:00:5e:00:00:01")


def _free_port() -> int:
    return choose_free("tcp", "127.0.0.1", ())


def test_port_mappings_pair_ranges_fill_free_ports_and_skip_held_ones() -> None:
    base = _free_port()
    network = NetworkOptions(
        publish=(f"127.0.0.1:{base}:80", "9000", "7000-7001:81-82/udp"), publish_all=True
    )
    held = {("tcp", 1)}
    mappings = port_mappings(network, ["443/tcp", "9000/tcp"], held)
    keys = [(m.protocol, m.host_ip, m.container_port) for m in mappings]
    assert keys == [
        ("tcp", "127.0.0.1", 80), ("tcp", "0.0.0.0", 9000), ("udp", "0.0.0.0", 81), ("udp", "0.0.0.0", 82),
        ("tcp", "0.0.0.0", 443),
    ]  # fmt: skip
    assert mappings[0].host_port == base
    assert [m.host_port for m in mappings[2:4]] == [7000, 7001]
    chosen = [mappings[1].host_port, mappings[4].host_port]
    assert len(set(chosen)) == 2
    assert all(p > 1024 for p in chosen)  # from the ephemeral range, never one that is held


def test_a_host_range_for_one_port_takes_the_first_free_one() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    try:
        network = NetworkOptions(publish=(f"127.0.0.1:{taken}-{taken + 1}:80",))
        [mapping] = port_mappings(network, [], set())  # the port a program holds is skipped
        assert mapping.host_port == taken + 1
        with pytest.raises(Conflict, match=f"127.0.0.1:{taken}-{taken + 1} failed"):
            port_mappings(network, [], {("tcp", taken + 1)})  # and one a container holds
    finally:
        holder.close()


def test_the_mode_decides_the_networks_joined_at_create() -> None:
    assert [a.network for a in attachments(NetworkOptions(), [])] == ["bridge"]
    user = NetworkOptions(mode=parse_network("app"), aliases=("web",), ip="10.9.0.7")
    [request] = attachments(user, [])
    assert (request.network, request.aliases, request.ip) == ("app", ("web",), "10.9.0.7")
    for mode in ("none", "host", "container:web"):
        assert attachments(NetworkOptions(mode=parse_network(mode)), []) == []


def test_hosts_names_the_container_by_its_address_after_the_added_hosts() -> None:
    text = hosts_content(
        parse_network("bridge"), addresses=["172.17.0.2"], hostname="box", domainname="lan",
        extra_hosts=[("db", "10.0.0.5"), ("gw", "172.17.0.1")],
    )  # fmt: skip
    assert text.startswith("127.0.0.1\tlocalhost\n")
    assert text.endswith("10.0.0.5\tdb\n172.17.0.1\tgw\n172.17.0.2\tbox.lan box\n")
    host = hosts_content(parse_network("host"), "127.0.1.1 myhost\n", extra_hosts=[("db", "10.0.0.5")])
    assert host == "127.0.1.1 myhost\n10.0.0.5\tdb\n"


def test_resolv_conf_of_a_user_network_names_its_resolver_only() -> None:
    host = "search lan\nnameserver 10.1.1.1\noptions edns0\n"
    text = resolv_conf_content(parse_network("app"), host, resolver="10.9.0.1")
    assert text == "search lan\nnameserver 10.9.0.1\noptions edns0 ndots:0\n"
    # docker's embedded DNS: the user's options, ndots:0 added unless they set ndots
    text = resolv_conf_content(parse_network("app"), host, resolver="10.9.0.1", dns_options=["timeout:2"])
    assert text.endswith("nameserver 10.9.0.1\noptions timeout:2 ndots:0\n")
    text = resolv_conf_content(parse_network("app"), host, resolver="10.9.0.1", dns_options=["ndots:3"])
    assert text.endswith("nameserver 10.9.0.1\noptions ndots:3\n")


def test_dns_flags_replace_the_hosts_lines() -> None:
    host = "search lan\nnameserver 10.1.1.1\noptions edns0\n"
    text = resolv_conf_content(
        parse_network("bridge"), host, dns=["192.0.2.53"], dns_search=["corp"], dns_options=["ndots:2"]
    )
    assert text == "nameserver 192.0.2.53\nsearch corp\noptions ndots:2\n"


def test_port_bindings_are_what_was_asked() -> None:
    requests = [parse_publish(t) for t in ("127.0.0.1:8080:80", "90", "7000-7001:81-82", "6000-6010:83")]
    assert _port_bindings(requests) == {
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
        "90/tcp": [{"HostIp": "", "HostPort": ""}],
        "81/tcp": [{"HostIp": "", "HostPort": "7000"}],
        "82/tcp": [{"HostIp": "", "HostPort": "7001"}],
        "83/tcp": [{"HostIp": "", "HostPort": "6000-6010"}],
    }


def test_network_settings_in_dockers_shape() -> None:
    endpoint = {
        "IPAddress": "172.17.0.2", "Gateway": "172.17.0.1", "IPPrefixLen": 16, "MacAddress": "02:42:ac:11:00:02",
        "EndpointID": "e" * 64, "NetworkID": "n" * 64, "Aliases": None,
    }  # fmt: skip
    document = {
        "HostConfig": {"NetworkMode": "bridge"},
        "Config": {"ExposedPorts": {"80/tcp": {}, "53/udp": {}}},
    }
    settings = network_settings(document, {"bridge": endpoint}, [("80/tcp", "0.0.0.0", 8080)], running=True)
    assert settings["IPAddress"] == "172.17.0.2"
    assert settings["Gateway"] == "172.17.0.1"
    assert settings["Networks"]["bridge"]["EndpointID"] == "e" * 64
    assert settings["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "53/udp": None}
    user = network_settings({"HostConfig": {"NetworkMode": "app"}}, {"app": endpoint}, [], running=True)
    assert user["IPAddress"] == ""  # docker fills the top level for the default bridge only
    assert list(user["Networks"]) == ["app"]
    stopped = network_settings(document, {"bridge": endpoint}, [("80/tcp", "0.0.0.0", 8080)], running=False)
    assert stopped["IPAddress"] == ""
    assert stopped["Networks"]["bridge"]["NetworkID"] == "n" * 64
    assert stopped["Networks"]["bridge"]["IPAddress"] == ""
    assert stopped["Ports"] == {}
    none = network_settings({"HostConfig": {"NetworkMode": "none"}}, {}, [], running=False)
    assert none["Networks"]["none"]["IPAddress"] == ""


def test_address_pools_come_from_the_roots_config(tmp_path: Path) -> None:
    assert address_pools(str(tmp_path)) == DEFAULT_POOLS
    (tmp_path / "config.toml").write_text('[[default-address-pools]]\nbase = "10.99.0.0/16"\nsize = 24\n')
    [pool] = address_pools(str(tmp_path))
    assert (str(pool.base), pool.size) == ("10.99.0.0/16", 24)
    (tmp_path / "config.toml").write_text('[[default-address-pools]]\nbase = "10.99.0.0/16"\nsize = 8\n')
    with pytest.raises(InvalidArgument, match=r"config\.toml"):
        address_pools(str(tmp_path))


def test_two_roots_never_share_a_default_bridge_name(tmp_path: Path) -> None:
    first, second = default_bridge_name(str(tmp_path / "a")), default_bridge_name(str(tmp_path / "b"))
    assert first != second
    assert first.startswith("pallet-")
    assert len(first) <= 15
    assert default_bridge_name("/var/lib/pallet") == "pallet0"


def test_expose_adds_ports_that_publish_all_publishes() -> None:
    network = NetworkOptions(expose=("80", "53-54/udp"), publish_all=True)
    assert network.exposed() == ("80/tcp", "53/udp", "54/udp")
    mappings = port_mappings(network, network.exposed(), set())
    assert [(m.protocol, m.container_port) for m in mappings] == [("tcp", 80), ("udp", 53), ("udp", 54)]
    with pytest.raises(InvalidArgument, match="invalid expose"):
        NetworkOptions(expose=("8080:80",))


def test_a_container_is_named_by_its_fqdn_and_its_bare_name_as_libnetwork_writes_it() -> None:
    assert container_lines(["10.0.0.2"], hostname="box") == ["10.0.0.2\tbox\n"]
    assert container_lines(["10.0.0.2"], hostname="box.example") == ["10.0.0.2\tbox.example box\n"]
    assert container_lines(["10.0.0.2", "fd00::2"], hostname="box", domainname="lan") == [
        "10.0.0.2\tbox.lan box\n", "fd00::2\tbox.lan box\n",
    ]  # fmt: skip
    assert container_lines(["10.0.0.2"], hostname="") == []


def test_hosts_lines_are_added_and_removed_in_place(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text("127.0.0.1\tlocalhost\n10.0.0.2\tbox\n10.0.1.2\tbox\n")
    inode = path.stat().st_ino
    update_hosts(str(path), add=["10.0.2.2\tbox\n"])
    update_hosts(str(path), add=["10.0.2.2\tbox\n"])  # idempotent
    assert path.read_text() == "127.0.0.1\tlocalhost\n10.0.0.2\tbox\n10.0.1.2\tbox\n10.0.2.2\tbox\n"
    update_hosts(str(path), remove=["10.0.1.2\tbox\n"])  # that line only, not every line of the name
    assert path.read_text() == "127.0.0.1\tlocalhost\n10.0.0.2\tbox\n10.0.2.2\tbox\n"
    assert path.stat().st_ino == inode  # the container's bind mount still shows it
    update_hosts(str(tmp_path / "gone"), add=["10.0.2.2\tbox\n"])
    assert not (tmp_path / "gone").exists()


def test_resolv_conf_is_rewritten_only_while_it_is_what_pallet_wrote(tmp_path: Path) -> None:
    path = tmp_path / "resolv.conf"
    path.write_text("nameserver 10.9.0.1\n")
    assert update_resolv_conf(str(path), was="nameserver 10.9.0.1\n", now="nameserver 10.9.1.1\n")
    assert path.read_text() == "nameserver 10.9.1.1\n"
    path.write_text("nameserver 10.9.1.1\n# mine\n")
    assert not update_resolv_conf(str(path), was="nameserver 10.9.1.1\n", now="nameserver 10.9.2.1\n")
    assert path.read_text() == "nameserver 10.9.1.1\n# mine\n"


_ID = "ab" * 32


@pytest.mark.parametrize(
    ("mode", "target", "running", "words"),
    [
        ("host", "app", True, "container sharing network namespace with another container or host"),
        ("host", "none", False, "container sharing network namespace with another container or host"),
        ("host", "host", True, "endpoint with name c1 already exists in network host"),
        (
            "none",
            "host",
            True,
            "container cannot be disconnected from host network or connected to host network",
        ),
        ("none", "app", False, "one of the networks in private (none) mode"),
        (
            "bridge",
            "host",
            False,
            "container cannot be disconnected from host network or connected to host network",
        ),
        ("app", "none", True, "one of the networks in private (none) mode"),
        ("container:web", "app", True, "container sharing network namespace with another container or host"),
    ],
)
def test_connect_is_refused_as_dockerd_refuses_it(mode: str, target: str, running: bool, words: str) -> None:
    found = (
        PredefinedNetwork(id=_ID, name=target, created="") if target in ("host", "none") else _bridge(target)
    )
    with pytest.raises((Conflict, InvalidArgument), match=words.replace("(", r"\(").replace(")", r"\)")):
        Networks.check_connect(mode, "c1", found, running=running)


def test_connect_of_a_stopped_container_to_its_own_mode_is_nothing_to_do() -> None:
    host = PredefinedNetwork(id=_ID, name="host", created="")
    assert Networks.check_connect("host", "c1", host, running=False) is False
    assert Networks.check_connect("bridge", "c1", _bridge("app"), running=True) is True


def _bridge(name: str) -> Network:
    return Network(
        id=_ID, name=name, bridge="br", subnet="10.9.0.0/24", gateway="10.9.0.1", ip_range="10.9.0.0/24"
    )


def test_a_predefined_network_shows_as_docker_shows_it() -> None:
    none = PredefinedNetwork(id=_ID, name="none", created="2026-01-01T00:00:00Z")
    document = none.document([("cd" * 32, "c1")])
    assert (document["Driver"], document["Scope"], document["IPAM"]) == (
        "null", "local", {"Driver": "default", "Options": None, "Config": None},
    )  # fmt: skip
    member = document["Containers"]["cd" * 32]
    assert member == {
        "Name": "c1", "EndpointID": none.endpoint_id("cd" * 32), "MacAddress": "", "IPv4Address": "", "IPv6Address": "",
    }  # fmt: skip
    assert none.endpoint_id("cd" * 32) != none.endpoint_id("ce" * 32)
    assert none.settings("cd" * 32)["NetworkID"] == _ID
