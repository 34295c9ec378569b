"""Fixtures of the escape-attempt suite: the static probe, an image of it, and a pallet root.

``probe_binary`` compiles ``probe.c`` with ``gcc -static`` once per session
(skipped, with the reason, where gcc or a static libc is missing).
``probe_rootfs_tar`` is a root filesystem holding only the probe at
``/probe`` and the empty directories a runtime mounts over, for engines that
import an image (docker, podman). ``pallet_env`` is the engine tests' own
fixture (``tests/integration/engine/conftest.py``): a private root with
``busybox:latest`` and a run dir, everything removed afterwards.
"""

from __future__ import annotations

import importlib.util
import io
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pallet.testing.busybox import busybox_root, busybox_store_root

_ENGINE_CONFTEST = Path(__file__).resolve().parents[1] / "integration" / "engine" / "conftest.py"
_spec = importlib.util.spec_from_file_location("_engine_conftest_for_security", _ENGINE_CONFTEST)
assert _spec is not None
assert _spec.loader is not None
_engine = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_engine)
PalletEnv = _engine.PalletEnv
pallet_env = _engine.pallet_env
crun_ready = _engine.crun_ready

__all__ = [
    "PalletEnv",
    "busybox_root",
    "busybox_store_root",
    "crun_ready",
    "pallet_env",
    "probe_binary",
    "probe_dir",
    "probe_rootfs_tar",
]

PROBE_SOURCE = Path(__file__).with_name("probe.c")


@pytest.fixture(scope="session")
def probe_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The probe, built static (it runs in an empty root filesystem under any engine)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed: the escape probe is compiled at test time")
    out = tmp_path_factory.mktemp("probe") / "probe"
    done = subprocess.run(
        [gcc, "-static", "-O2", "-Wall", "-o", str(out), str(PROBE_SOURCE)],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"gcc -static could not build the probe (a static libc is needed): {done.stderr[-500:]}")
    return out


@pytest.fixture
def probe_dir(probe_binary: Path, tmp_path: Path) -> Iterator[Path]:
    """A directory holding only the probe, to bind-mount read-only at ``/probe`` in a pallet container."""
    where = tmp_path / "probe-dir"
    where.mkdir()
    shutil.copy2(probe_binary, where / "probe")
    yield where
    shutil.rmtree(where, ignore_errors=True)


@pytest.fixture(scope="session")
def probe_rootfs_tar(probe_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tar of a root filesystem with the probe at ``/probe`` and nothing else (for ``docker/podman import``)."""
    out = tmp_path_factory.mktemp("probe-image") / "rootfs.tar"
    with tarfile.open(out, "w") as tar:
        for name, mode in (("proc", 0o755), ("sys", 0o755), ("dev", 0o755), ("etc", 0o755), ("tmp", 0o1777)):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        data = probe_binary.read_bytes()
        info = tarfile.TarInfo("probe")
        info.mode, info.size = 0o755, len(data)
        tar.addfile(info, io.BytesIO(data))
    return out
