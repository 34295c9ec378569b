"""terminal: true: the pty master arrives over --console-socket and carries the program's output."""

from __future__ import annotations

import array
import os
import socket
import subprocess
from pathlib import Path

import pytest

from .conftest import RUNTIME, Runtime, base_config

pytestmark = pytest.mark.root


def test_console_socket_receives_a_pty_whose_output_is_the_programs(runtime: Runtime, tmp_path: Path) -> None:
    config = base_config(runtime.rootfs, "sh", "-c", "tty; stty size; echo hello-tty")
    config["process"]["terminal"] = True
    config["process"]["consoleSize"] = {"height": 33, "width": 99}
    sock_path = str(tmp_path / "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(1)
    listener.settimeout(20)
    cid = runtime.new_id()
    master = -1
    try:
        proc = subprocess.Popen(
            [
                RUNTIME,
                "--root",
                str(runtime.root),
                "create",
                "--bundle",
                str(runtime.bundle(config)),
                "--console-socket",
                sock_path,
                cid,
            ]
        )
        conn, _ = listener.accept()
        fds = array.array("i")
        msg, ancdata, _, _ = conn.recvmsg(1024, socket.CMSG_LEN(fds.itemsize))
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: fds.itemsize])
        conn.close()
        assert proc.wait(timeout=20) == 0
        assert msg.startswith(b"/dev/pts/")
        master = fds[0]
        assert runtime("start", cid).rc == 0
        output = b""
        while b"hello-tty" not in output:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        lines = output.decode().replace("\r", "").split("\n")
        assert lines[:3] == [msg.decode(), "33 99", "hello-tty"]
    finally:
        listener.close()
        if master >= 0:
            os.close(master)


def test_foreground_run_with_a_terminal_relays_the_pty_to_its_stdio(runtime: Runtime) -> None:
    config = base_config(runtime.rootfs, "sh", "-c", "tty; read line; echo got:$line; exit 4")
    config["process"]["terminal"] = True
    bundle = runtime.bundle(config)
    proc = subprocess.run(
        [RUNTIME, "--root", str(runtime.root), "run", "--bundle", str(bundle), runtime.new_id()],
        input=b"hello\n",
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 4, proc.stderr
    lines = proc.stdout.decode().replace("\r", "").split("\n")
    # the pty echoes our input ("hello") wherever it lands among the program's lines
    assert any(line.startswith("/dev/pts/") for line in lines), lines
    assert "got:hello" in lines
