"""Our rtnetlink client against the kernel, checked with iproute2's own view (``ip -j``)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
from collections.abc import Iterator
from errno import EINVAL
from pathlib import Path

import pytest

from pallet.errors import AlreadyExists, NotFound, SystemError_
from pallet.network import netns
from pallet.network.netlink import Netlink

from .conftest import HostState


def ip_json(*args: str, netns_path: str = "") -> list[dict[str, object]]:
    prefix = ["nsenter", f"--net={netns_path}"] if netns_path else []
    out = subprocess.run([*prefix, "ip", "-j", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out) if out.strip() else []


@pytest.fixture
def names(host_state: HostState, tmp_path: Path) -> Iterator[dict[str, str]]:
    tag = secrets.token_hex(3)
    made = {"bridge": f"pt{tag}b", "veth": f"pt{tag}v", "netns": str(tmp_path / "ns")}
    try:
        yield made
    finally:
        with Netlink.open() as nl:
            nl.delete_link(made["veth"])
            nl.delete_link(made["bridge"])
        netns.remove(made["netns"])


def test_links_addresses_and_routes_read_as_iproute2_reads_them(names: dict[str, str]) -> None:
    bridge, veth, path = names["bridge"], names["veth"], names["netns"]
    netns.create(path)
    with Netlink.open() as nl:
        nl.add_bridge(bridge, mtu=1400, mac="02:00:00:aa:bb:cc")
        nl.add_address(bridge, "10.254.99.1", 24)
        fd = os.open(path, os.O_RDONLY)
        try:
            nl.add_veth(veth, "eth0", peer_netns_fd=fd, peer_mac="02:00:00:00:00:02", mtu=1400, master=bridge)
        finally:
            os.close(fd)
        nl.set_hairpin(veth)
        ours = {link.name: link for link in nl.links()}
        theirs = {str(d["ifname"]): d for d in ip_json("-d", "link", "show")}
        for name in (bridge, veth):
            assert ours[name].index == theirs[name]["ifindex"]
            assert ours[name].mtu == theirs[name]["mtu"]
            assert ours[name].mac == theirs[name]["address"]
        assert ours[bridge].mac == "02:00:00:aa:bb:cc"
        assert ours[veth].master == ours[bridge].index
        assert theirs[veth]["master"] == bridge
        assert (ours[bridge].kind, ours[veth].kind) == ("bridge", "veth")
        assert theirs[veth]["linkinfo"]["info_slave_data"]["hairpin"] is True  # type: ignore[index]
        assert any(a.address == "10.254.99.1" and a.prefixlen == 24 for a in nl.addresses(socket.AF_INET))
    with Netlink.open(path) as inside:
        inside.set_link("eth0", up=True)
        inside.add_address("eth0", "10.254.99.2", 24)
        inside.add_address("eth0", "10.254.99.2", 24)  # again: replaced, not refused
        inside.default_route("10.254.99.1", "eth0")
        inside.default_route("10.254.99.1", "eth0")
        routes = ip_json("route", "show", netns_path=path)
        assert {"dst": "default", "gateway": "10.254.99.1", "dev": "eth0"}.items() <= routes[0].items()
        assert [(r.dst, r.dst_len, r.gateway) for r in inside.routes() if r.dst_len == 0] == [
            ("0.0.0.0", 0, "10.254.99.1")
        ]
        assert inside.link("eth0").mac == "02:00:00:00:00:02"


def test_refusals_are_pallet_errors_by_errno(names: dict[str, str]) -> None:
    bridge = names["bridge"]
    with Netlink.open() as nl:
        nl.add_bridge(bridge)
        with pytest.raises(AlreadyExists, match=f"create bridge {bridge}"):
            nl.add_bridge(bridge)
        with pytest.raises(NotFound):
            nl.link(names["veth"])
        assert nl.delete_link(names["veth"]) is False
        with pytest.raises(SystemError_) as caught:
            nl.set_link(bridge, mtu=10)  # below the minimum
        assert caught.value.errno == EINVAL
        assert nl.delete_link(bridge) is True
