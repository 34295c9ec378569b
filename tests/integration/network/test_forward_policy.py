"""docker's FORWARD policy DROP: pallet's containers keep outbound NAT through rules of their own in
docker's DOCKER-USER chain, an internal network still has no way out, and removal leaves the chain
exactly as it was.

Everything runs in a network namespace the test makes to act as the host (its filter table made with
iptables-nft as dockerd makes it), so the real host's tables are never touched; the namespace and
everything in it (bridges, veths, tables) go with it, even on failure.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pallet.network import forward_policy, netns
from pallet.network.netlink import Netlink

from .conftest import NSENTER, Env, Outside, httpd, need_root, wget

IPTABLES = "/usr/sbin/iptables-nft"


def cid() -> str:
    return secrets.token_hex(32)


def iptables(host: str, *argv: str) -> str:
    done = subprocess.run(
        [NSENTER, f"--net={host}", IPTABLES, *argv], capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.fixture
def host(tmp_path: Path) -> Iterator[str]:
    """A namespace acting as the host; the test's thread runs in it throughout."""
    need_root()
    for tool in (IPTABLES, IPTABLES + "-save", IPTABLES + "-restore"):
        if not os.path.exists(tool):
            pytest.skip(f"{tool} is not installed")
    path = str(tmp_path / "host-ns")
    netns.create(path)
    try:
        with netns.entered(path):
            with Netlink.open() as nl:
                nl.set_link("lo", up=True)
            yield path
    finally:
        netns.remove(path)


@pytest.fixture
def world(host: str, tmp_path: Path) -> Iterator[tuple[Env, Outside]]:
    env = Env(tmp_path, upstreams=[])
    try:
        outside = Outside(env, tmp_path)
        try:
            yield env, outside
        finally:
            outside.remove()
    finally:
        env.teardown()


def dockers_table(host: str, *, user_chain: bool = True) -> None:
    """What dockerd makes when it turns forwarding on."""
    iptables(host, "-P", "FORWARD", "DROP")
    if user_chain:
        iptables(host, "-N", "DOCKER-USER")
        iptables(host, "-I", "FORWARD", "-j", "DOCKER-USER")
        iptables(host, "-A", "DOCKER-USER", "-i", "eth9", "-j", "DROP")  # a user's own rule, kept


def test_outbound_works_under_dockers_drop_policy_and_removal_restores_docker_user(
    host: str, world: tuple[Env, Outside], tmp_path: Path
) -> None:
    env, outside = world
    dockers_table(host)
    before = iptables(host, "-S")
    net, internal = env.network(dns=False), env.network(dns=False, internal=True)
    e = env.driver.attach(net, cid(), name="a")  # type: ignore[arg-type]
    i = env.driver.attach(internal, cid(), name="i")  # type: ignore[arg-type]
    httpd(env, outside.path, tmp_path, "outside\n", port=8080)
    assert wget(e.netns, f"http://{outside.ip}:8080/") == "outside\n"
    assert wget(i.netns, f"http://{outside.ip}:8080/") == ""
    rules = iptables(host, "-S", "DOCKER-USER")
    assert f'"pallet:{env.tag}:{net.bridge}"' in rules  # type: ignore[attr-defined]
    assert internal.bridge not in rules  # type: ignore[attr-defined]

    # without them the drop policy wins: the test shows what the rules are for
    forward_policy.sync(env.tag, {})
    assert iptables(host, "-S") == before
    assert wget(e.netns, f"http://{outside.ip}:8080/") == ""
    env.driver.reconcile([e.container_id, i.container_id])  # puts them back
    assert wget(e.netns, f"http://{outside.ip}:8080/") == "outside\n"

    for endpoint in (e, i):
        env.driver.detach(endpoint)
    env.driver.remove_network(net.id)  # type: ignore[attr-defined]
    env.driver.remove_network(internal.id)  # type: ignore[attr-defined]
    assert iptables(host, "-S") == before


def test_a_drop_policy_without_docker_user_gets_the_rules_at_the_top_of_forward(
    host: str, world: tuple[Env, Outside], tmp_path: Path
) -> None:
    env, outside = world
    dockers_table(host, user_chain=False)
    before = iptables(host, "-S")
    net = env.network(dns=False)
    e = env.driver.attach(net, cid(), name="a")  # type: ignore[arg-type]
    httpd(env, outside.path, tmp_path, "outside\n", port=8080)
    assert wget(e.netns, f"http://{outside.ip}:8080/") == "outside\n"
    assert iptables(host, "-S", "FORWARD").splitlines()[1].startswith(f"-A FORWARD -i {net.bridge} ")  # type: ignore[attr-defined]
    env.driver.detach(e)
    env.driver.remove_network(net.id)  # type: ignore[attr-defined]
    assert iptables(host, "-S") == before


def test_a_dockerd_started_after_the_network_was_set_up_is_followed_at_the_next_attach(
    host: str, world: tuple[Env, Outside], tmp_path: Path
) -> None:
    env, outside = world
    net = env.network(dns=False)
    first = env.driver.attach(net, cid(), name="a")  # type: ignore[arg-type]
    httpd(env, outside.path, tmp_path, "outside\n", port=8080)
    assert wget(first.netns, f"http://{outside.ip}:8080/") == "outside\n"
    dockers_table(host)  # dockerd starts now: pallet's containers lose their way out ...
    assert wget(first.netns, f"http://{outside.ip}:8080/") == ""
    second = env.driver.attach(net, cid(), name="b")  # type: ignore[arg-type]
    # ... until the next container's set-up sees the new policy and adds pallet's accepts
    assert wget(second.netns, f"http://{outside.ip}:8080/") == "outside\n"
    assert wget(first.netns, f"http://{outside.ip}:8080/") == "outside\n"
