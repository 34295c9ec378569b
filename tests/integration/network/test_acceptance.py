"""Issue 10's acceptance, end to end: the real ``pallet`` CLI on a private root, busybox containers.

Each test has its own pallet root and run dir (``busybox_root``, made locally),
its own network names, bridge names (``pa`` + hex) and subnets (10.253.x.0/24,
checked against the host's routes), and "the outside" is a namespace the test
makes behind its own veth (10.254.x.0/24). Traffic goes only to 127.0.0.1 and to
those addresses. The fixture removes every container, network, bridge, nft
table, resolver and process of the root, even when the test fails (the engine
tests' clean-up, then by name what is still there).

Items: 1 names, aliases and short ids; 2 published ports and ``port``; 3 NAT to
the outside, ``--internal``, isolation; 4 ``none``, ``host``,
``container:``; 5 twenty containers; 6 nothing left after ``rm -f`` and
``network rm``; 7 SIGKILL of ``run -d`` during its network set-up; 8 pallet-runtime,
runc and crun; 9 docker and podman (private daemons and stores, private bridges) beside
pallet, each keeping its NAT and published ports, where they are installed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from pallet.testing.busybox import PATH_ENV, busybox_root, busybox_rootfs_tar, busybox_store_root
from pallet.testing.hostnet import HostNet, Outside, free_subnet, pallet_veth, processes_under

__all__ = ["busybox_root", "busybox_store_root"]

pytestmark = [pytest.mark.root, pytest.mark.slow]


def _engine_fixtures() -> object:
    """The engine tests' ``PalletEnv`` (their conftest, loaded by path: one copy of its clean-up)."""
    path = Path(__file__).resolve().parents[1] / "engine" / "conftest.py"
    spec = importlib.util.spec_from_file_location("pallet_engine_test_env", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_ENGINE = _engine_fixtures()
PalletEnv = _ENGINE.PalletEnv  # type: ignore[attr-defined]

#: the page busybox httpd serves in every test
PAGE = "hello from web"
HTTPD = f"mkdir -p /www && echo '{PAGE}' > /www/index.html && exec httpd -f -p 80 -h /www"


class NetEnv(PalletEnv):  # type: ignore[misc,valid-type]
    """A ``PalletEnv`` that also knows the bridges and table its root makes, and removes them."""

    def __init__(self, root: Path, run_root: Path, tmp: Path) -> None:
        super().__init__(root, run_root)
        self.tmp = tmp
        self.prefix = "pa" + secrets.token_hex(3)
        self.bridges: set[str] = set()
        self.subnets: list[str] = []
        self.outsides: list[Outside] = []
        self.servers: list[subprocess.Popen[bytes]] = []
        from pallet.network.driver import root_tag

        self.table = f"inet pallet-{root_tag(str(root))}"

    def init(self) -> None:
        """The root's default network, made on first use: part of "before" as docker0 is docker's."""
        self.ok("network", "ls")
        doc = json.loads(self.ok("network", "inspect", "bridge"))[0]
        self.bridges.add(doc["Options"]["com.docker.network.bridge.name"])

    def network(self, name: str, *flags: str) -> str:
        """``network create`` with a bridge name and a subnet of the test's own; the subnet."""
        subnet = free_subnet(253, tuple(self.subnets))
        bridge = f"{self.prefix}{len(self.bridges)}"
        self.bridges.add(bridge)
        self.subnets.append(subnet)
        self.ok(
            "network",
            "create",
            "--subnet",
            subnet,
            "-o",
            f"com.docker.network.bridge.name={bridge}",
            *flags,
            name,
        )
        return subnet

    def outside(self) -> Outside:
        o = Outside(str(self.tmp / f"outside{len(self.outsides)}"), f"{self.prefix}o{len(self.outsides)}")
        self.outsides.append(o)
        return o

    def serve_outside(self, outside: Outside, body: str) -> None:
        www = self.tmp / f"www-outside{len(self.servers)}"
        www.mkdir()
        (www / "index.html").write_text(body)
        self.servers.append(outside.run("busybox", "httpd", "-f", "-p", "80", "-h", str(www)))

    def ip(self, container: str, network: str) -> str:
        template = f"{{{{.NetworkSettings.Networks.{network}.IPAddress}}}}"
        return str(self.ok("inspect", "-f", template, container)).strip()

    def fetch(self, network: str, url: str, *flags: str) -> str:
        """What ``wget -qO- url`` prints in a fresh container on ``network`` ("" on failure).

        ``--init``: busybox's ``timeout`` as the container's pid 1 would exec wget as pid 1, which
        ignores the SIGTERM (a pid namespace's init has no default action), leaving a refused
        connection to the kernel's two-minute SYN timeout; busybox ``wget -T`` crashes (1.35)."""
        try:
            done = self.pallet(
                "run", "--rm", "--init", "--network", network, *flags, "busybox", "timeout", "10", "wget", "-qO-", url,
                timeout=60,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return ""
        return done.stdout if done.returncode == 0 else ""

    def mine(self, kind: str, name: str) -> bool:
        """Made by this test: its bridges and what hangs on them, pallet's veths left without a bridge, its
        root's table, anything naming its tmp dir."""
        if kind == "link":
            return name in self.bridges or name.startswith(self.prefix)
        if kind == "orphan":  # a veth of pallet's left without its bridge
            return pallet_veth(name)
        if kind == "nft":
            return name == self.table
        return str(self.tmp) in name

    def teardown(self) -> None:
        for server in self.servers:
            if server.poll() is None:
                server.send_signal(signal.SIGKILL)
            server.wait()
        # containers, shims, mounts, cgroups, then the root's networks (bridges, table, veths,
        # resolvers) and the run dir: the engine tests' clean-up
        self.cleanup()
        for pid in processes_under(str(self.tmp)):  # anything else still naming the temp dir
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for outside in self.outsides:
            outside.remove()
        for bridge in self.bridges:  # by name, should the engine have failed to
            subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)
        subprocess.run(["nft", "delete", "table", *self.table.split()], capture_output=True, check=False)


def _tool(name: str) -> None:
    if shutil.which(name) is None:
        pytest.skip(f"{name} is not installed")


@pytest.fixture
def net(busybox_root: Path, tmp_path: Path) -> Iterator[NetEnv]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    for tool in ("ip", "nft", "nsenter", "busybox"):
        _tool(tool)
    if not os.path.exists("/proc/sys/net/ipv4/ip_forward"):
        pytest.skip("no IPv4 forwarding in this kernel")
    env = NetEnv(busybox_root, tmp_path / "run", tmp_path)
    forwarding = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    try:
        env.start_zygote()
        env.init()
        yield env
    finally:
        env.teardown()
        Path("/proc/sys/net/ipv4/ip_forward").write_text(forwarding)


def wait_for(what: str, check: object, attempts: int = 100) -> None:
    """Retry ``check()`` until true (a server starting); bounded by attempts, not asserted on time."""
    for _ in range(attempts):
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


def start_web(net: NetEnv, network: str, *flags: str, name: str = "web") -> str:
    """busybox httpd named ``name`` on ``network``; its id once it serves."""
    cid = str(net.ok("run", "-d", "--name", name, "--network", network, *flags, "busybox", "sh", "-c", HTTPD))
    cid = cid.strip()
    ip = net.ip(cid, network)
    wait_for(f"{name} serves", lambda: PAGE in net.fetch(network, f"http://{ip}/"), attempts=20)
    return cid


def host_get(port: int, host: str = "127.0.0.1") -> str:
    """GET / on a host address (127.0.0.1 by default), "" if it cannot be fetched."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=10) as answer:
            return str(answer.read().decode())
    except OSError:
        return ""


def free_port() -> int:
    from pallet.network.ports import choose_free

    return choose_free("tcp", "0.0.0.0", (), start=secrets.randbelow(20000))


# --- 1. names, aliases, short ids -----------------------------------------------------------------


def test_1_containers_on_a_user_network_reach_each_other_by_name_alias_and_short_id(net: NetEnv) -> None:
    net.network("app")
    cid = start_web(net, "app", "--network-alias", "www")
    assert net.fetch("app", "http://web/") == PAGE + "\n"
    assert net.fetch("app", "http://www/") == PAGE + "\n"
    assert net.fetch("app", f"http://{cid[:12]}/") == PAGE + "\n"
    # the default bridge does not resolve names (as docker)
    assert net.fetch("bridge", "http://web/") == ""
    # docker's inspect finds networks too; the container is listed on its network
    containers = json.loads(net.ok("inspect", "-f", "{{json .Containers}}", "app"))
    assert containers[cid]["Name"] == "web"


# --- 2. published ports ---------------------------------------------------------------------------


def _exposing_image(net: NetEnv) -> None:
    """``bbweb:latest``: busybox with ``EXPOSE 80`` (for ``-P``)."""
    from pallet.image.importer import import_tarball
    from pallet.image.store import ImageStore

    buf = io.BytesIO()
    busybox_rootfs_tar(buf)
    buf.seek(0)
    with ImageStore.open(net.root) as store:
        import_tarball(store, buf, ref="bbweb:latest", changes=('CMD ["sh"]', f"ENV {PATH_ENV}", "EXPOSE 80"))


def test_2_published_ports_answer_on_the_host_and_port_lists_them(net: NetEnv) -> None:
    net.network("app")
    _exposing_image(net)
    local, anywhere = free_port(), free_port()
    net.ok(
        "run", "-d", "--name", "web", "--network", "app", "-p", f"127.0.0.1:{local}:80", "-p", f"{anywhere}:80",
        "bbweb", "sh", "-c", HTTPD,
    )  # fmt: skip
    net.ok("run", "-d", "--name", "web2", "--network", "app", "-P", "bbweb", "sh", "-c", HTTPD)
    wait_for("web answers on 127.0.0.1", lambda: PAGE in host_get(local))
    assert host_get(anywhere) == PAGE + "\n"
    assert sorted(net.ok("port", "web").splitlines()) == sorted(
        [f"80/tcp -> 127.0.0.1:{local}", f"80/tcp -> 0.0.0.0:{anywhere}"]
    )
    ports = json.loads(net.ok("inspect", "-f", "{{json .NetworkSettings.Ports}}", "web"))
    assert ports == {
        "80/tcp": [
            {"HostIp": "127.0.0.1", "HostPort": str(local)},
            {"HostIp": "0.0.0.0", "HostPort": str(anywhere)},
        ]
    }
    (line,) = net.ok("port", "web2").splitlines()
    assert line.startswith("80/tcp -> 0.0.0.0:")
    chosen = int(line.rsplit(":", 1)[1])
    wait_for("web2 answers on its chosen port", lambda: PAGE in host_get(chosen))
    assert net.ok("port", "web2", "80/tcp") == f"0.0.0.0:{chosen}\n"
    # an occupied host port is a clear error naming it, and nothing is left of that run
    done = net.pallet(
        "run", "-d", "--name", "web3", "--network", "app", "-p", f"{anywhere}:80", "busybox", "true"
    )
    assert done.returncode == 125
    assert str(anywhere) in done.stderr
    assert done.stderr.count("\n") == 1
    assert "web3" not in net.ok("ps", "-a", "--format", "{{.Names}}").split()


# --- 3. NAT, --internal, isolation ----------------------------------------------------------------


def test_3_outbound_nat_reaches_the_outside_internal_does_not_and_networks_are_isolated(net: NetEnv) -> None:
    net.network("app")
    net.network("closed", "--internal")
    net.network("other")
    outside = net.outside()
    net.serve_outside(outside, "the outside\n")
    url = f"http://{outside.ip}/"
    wait_for("the outside serves the host", lambda: host_get(80, outside.ip) == "the outside\n")
    # the outside has no route to the container subnets: an answer means the request was NAT'd
    assert net.fetch("app", url) == "the outside\n"
    assert net.fetch("bridge", url) == "the outside\n"
    assert net.fetch("closed", url) == ""
    port = free_port()
    start_web(net, "app", "-p", f"{port}:80")
    web_ip = net.ip("web", "app")
    assert net.fetch("app", f"http://{web_ip}/") == PAGE + "\n"
    assert net.fetch("other", f"http://{web_ip}/") == ""
    assert net.fetch("bridge", f"http://{web_ip}/") == ""
    # a published port answers another namespace on the host's address facing it
    reply = subprocess.run(
        ["nsenter", f"--net={outside.path}", "busybox", "timeout", "10", "wget", "-qO-",
         f"http://{outside.host_ip}:{port}/"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert reply.stdout == PAGE + "\n"


# --- 4. none, host, container: --------------------------------------------------------------------


def _links_in(net: NetEnv, *flags: str) -> list[str]:
    out = net.ok("run", "--rm", *flags, "busybox", "ip", "-o", "link")
    return sorted(line.split(":", 2)[1].strip().split("@")[0] for line in out.splitlines())


def test_4_none_host_and_container_modes(net: NetEnv) -> None:
    assert _links_in(net, "--network", "none") == ["lo"]
    host = HostNet.take()
    inside_host = _links_in(net, "--network", "host")
    # the host's own interfaces (not those other programs come and go with meanwhile)
    stable = {
        n for n in host.links if not n.startswith(("veth", "br-", "pallet-", "pa", "pt", "docker", "podman"))
    }
    assert "lo" in stable
    assert stable <= set(inside_host)
    assert len(stable) > 1
    net.network("app")
    start_web(net, "app")
    web_ip = net.ip("web", "app")
    shared = net.ok("run", "--rm", "--network", "container:web", "busybox", "ip", "-o", "-4", "addr")
    assert f"inet {web_ip}/" in shared
    # and it is web's stack: its server answers on the shared loopback
    done = net.pallet(
        "run", "--rm", "--network", "container:web", "busybox", "wget", "-qO-", "http://127.0.0.1/"
    )
    assert done.stdout == PAGE + "\n"


# --- 5. twenty containers -------------------------------------------------------------------------

N = 20


def test_5_twenty_containers_get_distinct_addresses_and_resolve_each_other(net: NetEnv) -> None:
    net.network("app")
    names = [f"c{i}" for i in range(N)]
    for name in names:
        net.ok("run", "-d", "--name", name, "--network", "app", "busybox", "sleep", "600")
    ips = {name: net.ip(name, "app") for name in names}
    assert len(set(ips.values())) == N, ips
    script = " ".join(names)
    for name in names:
        out = net.ok("exec", name, "sh", "-c", f'for n in {script}; do echo "@$n"; nslookup $n; done')
        answers: dict[str, list[str]] = {}
        current = ""
        seen_name = False
        for line in out.splitlines():
            if line.startswith("@"):
                current, seen_name = line[1:], False
                answers[current] = []
            elif line.startswith("Name:"):
                seen_name = True
            elif seen_name and line.startswith("Address"):
                answers[current].append(line.split()[-1])
        assert {n: a for n, a in answers.items()} == {n: [ips[n]] for n in names}, f"from {name}"


# --- 6. nothing left ------------------------------------------------------------------------------


def _compare(net: NetEnv, before: HostNet) -> None:
    ours, others = HostNet.take().leftovers(before, net.mine)
    if others:
        warnings.warn(f"the host changed meanwhile, not by this test: {others}", stacklevel=2)
    assert not ours, f"left behind: {ours}"


def test_6_rm_f_and_network_rm_leave_the_host_as_before(net: NetEnv) -> None:
    before = HostNet.take()
    net.network("app")
    net.network("back")
    port = free_port()
    start_web(net, "app", "-p", f"127.0.0.1:{port}:80", "--network-alias", "www")
    net.ok("network", "connect", "--alias", "db", "back", "web")
    net.ok("run", "-d", "--name", "idle", "--network", "back", "busybox", "sleep", "600")
    assert net.fetch("back", "http://db/") == PAGE + "\n"
    assert host_get(port) == PAGE + "\n"
    done = net.pallet("network", "rm", "app")
    assert done.returncode == 1
    assert "error while removing network: network app" in done.stderr
    assert "has active endpoints" in done.stderr
    net.ok("rm", "-f", "web", "idle")
    net.ok("network", "rm", "app", "back")
    _compare(net, before)


# --- 7. SIGKILL during network set-up -------------------------------------------------------------


def _kill_after(net: NetEnv, delay: float, *args: str) -> bool:
    """``pallet ARGS`` SIGKILLed after ``delay`` s; True if it was killed (not finished before)."""
    proc = subprocess.Popen(net.argv(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


def _stage(net: NetEnv) -> tuple[int, int, int, int]:
    """How far the killed runs got so far, without a pallet command (which would reconcile): container
    directories, namespace files, veths on the test's bridges, published ports' chains."""
    netns_dir = net.run_root / "network" / "netns"
    ruleset = subprocess.run(
        ["nft", "list", "table", *net.table.split()], check=False, capture_output=True, text=True
    ).stdout
    return (
        len(net.container_ids()),
        len([p for p in netns_dir.iterdir() if not p.name.startswith(".")]) if netns_dir.exists() else 0,
        len([n for n, master in HostNet.take().links.items() if master in net.bridges]),
        ruleset.count("chain c-"),
    )


def test_7_sigkill_of_run_during_network_setup_leaves_nothing(net: NetEnv) -> None:
    before = HostNet.take()
    net.network("app")
    # the delays only choose where it dies: spread over the time one whole `run -d` takes here
    # (measured first), so the kills fall all along it, its network set-up included
    run = ("run", "-d", "--network", "app", "busybox", "true")
    net.ok(*run)  # the first run also starts the network's resolver: time the second
    start = time.monotonic()
    net.ok(*run)
    whole = time.monotonic() - start
    delays = [whole * k / 30 for k in range(36)]
    killed = 0
    stages = []
    for i, delay in enumerate(delays):
        if _kill_after(
            net, delay, "run", "-d", "--name", f"k{i}", "--network", "app", "-p", f"127.0.0.1:{free_port()}:80",
            "busybox", "sleep", "600",
        ):  # fmt: skip
            killed += 1
            stages.append(_stage(net))
    assert killed >= 10, f"only {killed} runs were killed before they finished"
    # where they died, seen from outside (container dirs, namespace files, veths, port chains so far)
    print("kill points (containers, netns, veths, port chains):", stages)
    net.ok("ps", "-a")  # reconciles what the killed runs left
    ids = net.ok("ps", "-aq", "--no-trunc").split()
    if ids:
        net.ok("rm", "-f", *ids)
    # with the network still there: no veth on its bridges, no namespace file, no port rule. A veth
    # goes with its namespace, which the kernel frees in the background: it may take a moment
    deadline = time.monotonic() + 30
    while True:
        links = HostNet.take().links
        left = [n for n, master in links.items() if master in net.bridges]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert left == []
    netns_dir = net.run_root / "network" / "netns"
    assert not netns_dir.exists() or [p.name for p in netns_dir.iterdir() if not p.name.startswith(".")] == []
    ruleset = subprocess.run(
        ["nft", "list", "table", *net.table.split()], check=False, capture_output=True, text=True
    ).stdout
    assert "dnat ip to" not in ruleset  # a published port's rule
    assert "chain c-" not in ruleset  # a published port's chain
    net.ok("network", "rm", "app")
    _compare(net, before)


# --- 8. every runtime -----------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", ["pallet-runtime", "runc", "crun"])
def test_8_networks_work_with_each_runtime(net: NetEnv, runtime: str) -> None:
    if runtime != "pallet-runtime":
        _tool(runtime)
    if runtime == "crun":
        from pallet.testing.peers import fix_hybrid_cgroups

        fix_hybrid_cgroups()
    flags = ("--runtime", runtime)
    net.network("app")
    outside = net.outside()
    net.serve_outside(outside, "the outside\n")
    port = free_port()
    start_web(net, "app", *flags, "-p", f"127.0.0.1:{port}:80")
    assert net.fetch("app", "http://web/", *flags) == PAGE + "\n"
    assert host_get(port) == PAGE + "\n"
    assert net.fetch("app", f"http://{outside.ip}/", *flags) == "the outside\n"
    assert _links_in(net, "--network", "none", *flags) == ["lo"]


# --- 9. docker and podman beside pallet -----------------------------------------------------------


def test_9_pallet_docker_and_podman_each_keep_nat_and_published_ports(net: NetEnv) -> None:
    from pallet.testing.peer_engines import PrivateDockerd, PrivatePodman, firewall_tables, restore_firewall

    have_docker = shutil.which("dockerd") is not None and shutil.which("docker") is not None
    have_podman = shutil.which("podman") is not None
    if not (have_docker or have_podman):
        pytest.skip("neither dockerd nor podman is installed")
    outside = net.outside()
    net.serve_outside(outside, "the outside\n")
    url = f"http://{outside.ip}/"
    image = net.tmp / "busybox.tar"
    net.ok("save", "-o", str(image), "busybox:latest")
    before = firewall_tables()
    peers: list[PrivateDockerd | PrivatePodman] = []
    ports: dict[str, int] = {}
    try:
        net.network("app")
        ports["pallet"] = free_port()
        start_web(net, "app", "-p", f"127.0.0.1:{ports['pallet']}:80")
        if have_docker:
            dockerd = PrivateDockerd(f"{net.prefix}d")
            peers.append(dockerd)
            net.bridges.add(dockerd.bridge)
            dockerd.docker("load", "-q", "-i", str(image))
            ports["docker"] = free_port()
            dockerd.docker(
                "run",
                "-d",
                "--name",
                "web",
                "-p",
                f"127.0.0.1:{ports['docker']}:80",
                "busybox",
                "sh",
                "-c",
                HTTPD,
            )
        if have_podman:
            podman = PrivatePodman(f"{net.prefix}p", f"{net.prefix}net")
            peers.append(podman)
            net.bridges.add(podman.bridge)
            podman.podman("load", "-q", "-i", str(image))
            ports["podman"] = free_port()
            podman.podman(
                "run", "-d", *podman.limits(), "--name", "web", "--network", podman.network,
                "-p", f"127.0.0.1:{ports['podman']}:80", "busybox", "sh", "-c", HTTPD,
            )  # fmt: skip
        # all three up at once: each one's published port and outbound NAT
        for engine, port in ports.items():
            wait_for(f"{engine}'s published port answers", lambda port=port: PAGE in host_get(port))
        for network in ("app", "bridge"):
            wait_for(
                f"pallet's {network} reaches the outside",
                lambda n=network: net.fetch(n, url) == "the outside\n",
                3,
            )
        for peer in peers:
            if isinstance(peer, PrivateDockerd):
                done = peer.docker(
                    "run", "--rm", "busybox", "timeout", "10", "wget", "-qO-", url, check=False
                )
            else:
                done = peer.podman(
                    "run", "--rm", *peer.limits(), "--network", peer.network, "busybox", "timeout", "10",
                    "wget", "-qO-", url, check=False,
                )  # fmt: skip
            assert done.stdout == "the outside\n", f"{type(peer).__name__}: {done.stderr}"
        # and pallet's new containers still get both while the others run
        port = free_port()
        net.ok(
            "run",
            "-d",
            "--name",
            "late",
            "--network",
            "app",
            "-p",
            f"127.0.0.1:{port}:80",
            "busybox",
            "sh",
            "-c",
            HTTPD,
        )
        wait_for("pallet's port published after the peers started", lambda: PAGE in host_get(port))
    finally:
        for peer in peers:
            peer.stop()
        restore_firewall(before, {p.bridge for p in peers}, [p.subnet for p in peers])


# --- beyond the numbered items: bad input, the verbs, inspect, hosts files, restarts ----------------


def _names(net: NetEnv) -> tuple[list[str], list[str]]:
    """(container names, network names): what a refused command must leave as it found."""
    containers = sorted(net.ok("ps", "-a", "--format", "{{.Names}}").split())
    return containers, sorted(net.ok("network", "ls", "--format", "{{.Name}}").split())


def test_bad_input_is_one_clear_line_with_docker_exit_codes_and_nothing_made(net: NetEnv) -> None:
    subnet = net.network("app")
    prefix = subnet.removesuffix(".0/24")
    net.ok(
        "run", "-d", "--name", "web", "--network", "app", "--ip", f"{prefix}.50", "busybox", "sleep", "600"
    )
    other = free_subnet(253, tuple(net.subnets))
    cases = [
        (("network", "create", "--subnet", "10.0.0.0/33", "x"), 1, "invalid CIDR address: 10.0.0.0/33"),
        (("network", "create", "--subnet", subnet, "x"), 1, "overlaps"),
        (("network", "create", "--subnet", other, "--gateway", "10.9.9.1", "x"), 1, "10.9.9.1"),
        (("network", "create", "app"), 1, "network with name app already exists"),
        (("network", "create", "-d", "macvlan", "x"), 1, "macvlan"),
        (("network", "rm", "nope"), 1, "network nope not found"),
        (("network", "connect", "app", "web"), 1, "already exists in network app"),
        (("network", "connect", "nope", "web"), 1, "network nope not found"),
        (("network", "disconnect", "bridge", "web"), 1, "not connected"),
        (("run", "--rm", "--network", "nope", "busybox", "true"), 125, "network nope not found"),
        (("run", "--rm", "--network", "app", "-p", "70000:80", "busybox", "true"), 125, "70000"),
        (("run", "--rm", "--network", "app", "--ip", "10.9.9.9", "busybox", "true"), 125, "10.9.9.9"),
        (("run", "--rm", "--network", "app", "--ip", f"{prefix}.50", "busybox", "true"), 125, f"{prefix}.50"),
        (
            ("run", "--rm", "--network", "bridge", "--ip", f"{prefix}.9", "busybox", "true"),
            125,
            "user defined",
        ),
    ]
    for argv, code, words in cases:
        before = _names(net)
        done = net.pallet(*argv)
        assert (done.returncode, done.stdout) == (code, ""), (argv, done.stderr)
        assert words in done.stderr, (argv, done.stderr)
        assert done.stderr.count("\n") == 1, (argv, done.stderr)
        assert _names(net) == before, argv


def test_connect_disconnect_prune_and_inspect_settings(net: NetEnv) -> None:
    net.network("app")
    back = net.network("back", "--label", "tier=db")
    net.network("spare", "--label", "tier=spare")
    cid = start_web(net, "app", "--network-alias", "www")
    doc = json.loads(net.ok("inspect", cid))[0]
    settings = doc["NetworkSettings"]["Networks"]["app"]
    app = json.loads(net.ok("network", "inspect", "app"))[0]
    assert settings["NetworkID"] == app["Id"]
    assert settings["EndpointID"] == app["Containers"][cid]["EndpointID"]
    assert app["Containers"][cid]["IPv4Address"] == settings["IPAddress"] + "/24"
    assert settings["Gateway"] == app["IPAM"]["Config"][0]["Gateway"]
    assert "www" in settings["Aliases"]
    # connect with an address of the caller's choice; the container reaches it at once
    ip = back.removesuffix(".0/24") + ".77"
    net.ok("network", "connect", "--alias", "db", "--ip", ip, "back", "web")
    assert net.ip("web", "back") == ip
    assert net.fetch("back", "http://db/") == PAGE + "\n"
    assert "back" in net.ok("network", "ls", "--filter", "dangling=false", "--format", "{{.Name}}").split()
    # prune removes the unused network only, and what the filter keeps stays
    assert net.ok("network", "prune", "-f", "--filter", "label=tier=db") == ""
    assert net.ok("network", "prune", "-f") == "Deleted Networks:\nspare\n\n"
    net.ok("network", "disconnect", "back", "web")
    assert "back" not in json.loads(net.ok("inspect", "web"))[0]["NetworkSettings"]["Networks"]
    assert net.fetch("back", "http://db/") == ""
    assert net.ok("network", "rm", "back") == "back\n"


def test_hosts_files_as_docker_writes_them(net: NetEnv) -> None:
    net.network("app")
    cid = net.ok("run", "-d", "--name", "web", "--network", "app", "busybox", "sleep", "600").strip()
    ip = net.ip("web", "app")
    gateway = json.loads(net.ok("network", "inspect", "app"))[0]["IPAM"]["Config"][0]["Gateway"]
    hosts = net.ok("exec", "web", "cat", "/etc/hosts")
    assert f"{ip}\t{cid[:12]}" in hosts
    assert "127.0.0.1\tlocalhost" in hosts
    assert net.ok("exec", "web", "cat", "/etc/hostname") == cid[:12] + "\n"
    # a user network's names come from its resolver at the gateway; the default bridge has the host's
    assert f"nameserver {gateway}" in net.ok("exec", "web", "cat", "/etc/resolv.conf")
    on_bridge = net.ok("run", "--rm", "busybox", "cat", "/etc/resolv.conf")
    assert "nameserver 127." not in on_bridge
    extra = net.ok(
        "run", "--rm", "--network", "app", "--add-host", "db.example:10.1.2.3", "--hostname", "h1",
        "busybox", "cat", "/etc/hosts",
    )  # fmt: skip
    assert "10.1.2.3\tdb.example" in extra
    assert "\th1" in extra


def test_a_restart_keeps_the_address_and_a_removed_container_is_not_answered(net: NetEnv) -> None:
    net.network("app")
    start_web(net, "app")
    ip = net.ip("web", "app")
    net.ok("stop", "-t", "1", "web")
    net.ok("start", "web")
    assert net.ip("web", "app") == ip
    wait_for("web serves again", lambda: PAGE in net.fetch("app", "http://web/"), attempts=20)
    net.ok("rm", "-f", "web")
    done = net.pallet("run", "--rm", "--network", "app", "busybox", "nslookup", "web")
    assert ip not in done.stdout
    assert net.fetch("app", "http://web/") == ""


def test_a_dual_stack_network_gives_ipv6_addresses_and_names(net: NetEnv) -> None:
    if (
        not os.path.exists("/proc/sys/net/ipv6")
        or Path("/proc/sys/net/ipv6/conf/all/disable_ipv6").read_text() != "0\n"
    ):
        pytest.skip("IPv6 is disabled in this kernel")
    subnet6 = f"fd{secrets.token_hex(1)}:{secrets.token_hex(2)}:{secrets.token_hex(2)}::/64"
    net.network("v6net", "--ipv6", "--subnet", subnet6)
    doc = json.loads(net.ok("network", "inspect", "v6net"))[0]
    assert doc["EnableIPv6"] is True
    assert [ipaddress.ip_network(c["Subnet"]) for c in doc["IPAM"]["Config"]][1] == ipaddress.ip_network(
        subnet6
    )
    start_web(net, "v6net")
    settings = json.loads(net.ok("inspect", "web"))[0]["NetworkSettings"]["Networks"]["v6net"]
    ip6 = settings["GlobalIPv6Address"]
    assert ipaddress.ip_address(ip6) in ipaddress.ip_network(subnet6)
    assert net.fetch("v6net", f"http://[{ip6}]/") == PAGE + "\n"
    lookup = net.ok("run", "--rm", "--network", "v6net", "busybox", "nslookup", "-type=AAAA", "web")
    assert f"Address: {ip6}" in lookup
