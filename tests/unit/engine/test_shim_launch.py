"""How the engine starts ``pallet-shim``: the launcher next to the interpreter, else the module itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pallet.engine.shim.config import ShimConfig, save
from pallet.engine.shim.launch import launch, shim_command
from pallet.errors import InvalidArgument, Unavailable


def test_without_a_launcher_the_module_runs_in_an_isolated_interpreter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = sys.executable
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))
    command = shim_command()
    assert command[:4] == [str(tmp_path / "python"), "-I", "-S", "-c"]
    # the same command with the real interpreter reaches pallet-shim's argument check
    done = subprocess.run([python, *command[1:]], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stderr) == (
        2,
        "usage: pallet-shim [--report-fd N] [--wait-fd N] [--client-fd N] [--preload-runtime] SHIM_JSON\n",
    )


def test_bad_shim_config_is_refused_before_anything_starts(tmp_path: Path) -> None:
    (tmp_path / "shim.json").write_text("[]")
    with pytest.raises(InvalidArgument, match="not a shim config"):
        launch(str(tmp_path / "shim.json"))


def test_a_runtime_that_cannot_run_is_reported_in_its_category_and_nothing_is_left(tmp_path: Path) -> None:
    config = ShimConfig(
        id="c1",
        bundle=str(tmp_path / "bundle"),
        runtime_name="ghost",
        runtime_path=str(tmp_path / "ghost"),
        runtime_root=str(tmp_path / "state"),
        run_dir=str(tmp_path / "run"),
        log_path=str(tmp_path / "c1-json.log"),
    )
    save(config, str(tmp_path / "shim.json"))
    with pytest.raises(Unavailable, match='OCI runtime "ghost" cannot be started'):
        launch(str(tmp_path / "shim.json"))
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["shim.log"]
