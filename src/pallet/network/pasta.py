"""Rootless networks: the bridge driver's records with ``pasta`` (Debian ``passt``) in place of a bridge.

An unprivileged user cannot make bridges, veths or nftables rules. What a
rootless engine gets instead, per container, as podman's default does:

- a network namespace of the user's namespace, bound at the same path as the
  bridge driver's (made by a forked child: this process may not ``setns``
  back into the host's namespace once it has left it);
- one ``pasta`` process on it: a tap interface with the address, prefix and
  gateway the network's IPAM gave the endpoint (so ``inspect``, ``/etc/hosts``
  and the container agree), outbound traffic carried by pasta's sockets on
  the host, and the published ports as pasta's ``-t``/``-u`` forwards from the
  host's addresses. No forwarding from the container to the host's own
  loopback (``-T none -U none``, ``--no-map-gw``).

Records (networks, endpoints, published ports) are the bridge driver's, so
``ps``, ``port`` and ``inspect`` read them the same way; only the kernel side
differs. pasta exits by itself when its namespace file goes (``suspend``,
``detach_container``); its pid file is kept beside the namespace file for the
cases where it does not (``reconcile``).
"""

from __future__ import annotations

import os
import signal

from pallet.errors import Unavailable, Unsupported
from pallet.network import netns
from pallet.network.driver import Driver, Reconciled

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    from pallet.network.ipam import Net
    from pallet.network.netlink import Netlink
    from pallet.network.store import Endpoint, Network, PortMapping

__all__ = ["PastaDriver", "pasta_args"]

_CLONE_NEWNET = 0x40000000
_MS_BIND = 0x1000


def pasta_args(network: Network, endpoint: Endpoint, netns_path: str, pid_file: str) -> list[str]:
    """The command line of the container's pasta (without the program)."""
    prefix = network.subnet.partition("/")[2]
    args = [
        "--config-net", "--netns", netns_path, "--netns-only", "--quiet", "--pid", pid_file,
        "--address", endpoint.ip, "--netmask", prefix, "--gateway", network.gateway, "--no-map-gw",
        "--mtu", str(network.mtu), "-T", "none", "-U", "none",
    ]  # fmt: skip
    for protocol, flag in (("tcp", "-t"), ("udp", "-u")):
        specs = [_forward(p) for p in endpoint.ports if p.protocol == protocol]
        args += [flag, ",".join(specs) if specs else "none"]
    return args


def _forward(port: PortMapping) -> str:
    bound = "" if port.host_ip in ("", "0.0.0.0", "::") else f"{port.host_ip}/"
    return f"{bound}{port.host_port}:{port.container_port}"


