"""The markers that bind a build's step containers to its process (``engine.containers.owned``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pallet.engine.containers import owned
from pallet.image import owners


def _dead_tag() -> str:
    """The owner tag of a process that has exited."""
    code = "from pallet.image import owners; print(owners.owner_tag())"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_a_live_owner_is_left_alone_and_a_dead_one_is_found(tmp_path: Path) -> None:
    mine = owners.owner_tag()
    gone = _dead_tag()
    owned.claim(str(tmp_path), mine)
    owned.claim(str(tmp_path), gone)
    assert owned.dead_owners(str(tmp_path)) == [gone]
    owned.release(str(tmp_path), gone)
    owned.release(str(tmp_path), gone)  # idempotent
    assert owned.dead_owners(str(tmp_path)) == []
    assert os.listdir(tmp_path / "owned") == [mine]


def test_a_reused_pid_does_not_keep_a_dead_owner_alive(tmp_path: Path) -> None:
    pid, start, _ = owners.owner_tag().split("-", 2)
    impostor = f"{pid}-{int(start) + 1}-00000000"  # this pid, another start time: not the process named
    owned.claim(str(tmp_path), impostor)
    assert owned.dead_owners(str(tmp_path)) == [impostor]


def test_no_marker_dir_means_nothing_to_sweep(tmp_path: Path) -> None:
    assert owned.dead_owners(str(tmp_path / "missing")) == []
