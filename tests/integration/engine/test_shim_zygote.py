"""The shim zygote: shims forked from a warm ``pallet-shim``, and containers that never depend on it.

A run dir's first ``pallet run`` execs its shim and starts the zygote in the
background; later runs get shims forked by it. SIGKILL of the zygote must
change nothing for running containers (output, logs, exit codes, attach), and
the next run starts a new zygote. The fixture ends the zygote by its pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from pallet.engine.shim import zygote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import PalletEnv

pytestmark = [pytest.mark.root]


def wait_for(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        time.sleep(0.02)


def started_zygote(env: PalletEnv) -> int:
    """A running zygote for ``env``'s run dir, its pid: the first run makes the run dir, the
    second starts the zygote."""
    env.ok("run", "--rm", "busybox", "true")
    env.ok("run", "--rm", "busybox", "true")
    wait_for(lambda: env.zygote() is not None)
    pid = env.zygote()
    assert pid is not None
    # the zygote listens once its code is loaded: a run then gets a forked shim
    wait_for(lambda: listening(env))
    return pid


def listening(env: PalletEnv) -> bool:
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    try:
        sock.connect(zygote.address(str(env.run_root)))
    except OSError:
        return False
    finally:
        sock.close()
    return True


def cmdline(pid: int) -> list[bytes]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [w for w in f.read().split(b"\0") if w]


def stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def forked_shim(env: PalletEnv, container_id: str) -> int:
    shim = env.shim_of(container_id)
    assert shim is not None
    assert b"--forked" in cmdline(shim), cmdline(shim)
    return shim


def test_a_run_after_the_first_gets_a_shim_forked_by_the_zygote_and_nobodys_child(
    pallet_env: PalletEnv,
) -> None:
    zygote_pid = started_zygote(pallet_env)
    cid = pallet_env.ok("run", "-d", "busybox", "sleep", "60").strip()
    shim = forked_shim(pallet_env, cid)
    fields = stat_fields(shim)
    parent, session = int(fields[1]), int(fields[3])
    assert parent != zygote_pid  # orphaned on purpose: the zygote never reaps a shim
    assert session not in (int(stat_fields(zygote_pid)[3]), os.getsid(0))
    # the shim, not the zygote, is the container's reaper: the init's parent is the shim
    container_pid = int(pallet_env.ok("inspect", "-f", "{{.State.Pid}}", cid))
    assert int(stat_fields(container_pid)[1]) == shim
    pallet_env.ok("rm", "-f", cid)


def test_sigkill_of_the_zygote_leaves_containers_their_output_exit_code_and_attach(
    pallet_env: PalletEnv,
) -> None:
    zygote_pid = started_zygote(pallet_env)
    pallet_env.ok(
        "run", "-d", "--name", "waits", "busybox", "sh", "-c", "echo before; sleep 1; echo after; exit 7"
    )
    pallet_env.ok(
        "run", "-d", "-i", "--name", "reads", "busybox", "sh", "-c", "read line; echo got $line; exit 5"
    )
    forked_shim(pallet_env, pallet_env.ok("inspect", "-f", "{{.Id}}", "waits").strip())
    os.kill(zygote_pid, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{zygote_pid}"))

    assert pallet_env.ok("wait", "waits") == "7\n"
    assert pallet_env.ok("logs", "waits") == "before\nafter\n"
    done = pallet_env.pallet("attach", "reads", input=b"hello\n")
    assert (done.returncode, done.stdout) == (5, "got hello\n")
    assert pallet_env.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "reads") == "exited 5\n"


def test_the_run_after_the_zygote_is_killed_starts_a_new_one(pallet_env: PalletEnv) -> None:
    first = started_zygote(pallet_env)
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{first}"))
    # no zygote: this run's shim is exec'd, and a new zygote starts meanwhile
    cid = pallet_env.ok("run", "-d", "busybox", "sleep", "60").strip()
    shim = pallet_env.shim_of(cid)
    assert shim is not None
    assert b"--forked" not in cmdline(shim)
    wait_for(lambda: pallet_env.zygote() not in (None, first))
    wait_for(lambda: listening(pallet_env))
    again = pallet_env.ok("run", "-d", "busybox", "sleep", "60").strip()
    forked_shim(pallet_env, again)
    assert pallet_env.ok("inspect", "-f", "{{.State.Status}}", cid, again) == "running\nrunning\n"
    pallet_env.ok("rm", "-f", cid, again)


def test_a_sigkilled_forked_shim_is_reconciled_like_an_execd_one(pallet_env: PalletEnv) -> None:
    started_zygote(pallet_env)
    cid = pallet_env.ok("run", "-d", "busybox", "sleep", "60").strip()
    os.kill(forked_shim(pallet_env, cid), signal.SIGKILL)
    # the container runs on without its supervisor; rm -f still removes all of it
    pallet_env.ok("rm", "-f", cid)
    assert pallet_env.container_ids() == []
    assert pallet_env.leftovers([cid]) == {}


def test_the_zygote_forks_nothing_for_another_user(pallet_env: PalletEnv) -> None:
    started_zygote(pallet_env)
    where = zygote.address(str(pallet_env.run_root))
    # as nobody: connect (an abstract socket has no permissions) and ask for a shim with our fds
    probe = (
        "import _socket, os, sys\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)\n"
        "s.connect('\\0' + sys.argv[1])\n"
        "r, w = os.pipe()\n"
        "fds = b''.join(fd.to_bytes(4, 'little') for fd in (2, w, r))\n"
        "try:\n"
        "    s.sendmsg([b'fork\\x0018\\x000\\x00/tmp/x/shim.json'], [(1, 1, fds)])\n"
        "    s.settimeout(10)\n"
        "    print(repr(s.recv(64)))\n"
        "except OSError as e:\n"
        "    print('refused', e.errno)\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe, where.lstrip("\0")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    # refused: the connection closes before or after the request, with no answer and no fork
    assert done.stdout.strip() in ("b''", "refused 32", "refused 104"), done.stderr


def test_a_forked_shim_runs_foreground_detached_and_tty_containers_as_an_execd_one(
    pallet_env: PalletEnv,
) -> None:
    started_zygote(pallet_env)
    done = pallet_env.pallet("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 4")
    assert (done.returncode, done.stdout, done.stderr) == (4, "out\n", "err\n")
    tty = pallet_env.ok(
        "run", "-d", "-t", "busybox", "sh", "-c", "test -t 1 && echo on a tty; sleep 60"
    ).strip()
    forked_shim(pallet_env, tty)
    wait_for(lambda: "on a tty" in pallet_env.ok("logs", tty))
    assert pallet_env.ok("logs", tty).strip() == "on a tty"
    pallet_env.ok("rm", "-f", tty)


def test_a_forked_shim_whose_container_cannot_start_reports_it_and_leaves_nothing(
    pallet_env: PalletEnv,
) -> None:
    started_zygote(pallet_env)
    done = pallet_env.pallet("run", "-d", "--name", "nope", "busybox", "/no/such/program")
    assert done.returncode == 127, done.stderr
    assert "no such file or directory" in done.stderr
    cid = pallet_env.ok("inspect", "-f", "{{.Id}}", "nope").strip()
    assert pallet_env.shim_of(cid) is None
    # the runtime's state of it was deleted by the shim's setup child before it reported
    for runtime_root in (pallet_env.run_root / "runtimes").glob("*"):
        assert cid not in os.listdir(runtime_root)
    pallet_env.ok("rm", "-f", "nope")
    assert pallet_env.leftovers([cid]) == {}


def test_runs_in_flight_when_the_zygote_is_killed_all_start(pallet_env: PalletEnv) -> None:
    zygote_pid = started_zygote(pallet_env)
    runs = [
        subprocess.Popen(
            pallet_env.argv("run", "-d", "--name", f"inflight{i}", "busybox", "sleep", "60"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(8)
    ]
    try:
        # wherever each run is when the zygote dies, it gets a forked shim or an exec'd one
        wait_for(lambda: any(p.poll() is not None for p in runs) or pallet_env.container_ids())
        os.kill(zygote_pid, signal.SIGKILL)
        for proc in runs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
    finally:
        for proc in runs:  # those still running after a failure
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    listed = pallet_env.ok("ps", "--format", "{{.Names}} {{.Status}}").splitlines()
    assert sorted(line.split()[0] for line in listed) == [f"inflight{i}" for i in range(8)]
    assert all(" Up " in f" {line} " for line in listed)
    pallet_env.ok("rm", "-f", *(f"inflight{i}" for i in range(8)))
