"""Containers on networks, end to end through ``pallet``: the default bridge, a user network, ports, modes.

(For the net-cli helper: the engine side of issue 10 is tested here, in
``tests/integration/engine/test_networking.py``, and its unit tests in
``tests/unit/engine/test_network_options.py``; the ``pallet network``/``port``
verbs and the acceptance scenarios are yours.)

Traffic goes only to 127.0.0.1 and to the test's own containers. Each test
runs on its own root (``pallet_env``), whose default network takes a /24 of
the tests' pool, and whose fixture removes its bridge, nftables table,
resolvers, veths and namespace files, even on failure. What a test checks as
"nothing left" is what belongs to its root: links on its bridges, its
namespace files, its nftables table, its resolver processes.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request

import pytest

from pallet.network.driver import root_tag
from pallet.network.ports import choose_free

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import PalletEnv

pytestmark = pytest.mark.root

RUNTIMES = ["pallet-runtime", "runc", "crun"]


def _free_port() -> int:
    import secrets

    return choose_free("tcp", "0.0.0.0", (), start=secrets.randbelow(20000))


def _inspect(env: PalletEnv, ref: str) -> dict[str, object]:
    document = json.loads(env.ok("inspect", ref))[0]
    assert isinstance(document, dict)
    return document


def _settings(env: PalletEnv, ref: str, network: str = "bridge") -> dict[str, object]:
    networks = _inspect(env, ref)["NetworkSettings"]["Networks"]  # type: ignore[index]
    assert network in networks, networks
    entry = networks[network]
    assert isinstance(entry, dict)
    return entry


def _wait_serving(env: PalletEnv, ref: str, port: int = 80) -> None:
    """Until busybox httpd in ``ref`` answers on its own loopback (seen from inside)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = env.pallet("exec", ref, "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{port}/hostname")
        if done.returncode == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"httpd in {ref} does not answer")


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
    return body.decode()


def _our_state(env: PalletEnv) -> dict[str, object]:
    """What the root holds on the host: links on its bridges, namespace files, its nftables table
    (handles left out), its resolvers. The veths of a removed container's namespace are destroyed by
    the kernel in the background: a few seconds are allowed for that (a leak stays for good)."""
    deadline = time.monotonic() + 5
    state = _state_now(env)
    while state["links on our bridges"] and time.monotonic() < deadline:
        time.sleep(0.05)
        state = _state_now(env)
    return state


def _root_bridges(env: PalletEnv) -> set[str]:
    """The bridges of the root's networks, as its database names them (a dockerd's ``br-*`` bridges
    on the same host are not ours)."""
    path = env.root / "pallet.db"
    if not path.exists():
        return set()
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        try:
            return {row[0] for row in db.execute("SELECT bridge FROM networks")}
        except sqlite3.OperationalError:  # no network table yet
            return set()


