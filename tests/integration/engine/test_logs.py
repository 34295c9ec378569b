"""``pallet logs`` end to end: streams, --tail, -t, --since/--until, -f, and logs kept across restarts."""

from __future__ import annotations

import re
import subprocess

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import PalletEnv

pytestmark = pytest.mark.root


def test_logs_keep_both_streams_after_exit(pallet_env: PalletEnv) -> None:
    pallet_env.ok("run", "-d", "--name", "lg", "busybox", "sh", "-c", "echo a; echo b >&2; echo c")
    assert pallet_env.ok("wait", "lg") == "0\n"
    done = pallet_env.pallet("logs", "lg")
    assert (done.returncode, done.stdout, done.stderr) == (0, "a\nc\n", "b\n")


def test_logs_tail_and_timestamps(pallet_env: PalletEnv) -> None:
    pallet_env.ok(
        "run", "-d", "--name", "lt", "busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done"
    )
    pallet_env.ok("wait", "lt")
    assert pallet_env.ok("logs", "--tail", "2", "lt") == "line4\nline5\n"
    stamped = pallet_env.ok("logs", "-t", "--tail", "1", "lt")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z line5\n", stamped)


def test_logs_since_and_until_filter_by_time(pallet_env: PalletEnv) -> None:
    pallet_env.ok("run", "-d", "--name", "ls", "busybox", "echo", "old")
    pallet_env.ok("wait", "ls")
    assert pallet_env.ok("logs", "--since", "2030-01-01T00:00:00Z", "ls") == ""
    assert pallet_env.ok("logs", "--until", "2000-01-01T00:00:00Z", "ls") == ""
    assert pallet_env.ok("logs", "--since", "1h", "ls") == "old\n"


def test_logs_follow_ends_when_the_container_exits(pallet_env: PalletEnv) -> None:
    pallet_env.ok("run", "-d", "-i", "--name", "lf", "busybox", "sh", "-c", "echo first; read x; echo last")
    follower = subprocess.Popen(pallet_env.argv("logs", "-f", "lf"), stdout=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == "first\n"
        pallet_env.pallet("attach", "lf", input=b"go\n")
        out, _ = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert (follower.returncode, out) == (0, "last\n")


def test_logs_follow_stops_at_until_while_the_container_runs(pallet_env: PalletEnv) -> None:
    pallet_env.ok("run", "-d", "--name", "lu", "busybox", "sh", "-c", "echo early; sleep 300")
    done = pallet_env.pallet("logs", "-f", "--until", "1s", "lu", timeout=60)
    assert done.returncode == 0
    assert done.stdout in ("", "early\n")
    assert pallet_env.ok("inspect", "-f", "{{.State.Status}}", "lu") == "running\n"


def test_logs_accumulate_across_container_restarts(pallet_env: PalletEnv) -> None:
    pallet_env.ok("run", "-d", "--name", "lr", "busybox", "echo", "once")
    pallet_env.ok("wait", "lr")
    pallet_env.ok("start", "lr")
    pallet_env.ok("wait", "lr")
    assert pallet_env.ok("logs", "lr") == "once\nonce\n"
