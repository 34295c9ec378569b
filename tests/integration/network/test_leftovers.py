"""Nothing leaks: an attach SIGKILLed at each of its kernel steps is repaired by ``reconcile``, leftovers
made by hand are removed, and other programs' nftables tables are never touched."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap

import pytest

from pallet.network import netns, nft, resolver
from pallet.network.netlink import Netlink
from pallet.network.store import PortMapping

from .conftest import Env, free_port

#: run in a child: attach with every kernel step counted, SIGKILL of itself before step N
_CHILD = textwrap.dedent("""
    import os, signal, sys
    from pallet.database import Database
    from pallet.network import driver as driver_module, netlink, netns, nft, resolver
    from pallet.network.driver import Driver
    from pallet.network.store import SCHEMA, PortMapping

    root, run_dir, tag, network_id, container_id, port, kill_at = sys.argv[1:]
    steps = [0]

    def counted(function):
        def step(*args, **kwargs):
            steps[0] += 1
            if steps[0] == int(kill_at):
                os.kill(os.getpid(), signal.SIGKILL)
            return function(*args, **kwargs)
        return step

    netlink.Netlink.request = counted(netlink.Netlink.request)
    nft.apply = counted(nft.apply)
    resolver.ensure_running = counted(resolver.ensure_running)
    netns.create = counted(netns.create)
    db = Database.at(root, (SCHEMA,))
    d = Driver(db, run_dir=run_dir, tag=tag, upstreams=[])
    d.attach(d.network(network_id), container_id, name="victim",
             ports=[PortMapping(host_ip="127.0.0.1", host_port=int(port), container_port=80)])
    print(steps[0])
""")


def _attach_in_child(env: Env, network_id: str, container_id: str, port: int, kill_at: int) -> int:
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, env.root, env.run_dir, env.tag, network_id, container_id, str(port), str(kill_at)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if result.returncode == 0:
        return int(result.stdout)
    assert result.returncode == -signal.SIGKILL, result.stderr
    return 0


def _ours(env: Env, container_id: str) -> list[str]:
    """What of the container is still somewhere: endpoint rows, veths on the bridge, netns file, ports."""
    left = [f"endpoint {e.ip}" for e in env.driver.store.endpoints(container_id=container_id)]
    with Netlink.open() as nl:
        bridges = {link.index for link in nl.links() if link.kind == "bridge" and link.name.startswith("pt")}
        left += [f"veth {link.name}" for link in nl.links() if link.master in bridges]
    if os.path.exists(env.driver.netns_path(container_id)):
        left.append("netns file")
    listing = subprocess.run(
        [nft.NFT_PATHS[0], "list", "table", "inet", env.driver.table],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    if "dnat ip to" in listing:
        left.append("published port rule")
    return left


def test_a_sigkill_at_every_step_of_an_attach_is_repaired_by_reconcile(env: Env) -> None:
    net = env.network()
    port = free_port()
    total = 0
    kill_at = 1
    while True:
        container_id = secrets.token_hex(32)
        completed = _attach_in_child(env, net.id, container_id, port, kill_at)  # type: ignore[attr-defined]
        env.driver.reconcile([])  # the container does not exist (it never finished being made)
        assert _ours(env, container_id) == [], f"killed before step {kill_at}"
        if completed:
            total = completed
            break
        kill_at += 1
    assert total >= 10  # every kernel step of an attach was a kill point
    assert resolver.resolver_networks(env.run_dir) == []


def test_reconcile_keeps_live_containers_and_removes_the_rest(env: Env) -> None:
    net = env.network()
    live_id, dead_id = secrets.token_hex(32), secrets.token_hex(32)
    live = env.driver.attach(
        net,
        live_id,
        name="live",
        ports=[PortMapping(host_port=free_port(), container_port=80)],
    )  # type: ignore[arg-type]
    dead = env.driver.attach(net, dead_id, name="dead")  # type: ignore[arg-type]
    # leftovers made by hand: a namespace file and a veth on the bridge that no endpoint names
    stray_ns = env.driver.netns_path(secrets.token_hex(32))
    netns.create(stray_ns)
    with Netlink.open() as nl:
        stray = "pt" + secrets.token_hex(4) + "s"
        nl.add_veth(stray, "pt" + secrets.token_hex(4) + "p", master=net.bridge)  # type: ignore[attr-defined]
    done = env.driver.reconcile([live_id])
    assert dead.id in done.endpoints
    assert [link for link in done.links if link.startswith("pt")] == [stray]
    with Netlink.open() as nl:
        assert dead.veth not in [link.name for link in nl.links()]
    assert os.path.basename(stray_ns) in done.netns
    assert [e.id for e in env.driver.store.endpoints()] == [live.id]
    assert os.path.exists(live.netns)
    assert not os.path.exists(dead.netns)
    with Netlink.open() as nl:
        assert nl.link(live.veth).master == nl.link(net.bridge).index  # type: ignore[attr-defined]
    listing = subprocess.run(
        [nft.NFT_PATHS[0], "list", "table", "inet", env.driver.table],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"dnat ip to {live.ip}:80" in listing
    assert env.driver.reconcile([live_id]).endpoints == []  # idempotent


@pytest.fixture
def foreign_table() -> object:
    """Another program's table (docker-like NAT rules), made and removed by the test."""
    name = "foreign-" + secrets.token_hex(4)
    batch = textwrap.dedent(f"""
        table ip {name} {{
            chain POSTROUTING {{ type nat hook postrouting priority srcnat; policy accept;
                ip saddr 10.253.0.0/16 oifname != "foreign0" masquerade
            }}
            chain FORWARD {{ type filter hook forward priority filter; policy accept;
                iifname "foreign0" oifname "foreign0" accept
            }}
        }}
    """)
    subprocess.run([nft.NFT_PATHS[0], "-f", "-"], input=batch, text=True, check=True)
    try:
        yield name
    finally:
        subprocess.run([nft.NFT_PATHS[0], "delete", "table", "ip", name], check=False)


def test_other_tables_are_never_touched(env: Env, foreign_table: str) -> None:
    def listing() -> str:
        return subprocess.run(
            [nft.NFT_PATHS[0], "list", "table", "ip", foreign_table],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    before = listing()
    net = env.network()
    e = env.driver.attach(
        net,
        secrets.token_hex(32),
        name="a",
        ports=[PortMapping(host_port=free_port(), container_port=80)],
    )  # type: ignore[arg-type]
    env.driver.reconcile([e.container_id])
    env.driver.detach(e)
    env.driver.remove_network(net.id)  # type: ignore[attr-defined]
    assert listing() == before
    tables = subprocess.run(
        [nft.NFT_PATHS[0], "list", "tables"], capture_output=True, text=True, check=True
    ).stdout
    assert env.driver.table not in tables  # the last network took pallet's table with it


def test_prune_removes_unused_networks_but_the_kept_and_the_used(env: Env) -> None:
    kept, used, unused = env.network(dns=False), env.network(dns=False), env.network(dns=False)
    env.driver.attach(used, secrets.token_hex(32), name="a")  # type: ignore[arg-type]
    env.driver.ensure_network(unused)  # type: ignore[arg-type]
    removed = env.driver.prune(keep=[kept.name])  # type: ignore[attr-defined]
    assert [n.id for n in removed] == [unused.id]  # type: ignore[attr-defined]
    with Netlink.open() as nl:
        assert unused.bridge not in {link.name for link in nl.links()}  # type: ignore[attr-defined]
    assert {n.id for n in env.driver.store.networks()} == {kept.id, used.id}  # type: ignore[attr-defined]
