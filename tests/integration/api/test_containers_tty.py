"""``docker run -it``, ``exec -it`` and ``attach`` in a real terminal (tmux) through the service."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import ApiService

pytestmark = pytest.mark.root


class Terminal:
    """A command in a tmux window of its own server (``-L``): keys in, the screen out."""

    def __init__(self, socket_name: str, api: ApiService) -> None:
        self.socket_name = socket_name
        self.api = api

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket_name, *args], capture_output=True, text=True, check=False, timeout=30
        ).stdout

    def start(self, command: str, *, rows: int = 30, cols: int = 100) -> None:
        env = " ".join(
            f"{k}={shlex.quote(v)}" for k, v in self.api.docker_env().items() if k.startswith("DOCKER_")
        )
        script = f"env {env} {command}; echo EXITED=$?; sleep 600"
        self.tmux("new-session", "-d", "-s", "t", "-x", str(cols), "-y", str(rows), script)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "t", *keys)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "t")

    def wait_for(self, predicate: Callable[[str], bool], what: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; the screen:\n{self.screen()}")

    def close(self) -> None:
        self.tmux("kill-server")


@pytest.fixture
def terminal(api: ApiService, tmp_path: object) -> Iterator[Terminal]:
    api.need_docker()
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (scripts/test.sh installs it)")
    term = Terminal(f"pallet-api-{id(api):x}", api)
    try:
        yield term
    finally:
        term.close()


def test_run_it_is_a_shell_with_the_terminals_size_and_exit_status(
    api: ApiService, terminal: Terminal
) -> None:
    terminal.start("docker run -it --rm --name itbox busybox sh", rows=30, cols=100)
    terminal.wait_for(lambda s: "/ #" in s, "the prompt")
    terminal.keys("echo $((6*7)); stty size", "Enter")
    screen = terminal.wait_for(lambda s: "30 100" in s, "the terminal's size")
    assert "\n42\n" in screen
    terminal.keys("exit 5", "Enter")
    terminal.wait_for(lambda s: "EXITED=5" in s, "the exit status")
    assert api.docker_ok("ps", "-aq") == ""


def test_exec_it_follows_resizes(api: ApiService, terminal: Terminal) -> None:
    api.docker_ok("run", "-d", "--name", "web", "busybox", "sleep", "300")
    terminal.start("docker exec -it web sh", rows=25, cols=90)
    terminal.wait_for(lambda s: "/ #" in s, "the prompt")
    terminal.keys("stty size", "Enter")
    terminal.wait_for(lambda s: "25 90" in s, "the first size")
    terminal.tmux("resize-window", "-t", "t", "-x", "70", "-y", "20")
    time.sleep(0.5)  # docker's CLI sends the resize on SIGWINCH; the screen shows when it is applied
    terminal.keys("clear; stty size", "Enter")
    terminal.wait_for(lambda s: "20 70" in s, "the new size")
    terminal.keys("exit 4", "Enter")
    terminal.wait_for(lambda s: "EXITED=4" in s, "the exit status")


def test_attach_and_detach_with_ctrl_p_ctrl_q(api: ApiService, terminal: Terminal) -> None:
    api.docker_ok("run", "-dit", "--name", "att", "busybox", "sh")
    terminal.start("docker attach att")
    time.sleep(1)
    terminal.keys("echo attached-$((2+2))", "Enter")
    terminal.wait_for(lambda s: "attached-4" in s, "the shell's answer")
    terminal.keys("C-p", "C-q")
    terminal.wait_for(lambda s: "EXITED=" in s, "the detach")
    assert api.docker_ok("inspect", "-f", "{{.State.Running}}", "att") == "true\n"
