"""The resolver of a user-defined network: names, aliases and short ids of its containers, other names
forwarded to the host's resolvers (a fake one on 127.0.0.1), never a removed container, its own process."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap

from pallet.network import resolver

from .conftest import Env, FakeUpstream, dns_query, dns_query_names, dns_query_tcp, wait_for


def cid() -> str:
    return secrets.token_hex(32)


def test_names_aliases_and_short_ids_resolve_and_others_are_forwarded(
    dns_env: Env, upstream: FakeUpstream
) -> None:
    net = dns_env.network()
    web_id = cid()
    web = dns_env.driver.attach(net, web_id, name="web", aliases=["www"])  # type: ignore[arg-type]
    cli = dns_env.driver.attach(net, cid(), name="cli")  # type: ignore[arg-type]
    gw = net.gateway  # type: ignore[attr-defined]
    assert dns_query(cli.netns, gw, "web") == (0, [web.ip])
    assert dns_query(cli.netns, gw, "WWW") == (0, [web.ip])
    assert dns_query(cli.netns, gw, web_id[:12]) == (0, [web.ip])
    assert dns_query(cli.netns, gw, "cli") == (0, [cli.ip])
    assert dns_query(cli.netns, gw, "web", qtype=28) == (0, [])  # known, no IPv6: not forwarded
    assert dns_query(cli.netns, gw, "example.test") == (0, ["192.0.2.77"])
    assert dns_query(cli.netns, gw, "nowhere.test")[0] == 3  # the upstream's NXDOMAIN, relayed
    assert "web" not in upstream.asked
    assert dns_query_tcp(cli.netns, gw, "web") == (0, [web.ip])  # the retry after a truncated answer
    reverse = ".".join(reversed(web.ip.split("."))) + ".in-addr.arpa"
    assert dns_query_names(cli.netns, gw, reverse) == ["web"]


def test_a_removed_container_is_never_answered(dns_env: Env) -> None:
    net = dns_env.network()
    web = dns_env.driver.attach(net, cid(), name="web")  # type: ignore[arg-type]
    cli = dns_env.driver.attach(net, cid(), name="cli")  # type: ignore[arg-type]
    gw = net.gateway  # type: ignore[attr-defined]
    assert dns_query(cli.netns, gw, "web") == (0, [web.ip])
    dns_env.driver.detach(web)
    rcode, addresses = dns_query(cli.netns, gw, "web")
    assert web.ip not in addresses
    assert rcode == 3


def test_the_default_style_network_without_dns_starts_no_resolver(dns_env: Env) -> None:
    net = dns_env.network(dns=False)
    dns_env.driver.attach(net, cid(), name="a")  # type: ignore[arg-type]
    assert resolver.running_pid(dns_env.run_dir, net.id) == 0  # type: ignore[attr-defined]


def test_the_resolver_outlives_a_sigkilled_command_and_exits_with_the_last_container(dns_env: Env) -> None:
    net = dns_env.network()
    web_id = cid()
    # the attach runs in another process, killed with SIGKILL once attached
    script = textwrap.dedent(f"""
        import sys, time
        from pallet.database import Database
        from pallet.network.driver import Driver
        from pallet.network.store import SCHEMA
        db = Database.at({dns_env.root!r}, (SCHEMA,))
        d = Driver(db, run_dir={dns_env.run_dir!r}, tag={dns_env.tag!r}, upstreams=[])
        d.attach(d.network({net.id!r}), {web_id!r}, name="web")  # type: ignore[attr-defined]
        print("attached", flush=True)
        time.sleep(600)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "attached"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    pid = resolver.running_pid(dns_env.run_dir, net.id)  # type: ignore[attr-defined]
    assert pid
    cli = dns_env.driver.attach(net, cid(), name="cli")  # type: ignore[arg-type]
    web = dns_env.driver.store.endpoints(container_id=web_id)[0]
    assert dns_query(cli.netns, net.gateway, "web") == (0, [web.ip])  # type: ignore[attr-defined]
    assert resolver.running_pid(dns_env.run_dir, net.id) == pid  # type: ignore[attr-defined]
    dns_env.driver.detach(web)
    dns_env.driver.detach(cli)

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, "the resolver exits once its network has no container")
    assert resolver.running_pid(dns_env.run_dir, net.id) == 0  # type: ignore[attr-defined]
    # and the next container starts one again
    again = dns_env.driver.attach(net, cid(), name="again")  # type: ignore[arg-type]
    assert dns_query(again.netns, net.gateway, "again") == (0, [again.ip])  # type: ignore[attr-defined]


