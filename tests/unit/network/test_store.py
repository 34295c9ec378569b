"""The network rows: one address per endpoint while held, docker's refusals, release on removal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pallet.database import Database
from pallet.errors import AlreadyExists, Conflict, FailedPrecondition, NotFound
from pallet.network.store import SCHEMA, Endpoint, Network, NetworkStore, PortMapping, mac_for


@pytest.fixture
def store(tmp_path: Path) -> NetworkStore:
    return NetworkStore(Database.at(str(tmp_path), (SCHEMA,)))


def network(name: str = "app", subnet: str = "10.77.0.0/29", **extra: Any) -> Network:
    gateway = subnet.rsplit(".", 1)[0] + ".1"
    return Network(
        id=name.ljust(64, "0"), name=name, bridge=f"br-{name}", subnet=subnet, gateway=gateway,
        ip_range=subnet, created="2026-01-01T00:00:00Z", **extra,
    )  # fmt: skip


def attach(store: NetworkStore, net: Network, cid: str, **kw: object) -> object:
    return store.allocate(
        net, endpoint_id=cid * 2, container_id=cid, name=f"c-{cid[:4]}", netns=f"/run/x/{cid}", veth=f"v{cid[:8]}",
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_names_are_unique_in_dockers_words(store: NetworkStore) -> None:
    store.add(network())
    with pytest.raises(AlreadyExists, match="network with name app already exists"):
        store.add(network())
    assert store.find("app").subnet == "10.77.0.0/29"
    assert store.find("app0").name == "app"  # an id prefix
    with pytest.raises(NotFound):
        store.find("nope")


def test_endpoints_get_distinct_addresses_and_docker_macs(store: NetworkStore) -> None:
    net = network()
    store.add(net)
    a = attach(store, net, "a" * 32)
    b = attach(store, net, "b" * 32)
    assert (a.ip, b.ip) == ("10.77.0.2", "10.77.0.3")  # type: ignore[attr-defined]
    assert a.mac == mac_for("10.77.0.2") == "02:42:0a:4d:00:02"  # type: ignore[attr-defined]
    with pytest.raises(Conflict, match="already exists in network app"):
        attach(store, net, "a" * 32)
    with pytest.raises(Conflict, match="already in use"):
        attach(store, net, "c" * 32, ip="10.77.0.3")


def test_release_frees_the_address_and_removal_waits_for_it(store: NetworkStore) -> None:
    net = network()
    store.add(net)
    a = attach(store, net, "a" * 32)
    with pytest.raises(FailedPrecondition, match="has active endpoints"):
        store.remove(net)
    store.release(a.id)  # type: ignore[attr-defined]
    store.release(a.id)  # type: ignore[attr-defined]
    assert store.endpoints() == []
    store.remove(net)
    store.remove(net)
    assert store.networks() == []


def test_a_host_port_is_published_once(store: NetworkStore) -> None:
    net = network()
    store.add(net)
    attach(store, net, "a" * 32, ports=[PortMapping(host_port=8080, container_port=80)])
    with pytest.raises(Conflict, match=r"Bind for 127\.0\.0\.1:8080 failed: port is already allocated"):
        attach(
            store, net, "b" * 32, ports=[PortMapping(host_ip="127.0.0.1", host_port=8080, container_port=80)]
        )
    assert [e.container_id for e in store.endpoints()] == ["a" * 32]  # the failed attach left nothing
    attach(store, net, "c" * 32, ports=[PortMapping(host_port=8080, container_port=80, protocol="udp")])
    assert len(store.ports()) == 2


def test_names_aliases_and_short_ids_resolve(store: NetworkStore) -> None:
    net = network()
    store.add(net)
    cid = "0123456789ab" + "f" * 52
    store.allocate(
        net, endpoint_id="e" * 64, container_id=cid, name="Web", netns="/x", veth="v", aliases=["www"]
    )
    assert store.resolve(net.id, "web") == ["10.77.0.2"]
    assert store.resolve(net.id, "WWW.") == ["10.77.0.2"]
    assert store.resolve(net.id, "0123456789ab") == ["10.77.0.2"]
    assert store.resolve(net.id, "0123") == []
    assert store.resolve(net.id, "other") == []


def test_the_schema_joins_the_callers_transaction(store: NetworkStore) -> None:
    net = network()
    store.add(net)

    def engine_fails_after_allocating() -> None:
        with store.db.transaction():
            attach(store, net, "a" * 32)
            raise RuntimeError("the engine failed after the allocation")

    with pytest.raises(RuntimeError):
        engine_fails_after_allocating()
    assert store.endpoints() == []


def test_a_dual_stack_network_gives_both_addresses_and_resolves_both(store: NetworkStore) -> None:
    net = network()
    net.subnet6, net.gateway6 = "fd00:77::/64", "fd00:77::1"
    store.add(net)
    e = store.allocate(net, endpoint_id="e" * 64, container_id="c" * 64, name="web", netns="/x", veth="v")
    assert (e.ip, e.ip6) == ("10.77.0.2", "fd00:77::2")
    assert store.endpoints()[0].ip6 == "fd00:77::2"
    assert store.resolve(net.id, "web") == ["10.77.0.2", "fd00:77::2"]
    assert store.find("app").subnet6 == "fd00:77::/64"


def test_ip6_on_an_ipv4_only_network_is_refused(store: NetworkStore) -> None:
    from pallet.errors import InvalidArgument

    net = network()
    store.add(net)
    with pytest.raises(InvalidArgument, match="no IPv6 subnet"):
        store.allocate(
            net, endpoint_id="e" * 64, container_id="c" * 64, name="w", netns="/x", veth="v", ip6="fd00::5"
        )


def test_a_link_alias_resolves_to_the_linked_container_for_the_linking_container_only(
    store: NetworkStore,
) -> None:
    """docker's ``--link db:data`` on a user network: ``data`` is ``db`` for the container that made
    the link (asked from its address), nothing for the others; the link is kept as ``NAME:ALIAS``,
    an address asked for, the MAC and the driver options too."""
    net = network()
    store.add(net)
    app = store.allocate(
        net, endpoint_id="a" * 64, container_id="c" * 64, name="app", netns="/x", veth="va", links=["db:data"],
        ip="10.77.0.5", driver_opts={"k": "v"},
    )  # fmt: skip
    other = store.allocate(
        net, endpoint_id="b" * 64, container_id="d" * 64, name="other", netns="/y", veth="vb"
    )
    db = store.allocate(net, endpoint_id="e" * 64, container_id="f" * 64, name="db", netns="/z", veth="vc")
    assert store.resolve(net.id, "data", client=app.ip) == [db.ip]
    assert store.resolve(net.id, "data", client=other.ip) == []
    assert store.resolve(net.id, "data") == []
    (kept,) = [e for e in store.endpoints() if e.id == app.id]
    assert (kept.links, kept.ipam_config, kept.driver_opts) == (
        ("db:data",),
        {"IPv4Address": "10.77.0.5"},
        {"k": "v"},
    )


def test_auxiliary_addresses_are_never_given(store: NetworkStore) -> None:
    net = network()
    net.aux_addresses = {"router": "10.77.0.2"}
    store.add(net)
    e = store.allocate(net, endpoint_id="e" * 64, container_id="c" * 64, name="web", netns="/x", veth="v")
    assert e.ip == "10.77.0.3"
    assert store.find("app").aux_addresses == {"router": "10.77.0.2"}
    assert store.find("app").ipam_options is None


def test_a_container_on_two_networks_resolves_the_names_of_both_each_at_its_address(
    store: NetworkStore,
) -> None:
    front, back = network("front", "10.77.0.0/29"), network("back", "10.78.0.0/29")
    store.add(front)
    store.add(back)

    def on(net: Network, cid: str) -> Endpoint:
        return store.allocate(
            net, endpoint_id=net.name + cid, container_id=cid, name=f"c-{cid[:4]}", netns="/x", veth="v"
        )

    both_front, both_back = on(front, "b" * 32), on(back, "b" * 32)
    web, api = on(front, "w" * 32), on(back, "a" * 32)
    on_both = on(front, "c" * 32)
    on(back, "c" * 32)
    # asked on front's resolver from its front address: front's names first, then back's
    assert store.resolve(front.id, "c-wwww", client=both_front.ip) == [web.ip]
    assert store.resolve(front.id, "c-aaaa", client=both_front.ip) == [api.ip]
    assert store.resolve(front.id, "c-cccc", client=both_front.ip) == [on_both.ip]
    assert store.resolve(back.id, "c-wwww", client=both_back.ip) == [web.ip]
    # a container on front only never learns back's names
    assert store.resolve(front.id, "c-aaaa", client=web.ip) == []
    assert store.resolve(front.id, "c-aaaa") == []


def test_the_gateway_endpoint_follows_libnetworks_ordering() -> None:
    from pallet.network.driver import gateway_endpoint

    def endpoint(net: Network, priority: int = 0, ip6: str = "") -> Endpoint:
        return Endpoint(
            id=net.name, network_id=net.id, container_id="c", name="c", ip="10.0.0.2", mac="", veth="", netns="",
            ip6=ip6, gw_priority=priority,
        )  # fmt: skip

    zeta, alpha = network("zeta"), network("alpha")
    inner = network("aaa", internal=True)
    dual = network("zzz", subnet6="fd00::/64", gateway6="fd00::1")

    def pick(*pairs: tuple[Endpoint, Network]) -> str:
        chosen = gateway_endpoint([e for e, _ in pairs], [n for _, n in pairs])
        return chosen.id if chosen else ""

    assert pick((endpoint(zeta), zeta), (endpoint(alpha), alpha)) == "alpha"  # the least name
    assert pick((endpoint(zeta, 3), zeta), (endpoint(alpha), alpha)) == "zeta"  # a higher gw-priority
    assert pick((endpoint(inner), inner), (endpoint(zeta), zeta)) == "zeta"  # never an internal network
    assert pick((endpoint(zeta), zeta), (endpoint(dual, ip6="fd00::2"), dual)) == "zzz"  # dual-stack first
    assert pick((endpoint(inner), inner)) == ""
