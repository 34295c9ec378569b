"""Measure a container attach over pallet's netlink module against the same steps as ``ip`` commands.

Not a test (no assertion, no ``test_`` name): run as root with
``.venv/bin/python tests/integration/network/measure_attach.py [N]``. Both ways do, interleaved, N
times on a bridge of their own: make a named network namespace, a veth pair with the container end
in it (on the bridge, up), the container end's address, ``lo`` and the end up, the default route —
then remove the namespace and the veth. It prints medians and the ratio. Traffic: none. Everything
made is removed, by name, even on failure.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

from pallet.network import netns
from pallet.network.netlink import Netlink

IP = "/usr/sbin/ip"


def attach_netlink(nl: Netlink, path: str, bridge: str, veth: str, address: str, gateway: str) -> None:
    netns.create(path)
    with Netlink.open(path) as inside:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            nl.add_veth(veth, "eth0", peer_netns_fd=fd, peer_mac="02:42:0a:fe:00:02", mtu=1500, master=bridge)
        finally:
            os.close(fd)
        nl.set_hairpin(veth)
        inside.set_link("lo", up=True)
        inside.set_link("eth0", up=True)
        inside.add_address("eth0", address, 24)
        inside.default_route(gateway, "eth0")


def attach_ip(name: str, bridge: str, veth: str, address: str, gateway: str) -> None:
    steps = [
        ["netns", "add", name],
        ["link", "add", veth, "mtu", "1500", "master", bridge, "up", "type", "veth", "peer", "name", "eth0",
         "netns", name, "address", "02:42:0a:fe:00:02"],
        ["link", "set", "dev", veth, "type", "bridge_slave", "hairpin", "on"],
        ["-n", name, "link", "set", "lo", "up"],
        ["-n", name, "link", "set", "eth0", "up"],
        ["-n", name, "addr", "add", f"{address}/24", "dev", "eth0"],
        ["-n", name, "route", "add", "default", "via", gateway, "dev", "eth0"],
    ]  # fmt: skip
    for step in steps:
        subprocess.run([IP, *step], check=True)


def main(rounds: int) -> None:
    tag = os.urandom(3).hex()
    bridge = f"pm{tag}"
    tmp = tempfile.mkdtemp()
    ours, theirs = [], []
    with Netlink.open() as nl:
        nl.add_bridge(bridge)
        nl.add_address(bridge, "10.254.77.1", 24)
        try:
            for i in range(rounds):
                path, veth = os.path.join(tmp, f"ns{i}"), f"pm{tag}a{i}"
                start = time.perf_counter()
                attach_netlink(nl, path, bridge, veth, "10.254.77.2", "10.254.77.1")
                ours.append(time.perf_counter() - start)
                nl.delete_link(veth)
                netns.remove(path)

                name, veth = f"pm{tag}n{i}", f"pm{tag}b{i}"
                start = time.perf_counter()
                attach_ip(name, bridge, veth, "10.254.77.3", "10.254.77.1")
                theirs.append(time.perf_counter() - start)
                subprocess.run([IP, "link", "del", veth], check=False)
                subprocess.run([IP, "netns", "del", name], check=False)
        finally:
            nl.delete_link(bridge)
    a, b = statistics.median(ours) * 1000, statistics.median(theirs) * 1000
    c = driver_attach(rounds, tmp)
    os.rmdir(tmp)
    print(
        f"attach (netns + veth into it + hairpin + lo/eth0 up + address + default route), median of {rounds}:"
    )
    print(f"  pallet.network.netlink: {a:6.2f} ms")
    print(f"  ip commands (7):        {b:6.2f} ms")
    print(f"  ratio: {a / b:.3f}x")
    print(
        f"Driver.attach on a network set up already (+ the endpoint's row in SQLite, no port, no resolver): {c:.2f} ms"
    )


def driver_attach(rounds: int, tmp: str) -> float:
    """The median of ``Driver.attach`` after the network's first (which sets up the bridge and rules)."""
    from pallet.database import Database
    from pallet.network.driver import Driver
    from pallet.network.store import SCHEMA

    with open("/proc/sys/net/ipv4/ip_forward") as f:
        forward = f.read()
    root = tempfile.mkdtemp(dir=tmp)
    db = Database.at(root, (SCHEMA,))
    tag = "pm" + os.urandom(3).hex()
    driver = Driver(db, run_dir=os.path.join(root, "run"), tag=tag, upstreams=[])
    network = driver.create_network(tag, subnet="10.254.78.0/24", bridge=tag, dns=False)
    times = []
    try:
        driver.attach(network, os.urandom(32).hex(), name="first")
        for i in range(rounds):
            start = time.perf_counter()
            driver.attach(network, os.urandom(32).hex(), name=f"c{i}")
            times.append(time.perf_counter() - start)
    finally:
        driver.reconcile([])
        driver.remove_network(network.id)
        db.close()
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write(forward)
        import shutil

        shutil.rmtree(root)
    return statistics.median(times) * 1000


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
