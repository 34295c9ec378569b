"""``pallet update`` end to end: a running container's cgroup limits change, as seen from inside it;
the new values stay for inspect and the next start; bad input changes nothing."""

from __future__ import annotations

import time

import pytest

from pallet.testing.host import require_cgroup_v1_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import PalletEnv

pytestmark = pytest.mark.root

MEMORY_LIMIT = "/sys/fs/cgroup/memory/memory.limit_in_bytes"


def seen_inside(env: PalletEnv, ref: str, path: str) -> str:
    return env.ok("exec", ref, "cat", path).strip()


def test_update_changes_a_running_containers_memory_limit_and_a_restart_keeps_it(
    pallet_env: PalletEnv,
) -> None:
    require_cgroup_v1_file("memory", "memory.limit_in_bytes")
    pallet_env.ok("run", "-d", "--name", "box", "-m", "32m", "busybox", "sleep", "600")
    assert seen_inside(pallet_env, "box", MEMORY_LIMIT) == str(32 << 20)
    assert pallet_env.ok("update", "-m", "48m", "box") == "box\n"
    assert seen_inside(pallet_env, "box", MEMORY_LIMIT) == str(48 << 20)
    fields = "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}"
    # the swap limit in force (twice the memory of the create) stays, as dockerd keeps it
    assert pallet_env.ok("inspect", "-f", fields, "box").split() == [str(48 << 20), str(64 << 20)]
    pallet_env.ok("restart", "-t", "1", "box")
    assert seen_inside(pallet_env, "box", MEMORY_LIMIT) == str(48 << 20)


def test_update_of_a_stopped_container_applies_at_its_start(pallet_env: PalletEnv) -> None:
    require_cgroup_v1_file("memory", "memory.limit_in_bytes")
    pallet_env.ok("create", "--name", "later", "busybox", "sleep", "600")
    pallet_env.ok("container", "update", "-m", "40m", "--cpu-shares", "512", "--pids-limit", "33", "later")
    pallet_env.ok("start", "later")
    assert seen_inside(pallet_env, "later", MEMORY_LIMIT) == str(40 << 20)
    fields = "{{.HostConfig.CpuShares}} {{.HostConfig.PidsLimit}}"
    assert pallet_env.ok("inspect", "-f", fields, "later") == "512 33\n"


def test_refused_updates_say_why_in_dockers_words_and_change_nothing(pallet_env: PalletEnv) -> None:
    pallet_env.ok("run", "-d", "--name", "box", "-m", "32m", "busybox", "sleep", "600")
    cases = {
        ("-m", "2m"): "Minimum memory limit allowed is 6MB",
        ("-m", "100m"): "Memory limit should be smaller than already set memoryswap limit",
        ("--blkio-weight", "5"): "Range of blkio weight is from 10 to 1000",
        ("--cpu-period", "50000", "--cpus", "1"): "Conflicting options: Nano CPUs and CPU Period",
    }
    for flags, words in cases.items():
        done = pallet_env.pallet("update", *flags, "box")
        assert done.returncode == 1, done
        assert words in done.stderr
        assert "Cannot update container" in done.stderr
    assert pallet_env.ok("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.BlkioWeight}}", "box") == (
        f"{32 << 20} 0\n"
    )
    pallet_env.ok("run", "-d", "--rm", "--name", "gone-soon", "busybox", "sleep", "600")
    done = pallet_env.pallet("update", "--restart", "always", "gone-soon")
    assert done.returncode == 1
    assert "Restart policy cannot be updated because AutoRemove is enabled for the container" in done.stderr
    done = pallet_env.pallet("update", "box")
    assert done.returncode == 125
    assert "you must provide one or more flags" in done.stderr


def test_a_restart_policy_given_while_running_brings_the_container_back(pallet_env: PalletEnv) -> None:
    pallet_env.ok("run", "-d", "--name", "flaky", "busybox", "sh", "-c", "sleep 3; exit 3")
    pallet_env.ok("update", "--restart", "on-failure:1", "flaky")
    deadline = time.monotonic() + 60
    while pallet_env.ok("inspect", "-f", "{{.RestartCount}}", "flaky").strip() != "1":
        assert time.monotonic() < deadline, "the new policy never restarted the container"
        time.sleep(0.2)
    assert pallet_env.ok("inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", "flaky") == "on-failure\n"
