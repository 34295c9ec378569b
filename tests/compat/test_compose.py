"""docker-compose (Debian's 1.29, Python) brings a three-service application up and down through the API.

``web`` serves a page from a named volume on a published port; ``writer``
writes that page into the volume; ``worker`` sits on a user network with
``web`` only and fetches the page by the name ``web``. Then ``ps``,
``logs``, ``exec``, ``up --scale``, and ``down -v`` leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import ApiService

pytestmark = pytest.mark.root

_COMPOSE_FILE = """\
version: "3.8"
services:
  writer:
    image: busybox
    command: ["sh", "-c", "echo hello from compose > /data/index.html; exec sleep 3600"]
    volumes: ["content:/data"]
  web:
    image: busybox
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    ports: ["127.0.0.1:{port}:80"]
    volumes: ["content:/www"]
    networks: [default, back]
    depends_on: [writer]
  worker:
    image: busybox
    command: ["sh", "-c", "while true; do wget -q -O - http://web/index.html; sleep 1; done"]
    networks: [back]
    depends_on: [web]
volumes:
  content: {{}}
networks:
  back: {{}}
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _until(check: object, what: str) -> None:
    """Poll ``check()`` until true (a bounded wait for something to happen, not a timing check)."""
    deadline = time.monotonic() + 60
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within 60 s")
        time.sleep(0.2)


def _page(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as answer:
            return answer.read().decode()
    except OSError:
        return ""


def test_compose_up_ps_logs_exec_scale_and_down_leave_nothing_behind(api: ApiService, tmp_path: Path) -> None:
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    port = _free_port()
    project = tmp_path / "app"
    project.mkdir()
    (project / "docker-compose.yml").write_text(_COMPOSE_FILE.format(port=port))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
    env.update(DOCKER_HOST=api.host, COMPOSE_PROJECT_NAME="palletapp")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [compose, *args], cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False
        )

    def ok(*args: str) -> str:
        done = run(*args)
        assert done.returncode == 0, f"docker-compose {' '.join(args)}: {done.stderr}\n{api.log()}"
        return done.stdout

    try:
        ok("up", "-d")
        states = ok("ps", "--services", "--filter", "status=running").split()
        assert sorted(states) == ["web", "worker", "writer"]
        _until(lambda: _page(port) == "hello from compose\n", "the page on the published port")
        _until(lambda: "hello from compose" in ok("logs", "--no-color", "worker"), "the worker reaching web")
        assert ok("exec", "-T", "web", "cat", "/www/index.html") == "hello from compose\n"
        ok("up", "-d", "--scale", "worker=2")
        assert len(ok("ps", "-q", "worker").split()) == 2
        assert "palletapp_content" in api.env.ok("volume", "ls", "-q").split()  # one store, two doors
    finally:
        down = run("down", "-v", "--timeout", "1")
    assert down.returncode == 0, down.stderr
    assert api.env.ok("ps", "-a", "-q") == ""
    assert api.env.ok("volume", "ls", "-q") == ""
    networks = api.env.ok("network", "ls", "--format", "{{.Name}}").split()
    assert not [n for n in networks if n.startswith("palletapp")]
