"""Fixtures for engine integration tests: a private pallet root with ``busybox:latest`` and a run dir.

``pallet_env`` gives a ``PalletEnv`` whose ``pallet(...)`` runs the real
``pallet`` CLI on that root (a separate process, as a user runs it). Its
setup starts the run dir's shim zygote, so every shim is forked by it. Its
finalizer removes every container the test left (``rm -f -v`` through the
engine), then, whatever failed before, SIGKILLs the run dir's shim zygote (by
the pid in its pid file) and the shims and containers it started (found by pid:
processes whose command line names the temp root),
unmounts what is mounted under the temp dirs, removes the containers'
cgroups and the root's networks (bridge, nftables table, veths, resolvers:
``pallet.testing.networks``). The root's networks take their subnets from
the tests' own pool (``use_test_pools``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pallet.testing.busybox import busybox_root, busybox_store_root
from pallet.testing.networks import remove_networks, use_test_pools

__all__ = ["PalletEnv", "busybox_root", "busybox_store_root", "crun_ready", "pallet_env"]

VENV_BIN = Path(__file__).resolve().parents[3] / ".venv" / "bin"
PALLET = str(VENV_BIN / "pallet")


class PalletEnv:
    """A pallet root and run dir of one test, and a way to run ``pallet`` on them."""

    def __init__(self, root: Path, run_root: Path) -> None:
        self.root = root
        self.run_root = run_root

    def argv(self, *args: str) -> list[str]:
        return [PALLET, "--root", str(self.root), "--run-root", str(self.run_root), *args]

    def pallet(
        self, *args: str, input: bytes | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``pallet ARGS`` to completion; stdout and stderr as text."""
        return subprocess.run(
            self.argv(*args),
            check=False,
            input=input.decode() if input is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def ok(self, *args: str) -> str:
        """Run ``pallet ARGS``, expect exit 0, return its stdout."""
        done = self.pallet(*args)
        assert done.returncode == 0, f"pallet {' '.join(args)} failed ({done.returncode}): {done.stderr}"
        return done.stdout

    def container_ids(self) -> list[str]:
        """Every container directory under the root (what the engine keeps on disk)."""
        base = self.root / "containers"
        return sorted(p.name for p in base.iterdir()) if base.exists() else []

    def leftovers(self, ids: list[str]) -> dict[str, list[str]]:
        """What the containers ``ids`` left behind: mounts, cgroups, processes, state dirs, runtime state."""
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        found: dict[str, list[str]] = {
            "mounts": [m for m in mounts if m.startswith((str(self.root), str(self.run_root)))],
            "cgroups": [],
            "processes": [str(pid) for pid in self.processes()],
            "state": [],
        }
        for cid in ids:
            for base in Path("/sys/fs/cgroup").iterdir():
                if (base / "pallet" / cid).exists():
                    found["cgroups"].append(str(base / "pallet" / cid))
            for path in (
                self.root / "containers" / cid,
                self.run_root / "containers" / cid,
                *(p / cid for p in (self.run_root / "runtimes").glob("*")),
            ):
                if path.exists():
                    found["state"].append(str(path))
        return {k: v for k, v in found.items() if v}

    def shim_of(self, container_id: str) -> int | None:
        """The pid of the container's shim, if one runs (its command line names the container's shim.json)."""
        needle = f"{container_id}/shim.json".encode()
        for pid in self.processes():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if needle in f.read():
                        return pid
            except OSError:
                continue
        return None

    def processes(self) -> list[int]:
        """Pids of processes this environment started that still run (their command line names the root)."""
        needle = str(self.root).encode()
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue
            if needle in cmdline:
                out.append(int(entry))
        return out

    def zygote(self) -> int | None:
        """The pid of the run dir's shim zygote, if one serves (by its pid file and command line)."""
        try:
            pid = int((self.run_root / "shim-zygote.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if pid in self.zygotes() else None

    def start_zygote(self) -> None:
        """Start the run dir's shim zygote and wait until it serves (the engine starts one itself
        at the run dir's second run)."""
        import _socket

        from pallet.engine.shim import zygote
        from pallet.engine.shim.launch import shim_command

        self.run_root.mkdir(parents=True, exist_ok=True)
        zygote.start(str(self.run_root), shim_command())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
            try:
                sock.connect(zygote.address(str(self.run_root)))
                return
            except OSError:
                time.sleep(0.02)
            finally:
                sock.close()
        raise AssertionError(f"no shim zygote serves {self.run_root}; see its shim-zygote.log")

    def zygotes(self) -> list[int]:
        """Pids of this run dir's shim zygotes (their command line names it), even one not serving yet."""
        out = []
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read().split(b"\0")
            except (OSError, ValueError):
                continue
            if b"--zygote" in cmdline and str(self.run_root).encode() in cmdline:
                out.append(int(entry))
        return out

    def cleanup(self) -> None:
        """Remove everything the test made, even if the engine cannot (finalizer)."""
        ids = self.container_ids()
        for cid in ids:
            try:
                self.pallet("rm", "-f", "-v", cid, timeout=60)
            except subprocess.TimeoutExpired:
                continue  # the steps below remove it by force
        for pid in [*self.zygotes(), *self.processes()]:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                continue
        for runtime_root in (self.run_root / "runtimes").glob("*"):
            for state in runtime_root.iterdir():
                if state.is_dir():
                    name = runtime_root.name
                    runtime = str(VENV_BIN / name) if name == "pallet-runtime" else name
                    subprocess.run(
                        [runtime, "--root", str(runtime_root), "delete", "--force", state.name],
                        capture_output=True,
                        check=False,
                    )
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for point in reversed(mounts):
            if point.startswith((str(self.root), str(self.run_root))):
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        for cid in ids:
            for base in Path("/sys/fs/cgroup").iterdir():
                cgroup = base / "pallet" / cid
                if cgroup.exists():
                    for sub in sorted(cgroup.rglob("*"), reverse=True):
                        if sub.is_dir():
                            sub.rmdir()
                    cgroup.rmdir()
        # the engine's cgroup parent: gone once empty (rmdir refuses while another container is in it)
        for base in Path("/sys/fs/cgroup").iterdir():
            with contextlib.suppress(OSError):
                (base / "pallet").rmdir()
        # the root's networks: bridge, nftables table, resolvers, leftover veths and namespace files
        remove_networks(self.root, self.run_root)
        # a zygote a command started in the background as this ran leaves once its run dir is gone
        shutil.rmtree(self.run_root, ignore_errors=True)


@pytest.fixture(scope="session")
def crun_ready() -> None:
    """crun refuses cgroup v1 hybrid mode while the cgroup2 mount owns a controller (shared/bench/README.md).

    The one-time fix mounts those controllers as v1 hierarchies and leaves them
    mounted on purpose (unmounting while cgroups exist hides the hierarchy).
    """
    controllers = Path("/sys/fs/cgroup/unified/cgroup.controllers")
    if not controllers.exists():
        return
    mounted = Path("/proc/mounts").read_text()
    for name in controllers.read_text().split():
        if f",{name} " in mounted or f",{name}," in mounted or f" cgroup rw,{name}" in mounted:
            continue
        Path(f"/sys/fs/cgroup/{name}").mkdir(exist_ok=True)
        subprocess.run(["mount", "-t", "cgroup", "-o", name, "cgroup", f"/sys/fs/cgroup/{name}"], check=False)


@pytest.fixture
def pallet_env(busybox_root: Path, tmp_path: Path) -> Iterator[PalletEnv]:
    """A pallet root holding ``busybox:latest`` and a run dir, both private to the test."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if not os.access(PALLET, os.X_OK):
        pytest.skip("run scripts/install.sh first (the pallet launcher is missing)")
    env = PalletEnv(busybox_root, tmp_path / "run")
    use_test_pools(busybox_root)  # its default network's subnet from a pool of the tests' own
    try:
        env.start_zygote()  # every test's shims are forked, as on a machine past its first run
        yield env
    finally:
        env.cleanup()