def _state_now(env: PalletEnv) -> dict[str, object]:
    tag = root_tag(str(env.root))
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    bridges = {
        line.split(": ")[1]
        for line in subprocess.run(
            ["ip", "-o", "link", "show", "type", "bridge"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    }
    ours = {b for b in bridges if b.startswith(("pallet-" + tag[:8], "ptn")) or b in _root_bridges(env)}
    enslaved = sorted(
        line.split(": ")[1].split("@")[0]
        for line in links.splitlines()
        if any(f" master {b} " in line for b in ours)
    )
    netns_dir = env.run_root / "network" / "netns"
    table = subprocess.run(
        ["nft", "list", "table", "inet", f"pallet-{tag}"], capture_output=True, text=True, check=False
    ).stdout
    return {
        "links on our bridges": enslaved,
        "netns files": sorted(os.listdir(netns_dir)) if netns_dir.exists() else [],
        "nft table": table,
        "resolvers": sorted(os.listdir(env.run_root / "network" / "resolvers"))
        if (env.run_root / "network" / "resolvers").exists()
        else [],
    }


def _user_network(env: PalletEnv, name: str, **kwargs: object) -> None:
    """A user network made through the engine's service surface (the CLI verb is net-cli's)."""
    from pallet.engine.service import Service

    with Service.open(env.root, env.run_root) as service:
        service.network_create(name, **kwargs)  # type: ignore[arg-type]


def _remove_network(env: PalletEnv, name: str) -> None:
    from pallet.engine.service import Service

    with Service.open(env.root, env.run_root) as service:
        service.network_remove(name)


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.usefixtures("crun_ready")
def test_a_plain_run_gets_an_address_a_default_route_and_docker_s_files(
    pallet_env: PalletEnv, runtime: str
) -> None:
    cid = pallet_env.ok(
        "run", "-d", "--runtime", runtime, "--hostname", "box", "busybox", "sleep", "300"
    ).strip()
    entry = _settings(pallet_env, cid)
    ip, gateway = str(entry["IPAddress"]), str(entry["Gateway"])
    assert ip
    assert gateway
    assert ip != gateway
    inside = pallet_env.ok(
        "exec", cid, "sh", "-c", "ip -o -4 addr show eth0; ip route; cat /etc/hosts /etc/hostname"
    )
    assert f"inet {ip}/{entry['IPPrefixLen']}" in inside
    assert f"default via {gateway} dev eth0" in inside
    assert f"{ip}\tbox\n" in inside
    assert inside.endswith("box\n")
    resolv = pallet_env.ok("exec", cid, "cat", "/etc/resolv.conf")
    assert "nameserver 127." not in resolv  # the host's loopback resolvers are out of reach
    top = _inspect(pallet_env, cid)
    assert top["HostConfig"]["NetworkMode"] == "bridge"  # type: ignore[index]
    assert top["NetworkSettings"]["IPAddress"] == ip  # type: ignore[index]
    assert str(top["HostsPath"]).startswith(str(pallet_env.root))


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.usefixtures("crun_ready")
def test_containers_reach_each_other_and_a_published_port_answers_on_127_0_0_1(
    pallet_env: PalletEnv, runtime: str
) -> None:
    before = _our_state(pallet_env)
    port = _free_port()
    web = pallet_env.ok(
        "run", "-d", "--runtime", runtime, "--name", "web", "-p", f"127.0.0.1:{port}:80",
        "busybox", "httpd", "-f", "-p", "80", "-h", "/etc",
    ).strip()  # fmt: skip
    _wait_serving(pallet_env, web)
    ip = str(_settings(pallet_env, web)["IPAddress"])
    assert _fetch(f"http://127.0.0.1:{port}/hostname") == web[:12] + "\n"
    done = pallet_env.pallet(
        "run",
        "--rm",
        "--runtime",
        runtime,
        "busybox",
        "sh",
        "-c",
        f"ping -c 1 -W 5 {ip} >/dev/null && wget -qO- http://{ip}/hostname",
    )
    assert (done.returncode, done.stdout) == (0, web[:12] + "\n"), done.stderr
    assert pallet_env.ok("port", "web") == f"80/tcp -> 127.0.0.1:{port}\n"
    assert f"127.0.0.1:{port}->80/tcp" in pallet_env.ok("ps")
    pallet_env.ok("rm", "-f", "web")
    after = _our_state(pallet_env)
    assert after["links on our bridges"] == []
    assert after["netns files"] == []
    if before["nft table"]:  # the table as it was before the first published port
        assert after["nft table"] == before["nft table"]
    with pytest.raises(OSError, match=r"[Cc]onnection refused|reset"):
        _fetch(f"http://127.0.0.1:{port}/hostname")


def test_a_user_network_resolves_names_aliases_and_short_ids_and_leaves_nothing(
    pallet_env: PalletEnv,
) -> None:
    pallet_env.ok("run", "--rm", "busybox", "true")  # the default network, as every root has it
    before = _our_state(pallet_env)
    _user_network(pallet_env, "ptapp")
    web = pallet_env.ok(
        "run", "-d", "--network", "ptapp", "--name", "web", "--network-alias", "site",
        "busybox", "httpd", "-f", "-p", "80", "-h", "/etc",
    ).strip()  # fmt: skip
    _wait_serving(pallet_env, web)
    entry = _settings(pallet_env, web, "ptapp")
    assert entry["Aliases"] == ["site"]
    for name in ("web", "site", web[:12]):
        done = pallet_env.pallet(
            "run", "--rm", "--network", "ptapp", "busybox", "wget", "-qO-", f"http://{name}/hostname"
        )
        assert (done.returncode, done.stdout) == (0, web[:12] + "\n"), (name, done.stderr)
    resolv = pallet_env.ok("run", "--rm", "--network", "ptapp", "busybox", "cat", "/etc/resolv.conf")
    assert f"nameserver {entry['Gateway']}\n" in resolv
    # the default bridge resolves no names, as docker's
    done = pallet_env.pallet("run", "--rm", "busybox", "wget", "-qO-", "http://web/hostname")
    assert done.returncode != 0
    pallet_env.ok("rm", "-f", "web")
    _remove_network(pallet_env, "ptapp")
    assert _our_state(pallet_env) == before


def test_none_host_and_container_modes(pallet_env: PalletEnv) -> None:
    assert pallet_env.ok("run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net") == "lo\n"
    host = set(os.listdir("/sys/class/net"))
    seen = set(pallet_env.ok("run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net").split())
    assert "lo" in seen
    assert len(seen & host) >= len(host) - 2
    web = pallet_env.ok("run", "-d", "--name", "web", "busybox", "sleep", "300").strip()
    ip = str(_settings(pallet_env, web)["IPAddress"])
    shared = pallet_env.ok(
        "run",
        "--rm",
        "--network",
        "container:web",
        "busybox",
        "sh",
        "-c",
        "ip -o -4 addr show eth0; hostname",
    )
    assert f"inet {ip}/" in shared
    assert shared.endswith(web[:12] + "\n")
    done = pallet_env.pallet("run", "--rm", "--network", "container:web", "-p", "80", "busybox", "true")
    assert done.returncode == 125
    assert "conflicting options" in done.stderr


def test_an_occupied_host_port_is_one_clear_error_and_nothing_is_left(pallet_env: PalletEnv) -> None:
    pallet_env.ok("run", "--rm", "busybox", "true")
    before = _our_state(pallet_env)
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        done = pallet_env.pallet("run", "-d", "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "300")
    finally:
        holder.close()
    assert done.returncode == 125
    assert f"127.0.0.1:{port}" in done.stderr
    assert "already allocated" in done.stderr
    assert pallet_env.ok("ps", "-aq") == ""
    assert pallet_env.container_ids() == []
    assert _our_state(pallet_env) == before


def test_two_containers_cannot_publish_the_same_host_port(pallet_env: PalletEnv) -> None:
    port = _free_port()
    pallet_env.ok("run", "-d", "-p", f"{port}:80", "busybox", "sleep", "300")
    done = pallet_env.pallet("run", "-d", "-p", f"{port}:81", "busybox", "sleep", "300")
    assert done.returncode == 125
    assert f"0.0.0.0:{port} failed: port is already allocated" in done.stderr
    assert len(pallet_env.ok("ps", "-aq").split()) == 1


def test_a_stopped_container_keeps_its_address_and_a_restart_keeps_working(pallet_env: PalletEnv) -> None:
    port = _free_port()
    web = pallet_env.ok(
        "run", "-d", "-p", f"127.0.0.1:{port}:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc"
    ).strip()
    ip = _settings(pallet_env, web)["IPAddress"]
    pallet_env.ok("stop", "-t", "1", web)
    assert _our_state(pallet_env)["links on our bridges"] == []  # its veth went with its namespace
    pallet_env.ok("start", web)
    _wait_serving(pallet_env, web)
    assert _settings(pallet_env, web)["IPAddress"] == ip
    assert _fetch(f"http://127.0.0.1:{port}/hostname") == web[:12] + "\n"
    pallet_env.ok("restart", "-t", "1", web)
    _wait_serving(pallet_env, web)
    assert _fetch(f"http://127.0.0.1:{port}/hostname") == web[:12] + "\n"


def test_a_container_that_exits_by_itself_loses_its_veth_at_the_next_command(pallet_env: PalletEnv) -> None:
    cid = pallet_env.ok("run", "-d", "busybox", "sh", "-c", "sleep 0.5").strip()
    assert pallet_env.ok("wait", cid) == "0\n"
    pallet_env.ok("ps", "-a")
    state = _our_state(pallet_env)
    assert state["links on our bridges"] == []
    assert state["netns files"] == []


def test_sigkill_of_run_d_at_any_point_of_network_set_up_leaves_nothing_after_rm(
    pallet_env: PalletEnv,
) -> None:
    pallet_env.ok("run", "--rm", "busybox", "true")
    before = _our_state(pallet_env)
    _user_network(pallet_env, "ptkill")
    with_network = _our_state(pallet_env)
    delays = [0.02 * i for i in range(1, 16)]  # spread over the run's network set-up and beyond
    for i, delay in enumerate(delays):
        process = subprocess.Popen(
            pallet_env.argv(
                "run",
                "-d",
                "--network",
                "ptkill",
                "-p",
                f"127.0.0.1:{_free_port()}:80",
                "--name",
                f"k{i}",
                "busybox",
                "sleep",
                "300",
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
    pallet_env.ok("ps", "-a")
    ids = pallet_env.ok("ps", "-aq", "--no-trunc").split()
    if ids:
        pallet_env.ok("rm", "-f", *ids)
    state = _our_state(pallet_env)
    assert state["links on our bridges"] == []
    assert state["netns files"] == []
    assert state["nft table"] == with_network["nft table"]
    _remove_network(pallet_env, "ptkill")
    assert _our_state(pallet_env) == before


def test_system_prune_removes_unused_user_networks_and_keeps_used_ones(pallet_env: PalletEnv) -> None:
    _user_network(pallet_env, "ptunused")
    _user_network(pallet_env, "ptused")
    pallet_env.ok("run", "-d", "--network", "ptused", "busybox", "sleep", "300")
    out = pallet_env.ok("system", "prune", "-f")
    assert "Deleted Networks:\nptunused\n" in out
    assert "ptused" not in out
    from pallet.engine.service import Service

    with Service.open(pallet_env.root, pallet_env.run_root) as service:
        assert sorted(n.name for n in service.network_list()) == ["bridge", "host", "none", "ptused"]


# --- a container on several networks from its create (run --network A --network B) ---------------


def _network(env: PalletEnv, name: str) -> dict[str, object]:
    document = json.loads(env.ok("network", "inspect", name))[0]
    assert isinstance(document, dict)
    return document


def _subnet(env: PalletEnv, name: str) -> ipaddress.IPv4Network:
    config = _network(env, name)["IPAM"]["Config"]  # type: ignore[index]
    return ipaddress.ip_network(config[0]["Subnet"])  # type: ignore[index]


def _gateway(env: PalletEnv, name: str) -> str:
    return str(_network(env, name)["IPAM"]["Config"][0]["Gateway"])  # type: ignore[index]


def _httpd(env: PalletEnv, name: str, network: str) -> str:
    cid = env.ok(
        "run", "-d", "--name", name, "--network", network, "busybox", "httpd", "-f", "-p", "80", "-h", "/etc"
    ).strip()  # fmt: skip
    _wait_serving(env, cid)
    return cid


def _interfaces(text: str) -> dict[str, str]:
    """``ip -o -4 addr`` lines as interface -> address."""
    out = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) > 3 and words[2] == "inet":
            out[words[1]] = words[3].split("/")[0]
    return out


def test_a_container_on_two_user_networks_reaches_a_container_on_each_by_name(pallet_env: PalletEnv) -> None:
    pallet_env.ok("run", "--rm", "busybox", "true")  # the default network, as every root has it
    before = _our_state(pallet_env)
    pallet_env.ok("network", "create", "ptfront")
    pallet_env.ok("network", "create", "ptback")
    front, back = _subnet(pallet_env, "ptfront"), _subnet(pallet_env, "ptback")
    web = _httpd(pallet_env, "web", "ptfront")
    api = _httpd(pallet_env, "api", "ptback")
    both = pallet_env.ok(
        "run", "-d", "--name", "both", "--hostname", "both", "--network", "ptfront", "--network",
        "name=ptback,alias=twin", "busybox", "sleep", "300",
    ).strip()  # fmt: skip

    # by name, each on its own network, from one container (the resolver answers for both networks)
    for name, cid in (("web", web), ("api", api)):
        done = pallet_env.pallet("exec", "both", "wget", "-qO-", f"http://{name}/hostname")
        assert (done.returncode, done.stdout) == (0, cid[:12] + "\n"), (name, done.stderr)
    # and its alias on the second network answers from there
    done = pallet_env.pallet("exec", "api", "wget", "-q", "-O", "/dev/null", "-T", "5", "http://twin:1/")
    assert "bad address" not in done.stderr, done.stderr

    inside = pallet_env.ok("exec", "both", "sh", "-c", "ip -o -4 addr; echo; ip route; echo; cat /etc/hosts")
    addresses = _interfaces(inside)
    assert ipaddress.ip_address(addresses["eth0"]) in front  # the order the networks were given
    assert ipaddress.ip_address(addresses["eth1"]) in back
    # docker's rule (libnetwork's Endpoint.Less): same priority, neither internal -> the least name
    assert f"default via {_gateway(pallet_env, 'ptback')} dev eth1" in inside
    assert f"{addresses['eth0']}\tboth\n" in inside
    assert f"{addresses['eth1']}\tboth\n" in inside

    networks = json.loads(pallet_env.ok("inspect", both))[0]["NetworkSettings"]["Networks"]
    assert sorted(networks) == ["ptback", "ptfront"]
    assert networks["ptback"]["Aliases"] == ["twin"]
    assert networks["ptfront"]["IPAddress"] == addresses["eth0"]

    # a restart brings both interfaces back in the same order with the same route
    pallet_env.ok("restart", "-t", "0", "both")
    again = pallet_env.ok("exec", "both", "sh", "-c", "ip -o -4 addr; ip route")
    assert _interfaces(again) == addresses
    assert f"default via {_gateway(pallet_env, 'ptback')} dev eth1" in again

    pallet_env.ok("rm", "-f", "both", "web", "api")
    pallet_env.ok("network", "rm", "ptfront", "ptback")
    assert _our_state(pallet_env) == before


def test_gw_priority_picks_the_network_of_the_default_route(pallet_env: PalletEnv) -> None:
    pallet_env.ok("network", "create", "ptfront")
    pallet_env.ok("network", "create", "ptback")
    pallet_env.ok("network", "create", "--internal", "ptinner")
    inside = pallet_env.ok(
        "run", "--rm", "--network", "name=ptfront,gw-priority=5", "--network", "ptback", "busybox", "ip", "route"
    )  # fmt: skip
    assert f"default via {_gateway(pallet_env, 'ptfront')} dev eth0" in inside
    # an internal network never gives the route, whatever its name
    inside = pallet_env.ok(
        "run", "--rm", "--network", "ptinner", "--network", "ptfront", "busybox", "ip", "route"
    )
    assert f"default via {_gateway(pallet_env, 'ptfront')} dev eth1" in inside
    assert inside.count("default") == 1


def _nothing_of(env: PalletEnv, name: str) -> None:
    """No container named ``name``, no endpoint, veth or namespace of any container on the networks."""
    assert env.ok("ps", "-a", "-q", "--filter", f"name=^{name}$") == ""
    assert env.pallet("inspect", name).returncode != 0
    for network in ("ptfront", "ptback"):
        attached = _network(env, network)["Containers"]
        assert isinstance(attached, dict)
        assert all(entry["Name"] != name for entry in attached.values()), network


@pytest.mark.parametrize("verb", ["create", "run"])
def test_a_create_refused_on_its_second_network_leaves_nothing(pallet_env: PalletEnv, verb: str) -> None:
    pallet_env.ok("network", "create", "ptfront")
    pallet_env.ok("network", "create", "ptback")
    # bridges, rules and resolvers up (a resolver exits once its network has no container)
    keepers = [
        pallet_env.ok("run", "-d", "--network", n, "busybox", "sleep", "300").strip()
        for n in ("ptfront", "ptback")
    ]
    before = _our_state(pallet_env)
    extra = ["-d"] if verb == "run" else []

    done = pallet_env.pallet(
        verb, *extra, "--name", "lost", "--network", "ptfront", "--network", "ptnosuch", "busybox", "sleep", "9"
    )  # fmt: skip
    assert done.returncode == 125
    assert "network ptnosuch not found" in done.stderr
    _nothing_of(pallet_env, "lost")
    assert _our_state(pallet_env) == before

    holder = pallet_env.ok("run", "-d", "--network", "ptback", "busybox", "sleep", "300").strip()
    taken = json.loads(pallet_env.ok("inspect", holder))[0]["NetworkSettings"]["Networks"]["ptback"][
        "IPAddress"
    ]
    state = _our_state(pallet_env)
    done = pallet_env.pallet(
        verb, *extra, "--name", "lost", "--network", "ptfront", "--network", f"name=ptback,ip={taken}",
        "busybox", "sleep", "9",
    )  # fmt: skip
    assert done.returncode != 0
    assert taken in done.stderr, done.stderr
    assert pallet_env.ok("ps", "-a", "-q", "--filter", "name=^lost$") == ""
    assert sorted(_network(pallet_env, "ptfront")["Containers"]) == [keepers[0]]  # type: ignore[arg-type]
    assert sorted(_network(pallet_env, "ptback")["Containers"]) == sorted([keepers[1], holder])  # type: ignore[arg-type]
    assert _our_state(pallet_env) == state
    pallet_env.ok("rm", "-f", holder, *keepers)


def test_published_ports_go_with_the_first_network_that_has_a_way_out(pallet_env: PalletEnv) -> None:
    pallet_env.ok("network", "create", "--internal", "ptinner")
    pallet_env.ok("network", "create", "ptfront")
    port = _free_port()
    web = pallet_env.ok(
        "run", "-d", "--network", "ptinner", "--network", "ptfront", "-p", f"127.0.0.1:{port}:80",
        "busybox", "httpd", "-f", "-p", "80", "-h", "/etc",
    ).strip()  # fmt: skip
    _wait_serving(pallet_env, web)
    assert _fetch(f"http://127.0.0.1:{port}/hostname") == web[:12] + "\n"
    assert pallet_env.ok("port", web) == f"80/tcp -> 127.0.0.1:{port}\n"
    networks = json.loads(pallet_env.ok("inspect", web))[0]["NetworkSettings"]["Networks"]
    table = str(_state_now(pallet_env)["nft table"])
    assert f"{networks['ptfront']['IPAddress']}:80" in table  # the DNAT goes to the front address
    assert f"{networks['ptinner']['IPAddress']}:80" not in table
    pallet_env.ok("rm", "-f", web)


# --- docker's predefined host and none networks -------------------------------------------------

_HOST_CONFLICT = "container cannot be disconnected from host network or connected to host network"
_SHARED_CONFLICT = "container sharing network namespace with another container or host cannot be connected"
_NONE_CONFLICT = (
    "container cannot be connected to multiple networks with one of the networks in private (none) mode"
)


def _network_events(env: PalletEnv, container: str) -> list[tuple[str, str, str, str]]:
    """(action, network id, network name, driver type) of the network events naming ``container``."""
    args = ["events", "--since", "0", "--until", str(time.time()), "--format", "json"]
    out = []
    for line in env.ok(*args, "--filter", "type=network").splitlines():
        event = json.loads(line)
        attributes = event["Actor"]["Attributes"]
        if attributes.get("container") == container:
            out.append((event["Action"], event["Actor"]["ID"], attributes["name"], attributes["type"]))
    return out


def test_host_and_none_are_listed_inspected_and_never_removed_or_pruned(pallet_env: PalletEnv) -> None:
    listing = pallet_env.ok("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}").splitlines()
    assert listing == ["bridge bridge local", "host host local", "none null local"]
    host, none = json.loads(pallet_env.ok("network", "inspect", "host", "none"))
    for document, driver in ((host, "host"), (none, "null")):
        assert document["Driver"] == driver
        assert document["Scope"] == "local"
        assert document["IPAM"] == {"Driver": "default", "Options": None, "Config": None}
        assert document["Containers"] == {}
        assert len(document["Id"]) == 64
        # the same id every time, by name, by id prefix, in the listing
        assert _network(pallet_env, document["Id"][:12])["Name"] == document["Name"]
    ids = pallet_env.ok("network", "ls", "-q", "--no-trunc").split()
    assert host["Id"] in ids
    assert none["Id"] in ids
    for ref in ("host", "none", host["Id"][:12]):
        done = pallet_env.pallet("network", "rm", ref)
        assert done.returncode == 1
        name = "host" if ref != "none" else "none"
        assert f"{name} is a pre-defined network and cannot be removed" in done.stderr
    pallet_env.ok("network", "prune", "-f")
    assert pallet_env.ok("network", "ls", "-q", "--no-trunc").split() == ids
    assert _network(pallet_env, "host")["Id"] == host["Id"]


def test_host_and_none_containers_are_attached_and_refused_other_networks(pallet_env: PalletEnv) -> None:
    _user_network(pallet_env, "ptmode")
    h = pallet_env.ok("run", "-d", "--name", "hm", "--network", "host", "busybox", "sleep", "300").strip()
    n = pallet_env.ok("run", "-d", "--name", "nm", "--network", "none", "busybox", "sleep", "300").strip()
    pallet_env.ok("run", "-d", "--name", "bm", "busybox", "sleep", "300")
    host, none = _network(pallet_env, "host"), _network(pallet_env, "none")
    for cid, name, network in ((h, "hm", host), (n, "nm", none)):
        members = network["Containers"]
        assert list(members) == [cid]  # type: ignore[call-overload]
        member = members[cid]  # type: ignore[index]
        assert (member["Name"], member["IPv4Address"], len(member["EndpointID"])) == (name, "", 64)
        settings = _settings(pallet_env, name, str(network["Name"]))
        assert settings["NetworkID"] == network["Id"]
        assert settings["EndpointID"] == member["EndpointID"]
    for args, words in (
        (("connect", "ptmode", "hm"), _SHARED_CONFLICT),
        (("connect", "none", "hm"), _SHARED_CONFLICT),
        (("connect", "host", "hm"), "endpoint with name hm already exists in network host"),
        (("connect", "host", "nm"), _HOST_CONFLICT),
        (("connect", "ptmode", "nm"), _NONE_CONFLICT),
        (("connect", "host", "bm"), _HOST_CONFLICT),
        (("connect", "none", "bm"), _NONE_CONFLICT),
        (("disconnect", "host", "hm"), _HOST_CONFLICT),
        (("disconnect", "host", "bm"), "container bm is not connected to network host"),
    ):
        done = pallet_env.pallet("network", *args)
        assert done.returncode == 1, args
        assert words in done.stderr, (args, done.stderr)
    assert list(_inspect(pallet_env, "bm")["NetworkSettings"]["Networks"]) == ["bridge"]  # type: ignore[index]
    pallet_env.ok("stop", "-t", "0", "hm", "nm")
    assert _network(pallet_env, "host")["Containers"] == {}
    stopped = _settings(pallet_env, "hm", "host")
    assert (stopped["NetworkID"], stopped["EndpointID"]) == (host["Id"], "")
    # dockerd's events: connect before the start, disconnect after the die, of type host and null
    assert _network_events(pallet_env, h) == [
        ("connect", host["Id"], "host", "host"), ("disconnect", host["Id"], "host", "host"),
    ]  # fmt: skip
    assert _network_events(pallet_env, n) == [
        ("connect", none["Id"], "none", "null"), ("disconnect", none["Id"], "none", "null"),
    ]  # fmt: skip
    # never started: no NetworkID yet, as dockerd's (it gives one at the first start)
    pallet_env.ok("create", "--name", "cm", "--network", "none", "busybox", "true")
    assert _settings(pallet_env, "cm", "none")["NetworkID"] == ""
    pallet_env.ok("rm", "-f", "hm", "nm", "bm", "cm")


# --- /etc/hosts follows network connect and disconnect ------------------------------------------


def test_connect_and_disconnect_edit_a_running_container_s_hosts_file(pallet_env: PalletEnv) -> None:
    _user_network(pallet_env, "pthostsa")
    _user_network(pallet_env, "pthostsb")
    pallet_env.ok(
        "run", "-d", "--name", "hx", "--hostname", "box.example", "--network", "pthostsa", "busybox", "sleep", "300"
    )  # fmt: skip
    first = str(_settings(pallet_env, "hx", "pthostsa")["IPAddress"])
    before = pallet_env.ok("exec", "hx", "cat", "/etc/hosts")
    assert before.endswith(f"{first}\tbox.example box\n")
    pallet_env.ok("network", "connect", "--alias", "other", "pthostsb", "hx")
    second = str(_settings(pallet_env, "hx", "pthostsb")["IPAddress"])
    # dockerd's line: the address, the FQDN and the bare name (not the aliases), appended
    assert pallet_env.ok("exec", "hx", "cat", "/etc/hosts") == before + f"{second}\tbox.example box\n"
    pallet_env.ok("network", "disconnect", "pthostsb", "hx")
    assert pallet_env.ok("exec", "hx", "cat", "/etc/hosts") == before
    # a stopped container's file is right when it starts again (dockerd rebuilds it then)
    pallet_env.ok("stop", "-t", "0", "hx")
    pallet_env.ok("network", "connect", "pthostsb", "hx")
    pallet_env.ok("start", "hx")
    third = str(_settings(pallet_env, "hx", "pthostsb")["IPAddress"])
    assert pallet_env.ok("exec", "hx", "cat", "/etc/hosts") == before + f"{third}\tbox.example box\n"
    pallet_env.ok("network", "disconnect", "pthostsb", "hx")
    assert pallet_env.ok("exec", "hx", "cat", "/etc/hosts") == before
    pallet_env.ok("network", "disconnect", "pthostsa", "hx")
    assert pallet_env.ok("exec", "hx", "cat", "/etc/hosts") == before.removesuffix(
        f"{first}\tbox.example box\n"
    )
    pallet_env.ok("rm", "-f", "hx")


# --- a container's --dns on a user network --------------------------------------------------------


class _FakeNameServer:
    """A DNS server on 127.0.0.1:53 of the network namespace at ``netns_path`` (a container's),
    answering ``names`` with A records, NXDOMAIN to anything else; the names it was asked."""

    def __init__(self, netns_path: str, names: dict[str, str]) -> None:
        import threading

        from pallet.network import netns

        self.names = names
        self.asked: list[str] = []
        with netns.entered(netns_path):  # the socket stays in the container's namespace
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 53))
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from pallet.network import resolver

        while not self._stop.is_set():
            try:
                data, client = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = resolver.parse_query(data)
            if query is None:
                continue
            self.asked.append(query.name)
            address = self.names.get(query.name) if query.qtype == resolver.QTYPE_A else None
            rcode = 0 if query.name in self.names else resolver.RCODE_NXDOMAIN
            self.sock.sendto(resolver.encode_answer(query, [address] if address else [], rcode), client)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def test_a_container_s_dns_servers_get_its_outside_names_on_a_user_network(pallet_env: PalletEnv) -> None:
    _user_network(pallet_env, "ptdns")
    gateway = _gateway(pallet_env, "ptdns")
    pallet_env.ok("run", "-d", "--name", "dnsweb", "--network", "ptdns", "busybox", "sleep", "300")
    flags = (
        "--network",
        "ptdns",
        "--dns",
        "127.0.0.1",
        "--dns-search",
        "corp.test",
        "--dns-option",
        "timeout:2",
    )
    cid = pallet_env.ok("run", "-d", "--name", "dnscli", *flags, "busybox", "sleep", "300").strip()
    resolv = pallet_env.ok("exec", "dnscli", "cat", "/etc/resolv.conf")
    # docker's embedded DNS: its own server named, the search and options kept, ndots:0 added
    assert f"nameserver {gateway}\n" in resolv
    assert "search corp.test\n" in resolv
    assert "options timeout:2 ndots:0\n" in resolv
    assert "127.0.0.1" not in resolv
    # --dns 127.0.0.1 is the container's own loopback, as in docker: a server there gets its outside names
    server = _FakeNameServer(str(pallet_env.run_root / "network" / "netns" / cid), {"own.test": "192.0.2.99"})
    try:
        assert "192.0.2.99" in pallet_env.ok("exec", "dnscli", "nslookup", "-type=a", "own.test.")
        assert "own.test" in server.asked
        web = str(_settings(pallet_env, "dnsweb", "ptdns")["IPAddress"])
        assert web in pallet_env.ok("exec", "dnscli", "nslookup", "-type=a", "dnsweb.")
        assert "dnsweb" not in server.asked  # the network's names are answered by its own resolver
    finally:
        server.close()
    pallet_env.ok("rm", "-f", "dnsweb", "dnscli")


def test_connect_and_disconnect_keep_a_container_s_name_server_reachable(pallet_env: PalletEnv) -> None:
    _user_network(pallet_env, "ptresa")
    _user_network(pallet_env, "ptresb")
    pallet_env.ok("run", "-d", "--name", "resweb", "--network", "ptresb", "busybox", "sleep", "300")
    web = str(_settings(pallet_env, "resweb", "ptresb")["IPAddress"])
    # on the default bridge: the host's name servers, no resolver of names
    pallet_env.ok("run", "-d", "--name", "rescli", "busybox", "sleep", "300")
    plain = pallet_env.ok("exec", "rescli", "cat", "/etc/resolv.conf")
    assert _gateway(pallet_env, "ptresb") not in plain
    # joined to a user network: its resolver named (docker's embedded DNS appears then), names resolve
    pallet_env.ok("network", "connect", "ptresb", "rescli")
    resolv = pallet_env.ok("exec", "rescli", "cat", "/etc/resolv.conf")
    assert f"nameserver {_gateway(pallet_env, 'ptresb')}\n" in resolv
    assert web in pallet_env.ok("exec", "rescli", "nslookup", "-type=a", "resweb.")
    pallet_env.ok("network", "disconnect", "ptresb", "rescli")
    assert pallet_env.ok("exec", "rescli", "cat", "/etc/resolv.conf") == plain
    # on two user networks, off the one whose resolver it named: the other's resolver, names still answered
    pallet_env.ok("run", "-d", "--name", "restwo", "--network", "ptresa", "busybox", "sleep", "300")
    pallet_env.ok("network", "connect", "ptresb", "restwo")
    assert f"nameserver {_gateway(pallet_env, 'ptresa')}\n" in pallet_env.ok(
        "exec", "restwo", "cat", "/etc/resolv.conf"
    )
    pallet_env.ok("network", "disconnect", "ptresa", "restwo")
    resolv = pallet_env.ok("exec", "restwo", "cat", "/etc/resolv.conf")
    assert f"nameserver {_gateway(pallet_env, 'ptresb')}\n" in resolv
    assert web in pallet_env.ok("exec", "restwo", "nslookup", "-type=a", "resweb.")
    # a file the container changed is its own: left alone
    pallet_env.ok("exec", "restwo", "sh", "-c", "echo '# mine' >> /etc/resolv.conf")
    pallet_env.ok("network", "connect", "ptresa", "restwo")
    pallet_env.ok("network", "disconnect", "ptresb", "restwo")
    assert pallet_env.ok("exec", "restwo", "cat", "/etc/resolv.conf") == resolv + "# mine\n"
    pallet_env.ok("rm", "-f", "resweb", "rescli", "restwo")
