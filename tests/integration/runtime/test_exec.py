"""exec: a second process joins the init's namespaces and cgroup, with its own user, env, cwd and tty."""

from __future__ import annotations

import array
import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import RUNTIME, Runtime, base_config

pytestmark = pytest.mark.root

NAMESPACES = ("pid", "net", "ipc", "uts", "mnt")


def _running(runtime: Runtime, config: dict[str, Any] | None = None) -> tuple[str, int]:
    """A detached container running ``sleep``: (id, init host pid)."""
    config = config or base_config(runtime.rootfs, "sleep", "300")
    config["hostname"] = "exec-box"
    cid = runtime.new_id()
    result = runtime("run", "--detach", "--bundle", str(runtime.bundle(config)), cid)
    assert result.rc == 0, result.err
    state = json.loads(runtime("state", cid).out)
    return cid, int(state["pid"])


def test_exec_joins_every_namespace_and_the_cgroup_of_the_init(runtime: Runtime) -> None:
    cid, init = _running(runtime)
    script = (
        "hostname; "
        + "; ".join(f"readlink /proc/self/ns/{n}" for n in NAMESPACES)
        + "; cat /proc/self/cgroup"
    )
    result = runtime("exec", cid, "sh", "-c", script)
    assert result.rc == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "exec-box"
    assert lines[1 : 1 + len(NAMESPACES)] == [os.readlink(f"/proc/{init}/ns/{n}") for n in NAMESPACES]
    inside = sorted(line for line in lines[1 + len(NAMESPACES) :] if not line.startswith("0::"))
    init_cgroups = sorted(
        line for line in Path(f"/proc/{init}/cgroup").read_text().splitlines() if not line.startswith("0::")
    )
    assert inside == init_cgroups


def test_exec_runs_as_the_given_user_with_env_and_cwd(runtime: Runtime) -> None:
    cid, _ = _running(runtime)
    result = runtime(
        "exec", "--user", "1000:1001", "-g", "5", "-g", "6", "--env", "FOO=bar", "--cwd", "/tmp",
        cid, "sh", "-c", "id -u; id -g; id -G; echo $FOO; pwd",
    )  # fmt: skip
    assert result.rc == 0, result.err
    uid, gid, groups, foo, cwd = result.out.splitlines()
    assert (uid, gid, foo, cwd) == ("1000", "1001", "bar", "/tmp")
    assert set(groups.split()) >= {"5", "6"}


def test_exec_gets_the_containers_capabilities_plus_added_ones(runtime: Runtime) -> None:
    cid, init = _running(runtime)
    init_caps = int(_status_field(f"/proc/{init}/status", "CapEff"), 16)
    plain = runtime("exec", cid, "grep", "CapEff", "/proc/self/status")
    added = runtime("exec", "--cap", "CAP_SYS_ADMIN", cid, "grep", "CapEff", "/proc/self/status")
    assert plain.rc == 0, plain.err
    assert added.rc == 0, added.err
    assert int(plain.out.split()[1], 16) == init_caps
    assert not init_caps & (1 << 21)
    assert int(added.out.split()[1], 16) == init_caps | (1 << 21)  # CAP_SYS_ADMIN


def _status_field(path: str, name: str) -> str:
    for line in Path(path).read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split()[1]
    raise AssertionError(f"{name} not in {path}")


def test_exec_returns_the_exit_code_of_the_program(runtime: Runtime) -> None:
    cid, _ = _running(runtime)
    assert runtime("exec", cid, "sh", "-c", "exit 7").rc == 7


def test_exec_of_a_missing_program_says_executable_file_not_found(runtime: Runtime) -> None:
    cid, _ = _running(runtime)
    result = runtime("exec", cid, "no-such-program")
    assert result.rc == 1
    assert 'exec: "no-such-program": executable file not found in $PATH' in result.err


def test_exec_in_a_stopped_container_is_refused(runtime: Runtime) -> None:
    config = base_config(runtime.rootfs, "true")
    cid = runtime.new_id()
    assert runtime("run", "--detach", "--bundle", str(runtime.bundle(config)), cid).rc == 0
    assert runtime.wait_status(cid, "stopped") == "stopped"
    result = runtime("exec", cid, "true")
    assert result.rc == 1
    assert "cannot exec in a stopped container" in result.err


def test_detached_exec_of_a_process_file_writes_the_host_pid(runtime: Runtime, tmp_path: Path) -> None:
    cid, init = _running(runtime)
    process = {"args": ["sleep", "300"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}
    (tmp_path / "process.json").write_text(json.dumps(process))
    pid_file = tmp_path / "exec.pid"
    result = runtime(
        "exec", "--process", str(tmp_path / "process.json"), "--detach", "--pid-file", str(pid_file), cid
    )
    assert result.rc == 0, result.err
    text = pid_file.read_text()
    assert text.isdigit()  # no newline: containerd parses it untrimmed
    pid = int(text)
    try:
        assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{init}/ns/pid")
        assert Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x00300\x00"
        assert json.loads(runtime("ps", "--format", "json", cid).out) == sorted([init, pid])
    finally:
        os.kill(pid, 9)


def test_tty_exec_sends_the_pty_master_over_the_console_socket(runtime: Runtime, tmp_path: Path) -> None:
    cid, _ = _running(runtime)
    sock_path = str(tmp_path / "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(1)
    listener.settimeout(20)
    master = -1
    try:
        proc = subprocess.Popen(
            [RUNTIME, "--root", str(runtime.root), "exec", "--tty", "--console-socket", sock_path, "--detach",
             "--pid-file", str(tmp_path / "pid"), cid, "sh", "-c", "tty; echo exec-tty-ok; sleep 1"],
        )  # fmt: skip
        conn, _ = listener.accept()
        fds = array.array("i")
        msg, ancdata, _, _ = conn.recvmsg(1024, socket.CMSG_LEN(fds.itemsize))
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: fds.itemsize])
        conn.close()
        assert proc.wait(timeout=20) == 0
        master = fds[0]
        output = b""
        while b"exec-tty-ok" not in output:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        assert output.decode().replace("\r", "").split("\n")[:2] == [msg.decode(), "exec-tty-ok"]
    finally:
        listener.close()
        if master >= 0:
            os.close(master)


def test_exec_uses_the_containers_seccomp_filter(runtime: Runtime) -> None:
    config = base_config(runtime.rootfs, "sleep", "300")
    config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}],
    }
    cid, _ = _running(runtime, config)
    result = runtime("exec", cid, "mkdir", "/tmp/denied")
    assert result.rc == 1
    assert "Function not implemented" in result.err  # ENOSYS (38), as configured


def test_exec_in_a_paused_container_is_refused_and_works_after_resume(runtime: Runtime) -> None:
    cid, _ = _running(runtime)
    assert runtime("pause", cid).rc == 0
    refused = runtime("exec", cid, "true")
    assert refused.rc == 1
    assert "paused" in refused.err
    assert runtime("resume", cid).rc == 0
    deadline = time.monotonic() + 10
    while runtime.status(cid) != "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert runtime("exec", cid, "true").rc == 0
