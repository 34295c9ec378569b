"""``linux.seccomp`` through ``pallet-runtime run``: what the container's program sees, asserted from inside.

These need the two call sites of ``pallet.runtime.seccomp`` in ``create`` and
the container init (``prepare`` before forking, ``install`` before READY,
``forward_listener`` on READY).
"""

from __future__ import annotations

import errno
import fcntl
import json
import socket
import struct
import threading
from pathlib import Path
from typing import Any

import pytest

from .conftest import Runtime, base_config

pytestmark = pytest.mark.root

SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101

DENY_MKDIR_AND_RMDIR: dict[str, Any] = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOTSUP},
        {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS},
        {"names": ["no_such_syscall_pallet"], "action": "SCMP_ACT_KILL"},
    ],
}


def _config(
    runtime: Runtime, script: str, profile: dict[str, Any], *, no_new_privs: bool = True
) -> dict[str, Any]:
    config = base_config(runtime.rootfs, "sh", "-c", script)
    config["process"]["noNewPrivileges"] = no_new_privs
    config["linux"]["seccomp"] = profile
    return config


@pytest.mark.parametrize("no_new_privs", [True, False], ids=["no_new_privs", "caps_only"])
def test_seccomp_rule_returns_the_configured_errno_inside_the_container(
    runtime: Runtime, no_new_privs: bool
) -> None:
    # without no_new_privs the filter must be loaded before CAP_SYS_ADMIN is dropped
    # rmdir of /proc/1 fails anyway (EPERM), and never changes the shared rootfs
    script = (
        "mkdir /tmp/made; echo mkdir=$?; rmdir /proc/1; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"
    )
    result = runtime.run(_config(runtime, script, DENY_MKDIR_AND_RMDIR, no_new_privs=no_new_privs))
    assert result.rc == 0, result.err
    assert "mkdir=1" in result.out
    assert "Operation not supported" in result.err
    assert "rmdir: '/proc/1': Function not implemented" in result.err
    assert "Seccomp:\t2" in result.out
    assert f"NoNewPrivs:\t{int(no_new_privs)}" in result.out


def test_bad_seccomp_action_fails_with_its_json_path(runtime: Runtime) -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_FOO"}],
    }
    result = runtime.run(_config(runtime, "true", profile))
    assert result.rc != 0
    assert 'linux.seccomp.syscalls[0].action: unknown seccomp action "SCMP_ACT_FOO"' in result.err


class Agent:
    """A seccomp agent on a unix socket: takes the fd and state, answers one notification with EDQUOT."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(1)
        self.server.settimeout(20)
        self.state: dict[str, Any] = {}
        self.syscall_pid = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.server.accept()
            with conn:
                payload, fds, _, _ = socket.recv_fds(conn, 65536, 1)
            self.state = json.loads(payload)
            try:
                request = bytearray(80)
                fcntl.ioctl(fds[0], SECCOMP_IOCTL_NOTIF_RECV, request)
                notif_id, self.syscall_pid = struct.unpack_from("=QI", request)
                response = bytearray(struct.pack("=QqiI", notif_id, 0, -errno.EDQUOT, 0))
                fcntl.ioctl(fds[0], SECCOMP_IOCTL_NOTIF_SEND, response)
            finally:
                for fd in fds:
                    socket.close(fd)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            self.error = e

    def close(self) -> None:
        self.server.close()
        self.thread.join(timeout=30)


def test_seccomp_agent_gets_the_state_and_answers_for_the_container(runtime: Runtime, tmp_path: Path) -> None:
    agent = Agent(tmp_path / "agent.sock")
    try:
        profile = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": str(agent.path),
            "listenerMetadata": "from-the-test",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
        }
        result = runtime.run(_config(runtime, "mkdir /tmp/made; echo mkdir=$?", profile))
    finally:
        agent.close()
    assert agent.error is None
    assert result.rc == 0, result.err
    assert "mkdir=1" in result.out
    assert "Disk quota exceeded" in result.err
    state = agent.state
    assert state["fds"] == ["seccompFd"]
    assert state["metadata"] == "from-the-test"
    assert state["state"]["id"] == runtime.ids[-1]
    assert state["state"]["status"] == "creating"
    assert state["pid"] == state["state"]["pid"] > 0
    # the OCI state, not the runtime's own record (no rootfs/created/cgroups/init_start)
    assert set(state["state"]) == {"ociVersion", "id", "status", "pid", "bundle"}
    assert agent.syscall_pid > 0


def test_compiled_programs_are_cached_under_a_name_no_container_can_take(runtime: Runtime) -> None:
    result = runtime.run(_config(runtime, "true", DENY_MKDIR_AND_RMDIR))
    assert result.rc == 0, result.err
    assert [p.suffix for p in (runtime.root / "@seccomp").iterdir()] == [".bpf"]
    listed = runtime("list", "--format", "json")
    assert listed.rc == 0, listed.err
    assert json.loads(listed.out) == []
    refused = runtime("state", "@seccomp")
    assert refused.rc == 1
    assert "invalid container id format" in refused.err
