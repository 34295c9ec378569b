"""Seccomp filters loaded by ``seccomp.install`` into a forked child: what the filtered process sees.

Each test forks a child that sets no_new_privs (as the container init does
before ``install``), installs the prepared profile, makes the calls under test
and writes what it saw as JSON on a pipe. A fixture kills and reaps any child
still alive when the test ends.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import shutil
import signal
import socket
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pallet.errors import FailedPrecondition, Unavailable
from pallet.oci.runtime_spec import Seccomp
from pallet.runtime import seccomp

pytestmark = pytest.mark.root

PR_SET_NO_NEW_PRIVS = 38
SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif)
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp)
NR_MKDIR, NR_MKDIRAT, NR_UMASK = 83, 258, 95  # x86_64

_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)
_libc.personality.argtypes = (ctypes.c_ulong,)
_libc.syscall.restype = ctypes.c_long


def _raw_umask(mask: int) -> int:
    """umask(2) itself: glibc's wrapper hides a failure (umask "cannot fail"), the raw call does not."""
    if _libc.syscall(ctypes.c_long(NR_UMASK), ctypes.c_ulong(mask)) < 0:
        return ctypes.get_errno()
    return 0


def _prepare(doc: dict[str, Any], cache: Path) -> seccomp.PreparedSeccomp:
    prepared = seccomp.prepare(Seccomp.from_json(doc, "linux.seccomp"), cache_dir=str(cache / "seccomp"))
    assert prepared is not None
    return prepared


class Children:
    """Forks filtered children; kills and reaps whichever is still alive at the end."""

    def __init__(self) -> None:
        self.pids: list[int] = []

    def start(
        self,
        prepared: seccomp.PreparedSeccomp,
        calls: Callable[[Callable[[str], None]], dict[str, Any]],
        *,
        no_new_privs: bool = True,
        before: Callable[[], None] | None = None,
    ) -> tuple[int, int]:
        """Fork a child running ``calls(note)`` under the filter; returns (pid, read end of its pipe).

        ``note(text)`` lets the child say how far it got before its final JSON.
        """
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            try:
                os.close(r)
                if before is not None:
                    before()
                if no_new_privs:
                    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
                seccomp.install(prepared)

                def note(text: str) -> None:
                    os.write(w, text.encode() + b"\n")

                result = calls(note)
            except BaseException as e:  # noqa: BLE001 - reported to the test as data
                result = {"raised": type(e).__name__, "message": str(e)}
            try:
                os.write(w, json.dumps(result).encode())
            finally:
                os._exit(0)
        os.close(w)
        self.pids.append(pid)
        return pid, r

    def finish(self, pid: int, r: int) -> tuple[list[str], int]:
        """Everything the child wrote (lines) and its wait status."""
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
        os.close(r)
        _, status = os.waitpid(pid, 0)
        self.pids.remove(pid)
        return data.decode().split("\n"), status

    def run(
        self, prepared: seccomp.PreparedSeccomp, calls: Callable[[], dict[str, Any]], **kwargs: Any
    ) -> dict[str, Any]:
        pid, r = self.start(prepared, lambda note: calls(), **kwargs)
        lines, status = self.finish(pid, r)
        assert os.WIFEXITED(status), f"child ended with status {status:#x}"
        result = json.loads(lines[-1])
        assert isinstance(result, dict)
        return result

    def kill_all(self) -> None:
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            except ProcessLookupError:
                os.waitpid(pid, 0)
        self.pids.clear()


@pytest.fixture
def children() -> Iterator[Children]:
    kids = Children()
    try:
        yield kids
    finally:
        kids.kill_all()


def _errno_of(call: Callable[[], object]) -> int:
    try:
        call()
    except OSError as e:
        return e.errno or 0
    return 0


def test_denied_mkdir_and_rmdir_return_the_configured_errno(tmp_path: Path, children: Children) -> None:
    prepared = _prepare(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOTSUP},
                {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"},
            ],
        },
        tmp_path,
    )
    (tmp_path / "keep").mkdir()

    def calls() -> dict[str, Any]:
        with open("/proc/self/status") as status:
            mode = next(line.split()[1] for line in status if line.startswith("Seccomp:"))
        return {
            "mkdir": _errno_of(lambda: os.mkdir(tmp_path / "new")),
            "rmdir": _errno_of(lambda: os.rmdir(tmp_path / "keep")),
            "mode": mode,
        }

    assert children.run(prepared, calls) == {"mkdir": errno.ENOTSUP, "rmdir": errno.EPERM, "mode": "2"}
    assert not (tmp_path / "new").exists()
    assert (tmp_path / "keep").is_dir()


def test_denied_uname_returns_enosys(tmp_path: Path, children: Children) -> None:
    prepared = _prepare(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}],
        },
        tmp_path,
    )
    assert children.run(prepared, lambda: {"uname": _errno_of(os.uname)}) == {"uname": errno.ENOSYS}


