"""Fixtures for the network layer's integration tests (root): a driver on a temp root, "containers" that
are bare network namespaces, an "outside" namespace behind its own veth, servers run in namespaces,
and a snapshot of the host's links, namespaces and nftables ruleset compared after every test.

Every name is the test's own (``pt`` + hex: bridges, veths, tables), every subnet is in
10.251.0.0/16 (containers) or 10.252.0.0/16 (the outside) and checked against the host's routes
first, and traffic goes only to 127.0.0.0/8 and to these namespaces' addresses. Whatever a test
makes is removed in the fixtures' finalizers, by name or by pid, even when it fails.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from pallet.database import Database
from pallet.network import netns, nft, resolver
from pallet.network.driver import Driver
from pallet.network.netlink import Netlink
from pallet.network.store import SCHEMA
from pallet.testing.hostnet import free_subnet

BUSYBOX = "/usr/bin/busybox"
NSENTER = "/usr/bin/nsenter"


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    for tool in (BUSYBOX, NSENTER, nft.NFT_PATHS[0]):
        if not os.path.exists(tool):
            pytest.skip(f"{tool} is not installed")


# --- the host's state, before and after -------------------------------------------------------


def _links() -> set[str]:
    """Every link as ``name:kind``; a veth of a bridge that is not the tests' (``pt...``) is left out:
    the containers of any pallet root on the host (its default bridge ``pallet-...``) come and go
    meanwhile, and their veths are named as ours are."""
    with Netlink.open() as nl:
        links = nl.links()
    names = {link.index: link.name for link in links}
    return {
        f"{link.name}:{link.kind}"
        for link in links
        if not (link.kind == "veth" and link.master and not names.get(link.master, "").startswith("pt"))
    }


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _tables() -> dict[str, str]:
    """Every nftables table with its listing (handles left out)."""
    out = subprocess.run(
        [nft.NFT_PATHS[0], "list", "tables"], capture_output=True, text=True, check=True
    ).stdout
    tables = {}
    for line in out.splitlines():
        _, family, name = line.split()
        listing = subprocess.run(
            [nft.NFT_PATHS[0], "list", "table", family, name], capture_output=True, text=True, check=False
        ).stdout
        tables[f"{family} {name}"] = listing
    return tables


def _is_ours(item: str) -> bool:
    """Made by these tests: ``pt...`` names, ``pallet-pt...`` tables, ``veth`` + 11 hex (docker's have 7)."""
    name = item.rsplit(maxsplit=1)[-1].split(":", maxsplit=1)[0]
    return name.startswith(("pt", "pallet-pt")) or (name.startswith("veth") and len(name) == 15)


#: the host-wide sysctls ensure_network may turn on; restored after each test
FORWARDING = ("/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding")


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


class HostState:
    def __init__(self) -> None:
        self.links = _links()
        self.netns = _netns()
        self.tables = _tables()
        self.sysctls = {path: _read(path) for path in FORWARDING}

    def compare(self, before: HostState) -> None:
        """Nothing of ours is left; other differences are another process's doing, and said so."""
        problems = []
        for what, old, new in (
            ("links", before.links, self.links),
            ("netns", before.netns, self.netns),
            ("nft tables", set(before.tables), set(self.tables)),
        ):
            added, removed = new - old, old - new
            ours = {i for i in added | removed if _is_ours(i)}
            if ours:
                problems.append(f"{what}: {sorted(ours)}")
            if (added | removed) - ours:
                warnings.warn(
                    f"{what} changed meanwhile by another process: {sorted((added | removed) - ours)}",
                    stacklevel=1,
                )
        for table, listing in before.tables.items():
            if table in self.tables and self.tables[table] != listing and not _is_ours(table):
                warnings.warn(
                    f"nft table {table} changed meanwhile (not by pallet: it never names it)", stacklevel=1
                )
        assert not problems, "left behind or removed: " + "; ".join(problems)


@pytest.fixture
def host_state() -> Iterator[HostState]:
    """Compares the host after the test (and its other fixtures' finalizers) with before."""
    need_root()
    before = HostState()
    yield before
    for path, value in before.sysctls.items():  # ensure_network turns forwarding on, as docker does
        with open(path, "w") as f:
            f.write(value)
    HostState().compare(before)


# --- names, subnets ---------------------------------------------------------------------------


def free_port() -> int:
    """A host TCP port nothing holds now, from the ephemeral range at a random place."""
    from pallet.network.ports import choose_free

    return choose_free("tcp", "0.0.0.0", (), start=secrets.randbelow(20000))


def unique(prefix: str = "pt") -> str:
    return prefix + secrets.token_hex(4)  # 10 characters: fits an interface name with a suffix


# --- the driver -------------------------------------------------------------------------------


class Env:
    """A pallet root and run dir for one test, its driver and what it made."""

    def __init__(self, tmp: Path, upstreams: list[str]) -> None:
        self.tag = unique()
        self.root = str(tmp / "root")
        self.run_dir = str(tmp / "run")
        self.db = Database.at(self.root, (SCHEMA,))
        self.driver = Driver(self.db, run_dir=self.run_dir, tag=self.tag, upstreams=upstreams)
        self.processes: list[subprocess.Popen[bytes]] = []

    def network(
        self, *, internal: bool = False, dns: bool = True, subnet: str = "", ipv6: bool = False
    ) -> object:
        name = unique()
        return self.driver.create_network(
            name, subnet=subnet or free_subnet(251), bridge=name, internal=internal, dns=dns, ipv6=ipv6
        )

    def run_in(self, path: str, *argv: str) -> subprocess.Popen[bytes]:
        """A long-running program in the namespace at ``path`` (ended by pid at teardown)."""
        process = subprocess.Popen(
            [NSENTER, f"--net={path}", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.processes.append(process)
        return process

    def teardown(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait()
        driver = self.driver
        for endpoint in driver.store.endpoints():
            driver.detach(endpoint)
        driver.reconcile([])
        for network in driver.store.networks():
            driver.remove_network(network.id)
        for short in resolver.resolver_networks(self.run_dir):
            resolver.stop(self.run_dir, short)
        nft.apply(nft.table_remove_batch(driver.table))
        self.db.close()
        wait_for(lambda: not processes_naming(self.run_dir), f"no process left that names {self.run_dir}")


@pytest.fixture
def env(host_state: HostState, tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path, upstreams=[])
    try:
        yield e
    finally:
        e.teardown()


def exec_in(path: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NSENTER, f"--net={path}", *argv], capture_output=True, text=True, timeout=timeout, check=False
    )


def wget(path: str, url: str) -> str:
    """The body at ``url`` fetched from the namespace at ``path``, "" if it could not be fetched."""
    try:  # not wget's -T: Debian 12's busybox 1.35 wget crashes on it
        result = exec_in(path, BUSYBOX, "wget", "-q", "-O-", url, timeout=8)
    except subprocess.TimeoutExpired:
        return ""
    return result.stdout if result.returncode == 0 else ""


def httpd(env: Env, path: str, tmp: Path, body: str, port: int = 80) -> None:
    """busybox httpd serving ``body`` at / in the namespace at ``path``; waits until it listens."""
    www = tmp / f"www-{secrets.token_hex(3)}"
    www.mkdir()
    (www / "index.html").write_text(body)
    env.run_in(path, BUSYBOX, "httpd", "-f", "-p", str(port), "-h", str(www))
    wait_listening(path, port)


def wait_listening(path: str, port: int, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with netns.entered(path):
            sock = socket.socket()
        try:
            sock.settimeout(1)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        finally:
            sock.close()
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} in {path}")


class Outside:
    """A namespace standing for the world outside the host, behind a veth of its own."""

    def __init__(self, env: Env, tmp: Path) -> None:
        subnet = ipaddress.IPv4Network(free_subnet(252))
        self.host_ip = str(subnet.network_address + 1)
        self.ip = str(subnet.network_address + 2)
        self.path = str(tmp / "outside-ns")
        self.link = unique() + "o"
        netns.create(self.path)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            with Netlink.open() as nl:
                nl.add_veth(self.link, "eth0", peer_netns_fd=fd)
                nl.add_address(self.link, self.host_ip, 24)
        finally:
            os.close(fd)
        with Netlink.open(self.path) as inside:
            inside.set_link("lo", up=True)
            inside.set_link("eth0", up=True)
            inside.add_address("eth0", self.ip, 24)
            # no route back to any container subnet: an answer can only come back through NAT

    def remove(self) -> None:
        with Netlink.open() as nl:
            nl.delete_link(self.link)
        netns.remove(self.path)


@pytest.fixture
def outside(env: Env, tmp_path: Path) -> Iterator[Outside]:
    o = Outside(env, tmp_path)
    try:
        yield o
    finally:
        o.remove()


# --- DNS --------------------------------------------------------------------------------------


def dns_query(path: str, server: str, name: str, qtype: int = 1) -> tuple[int, list[str]]:
    """Ask ``server`` (port 53) for ``name`` from the namespace at ``path``: (rcode, addresses); (-1, [])
    when no answer came."""
    import struct

    with netns.entered(path):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.settimeout(5)
        qid = secrets.randbelow(65536)
        labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p)
        sock.sendto(
            struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", qtype, 1),
            (server, 53),
        )
        try:
            data = sock.recv(4096)
        except TimeoutError:
            return -1, []
    finally:
        sock.close()
    return parse_answer(data)


def parse_answer(data: bytes) -> tuple[int, list[str]]:
    import struct

    _id, flags, qd, an, _ns, _ar = struct.unpack_from("!HHHHHH", data)
    offset = 12
    for _ in range(qd):
        offset = _skip_name(data, offset) + 4
    out = []
    for _ in range(an):
        offset = _skip_name(data, offset)
        rtype, _cls, _ttl, length = struct.unpack_from("!HHIH", data, offset)
        offset += 10
        if rtype in (1, 28):
            out.append(
                socket.inet_ntop(
                    socket.AF_INET if rtype == 1 else socket.AF_INET6, data[offset : offset + length]
                )
            )
        offset += length
    return flags & 0xF, out


def _skip_name(data: bytes, offset: int) -> int:
    while True:
        length = data[offset]
        if length & 0xC0:
            return offset + 2
        offset += 1 + length
        if length == 0:
            return offset


class FakeUpstream:
    """A DNS server on 127.0.0.1 (or ``bind``) answering ``names`` (name -> address), NXDOMAIN to
    anything else."""

    def __init__(self, names: dict[str, str], bind: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        import threading

        self.names = names
        self.asked: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(bind)
        self.address = f"{bind[0]}:{self.sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data, client = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = resolver.parse_query(data)
            if query is None:
                continue
            self.asked.append(query.name)
            address = self.names.get(query.name)
            reply = resolver.encode_answer(
                query,
                [address] if address else [],
                0 if address else resolver.RCODE_NXDOMAIN,
                authoritative=False,
            )
            self.sock.sendto(reply, client)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream({"example.test": "192.0.2.77"})
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def dns_env(host_state: HostState, tmp_path: Path, upstream: FakeUpstream) -> Iterator[Env]:
    e = Env(tmp_path, upstreams=[upstream.address])
    try:
        yield e
    finally:
        e.teardown()


def processes_naming(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (the resolvers of a run dir name it)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def wait_for(condition: object, what: str, deadline: float = 15.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"still not the case after {deadline} s: {what}")


def dns_query_tcp(path: str, server: str, name: str) -> tuple[int, list[str]]:
    """``dns_query`` over TCP (what a client retries with after a truncated answer)."""
    import struct

    with netns.entered(path):
        sock = socket.socket()
    try:
        sock.settimeout(10)
        sock.connect((server, 53))
        labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p)
        message = struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", 1, 1)
        sock.sendall(len(message).to_bytes(2, "big") + message)
        data = b""
        while len(data) < 2 or len(data) < 2 + int.from_bytes(data[:2], "big"):
            chunk = sock.recv(4096)
            if not chunk:
                return -1, []
            data += chunk
    finally:
        sock.close()
    return parse_answer(data[2:])


def dns_query_names(path: str, server: str, name: str) -> list[str]:
    """The PTR names answered for ``name`` (a reverse-lookup name), from the namespace at ``path``."""
    import struct

    with netns.entered(path):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.settimeout(5)
        labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p)
        sock.sendto(
            struct.pack("!HHHHHH", 9, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", 12, 1),
            (server, 53),
        )
        data = sock.recv(4096)
    finally:
        sock.close()
    _id, _flags, qd, an, _ns, _ar = struct.unpack_from("!HHHHHH", data)
    offset = 12
    for _ in range(qd):
        offset = _skip_name(data, offset) + 4
    names = []
    for _ in range(an):
        offset = _skip_name(data, offset)
        rtype, _cls, _ttl, length = struct.unpack_from("!HHIH", data, offset)
        offset += 10
        if rtype == 12:
            labels_out, at = [], offset
            while data[at]:
                labels_out.append(data[at + 1 : at + 1 + data[at]].decode())
                at += 1 + data[at]
            names.append(".".join(labels_out))
        offset += length
    return names
