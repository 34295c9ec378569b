"""Several processes attaching to one network at once, and a subnet chosen around the host's routes."""

from __future__ import annotations

import ipaddress
import secrets
import subprocess
import sys
import textwrap

from pallet.network import ipam
from pallet.network.driver import Driver

from .conftest import BUSYBOX, Env, exec_in, free_subnet

_ATTACH = textwrap.dedent("""
    import sys
    from pallet.database import Database
    from pallet.network.driver import Driver
    from pallet.network.store import SCHEMA
    root, run_dir, tag, network_id, container_id = sys.argv[1:]
    d = Driver(Database.at(root, (SCHEMA,)), run_dir=run_dir, tag=tag, upstreams=[])
    e = d.attach(d.network(network_id), container_id, name="c" + container_id[:6])
    print(e.ip)
""")


def test_eight_processes_attaching_at_once_get_distinct_working_addresses(env: Env) -> None:
    net = env.network(dns=False)
    ids = [secrets.token_hex(32) for _ in range(8)]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _ATTACH, env.root, env.run_dir, env.tag, net.id, cid],  # type: ignore[attr-defined]
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for cid in ids
    ]
    addresses = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        addresses.append(out.strip())
    assert len(set(addresses)) == 8
    first = env.driver.store.endpoints(container_id=ids[0])[0]
    for address in addresses[1:]:
        assert exec_in(first.netns, BUSYBOX, "ping", "-c", "1", "-W", "5", address).returncode == 0


def test_a_chosen_subnet_avoids_the_routes_of_existing_bridges(env: Env) -> None:
    subnet = ipaddress.IPv4Network(free_subnet(251))
    pool = ipam.Pool(str(subnet.supernet(new_prefix=23)), 24)  # two /24s: the first one taken by a bridge
    first_half = next(pool.subnets())
    driver = Driver(env.db, run_dir=env.run_dir, tag=env.tag, pools=[pool], upstreams=[])
    one = driver.create_network(
        "pt" + secrets.token_hex(4), subnet=str(first_half), bridge="pt" + secrets.token_hex(4), dns=False
    )
    driver.attach(one, secrets.token_hex(32), name="a")  # the bridge and its route exist now
    env.db.conn.execute(
        "DELETE FROM endpoints"
    )  # forget the network's rows: only the route remains to say it
    env.db.conn.execute("DELETE FROM networks")
    try:
        two = driver.create_network(
            "pt" + secrets.token_hex(4), bridge="pt" + secrets.token_hex(4), dns=False
        )
        assert not ipaddress.ip_network(two.subnet).overlaps(first_half)
    finally:
        env.driver.store.add(one)  # back, so that the fixture removes its bridge and rules
