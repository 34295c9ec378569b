"""Fixtures for the API's integration tests: ``pallet system service`` on a private root, and clients.

``api`` gives an ``ApiService``: a service process serving the Docker
Engine API on a short temp socket for a root holding ``busybox:latest``
(``PalletEnv`` of the engine tests, so ``api.env.pallet(...)`` runs the
daemonless CLI on the same root), with

- ``api.docker(*args)``: the docker 28 CLI (``/usr/local/bin/docker``) with
  ``DOCKER_HOST`` pointing at the service and a private ``DOCKER_CONFIG``
  (tests that need it skip when it is absent: ``need_docker``);
- ``api.request(method, path, body=…, headers=…)``: one raw HTTP request on
  the socket, answered as ``(status, headers, body bytes)``;
- ``api.restart()`` / ``api.kill()``: SIGKILL the service (its containers run
  on) and start a new one on the same root and socket.

The finalizer stops the service by its pid (SIGTERM, then SIGKILL), then
removes every container, shim, mount and cgroup the test made
(``PalletEnv.cleanup``) and the socket's directory.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pallet.testing.busybox import busybox_root, busybox_store_root

__all__ = ["DOCKER", "ApiService", "api", "busybox_root", "busybox_store_root", "need_docker"]

DOCKER = "/usr/local/bin/docker"

# the engine tests' PalletEnv (its root, its pallet CLI runner and its thorough cleanup), loaded by path:
# test directories are not packages
_spec = importlib.util.spec_from_file_location(
    "engine_fixtures", Path(__file__).resolve().parents[1] / "engine" / "conftest.py"
)
assert _spec is not None
assert _spec.loader is not None
_engine_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_engine_fixtures)
PalletEnv = _engine_fixtures.PalletEnv
PALLET = _engine_fixtures.PALLET


def need_docker() -> None:
    if not os.access(DOCKER, os.X_OK):
        pytest.skip(f"the docker CLI is not installed at {DOCKER}")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 60) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class ApiService:
    """A running ``pallet system service`` of one test, and clients of it."""

    def __init__(self, env: Any, socket_dir: Path) -> None:
        self.env = env
        self.socket_path = str(socket_dir / "docker.sock")
        self.host = f"unix://{self.socket_path}"
        self.docker_config = socket_dir / "docker-config"
        self.docker_config.mkdir()
        self.log_path = socket_dir / "service.log"
        self.process: subprocess.Popen[bytes] | None = None

    # --- the service process -------------------------------------------------------------------

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        try:
            self.process = subprocess.Popen(
                self.env.argv("system", "service", "--host", self.host, "--log-level", "debug"),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the service exited ({self.process.returncode}): {self.log()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self.request("GET", "/_ping")[0] == 200:
                    return
            time.sleep(0.05)
        raise AssertionError(f"the service does not answer on {self.socket_path}: {self.log()}")

    def kill(self) -> None:
        """SIGKILL the service (what a crash does); its containers run on."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> int | None:
        """SIGTERM, as an init system stops it; SIGKILL if it does not leave within 30 s. Its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        return self.process.returncode

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    # --- clients -------------------------------------------------------------------------------

    @staticmethod
    def need_docker() -> None:
        need_docker()

    def docker_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env.update(DOCKER_HOST=self.host, DOCKER_CONFIG=str(self.docker_config))
        return env

    def docker(
        self, *args: str, input: bytes | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run the docker CLI against the service; stdout and stderr as text."""
        return subprocess.run(
            [DOCKER, *args],
            input=input.decode() if input is not None else None,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.docker_env(),
            check=False,
        )

    def docker_ok(self, *args: str, input: bytes | None = None, timeout: float = 120) -> str:
        done = self.docker(*args, input=input, timeout=timeout)
        assert done.returncode == 0, (
            f"docker {' '.join(args)} failed ({done.returncode}): {done.stderr}\nservice log:\n{self.log()}"
        )
        return done.stdout

    def request(
        self,
        method: str,
        path: str,
        body: bytes | dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> tuple[int, dict[str, str], bytes]:
        """One HTTP request on a new connection: (status, headers, body)."""
        conn = _UnixConnection(self.socket_path, timeout)
        try:
            data = json.dumps(body).encode() if isinstance(body, dict) else body
            hdrs = dict(headers or {})
            if isinstance(body, dict):
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=data, headers=hdrs)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def raw(self, data: bytes) -> bytes:
        """Send ``data`` as is on a new connection, then half-close; everything answered until the close."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(60)
        sock.connect(self.socket_path)
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            out = b""
            while chunk := sock.recv(65536):
                out += chunk
            return out
        finally:
            sock.close()

    def json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        status, _, data = self.request(method, path, body)
        assert 200 <= status < 300, f"{method} {path}: {status} {data!r}"
        return json.loads(data) if data else None


@pytest.fixture
def api(busybox_root: Path, tmp_path: Path) -> Iterator[ApiService]:
    """``pallet system service`` on a private root holding ``busybox:latest``, on a short temp socket."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if not os.access(PALLET, os.X_OK):
        pytest.skip("run scripts/install.sh first (the pallet launcher is missing)")
    env = PalletEnv(busybox_root, tmp_path / "run")
    socket_dir = Path(tempfile.mkdtemp(prefix="pallet-api-"))  # sun_path holds 107 bytes: keep it short
    service = ApiService(env, socket_dir)
    try:
        env.start_zygote()
        service.start()
        yield service
    finally:
        service.stop()
        env.cleanup()
        shutil.rmtree(socket_dir, ignore_errors=True)
