"""A pull killed with SIGKILL leaves no bad blob, and the next pull resumes where it stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pallet.image.store import ImageStore
from pallet.oci.digest import Digest
from pallet.oci.reference import parse
from pallet.registry.client.pull import pull
from pallet.registry.client.transport import Transport
from pallet.testing.registry import FakeRegistry

from .conftest import RecordingProgress, seed_image

_MAIN = "from pallet.cli.main import main; raise SystemExit(main())"


def test_sigkilled_pull_leaves_only_verified_blobs_and_is_resumed(
    tmp_path: Path, transport: Transport
) -> None:
    root = tmp_path / "root"
    ImageStore.open(root, snapshot_driver="copy").close()
    with FakeRegistry() as reg:
        manifest, _ = seed_image(reg, "app", "v1", [{"small": b"s"}, {"big": os.urandom(1_500_000)}])
        big = json.loads(manifest)["layers"][1]["digest"]
        reg.throttle = 1_000_000  # ~1.5 s for the big layer: time to kill the pull in the middle
        partial = root / "content" / "partial" / big.replace(":", "-")
        proc = subprocess.Popen(
            [sys.executable, "-c", _MAIN, "--root", str(root), "pull", "-q", f"{reg.host}/app:v1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (partial.exists() and partial.stat().st_size > 200_000):
                time.sleep(0.01)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        left = partial.stat().st_size
        assert 0 < left < 1_500_000
        with ImageStore.open(root) as store:
            for digest, _ in store.content.walk():  # whatever is in the store is whole and correct
                assert Digest.of_bytes(store.content.path(digest).read_bytes()) == digest
            assert not store.content.has(big)
            reg.throttle = 0
            pull(
                store,
                parse(f"{reg.host}/app:v1"),
                transport=transport,
                credentials=None,
                progress=RecordingProgress(),
            )
            assert store.content.path(big).read_bytes() == reg.blobs[big]
        resumed = [p for m, p, _, _ in reg.requests if m == "GET" and big in p and " bytes=" in p]
        assert resumed
        assert int(resumed[-1].rpartition("bytes=")[2].rstrip("-")) >= left
