"""Fixtures for the build integration tests: a pallet root with busybox, and buildah as the reference.

- ``build_env``: a ``PalletEnv`` (the engine tests' kit: ``pallet(...)`` runs the
  real CLI on a private root and run dir; its ``cleanup`` removes containers,
  processes, mounts and cgroups the test left, whatever failed) whose root holds
  ``busybox:latest``.
- ``reference`` (session): buildah on a private store under a temp dir holding
  the same ``busybox:latest`` (saved from pallet's store), building corpus cases
  on demand and keeping each result for the session; removed at the end.

This directory is put on ``sys.path`` (``--import-mode=importlib`` does not)
so the tests import ``corpus_kit`` by name.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pallet.testing.buildah import Buildah
from pallet.testing.busybox import busybox_root, busybox_store_root

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

import corpus_kit  # noqa: E402

__all__ = ["PalletEnv", "build_env", "busybox_archive", "busybox_root", "busybox_store_root", "empty_env"]


def _engine_kit() -> type:
    """``PalletEnv`` of tests/integration/engine/conftest.py, loaded under its own module name."""
    spec = importlib.util.spec_from_file_location(
        "pallet_engine_test_kit", _HERE.parent / "engine" / "conftest.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PalletEnv  # type: ignore[no-any-return]


PalletEnv = _engine_kit()


@pytest.fixture
def build_env(busybox_root: Path, tmp_path: Path) -> Iterator[PalletEnv]:
    """A pallet root holding ``busybox:latest`` and a run dir, private to the test, cleaned after it."""
    why = corpus_kit.pallet_ready()
    if why:
        pytest.skip(why)
    env = PalletEnv(busybox_root, tmp_path / "run")
    try:
        yield env
    finally:
        env.cleanup()


@pytest.fixture
def empty_env(tmp_path: Path) -> Iterator[PalletEnv]:
    """A second pallet root and run dir with no image at all, cleaned after the test."""
    why = corpus_kit.pallet_ready()
    if why:
        pytest.skip(why)
    env = PalletEnv(tmp_path / "empty-root", tmp_path / "empty-run")
    try:
        yield env
    finally:
        env.cleanup()


@pytest.fixture(scope="session")
def busybox_archive(busybox_store_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``busybox:latest`` of the test store as a ``pallet save`` archive."""
    out = tmp_path_factory.mktemp("busybox-archive") / "busybox.tar"
    subprocess.run(
        [corpus_kit.PALLET, "--root", str(busybox_store_root), "save", "-o", str(out), "busybox:latest"],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="session")
def reference(
    busybox_archive: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[corpus_kit.Reference]:
    why = corpus_kit.buildah_ready()
    if why:
        pytest.skip(why)
    work = tmp_path_factory.mktemp("buildah")
    (work / "images").mkdir()
    buildah = Buildah(work / "store")
    try:
        buildah.load(busybox_archive, "docker.io/library/busybox:latest", "localhost/busybox:latest")
        yield corpus_kit.Reference(buildah, work)
    finally:
        buildah.close()