class PastaDriver(Driver):
    """The bridge driver's bookkeeping, with pasta for each container's kernel side."""

    # --- networks: records only (no bridge, no rules) -------------------------------------------

    def ensure_network(self, network: Network, nl: Netlink | None = None) -> None:
        return

    def create_network(self, name: str, *args: Any, **kwargs: Any) -> Network:
        if name != "bridge":
            raise Unsupported(
                "user-defined networks are not available to rootless pallet yet; use the default network "
                "(pasta) or --network none|host"
            )
        return super().create_network(name, *args, **kwargs)

    def remove_network(self, ref: str) -> Network:
        with self._lock():
            network = self.store.find(ref)
            self.store.check_unused(network)
            self.store.remove(network)
        return network

    def _host_view(self) -> tuple[list[Net], int]:
        # the namespaces are the user's own: no host route can clash with their addresses
        return self.store.subnets(), 1500

    # --- containers -------------------------------------------------------------------------------

    def create_netns(self, container_id: str) -> str:
        path = self.netns_path(container_id)
        if not netns.is_netns(path):
            _bind_new_netns(path)
        return path

    def _pid_file(self, container_id: str) -> str:
        return self.netns_path(container_id) + ".pasta.pid"

    def _bring_up(self, network: Network, endpoint: Endpoint, route: bool | None = None) -> None:
        import subprocess

        # the ports were checked free when allocated; pasta binds them with SO_REUSEADDR, so a
        # restart is not refused for the last run's connections in TIME_WAIT
        self._stop_pasta(endpoint.container_id)
        _check_tun()
        program = _pasta()
        pid_file = self._pid_file(endpoint.container_id)
        argv = [program, *pasta_args(network, endpoint, endpoint.netns, pid_file)]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise Unavailable(
                f"pasta failed for the container's network: {done.stderr.strip() or done.returncode}"
            )

    def _tear_down(self, endpoint: Endpoint) -> None:
        self._stop_pasta(endpoint.container_id)

    def _stop_pasta(self, container_id: str) -> None:
        pid_file = self._pid_file(container_id)
        try:
            with open(pid_file) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return
        if _is_pasta(pid):
            try:  # noqa: SIM105 - contextlib: an import on the run path for one line
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:  # noqa: SIM105
            os.unlink(pid_file)
        except FileNotFoundError:
            pass

    def remove_netns(self, container_id: str) -> None:
        self._stop_pasta(container_id)
        super().remove_netns(container_id)

    def detach_container(self, container_id: str) -> list[Endpoint]:
        """Every endpoint's row goes, and pasta with them; the namespace file stays. Idempotent."""
        with self._lock():
            self._stop_pasta(container_id)
            endpoints = self.store.endpoints(container_id=container_id)
            for endpoint in endpoints:
                self.store.release(endpoint.id)
        return endpoints

    def remove_container(self, container_id: str) -> list[Endpoint]:
        """``rm``: the namespace (and with it pasta, its forwards) then the rows. Idempotent."""
        with self._lock():
            self.remove_netns(container_id)
            endpoints = self.store.endpoints(container_id=container_id)
            for endpoint in endpoints:
                self.store.release(endpoint.id)
        return endpoints

    def _keep_a_way_out(self, endpoints: object) -> None:
        return  # one endpoint per container: nothing to re-route

    def reconcile(
        self,
        existing: Iterable[str] | Callable[[], Iterable[str]],
        active: Iterable[str] | Callable[[], Iterable[str]] | None = None,
    ) -> Reconciled:
        """Endpoints of containers that are gone, and namespaces and pastas of those not active."""
        done = Reconciled()
        with self._lock():
            snapshot = self.store.endpoints()
            existing = set(existing() if callable(existing) else existing)
            asked = active() if callable(active) else active
            active = existing if asked is None else set(asked) & existing
            for endpoint in snapshot:
                if endpoint.container_id not in existing:
                    self.store.release(endpoint.id)
                    done.endpoints.append(endpoint.id)
            netns_dir = os.path.join(self.run_dir, "netns")
            try:
                names = os.listdir(netns_dir)
            except FileNotFoundError:
                names = []
            for name in names:
                if name.startswith(".") or name.endswith(".pasta.pid") or name in active:
                    continue
                self.remove_netns(name)
                done.netns.append(name)
        return done


def _check_tun() -> None:
    """pasta makes its tap through /dev/net/tun, which udev leaves open to every user (0666)."""
    if not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        raise Unavailable(
            "rootless networking needs /dev/net/tun open to users (mode 0666, as udev sets it): "
            "chmod 0666 /dev/net/tun, or run with --network none|host"
        )


def _pasta() -> str:
    for directory in [*os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(":"), "/usr/bin"]:
        candidate = os.path.join(directory, "pasta")
        if directory and os.access(candidate, os.X_OK):
            return candidate
    raise Unavailable(
        "rootless networking needs pasta: apt-get install passt (or run with --network none|host)"
    )


def _is_pasta(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip().startswith("pasta")
    except OSError:
        return False


def _bind_new_netns(path: str) -> None:
    """A new network namespace bound at ``path``, made by a forked child (see the module docstring)."""
    from pallet.errors import SystemError_
    from pallet.linux.libc import Libc

    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o444))
    made_r, made_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: unshare, report, wait until bound
        code = 1
        try:
            os.close(made_r)
            os.close(done_w)
            Libc().unshare(_CLONE_NEWNET)
            os.write(made_w, b"y")
            os.read(done_r, 1)
            code = 0
        finally:
            os._exit(code)
    os.close(made_w)
    os.close(done_r)
    try:
        if os.read(made_r, 1) != b"y":
            raise SystemError_("unshare a network namespace", 1)
        Libc().mount(f"/proc/{pid}/ns/net", path, "", _MS_BIND, "")
    finally:
        os.close(made_r)
        os.close(done_w)
        os.waitpid(pid, 0)
