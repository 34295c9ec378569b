"""``pallet top`` and ``pallet port``: a container's processes; its (not yet any) published ports."""

from __future__ import annotations

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import PalletEnv

pytestmark = pytest.mark.root


def test_top_lists_the_container_processes_only(pallet_env: PalletEnv) -> None:
    pallet_env.ok("run", "-d", "--name", "top1", "busybox", "sh", "-c", "sleep 1001 & sleep 1002 & wait")
    lines: list[str] = []
    for _ in range(100):  # the shell starts its two sleeps right after start
        lines = pallet_env.ok("top", "top1").splitlines()
        if len(lines) == 4:
            break
    assert lines[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    commands = sorted(line.split(None, 7)[7] for line in lines[1:])
    assert commands == ["sh -c sleep 1001 & sleep 1002 & wait", "sleep 1001", "sleep 1002"]
    custom = pallet_env.ok("top", "top1", "-o", "pid,comm").splitlines()
    assert custom[0].split() == ["PID", "COMMAND"]
    assert sorted(line.split()[1] for line in custom[1:]) == ["sh", "sleep", "sleep"]


def test_top_of_a_stopped_container_fails(pallet_env: PalletEnv) -> None:
    pallet_env.ok("create", "--name", "top2", "busybox", "true")
    done = pallet_env.pallet("top", "top2")
    assert done.returncode == 1
    assert "is not running" in done.stderr


def test_port_lists_nothing_and_an_unpublished_port_is_an_error(pallet_env: PalletEnv) -> None:
    pallet_env.ok("create", "--name", "port1", "busybox", "true")
    assert pallet_env.ok("port", "port1") == ""
    done = pallet_env.pallet("port", "port1", "80")
    assert done.returncode == 1
    assert "No public port '80/tcp' published for port1" in done.stderr
