"""``shim.json``: what the engine writes is what the shim reads; bad files are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pallet.engine.shim.config import ShimConfig, load, save
from pallet.errors import InvalidArgument


def sample(**changes: object) -> ShimConfig:
    config = ShimConfig(
        id="c1",
        bundle="/r/containers/c1/bundle",
        runtime_name="runc",
        runtime_path="/usr/sbin/runc",
        runtime_root="/run/p/runtimes/runc",
        run_dir="/run/p/containers/c1",
        log_path="/r/containers/c1/c1-json.log",
        log_max_size=1024,
        log_max_file=3,
        tty=True,
        runtime_args=("--debug",),
        restart_name="on-failure",
        restart_max_retries=5,
        exit_command=("pallet", "rm", "c1"),
    )
    return config.replace(**changes)


def test_saved_config_loads_back_equal(tmp_path: Path) -> None:
    save(sample(), str(tmp_path / "shim.json"))
    assert load(str(tmp_path / "shim.json")) == sample()


def test_unknown_restart_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="restart policy"):
        save(sample(restart_name="sometimes"), str(tmp_path / "shim.json"))


def test_missing_field_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "shim.json").write_text('{"id": "c1"}')
    with pytest.raises(InvalidArgument, match=r"shim\.json"):
        load(str(tmp_path / "shim.json"))
    with pytest.raises(InvalidArgument, match="read shim config"):
        load(str(tmp_path / "absent.json"))
