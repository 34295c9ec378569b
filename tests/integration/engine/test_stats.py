"""``pallet stats --no-stream``: memory limit, pids and the table as docker prints them."""

from __future__ import annotations

import json

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import PalletEnv

pytestmark = pytest.mark.root


def test_stats_shows_the_memory_limit_and_process_count(pallet_env: PalletEnv) -> None:
    pallet_env.ok(
        "run",
        "-d",
        "--name",
        "st1",
        "--network",
        "none",
        "-m",
        "64m",
        "busybox",
        "sh",
        "-c",
        "sleep 1000 & sleep 1001 & wait",
    )
    row: dict[str, str] = {}
    for _ in range(50):  # until the shell has started both sleeps
        row = json.loads(
            pallet_env.ok("stats", "--no-stream", "--interval", "0.05", "--format", "json", "st1")
        )
        if row["PIDs"] == "3":
            break
    assert row["Name"] == "st1"
    assert row["PIDs"] == "3"
    assert row["MemUsage"].endswith(" / 64MiB")
    assert row["CPUPerc"].endswith("%")
    assert row["NetIO"] == "0B / 0B"  # loopback only: no interface counts


def test_stats_table_lists_running_containers(pallet_env: PalletEnv) -> None:
    pallet_env.ok("run", "-d", "--name", "st2", "busybox", "sleep", "1000")
    pallet_env.ok("create", "--name", "st3", "busybox", "true")
    lines = pallet_env.ok("stats", "--no-stream", "--interval", "0.05").splitlines()
    assert lines[0].split("   ")[0] == "CONTAINER ID"
    assert "MEM USAGE / LIMIT" in lines[0]
    assert [line.split()[1] for line in lines[1:]] == ["st2"]
