"""docker and podman beside pallet in a test, each on private state, with their networking on.

``PrivateDockerd(bridge)`` starts a dockerd of its own: data-root, exec-root,
pidfile and socket in a temp dir of its own (short: containerd's socket paths
must fit), and a private bridge the test makes on a free
10.x /24 (``--bridge``; never ``--bridge=none``), docker's defaults otherwise
(iptables rules, the userland proxy). ``PrivatePodman(bridge, network)`` runs podman on its
own ``--root``/``--runroot`` and network config dir, with a network of its own
(a CNI list naming its own bridge and subnet).

``stop()`` of each removes its containers and networks, ends the daemon by
its pid, deletes its bridges, and ``restore_firewall(before)`` removes the
iptables tables that did not exist before the test (else only the rules that
name the test's bridges). The caller calls them in a finalizer.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from pallet.testing.hostnet import free_subnet

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["PrivateDockerd", "PrivatePodman", "firewall_tables", "restore_firewall"]

#: the tables iptables-nft keeps docker's and podman's (CNI, netavark) rules in
_IPTABLES_TABLES = ("ip nat", "ip filter", "ip6 nat", "ip6 filter")


def firewall_tables() -> set[str]:
    """The nftables tables now (``family name``)."""
    done = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False)
    return {line.removeprefix("table ").strip() for line in done.stdout.splitlines() if line.strip()}


def _names(rule: str, bridges: set[str], subnets: list[ipaddress.IPv4Network]) -> bool:
    """True if an iptables rule names one of ``bridges`` or an address in one of ``subnets``."""
    for word in rule.split():
        if word in bridges:
            return True
        try:
            address = ipaddress.ip_network(word, strict=False)
        except ValueError:
            continue
        if isinstance(address, ipaddress.IPv4Network) and any(address.subnet_of(s) for s in subnets):
            return True
    return False


def restore_firewall(before: set[str], bridges: set[str], subnets: Iterable[str] = ()) -> None:
    """Undo what docker/podman added to iptables for ``bridges`` and their ``subnets``: a table of theirs
    that did not exist ``before`` goes whole; in one that did, each rule naming one of ``bridges`` or
    an address of ``subnets`` (a published port's masquerade names the container's address only) is
    deleted. Their shared chains (``DOCKER``, ``CNI-HOSTPORT-DNAT``, ...) stay: another daemon of the
    host may use them."""
    nets = [ipaddress.IPv4Network(s) for s in subnets]
    for table in _IPTABLES_TABLES:
        if table not in before and table in firewall_tables():
            subprocess.run(["nft", "delete", "table", *table.split()], capture_output=True, check=False)
    if shutil.which("iptables") is None:
        return
    for family in ("iptables", "ip6tables"):
        for table in ("nat", "filter"):
            listing = subprocess.run([family, "-t", table, "-S"], capture_output=True, text=True, check=False)
            for rule in listing.stdout.splitlines():
                if rule.startswith("-A ") and _names(rule, bridges, nets):
                    subprocess.run(
                        [family, "-t", table, "-D", *rule[3:].split()], capture_output=True, check=False
                    )


def _wait(check: object, what: str, attempts: int = 150) -> None:
    for _ in range(attempts):
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not happen")


class PrivateDockerd:
    """A dockerd on private state and a private bridge ``bridge`` (``subnet``)."""

    def __init__(self, bridge: str) -> None:
        # a short path of its own: containerd's sockets under exec-root must fit in sun_path (108 bytes)
        self.dir = Path(tempfile.mkdtemp(prefix="pallet-dockerd-"))
        self.bridge = bridge
        self.subnet = free_subnet(255)
        self.socket = self.dir / "docker.sock"
        self.process: subprocess.Popen[bytes] | None = None
        (self.dir / "daemon.json").write_text("{}")
        gateway = self.subnet.removesuffix(".0/24") + ".1/24"
        for argv in (
            ["ip", "link", "add", bridge, "type", "bridge"],
            ["ip", "addr", "add", gateway, "dev", bridge],
            ["ip", "link", "set", bridge, "up"],
        ):
            subprocess.run(argv, check=True, capture_output=True)
        with open(self.dir / "dockerd.log", "wb") as log:
            self.process = subprocess.Popen(
                [
                    "dockerd", "--config-file", str(self.dir / "daemon.json"),
                    "--data-root", str(self.dir / "data"), "--exec-root", str(self.dir / "exec"),
                    "--pidfile", str(self.dir / "dockerd.pid"), "-H", f"unix://{self.socket}",
                    "--bridge", bridge,
                ],
                stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        try:
            _wait(lambda: self.docker("version", check=False).returncode == 0, "dockerd serving", 300)
        except RuntimeError:
            tail = (self.dir / "dockerd.log").read_text(errors="replace")[-2000:]
            self.stop()
            raise RuntimeError(f"dockerd did not come up: {tail}") from None

    def docker(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["docker", "-H", f"unix://{self.socket}", *args],
            capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {done.stderr}")
        return done

    def stop(self) -> None:
        """Containers removed, dockerd ended by its pid, its mounts and bridge gone. Idempotent."""
        if self.process is not None and self.process.poll() is None:
            ids = self.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)  # it stops containerd and its shims first
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGKILL)
                self.process.wait()
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for point in reversed(mounts):
            if point.startswith(str(self.dir)):
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivatePodman:
    """podman on a private store and network config dir, with a network ``network`` on ``bridge``."""

    def __init__(self, bridge: str, network: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pallet-podman-"))  # podman wants a runroot of <= 50 bytes
        self.bridge = bridge
        self.network = network
        self.subnet = free_subnet(255)
        self.base = [
            "podman", "--root", str(self.dir / "root"), "--runroot", str(self.dir / "run"),
            "--tmpdir", str(self.dir / "tmp"), "--network-config-dir", str(self.dir / "net"),
            "--cgroup-manager", "cgroupfs", "--events-backend", "file",
        ]  # fmt: skip
        (self.dir / "net").mkdir()
        # a CNI list of our own: podman 4.3 names a new network's bridge itself (cni-podmanN, shared
        # with the host's podman) and has no --interface-name yet
        gateway = self.subnet.removesuffix(".0/24") + ".1"
        bridge_plugin = {
            "type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": True, "hairpinMode": True,
            "ipam": {
                "type": "host-local", "routes": [{"dst": "0.0.0.0/0"}],
                "ranges": [[{"subnet": self.subnet, "gateway": gateway}]],
            },
        }  # fmt: skip
        plugins = [
            bridge_plugin,
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "firewall", "backend": ""},
            {"type": "tuning"},
        ]
        config = {"cniVersion": "0.4.0", "name": network, "plugins": plugins}
        (self.dir / "net" / f"{network}.conflist").write_text(json.dumps(config))

    def podman(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.base, *args], capture_output=True, text=True, timeout=timeout, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed: {done.stderr}")
        return done

    def limits(self) -> list[str]:
        """``--ulimit`` flags within this root's hard limits (root may lack CAP_SYS_RESOURCE here)."""
        import resource

        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)
        if nproc < 0:
            nproc = 32768
        return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]

    def stop(self) -> None:
        """Containers and the network removed, the store unmounted, the bridge and CNI's state gone."""
        self.podman("rm", "-af", "-t", "0", check=False)
        self.podman("network", "rm", "-f", self.network, check=False)
        subprocess.run(["umount", "-R", str(self.dir / "root" / "overlay")], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)
        shutil.rmtree(f"/var/lib/cni/networks/{self.network}", ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)