def test_twenty_containers_get_distinct_addresses_and_resolve_each_other(dns_env: Env) -> None:
    net = dns_env.network()
    endpoints = [dns_env.driver.attach(net, cid(), name=f"c{i}") for i in range(20)]  # type: ignore[arg-type]
    assert len({e.ip for e in endpoints}) == 20
    for asking in endpoints:
        for named in endpoints:
            assert dns_query(asking.netns, net.gateway, named.name) == (0, [named.ip])  # type: ignore[attr-defined]


def test_a_dual_stack_network_pings_and_resolves_over_ipv6(dns_env: Env) -> None:
    from .conftest import BUSYBOX, exec_in

    net = dns_env.network(ipv6=True)
    web = dns_env.driver.attach(net, cid(), name="web")  # type: ignore[arg-type]
    cli = dns_env.driver.attach(net, cid(), name="cli")  # type: ignore[arg-type]
    assert web.ip6.startswith("fd")
    result = exec_in(cli.netns, BUSYBOX, "ping", "-6", "-c", "1", "-W", "5", web.ip6)
    assert result.returncode == 0, result.stdout + result.stderr
    assert dns_query(cli.netns, net.gateway, "web", qtype=28) == (0, [web.ip6])  # type: ignore[attr-defined]
    assert dns_query(cli.netns, net.gateway, "web") == (0, [web.ip])  # type: ignore[attr-defined]


def test_a_killed_resolver_is_started_again_by_reconcile(dns_env: Env) -> None:
    net = dns_env.network()
    web = dns_env.driver.attach(net, cid(), name="web")  # type: ignore[arg-type]
    pid = resolver.running_pid(dns_env.run_dir, net.id)  # type: ignore[attr-defined]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: resolver.running_pid(dns_env.run_dir, net.id) == 0, "the resolver is dead")  # type: ignore[attr-defined]
    done = dns_env.driver.reconcile([web.container_id])
    assert done.resolvers_started == [net.id[:12]]  # type: ignore[attr-defined]
    assert dns_query(web.netns, net.gateway, "web") == (0, [web.ip])  # type: ignore[attr-defined]


def test_a_container_s_own_dns_servers_get_its_outside_names(dns_env: Env, upstream: FakeUpstream) -> None:
    from pallet.network import netns

    net = dns_env.network()
    gw = net.gateway  # type: ignore[attr-defined]
    web = dns_env.driver.attach(net, cid(), name="web")  # type: ignore[arg-type]
    port = upstream.address.rpartition(":")[2]  # the host's fake server's port, taken in the host's namespace
    mine = dns_env.driver.attach(net, cid(), name="mine", dns=[f"127.0.0.1:{port}"])  # type: ignore[arg-type]
    plain = dns_env.driver.attach(net, cid(), name="plain")  # type: ignore[arg-type]
    # the container's own server, on its own loopback (docker: --dns 127.0.0.1 is the container's)
    with netns.entered(mine.netns):
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        own = FakeUpstream(
            {"example.test": "192.0.2.88", "own.test": "192.0.2.99"}, bind=("127.0.0.1", int(port))
        )
    try:
        # docker's embedded DNS: the network's names answered here, the rest to the container's --dns
        assert dns_query(mine.netns, gw, "web") == (0, [web.ip])
        assert dns_query(mine.netns, gw, "example.test") == (0, ["192.0.2.88"])
        assert dns_query(mine.netns, gw, "own.test") == (0, ["192.0.2.99"])
        assert "web" not in own.asked
        assert upstream.asked == []  # the same address and port in the host's namespace: never asked
        # a container without --dns: the host's servers, never the other's
        asked = len(own.asked)
        assert dns_query(plain.netns, gw, "example.test") == (0, ["192.0.2.77"])
        assert dns_query(plain.netns, gw, "own.test")[0] == 3
        assert len(own.asked) == asked
        assert upstream.asked == ["example.test", "own.test"]
    finally:
        own.close()