def test_argument_conditions_select_which_calls_are_denied(tmp_path: Path, children: Children) -> None:
    prepared = _prepare(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                # Docker's rule: personality(0xffffffff) (a query) allowed, any other value denied
                {
                    "names": ["personality"],
                    "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_NE"}],
                },
                # umask with every group and other bit set is denied
                {
                    "names": ["umask"],
                    "action": "SCMP_ACT_ERRNO",
                    "errnoRet": errno.EACCES,
                    "args": [{"index": 0, "value": 0o077, "valueTwo": 0o077, "op": "SCMP_CMP_MASKED_EQ"}],
                },
            ],
        },
        tmp_path,
    )

    def calls() -> dict[str, Any]:
        query = _libc.personality(0xFFFFFFFF)
        query_errno = ctypes.get_errno() if query < 0 else 0
        change = _libc.personality(0x0008)
        change_errno = ctypes.get_errno() if change < 0 else 0
        return {
            "query": query_errno,
            "change": change_errno,
            "umask 022": _raw_umask(0o022),
            "umask 077": _raw_umask(0o077),
            "umask 177": _raw_umask(0o177),
        }

    assert children.run(prepared, calls) == {
        "query": 0,
        "change": errno.EPERM,
        "umask 022": 0,
        "umask 077": errno.EACCES,
        "umask 177": errno.EACCES,
    }


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS"])
def test_kill_action_kills_the_caller_with_sigsys(tmp_path: Path, children: Children, action: str) -> None:
    prepared = _prepare(
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": action}]}, tmp_path
    )

    def calls(note: Callable[[str], None]) -> dict[str, Any]:
        note("before")
        os.getppid()
        return {"survived": True}

    pid, r = children.start(prepared, calls)
    lines, status = children.finish(pid, r)
    assert lines[0] == "before"
    assert os.WIFSIGNALED(status)
    assert os.WTERMSIG(status) == signal.SIGSYS


def test_unknown_syscall_names_are_skipped_and_the_rest_applies(tmp_path: Path, children: Children) -> None:
    prepared = _prepare(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {
                    "names": ["no_such_syscall_pallet", "mkdir", "mkdirat"],
                    "action": "SCMP_ACT_ERRNO",
                    "errnoRet": errno.EROFS,
                }
            ],
        },
        tmp_path,
    )
    assert children.run(prepared, lambda: {"mkdir": _errno_of(lambda: os.mkdir(tmp_path / "d"))}) == {
        "mkdir": errno.EROFS
    }


def test_filter_stays_across_exec_of_busybox(tmp_path: Path, children: Children) -> None:
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox-static is not installed")
    prepared = _prepare(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOTSUP}
            ],
        },
        tmp_path,
    )
    err_r, err_w = os.pipe()

    def calls() -> dict[str, Any]:
        os.dup2(err_w, 2)
        os.execv(busybox, ["mkdir", str(tmp_path / "made-by-busybox")])

    pid, r = children.start(prepared, lambda note: calls())
    os.close(err_w)
    stderr = b""
    while chunk := os.read(err_r, 65536):
        stderr += chunk
    os.close(err_r)
    _, status = children.finish(pid, r)
    assert os.WIFEXITED(status)
    assert os.WEXITSTATUS(status) == 1
    assert b"not supported" in stderr
    assert not (tmp_path / "made-by-busybox").exists()


PODMAN_PROFILE = Path("/usr/share/containers/seccomp.json")


def _oci_profile_from_podman(doc: dict[str, Any]) -> dict[str, Any]:
    """podman's profile format (includes/excludes per arch and capability) as OCI, for amd64, no added caps."""

    def applies(call: dict[str, Any]) -> bool:
        includes = call.get("includes") or {}
        if includes.get("caps") or includes.get("minKernel"):
            return False
        return not includes.get("arches") or "amd64" in includes["arches"]

    return {
        "defaultAction": doc["defaultAction"],
        "defaultErrnoRet": doc.get("defaultErrnoRet"),
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {k: v for k, v in call.items() if k in ("names", "action", "args", "errnoRet")}
            for call in doc["syscalls"]
            if applies(call)
        ],
    }


def test_podman_default_profile_runs_busybox_and_denies_swapoff(tmp_path: Path, children: Children) -> None:
    busybox = shutil.which("busybox")
    if busybox is None or not PODMAN_PROFILE.exists():
        pytest.skip("needs busybox-static and podman's containers-common seccomp.json")
    prepared = _prepare(_oci_profile_from_podman(json.loads(PODMAN_PROFILE.read_text())), tmp_path)
    out_r, out_w = os.pipe()

    def calls() -> dict[str, Any]:
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        script = f"uname -s; mkdir {tmp_path}/made; echo mkdir=$?; swapoff /no-such-swap; echo swapoff=$?"
        os.execv(busybox, ["sh", "-c", script])

    pid, r = children.start(prepared, lambda note: calls())
    os.close(out_w)
    output = b""
    while chunk := os.read(out_r, 65536):
        output += chunk
    os.close(out_r)
    _, status = children.finish(pid, r)
    assert os.WIFEXITED(status)
    assert os.WEXITSTATUS(status) == 0
    text = output.decode()
    assert "Linux\n" in text
    assert "mkdir=0" in text
    # without the filter root gets ENOENT here; the profile answers EPERM first
    assert "swapoff: /no-such-swap: Operation not permitted" in text
    assert "swapoff=1" in text
    assert (tmp_path / "made").is_dir()


