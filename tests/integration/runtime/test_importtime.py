"""The hot path: ``pallet-runtime run`` imports none of the heavy modules STYLE.md bans."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .conftest import RUNTIME, Runtime, base_config

pytestmark = pytest.mark.root

BANNED = (
    "asyncio", "http", "dataclasses", "typing", "re", "enum", "argparse", "subprocess",
    "json.decoder", "json.encoder", "ctypes.util", "logging", "datetime", "inspect", "tempfile", "shutil",
)  # fmt: skip


def test_run_path_imports_no_banned_module(runtime: Runtime, tmp_path: Path) -> None:
    bundle = runtime.bundle(base_config(runtime.rootfs, "true"))
    launcher = Path(RUNTIME).read_text().splitlines()
    python = launcher[0][2:].split()[0]
    err = tmp_path / "importtime.txt"
    with open(err, "w") as stderr:
        proc = subprocess.run(
            [
                python,
                "-X",
                "importtime",
                "-I",
                "-S",
                RUNTIME,
                "--root",
                str(runtime.root),
                "run",
                "--bundle",
                str(bundle),
                runtime.new_id(),
            ],
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    assert proc.returncode == 0, err.read_text()
    imported = {
        line.split("|")[-1].strip()
        for line in err.read_text().splitlines()
        if line.startswith("import time:")
    }
    assert "pallet.runtime.create" in imported  # the run path was measured
    assert sorted(m for m in imported if m in BANNED or m.split(".")[0] in ("asyncio", "http")) == []


def test_exec_path_imports_no_banned_module(runtime: Runtime, tmp_path: Path) -> None:
    cid = runtime.new_id()
    bundle = runtime.bundle(base_config(runtime.rootfs, "sleep", "300"))
    assert runtime("run", "--detach", "--bundle", str(bundle), cid).rc == 0
    python = Path(RUNTIME).read_text().splitlines()[0][2:].split()[0]
    err = tmp_path / "importtime-exec.txt"
    with open(err, "w") as stderr:
        proc = subprocess.run(
            [
                python,
                "-X",
                "importtime",
                "-I",
                "-S",
                RUNTIME,
                "--root",
                str(runtime.root),
                "exec",
                cid,
                "true",
            ],
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    assert proc.returncode == 0, err.read_text()
    imported = {
        line.split("|")[-1].strip()
        for line in err.read_text().splitlines()
        if line.startswith("import time:")
    }
    assert "pallet.runtime.exec" in imported  # the exec path was measured
    assert sorted(m for m in imported if m in BANNED or m.split(".")[0] in ("asyncio", "http")) == []
