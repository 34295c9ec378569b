"""Bridge networks end to end, with bare network namespaces as containers: reachability, NAT,
--internal, isolation, published ports (127.0.0.1, a host address, hairpin), and nothing left after."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pallet.network.netlink import Netlink
from pallet.network.store import PortMapping

from .conftest import BUSYBOX, Env, Outside, exec_in, free_port, httpd, wget


def cid() -> str:
    import secrets

    return secrets.token_hex(32)


def test_two_containers_on_one_bridge_ping_each_other(env: Env) -> None:
    net = env.network(dns=False)
    a = env.driver.attach(net, cid(), name="a")  # type: ignore[arg-type]
    b = env.driver.attach(net, cid(), name="b")  # type: ignore[arg-type]
    assert a.ip != b.ip
    result = exec_in(b.netns, BUSYBOX, "ping", "-c", "1", "-W", "5", a.ip)
    assert result.returncode == 0, result.stdout + result.stderr


def test_container_interface_has_address_mac_mtu_and_default_route(env: Env) -> None:
    net = env.network(dns=False)
    e = env.driver.attach(net, cid(), name="a")  # type: ignore[arg-type]
    with Netlink.open(e.netns) as inside:
        eth0 = inside.link("eth0")
        assert (eth0.mac, eth0.mtu, eth0.up) == (e.mac, net.mtu, True)  # type: ignore[attr-defined]
        assert any(a.address == e.ip and a.prefixlen == 24 for a in inside.addresses(socket.AF_INET))
        assert any(r.dst_len == 0 and r.gateway == net.gateway for r in inside.routes())  # type: ignore[attr-defined]
    with Netlink.open() as nl:
        veth = nl.link(e.veth)
        assert veth.master == nl.link(net.bridge).index  # type: ignore[attr-defined]


def test_outbound_traffic_is_masqueraded_to_the_outside(env: Env, outside: Outside, tmp_path: Path) -> None:
    net = env.network(dns=False)
    e = env.driver.attach(net, cid(), name="a")  # type: ignore[arg-type]
    httpd(env, outside.path, tmp_path, "outside\n", port=8080)
    # the outside has no route to the container's subnet: an answer proves the source was rewritten
    assert wget(e.netns, f"http://{outside.ip}:8080/") == "outside\n"


def test_an_internal_network_cannot_reach_the_outside(env: Env, outside: Outside, tmp_path: Path) -> None:
    net = env.network(internal=True, dns=False)
    e = env.driver.attach(net, cid(), name="a")  # type: ignore[arg-type]
    f = env.driver.attach(net, cid(), name="b")  # type: ignore[arg-type]
    httpd(env, outside.path, tmp_path, "outside\n", port=8080)
    assert wget(e.netns, f"http://{outside.ip}:8080/") == ""
    # even with a route added by hand inside, the host forwards nothing out of the bridge
    with Netlink.open(e.netns) as inside:
        inside.default_route(net.gateway, "eth0")  # type: ignore[attr-defined]
    assert wget(e.netns, f"http://{outside.ip}:8080/") == ""
    # containers on it still reach each other
    assert exec_in(f.netns, BUSYBOX, "ping", "-c", "1", "-W", "5", e.ip).returncode == 0


def test_two_networks_are_isolated(env: Env, tmp_path: Path) -> None:
    one, two = env.network(dns=False), env.network(dns=False)
    web = env.driver.attach(one, cid(), name="web")  # type: ignore[arg-type]
    other = env.driver.attach(two, cid(), name="other")  # type: ignore[arg-type]
    httpd(env, web.netns, tmp_path, "web\n")
    assert wget(other.netns, f"http://{web.ip}/") == ""
    same = env.driver.attach(one, cid(), name="same")  # type: ignore[arg-type]
    assert wget(same.netns, f"http://{web.ip}/") == "web\n"


def _http_get(host: str, port: int) -> str:
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    return data.decode(errors="replace").split("\r\n\r\n", 1)[-1]


def test_published_ports_answer_on_127_0_0_1_a_host_address_and_from_other_namespaces(
    env: Env, outside: Outside, tmp_path: Path
) -> None:
    net = env.network(dns=False)
    port_local, port_any = free_port(), free_port()
    web = env.driver.attach(  # type: ignore[arg-type]
        net, cid(), name="web",
        ports=[
            PortMapping(host_ip="127.0.0.1", host_port=port_local, container_port=80),
            PortMapping(host_port=port_any, container_port=80),
        ],
    )  # fmt: skip
    httpd(env, web.netns, tmp_path, "published\n")
    assert _http_get("127.0.0.1", port_local) == "published\n"
    assert _http_get("127.0.0.1", port_any) == "published\n"
    assert _http_get(outside.host_ip, port_any) == "published\n"  # a host address, from the host
    assert wget(outside.path, f"http://{outside.host_ip}:{port_any}/") == "published\n"  # from another netns
    assert wget(outside.path, f"http://{outside.host_ip}:{port_local}/") == ""  # 127.0.0.1 only
    # hairpin: a container of the same network through the host's address, and the container itself
    peer = env.driver.attach(net, cid(), name="peer")  # type: ignore[arg-type]
    assert wget(peer.netns, f"http://{outside.host_ip}:{port_any}/") == "published\n"
    assert wget(web.netns, f"http://{outside.host_ip}:{port_any}/") == "published\n"
    # detaching removes exactly this container's ports
    env.driver.detach(web)
    try:
        _http_get("127.0.0.1", port_any)
        reached = True
    except OSError:
        reached = False
    assert not reached


def test_a_taken_host_port_is_refused_and_leaves_nothing(env: Env) -> None:
    import pytest

    from pallet.errors import Conflict

    net = env.network(dns=False)
    port = free_port()
    env.driver.attach(net, cid(), name="a", ports=[PortMapping(host_port=port, container_port=80)])  # type: ignore[arg-type]
    before = {e.id for e in env.driver.store.endpoints()}
    with pytest.raises(Conflict, match=f"{port} failed: port is already allocated"):
        env.driver.attach(  # type: ignore[arg-type]
            net, cid(), name="b", ports=[PortMapping(host_ip="127.0.0.1", host_port=port, container_port=80)]
        )
    assert {e.id for e in env.driver.store.endpoints()} == before


def test_a_port_a_host_program_listens_on_is_refused_by_name(env: Env) -> None:
    import pytest

    from pallet.errors import Conflict

    net = env.network(dns=False)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with pytest.raises(
            Conflict, match=rf"Bind for 127\.0\.0\.1:{port} failed: port is already allocated"
        ):
            env.driver.attach(  # type: ignore[arg-type]
                net,
                cid(),
                name="a",
                ports=[PortMapping(host_ip="127.0.0.1", host_port=port, container_port=80)],
            )
    assert env.driver.store.endpoints() == []


def test_a_suspended_container_keeps_its_address_and_port_and_gets_them_back(
    env: Env, tmp_path: Path
) -> None:
    net = env.network(dns=False)
    port = free_port()
    container = cid()
    web = env.driver.attach(
        net,
        container,
        name="web",
        ports=[PortMapping(host_ip="127.0.0.1", host_port=port, container_port=80)],
    )  # type: ignore[arg-type]
    env.driver.suspend(container)
    assert not os.path.exists(web.netns)
    with Netlink.open() as nl:
        assert web.veth not in {link.name for link in nl.links()}
    # the address stays held while stopped
    other = env.driver.attach(net, cid(), name="other")  # type: ignore[arg-type]
    assert other.ip != web.ip
    (again,) = env.driver.resume(container)
    assert (again.ip, again.mac) == (web.ip, web.mac)
    httpd(env, web.netns, tmp_path, "back\n")
    assert _http_get("127.0.0.1", port) == "back\n"


def test_a_second_network_is_eth1_and_the_default_route_follows_a_disconnect(env: Env) -> None:
    one, two = env.network(dns=False), env.network(dns=False)
    container = cid()
    first = env.driver.attach(one, container, name="a")  # type: ignore[arg-type]
    second = env.driver.attach(two, container, name="a")  # type: ignore[arg-type]

    def default_gateway() -> str:
        with Netlink.open(first.netns) as inside:
            return next(r.gateway for r in inside.routes() if r.dst_len == 0)

    with Netlink.open(first.netns) as inside:
        assert inside.link("eth1").mac == second.mac
    assert default_gateway() == one.gateway  # type: ignore[attr-defined]
    env.driver.detach(first)
    assert default_gateway() == two.gateway  # type: ignore[attr-defined]


def test_a_network_takes_the_mtu_of_the_hosts_uplink(env: Env) -> None:
    with Netlink.open() as nl:
        routes = nl.routes()
        uplinks = {r.oif for r in routes if r.dst_len == 0}
        expected = min([1500] + [link.mtu for link in nl.links() if link.index in uplinks])
    assert env.network(dns=False).mtu == expected  # type: ignore[attr-defined]


def test_another_network_reaches_a_published_port_through_the_host_but_not_the_container(
    env: Env, outside: Outside, tmp_path: Path
) -> None:
    one, two = env.network(dns=False), env.network(dns=False)
    port = free_port()
    web = env.driver.attach(one, cid(), name="web", ports=[PortMapping(host_port=port, container_port=80)])  # type: ignore[arg-type]
    other = env.driver.attach(two, cid(), name="other")  # type: ignore[arg-type]
    httpd(env, web.netns, tmp_path, "web\n")
    assert wget(other.netns, f"http://{outside.host_ip}:{port}/") == "web\n"
    assert wget(other.netns, f"http://{web.ip}/") == ""


def test_the_engines_flow_allocate_in_its_transaction_then_resume(env: Env) -> None:
    net = env.network(dns=False)
    a, b = cid(), cid()
    with env.db.transaction():  # the engine's: its container rows would be written here too
        first = env.driver.allocate(net, a, name="a")  # type: ignore[arg-type]
        second = env.driver.allocate(net, b, name="b")  # type: ignore[arg-type]
    assert not os.path.exists(first.netns)  # nothing in the kernel yet
    env.driver.resume(a)
    env.driver.resume(b)
    assert exec_in(second.netns, BUSYBOX, "ping", "-c", "1", "-W", "5", first.ip).returncode == 0
