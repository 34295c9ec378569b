"""A root of the previous layout (``images.db``, ``engine.db``, ``volumes.db``) becomes a ``pallet.db`` root.

The root is made by today's code with images, tags, a running and a stopped
container and volumes, then written back into the previous layout's three
files (``pallet.testing.old_layout``; shims never open the database, so the
running container keeps running). The first command imports it; every later
command sees the same images, containers and volumes, and the containers
still run, stop and start. A command SIGKILLed at points of the import (the
test hook ``PALLET_TEST_PAUSE_MIGRATION`` stops it there and names its pid)
leaves a root the next command imports or finishes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pallet.database.migrations import PAUSE_ENV
from pallet.testing.old_layout import to_old_layout

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import PalletEnv

pytestmark = pytest.mark.root

OLD = ("images.db", "engine.db", "volumes.db")
LISTINGS = (
    ("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}"),
    ("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Image}} {{.State}} {{.Mounts}}"),
    ("volume", "ls"),
)


def _listing(env: PalletEnv) -> list[str]:
    return [env.ok(*args) for args in LISTINGS]


def _state(env: PalletEnv, name: str) -> str:
    return env.ok("inspect", "-f", "{{.State.Status}}", name).strip()


def _make_root(env: PalletEnv) -> list[str]:
    """Images, tags, volumes, a stopped and a running container; returns what the listings print."""
    env.ok("tag", "busybox", "mine:v1")
    env.ok("volume", "create", "kept")
    cmd = "echo ran >> /data/runs; cat /data/runs"
    assert (
        env.ok("run", "--name", "down", "-v", "kept:/data", "-v", "/scratch", "busybox", "sh", "-c", cmd)
        == "ran\n"
    )
    env.ok("run", "-d", "--name", "up", "-v", "kept:/data", "busybox", "sleep", "600")
    assert _state(env, "up") == "running"
    listing = _listing(env)
    assert "up" in listing[1]
    assert "down" in listing[1]
    assert "kept" in listing[2]
    return listing


def _old_files(root: Path) -> list[str]:
    """The previous layout's files under ``root`` (without their -wal and -shm companions)."""
    return sorted(name for name in OLD if (root / name).exists())


def _old_leftovers(root: Path) -> list[str]:
    """Anything of the previous layout under ``root``, companions included."""
    return sorted(p.name for p in root.iterdir() if p.name.startswith(OLD))


def test_an_old_layout_root_lists_the_same_and_its_containers_still_run(pallet_env: PalletEnv) -> None:
    before = _make_root(pallet_env)
    to_old_layout(pallet_env.root)
    assert not (pallet_env.root / "pallet.db").exists()
    assert _old_files(pallet_env.root) == sorted(OLD)

    assert _listing(pallet_env) == before
    assert (pallet_env.root / "pallet.db").exists()
    assert _old_leftovers(pallet_env.root) == []

    assert _state(pallet_env, "up") == "running"
    assert pallet_env.ok("exec", "up", "cat", "/data/runs") == "ran\n"
    pallet_env.ok("stop", "-t", "1", "up")
    assert _state(pallet_env, "up") == "exited"
    assert pallet_env.ok("start", "-a", "down") == "ran\nran\n"
    pallet_env.ok("start", "up")
    assert _state(pallet_env, "up") == "running"
    pallet_env.ok("rm", "-f", "-v", "up", "down")
    assert pallet_env.ok("volume", "ls", "-q") == "kept\n"  # the anonymous volume went with rm -v


def _kill_at(env: PalletEnv, point: str, report: Path) -> None:
    """Run ``pallet ps -a`` until the import reaches ``point``, then SIGKILL it."""
    report.unlink(missing_ok=True)
    command = subprocess.Popen(
        env.argv("ps", "-a"),
        env={**os.environ, PAUSE_ENV: f"{point}:{report}"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not report.exists() and command.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert report.exists(), (
            f"pallet ps never reached {point}: {command.stderr.read() if command.stderr else ''!r}"
        )
        assert int(report.read_text()) == command.pid
        os.kill(command.pid, signal.SIGKILL)
        assert command.wait(timeout=60) == -signal.SIGKILL
    finally:
        if command.poll() is None:
            command.kill()
            command.wait()
        if command.stderr is not None:
            command.stderr.close()


def test_a_sigkill_during_the_import_is_recovered_by_the_next_command(
    pallet_env: PalletEnv, tmp_path: Path
) -> None:
    before = _make_root(pallet_env)
    report = tmp_path / "paused"
    for point, old_left in (
        ("before-commit", sorted(OLD)),
        ("after-commit", sorted(OLD)),
        ("after-removing-images.db", ["engine.db", "volumes.db"]),
        ("after-removing-engine.db", ["volumes.db"]),
    ):
        to_old_layout(pallet_env.root)
        _kill_at(pallet_env, point, report)
        assert _old_files(pallet_env.root) == old_left, point
        assert _listing(pallet_env) == before, point
        assert _old_leftovers(pallet_env.root) == [], point
    assert _state(pallet_env, "up") == "running"
    pallet_env.ok("stop", "-t", "1", "up")
    assert _state(pallet_env, "up") == "exited"
