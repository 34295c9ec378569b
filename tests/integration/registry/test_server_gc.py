"""``registry garbage-collect`` and a running ``pallet registry serve`` never overlap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from server_process import RegistryProcess

_MAIN = "from pallet.cli.main import main; raise SystemExit(main())"


def _collect(storage: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _MAIN, "registry", "garbage-collect", str(storage)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_garbage_collect_is_refused_while_the_server_serves_and_runs_once_it_stopped(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    server = RegistryProcess(storage, tmp_path / "registry.log")
    try:
        orphan = storage / "blobs" / "sha256" / ("ab" * 32)
        orphan.parent.mkdir(parents=True, exist_ok=True)
        orphan.write_bytes(b"no manifest names this")
        refused = _collect(storage)
    finally:
        assert server.stop() == 0
    assert refused.returncode == 1
    assert "being served" in refused.stderr
    assert orphan.exists()
    done = _collect(storage)
    assert done.returncode == 0, done.stderr
    assert f"blob eligible for deletion: sha256:{'ab' * 32}" in done.stdout
    assert not orphan.exists()
