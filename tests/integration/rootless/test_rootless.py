"""Rootless pallet: an unprivileged user made by the test pulls, runs, execs, reads logs, publishes a port.

The user (``useradd`` with a temporary home, subordinate ranges in
/etc/subuid and /etc/subgid) is removed afterwards with everything theirs,
even when the test fails: their processes (the pause process keeps their
namespaces, and with them every mount and network namespace file their
commands made) are killed by pid, then ``userdel`` removes the user and the
ranges, and the home and run dir go. The registry is ``pallet registry
serve`` on 127.0.0.1, started by the test; the only other traffic is to a
network namespace the test makes (outbound from a container through pasta).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pallet.testing.busybox import busybox_store_root

__all__ = ["busybox_store_root"]

pytestmark = pytest.mark.root

VENV_BIN = Path(__file__).resolve().parents[3] / ".venv" / "bin"
PALLET = str(VENV_BIN / "pallet")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int) -> None:
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def _first_free_subid() -> int:
    end = 300000
    for path in ("/etc/subuid", "/etc/subgid"):
        if not os.path.exists(path):
            continue
        for line in Path(path).read_text().splitlines():
            fields = line.split(":")
            if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
                end = max(end, int(fields[1]) + int(fields[2]))
    return end


class User:
    """An unprivileged user of the test, and ``pallet`` run as them."""

    def __init__(self, name: str, home: Path, *, ranges: bool) -> None:
        self.name = name
        self.home = home
        subprocess.run(
            ["useradd", "--no-create-home", "--home-dir", str(home), "--shell", "/bin/sh", name],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(name)
        self.uid, self.gid = entry.pw_uid, entry.pw_gid
        home.mkdir(mode=0o700)
        os.chown(home, self.uid, self.gid)
        # useradd may give a new user ranges of its own (login.defs): the test decides
        for flag, path in (("--del-subuids", "/etc/subuid"), ("--del-subgids", "/etc/subgid")):
            for line in Path(path).read_text().splitlines() if os.path.exists(path) else []:
                fields = line.split(":")
                if fields[0] == name and len(fields) == 3:
                    start, count = int(fields[1]), int(fields[2])
                    subprocess.run(
                        ["usermod", flag, f"{start}-{start + count - 1}", name],
                        check=True,
                        capture_output=True,
                    )
        self.subid = 0
        if ranges:
            self.subid = _first_free_subid()
            span = f"{self.subid}-{self.subid + 65535}"
            subprocess.run(
                ["usermod", "--add-subuids", span, "--add-subgids", span, name],
                check=True,
                capture_output=True,
            )
        self.run_dir = Path(f"/tmp/pallet-run-{self.uid}")
        self.store = home / ".local" / "share" / "pallet"

    def env(self, path: str = "/usr/sbin:/usr/bin:/sbin:/bin") -> dict[str, str]:
        return {"HOME": str(self.home), "PATH": path, "LANG": "C.UTF-8"}

    def pallet(
        self, *args: str, path: str | None = None, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        env = self.env(path) if path is not None else self.env()
        return subprocess.run(
            [
                "runuser",
                "-u",
                self.name,
                "--",
                "env",
                "-i",
                *(f"{k}={v}" for k, v in env.items()),
                PALLET,
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def ok(self, *args: str) -> str:
        done = self.pallet(*args)
        assert done.returncode == 0, f"pallet {' '.join(args)} failed ({done.returncode}): {done.stderr}"
        return done.stdout

    def processes(self) -> list[int]:
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.stat(f"/proc/{entry}").st_uid == self.uid:
                        pids.append(int(entry))
                except OSError:
                    continue
        return pids

    def remove(self) -> None:
        for _ in range(50):  # the user's processes (pause, shims, pasta, containers' as the user)
            pids = self.processes()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
            time.sleep(0.1)
        subprocess.run(["userdel", self.name], check=False, capture_output=True)  # and its ranges
        shutil.rmtree(self.run_dir, ignore_errors=True)
        shutil.rmtree(self.home, ignore_errors=True)


def _make_user(base: Path, tag: str, *, ranges: bool = True) -> User:
    name = f"prl{tag}{os.getpid() % 10000}"
    subprocess.run(["userdel", name], check=False, capture_output=True)
    return User(name, base / name, ranges=ranges)


@pytest.fixture
def base() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root (to make users)")
    for tool in ("useradd", "usermod", "userdel", "runuser", "newuidmap", "newgidmap"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    path = Path(tempfile.mkdtemp(prefix="pallet-rootless-", dir="/var/tmp"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def user(base: Path) -> Iterator[User]:
    made = _make_user(base, "u")
    try:
        yield made
    finally:
        made.remove()


@pytest.fixture
def registry(busybox_store_root: Path, base: Path) -> Iterator[str]:
    """``pallet registry serve`` on 127.0.0.1 holding busybox:latest; its address."""
    port = _free_port()
    root = base / "registry-client"
    shutil.copytree(busybox_store_root, root, symlinks=True)
    argv = [PALLET, "--root", str(root), "--run-root", str(base / "registry-run")]
    server = subprocess.Popen(
        [*argv, "registry", "serve", "--addr", f"127.0.0.1:{port}", "--storage", str(base / "registry")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port)
        address = f"127.0.0.1:{port}"
        for step in (["tag", "busybox", f"{address}/busybox:latest"], ["push", f"{address}/busybox:latest"]):
            done = subprocess.run([*argv, *step], capture_output=True, text=True, check=False)
            assert done.returncode == 0, f"pallet {step[0]}: {done.stderr}"
        yield address
    finally:
        server.terminate()
        server.wait(timeout=30)


def _status_ids(pid: int) -> tuple[int, int]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    uid = next(line for line in lines if line.startswith("Uid:")).split()[1]
    gid = next(line for line in lines if line.startswith("Gid:")).split()[1]
    return int(uid), int(gid)


def test_an_unprivileged_user_pulls_runs_execs_reads_logs_publishes_and_removes(
    user: User, registry: str
) -> None:
    image = f"{registry}/busybox:latest"
    pulled = user.pallet("pull", image)
    assert pulled.returncode == 0, pulled.stderr
    assert "rootless pallet on cgroup v1: containers run without resource limits" in pulled.stderr
    assert image.removesuffix(":latest") in user.ok("images")
    # the store and run dir are the user's, made by the user
    assert os.stat(user.store).st_uid == user.uid
    assert os.stat(user.run_dir).st_uid == user.uid

    cid = user.ok(
        "run", "-d", "-p", "127.0.0.1::8080", "-v", "data:/data", image,
        "sh", "-c", "echo started; echo made > /data/by-root; httpd -f -p 8080 -h /etc",
    ).strip()  # fmt: skip
    assert cid in user.ok("ps", "--no-trunc", "-q")
    for _ in range(300):
        if "started" in user.ok("logs", cid):
            break
        time.sleep(0.1)
    assert user.ok("logs", cid) == "started\n"
    # root inside, an unprivileged id outside
    assert user.ok("exec", cid, "id", "-u") == "0\n"
    pid = int(user.ok("inspect", "-f", "{{.State.Pid}}", cid))
    host_uid = _status_ids(pid)[0]
    assert host_uid != 0
    assert host_uid in (user.uid, user.subid)
    # the published port, reached from the host's loopback
    address = user.ok("port", cid, "8080").splitlines()[0]
    assert address.startswith("127.0.0.1:")
    body = b""
    for _ in range(300):  # until httpd listens
        try:
            with urllib.request.urlopen(f"http://{address}/hostname", timeout=5) as reply:
                body = reply.read()
            break
        except OSError:
            time.sleep(0.1)
    assert body == f"{cid[:12]}\n".encode()
    # the volume's file: written by the container's root, owned on the host by the id root maps to
    user.ok("exec", cid, "sh", "-c", "echo u > /data/by-1000 && chown 1000:1000 /data/by-1000")
    data = user.store / "volumes" / "data" / "_data"
    assert os.stat(data / "by-root").st_uid == host_uid
    mapped_1000 = os.stat(data / "by-1000").st_uid
    assert mapped_1000 >= user.subid + 999 if user.subid else mapped_1000 > 0
    user.ok("rm", "-f", cid)
    assert user.ok("ps", "-aq") == ""
    user.ok("volume", "rm", "data")
    # nothing of the container is left: no pasta, no namespace file
    netns_dir = user.run_dir / "network" / "netns"
    assert not netns_dir.exists() or [p.name for p in netns_dir.iterdir()] == []
    assert not [p for p in user.processes() if Path(f"/proc/{p}/comm").read_text().strip() == "pasta"]


def test_a_user_without_subordinate_ids_is_told_how_to_fix_it_and_nothing_is_made(base: Path) -> None:
    lacking = _make_user(base, "n", ranges=False)
    try:
        done = lacking.pallet("images")
        assert done.returncode != 0
        assert done.stderr.strip().splitlines() == [
            f'pallet: rootless pallet: user "{lacking.name}" has no subordinate ids in /etc/subuid; ask an '
            f"administrator to run: usermod --add-subuids 100000-165535 {lacking.name}"
        ]
        assert not lacking.run_dir.exists()
        assert not lacking.store.exists()
    finally:
        lacking.remove()


def test_missing_newuidmap_is_one_line_and_nothing_is_made(user: User) -> None:
    done = user.pallet("images", path="/nonexistent")
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "pallet: rootless pallet needs newuidmap and newgidmap (setuid helpers that map your subordinate "
        "ids); install them: apt-get install uidmap"
    ]
    assert not user.run_dir.exists()
    assert not user.store.exists()


def test_an_unknown_security_opt_is_one_line(user: User, registry: str) -> None:
    user.ok("images")  # the session's first command says what it says about cgroups
    done = user.pallet("run", "--rm", "--security-opt", "bogus=1", f"{registry}/busybox:latest", "true")
    assert done.returncode == 125
    assert len(done.stderr.strip().splitlines()) == 1
    assert 'invalid security option: "bogus=1": unknown option "bogus"' in done.stderr
    assert user.ok("ps", "-aq") == ""


@pytest.fixture
def outside_server(base: Path) -> Iterator[str]:
    """An HTTP server in a network namespace the test makes, reached from the host through a veth:
    somewhere a container's outbound connection can go. Its address:port."""
    if shutil.which("ip") is None:
        pytest.skip("iproute2 is not installed")
    tag = os.getpid() % 200
    ns, veth = f"pltout{tag}", f"pltv{tag}"
    host_ip, inner_ip = f"10.251.{tag}.1", f"10.251.{tag}.2"
    served = base / "served"
    served.mkdir()
    (served / "greeting").write_text("hello from outside\n")
    server: subprocess.Popen[bytes] | None = None
    try:
        for cmd in (
            ["ip", "netns", "add", ns],
            ["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns],
            ["ip", "addr", "add", f"{host_ip}/30", "dev", veth],
            ["ip", "link", "set", veth, "up"],
            ["ip", "-n", ns, "addr", "add", f"{inner_ip}/30", "dev", "eth0"],
            ["ip", "-n", ns, "link", "set", "eth0", "up"],
            ["ip", "-n", ns, "link", "set", "lo", "up"],
        ):
            subprocess.run(cmd, check=True, capture_output=True)
        server = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ns,
                "/bin/busybox",
                "httpd",
                "-f",
                "-p",
                f"{inner_ip}:8000",
                "-h",
                str(served),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        yield f"{inner_ip}:8000"
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "link", "del", veth], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


