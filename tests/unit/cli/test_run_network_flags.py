"""Several ``--network`` flags and docker's advanced ``--network name=…,alias=…`` syntax on ``run``/
``create``, with ``--ip6`` and ``--link-local-ip``: the endpoints they ask for, and docker's CLI's words
for what it refuses."""

from __future__ import annotations

import pytest

from pallet.cli.main import CommandParser
from pallet.cli.run_flags import options_from_args
from pallet.engine.spec.options import EndpointOptions, NetworkOptions, options_from_json, options_to_json
from pallet.engine.spec.syntax import NetworkMode
from pallet.errors import InvalidArgument


def network_of(*args: str) -> NetworkOptions:
    from pallet.cli.containers import configure_run

    parser = CommandParser("run")
    configure_run(parser)
    return options_from_args(parser.parse_args([*args, "busybox"])).network


def test_second_network_flag_becomes_an_endpoint_after_the_mode_network() -> None:
    network = network_of("--network", "front", "--network", "back", "--network-alias", "web")
    assert network.mode == NetworkMode(kind="network", name="front")
    assert network.aliases == ("web",)  # the legacy flags go with the first network only
    assert network.networks == (EndpointOptions(network="back"),)


def test_advanced_syntax_sets_each_field_of_the_endpoint() -> None:
    network = network_of(
        "--network", "front",
        "--network", "name=back,alias=a1,alias=a2,ip=10.9.0.5,ip6=fd00::5,mac-address=02:42:0a:09:00:05,"
        "link-local-ip=169.254.9.9,driver-opt=com.example=On,gw-priority=7",
    )  # fmt: skip
    (back,) = network.networks
    assert back.network == "back"
    assert back.aliases == ("a1", "a2")
    assert (back.ip, back.ip6, back.mac_address) == ("10.9.0.5", "fd00::5", "02:42:0a:09:00:05")
    assert back.link_local_ips == ("169.254.9.9",)
    assert dict(back.driver_opts) == {"com.example": "on"}  # docker's CLI folds the case of every field
    assert back.gw_priority == 7


def test_advanced_syntax_on_the_first_network_sets_the_mode_and_its_endpoint() -> None:
    network = network_of("--network", "name=front,alias=web,ip=10.8.0.9", "--ip6", "fd00::9")
    assert network.mode == NetworkMode(kind="network", name="front")
    assert (network.aliases, network.ip, network.ip6) == (("web",), "10.8.0.9", "fd00::9")
    assert network.networks == ()


def test_ip6_and_link_local_ip_flags_go_to_the_first_endpoint() -> None:
    network = network_of(
        "--network", "front", "--network", "back", "--ip6", "fd00::7", "--link-local-ip", "169.254.1.1",
        "--link-local-ip", "fe80::7",
    )  # fmt: skip
    assert network.ip6 == "fd00::7"
    assert network.link_local_ips == ("169.254.1.1", "fe80::7")
    assert network.networks == (EndpointOptions(network="back"),)


def test_a_link_on_a_user_network_is_the_first_endpoints() -> None:
    network = network_of("--network", "front", "--network", "back", "--link", "db:data")
    assert network.endpoint_links == ("db:data",)
    assert network.networks[0].links == ()


def test_several_networks_survive_the_container_document() -> None:
    from pallet.cli.containers import configure_run

    parser = CommandParser("run")
    configure_run(parser)
    options = options_from_args(
        parser.parse_args(["--network", "a", "--network", "name=b,alias=x,driver-opt=k=v", "busybox"])
    )
    assert options_from_json(options_to_json(options)) == options


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--network", "name=b,colour=red"], 'invalid argument "name=b,colour=red" for "--network" flag: '
         "invalid field key colour"),
        (["--network", "alias=x,ip=10.0.0.1"], "network name/id is not specified"),
        (["--network", "name=b,ip=10.0.0"], 'ParseAddr("10.0.0"): unable to parse IP'),
        (["--network", "name=b,gw-priority=high"], "invalid gw-priority (high): invalid syntax"),
        (["--network", "name=b,driver-opt=novalue"], "invalid key value pair format in driver options"),
        (["--network", "name=b,alias"], "invalid field alias"),
        (["--network", "a", "--network", "a"], 'network "a" is specified multiple times'),
        (["--network", "none", "--network", "a"],
         "conflicting options: cannot attach both user-defined and non-user-defined network-modes"),
        (["--network", "a", "--network", "bridge"],
         "conflicting options: cannot attach both user-defined and non-user-defined network-modes"),
        (["--network", "name=a,alias=x", "--network-alias", "y"],
         "conflicting options: cannot specify both --network-alias and per-network alias"),
        (["--network", "name=a,ip=10.0.0.2", "--ip", "10.0.0.3"],
         "conflicting options: cannot specify both --ip and per-network IPv4 address"),
        (["--network", "name=a,ip6=fd00::2", "--ip6", "fd00::3"],
         "conflicting options: cannot specify both --ip6 and per-network IPv6 address"),
        (["--network", "name=a,link-local-ip=169.254.0.2", "--link-local-ip", "169.254.0.3"],
         "conflicting options: cannot specify both --link-local-ip and per-network link-local IP addresses"),
        (["--network", "name=host,alias=x"], "network-scoped aliases are only supported for user-defined networks"),
        (["--ip6", "fd00::zz"], 'invalid argument "fd00::zz" for "--ip6" flag'),
        (["--link-local-ip", "nope"], 'invalid argument "nope" for "--link-local-ip" flag'),
    ],
)  # fmt: skip
def test_bad_network_flags_are_refused_in_dockers_words(args: list[str], words: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        network_of(*args)
    assert words in caught.value.message


def test_endpoint_options_refuse_a_mode_and_a_bad_address() -> None:
    with pytest.raises(InvalidArgument, match="non-user-defined"):
        EndpointOptions(network="host")
    with pytest.raises(InvalidArgument, match="invalid IP address"):
        EndpointOptions(network="back", ip="10.0.0.300")
    with pytest.raises(InvalidArgument, match="specified multiple times"):
        NetworkOptions(mode=NetworkMode(kind="network", name="a"), networks=(EndpointOptions(network="a"),))
