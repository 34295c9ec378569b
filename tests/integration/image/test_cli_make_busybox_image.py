"""``scripts/make-busybox-image.sh`` puts a runnable-shaped busybox image into the store it is told."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pallet.image.store import ImageStore
from pallet.testing.cli import run_pallet
from pallet.testing.images import validate_image

pytestmark = pytest.mark.root

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "make-busybox-image.sh"


def run_script(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    launcher = tmp_path / "pallet"
    launcher.write_text(f'#!/bin/sh\nexec {sys.executable} -m pallet.cli "$@"\n')
    launcher.chmod(0o755)
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env={**os.environ, "PALLET": str(launcher), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )


def test_script_makes_busybox_latest_in_the_given_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    done = run_script(tmp_path, "--root", str(root))
    assert done.returncode == 0, done.stderr
    [image] = json.loads(run_pallet(root, "image", "inspect", "busybox:latest").out)
    assert done.stdout == image["Id"] + "\n"
    assert image["Config"]["Cmd"] == ["sh"]
    assert image["Config"]["Env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    with ImageStore.open(root) as store:
        validate_image(store, "busybox:latest")


def test_script_honours_pallet_root_and_a_reference(tmp_path: Path) -> None:
    root = tmp_path / "env-root"
    done = run_script(tmp_path, "local/bb:1", env={"PALLET_ROOT": str(root)})
    assert done.returncode == 0, done.stderr
    assert run_pallet(root, "images", "--format", "{{.Repository}}:{{.Tag}}").out == "local/bb:1\n"