def test_a_rootless_container_connects_out_through_pasta(
    user: User, registry: str, outside_server: str
) -> None:
    user.ok("pull", f"{registry}/busybox:latest")
    out = user.ok(
        "run", "--rm", f"{registry}/busybox:latest", "sh", "-c",
        f"for i in $(seq 50); do wget -qO- http://{outside_server}/greeting && exit 0; sleep 0.1; done; exit 1",
    )  # fmt: skip
    assert out == "hello from outside\n"


def test_with_userns_remap_container_root_is_the_users_subordinate_id(user: User, registry: str) -> None:
    image = f"{registry}/busybox:latest"
    user.ok("pull", image)
    os.chmod(user.home, 0o711)  # the container's root (a subordinate id) passes through to the store
    cid = user.ok(
        "run", "-d", "--userns=remap", "-v", "shifted:/data", image, "sh", "-c", "echo r > /data/f; sleep 300"
    ).strip()  # fmt: skip
    assert user.ok("exec", cid, "id", "-u") == "0\n"
    pid = int(user.ok("inspect", "-f", "{{.State.Pid}}", cid))
    assert _status_ids(pid) == (user.subid, user.subid)
    assert user.ok("exec", cid, "stat", "-c", "%u:%g", "/bin/busybox") == "0:0\n"
    for _ in range(300):
        if (user.store / "volumes" / "shifted" / "_data" / "f").exists():
            break
        time.sleep(0.1)
    assert os.stat(user.store / "volumes" / "shifted" / "_data" / "f").st_uid == user.subid
    user.ok("rm", "-f", cid)
    user.ok("volume", "rm", "shifted")
    assert user.ok("ps", "-aq") == ""
