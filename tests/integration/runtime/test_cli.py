"""The runc command line around containers: --version, spec, features, and flag spellings."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pallet.oci.jsonfast import loads
from pallet.oci.runtime_spec import load_spec

from .conftest import RUNTIME, Runtime, base_config

pytestmark = pytest.mark.root


def test_version_uses_runc_layout() -> None:
    out = subprocess.run(
        [RUNTIME, "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0].startswith("pallet-runtime version ")
    assert out[1].startswith("commit: ")
    assert out[2] == "spec: 1.2.0"


def test_spec_writes_a_valid_default_config_and_refuses_to_overwrite(tmp_path: Path) -> None:
    first = subprocess.run(
        [RUNTIME, "spec", "--bundle", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert first.returncode == 0, first.stderr
    spec = load_spec((tmp_path / "config.json").read_bytes())
    assert spec.process is not None
    assert spec.process.args == ("sh",)
    second = subprocess.run([RUNTIME, "spec"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert second.returncode == 1
    assert "exists" in second.stderr


def test_features_reports_what_is_implemented() -> None:
    doc = loads(subprocess.run([RUNTIME, "features"], capture_output=True, check=True).stdout)
    assert isinstance(doc, dict)
    assert doc["linux"]["cgroup"]["v1"] is True  # type: ignore[index]
    assert "user" in doc["linux"]["namespaces"]  # type: ignore[index]


def test_single_dash_and_equals_flags_work_like_urfave_cli(runtime: Runtime) -> None:
    bundle = runtime.bundle(base_config(runtime.rootfs, "sh", "-c", "exit 5"))
    cid = runtime.new_id()
    result = runtime("-log-format=json", "run", "-bundle=" + str(bundle), cid)
    assert result.rc == 5, result.err
    assert not os.path.exists(runtime.root / cid)