def test_log_and_tsync_flags_load(tmp_path: Path, children: Children) -> None:
    prepared = _prepare(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": [
                "SECCOMP_FILTER_FLAG_TSYNC",
                "SECCOMP_FILTER_FLAG_LOG",
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            ],
            "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO"}],
        },
        tmp_path,
    )
    assert children.run(prepared, lambda: {"uname": _errno_of(os.uname)}) == {"uname": errno.EPERM}


def test_without_no_new_privs_or_cap_sys_admin_install_is_refused(tmp_path: Path, children: Children) -> None:
    prepared = _prepare(
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO"}]},
        tmp_path,
    )

    def drop_to_nobody() -> None:  # setuid away from root clears every capability
        os.setgroups([])
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)

    result = children.run(
        prepared, lambda: {"uname": _errno_of(os.uname)}, no_new_privs=False, before=drop_to_nobody
    )
    assert result["raised"] == FailedPrecondition.__name__
    assert "neither no_new_privs nor CAP_SYS_ADMIN" in result["message"]


def test_without_no_new_privs_root_with_cap_sys_admin_can_install(tmp_path: Path, children: Children) -> None:
    prepared = _prepare(
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO"}]},
        tmp_path,
    )
    assert children.run(prepared, lambda: {"uname": _errno_of(os.uname)}, no_new_privs=False) == {
        "uname": errno.EPERM
    }


# ---------------------------------------------------------------------------
# seccomp user notification: the listener at listenerPath


def _notify_profile(listener: Path) -> dict[str, Any]:
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": str(listener),
        "listenerMetadata": "agent-metadata",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
    }


def test_notify_listener_gets_the_fd_and_state_and_answers_for_the_container(
    tmp_path: Path, children: Children
) -> None:
    listener_path = tmp_path / "agent.sock"
    agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    agent.bind(str(listener_path))
    agent.listen(1)
    prepared = _prepare(_notify_profile(listener_path), tmp_path)
    try:

        def calls(note: Callable[[str], None]) -> dict[str, Any]:
            note("installed")
            return {"mkdir": _errno_of(lambda: os.mkdir(tmp_path / "asked"))}

        pid, r = children.start(prepared, calls)
        assert os.read(r, len("installed\n")) == b"installed\n"
        state = {"ociVersion": "1.2.0", "id": "c1", "status": "creating", "pid": pid, "bundle": str(tmp_path)}
        seccomp.forward_listener(prepared, state)
        conn, _ = agent.accept()
        with conn:
            payload, fds, _, _ = socket.recv_fds(conn, 65536, 1)
        assert len(fds) == 1
        notify_fd = fds[0]
        try:
            assert json.loads(payload) == {
                "ociVersion": "1.2.0",
                "fds": ["seccompFd"],
                "pid": pid,
                "metadata": "agent-metadata",
                "state": state,
            }
            # struct seccomp_notif: id, pid, flags, then seccomp_data (nr, arch, ip, args[6])
            request = bytearray(80)
            fcntl.ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_RECV, request)
            notif_id, notif_pid, _, nr = struct.unpack_from("=QIIi", request)
            assert notif_pid == pid
            assert nr in (NR_MKDIR, NR_MKDIRAT)
            # struct seccomp_notif_resp: id, val, error (negative errno), flags
            fcntl.ioctl(
                notify_fd,
                SECCOMP_IOCTL_NOTIF_SEND,
                bytearray(struct.pack("=QqiI", notif_id, 0, -errno.EDQUOT, 0)),
            )
        finally:
            os.close(notify_fd)
        lines, status = children.finish(pid, r)
        assert os.WIFEXITED(status)
        assert json.loads(lines[-1]) == {"mkdir": errno.EDQUOT}
        assert not (tmp_path / "asked").exists()
    finally:
        prepared.close()
        agent.close()


def test_without_an_agent_forwarding_fails_clearly_and_notified_calls_fail(
    tmp_path: Path, children: Children
) -> None:
    prepared = _prepare(_notify_profile(tmp_path / "nobody-listens.sock"), tmp_path)

    def calls(note: Callable[[str], None]) -> dict[str, Any]:
        note("installed")
        # blocks until the listener fd is closed everywhere, then fails with ENOSYS
        return {"mkdir": _errno_of(lambda: os.mkdir(tmp_path / "asked"))}

    pid, r = children.start(prepared, calls)
    assert os.read(r, len("installed\n")) == b"installed\n"
    with pytest.raises(Unavailable, match=r"cannot reach the seccomp agent at .*nobody-listens\.sock"):
        seccomp.forward_listener(prepared, {"pid": pid, "status": "creating"})
    assert not prepared.has_listener
    lines, _ = children.finish(pid, r)
    assert json.loads(lines[-1]) == {"mkdir": errno.ENOSYS}
