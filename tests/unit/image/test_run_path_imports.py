"""What `pallet run` asks of the image store loads no heavy standard-library module (no timing here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pallet
from pallet.image.snapshots import COPY
from pallet.image.store import ImageStore
from pallet.testing.images import add_to_store, random_image

# each costs milliseconds on every `pallet run` (re ~10, pathlib ~20, subprocess ~25, typing ~24, ...)
BANNED = (
    "re",
    "pathlib",
    "json",
    "hashlib",
    "subprocess",
    "shutil",
    "contextlib",
    "typing",
    "enum",
    "dataclasses",
    "tempfile",
    "threading",
    "urllib",
    "ipaddress",
    "fnmatch",
)

# the calls the engine makes for `pallet run --rm IMAGE true` (lifecycle create/start/discard),
# minus mounting (root only); the writable snapshot gets no parent so the copy driver copies nothing
SCRIPT = """
import sys
from pallet.image import owners
from pallet.image.metadata import FileLock
from pallet.image.store import ImageStore
from pallet.oci.reference import parse

root = sys.argv[1]
with ImageStore.open(root) as store:
    record = store.resolve("busybox")
    store.config(record.id)
    store.set_in_use(record.id, "c1")
    top = store.unpack(record.id)
    assert top is not None and store.snapshots.stat(top) is not None
    store.snapshots.prepare("container-c1", None)
    store.snapshots.mounts("container-c1")
    assert store.snapshots.stat("container-c1") is not None
    store.snapshots.remove("container-c1")
    store.release(record.id, "c1")
    owners.owner_tag()
    parse("busybox").familiar_string()
    with FileLock(root + "/test.lock").held():
        pass
print(" ".join(sorted(sys.modules)))
"""


def test_the_run_path_of_the_image_store_loads_no_heavy_module(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with ImageStore.open(root, snapshot_driver=COPY) as store:
        record = add_to_store(store, random_image(seed=3), "busybox")
        store.unpack(record.id)
    src = str(Path(pallet.__file__).parent.parent)
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", f"import sys; sys.path.insert(0, {src!r})\n{SCRIPT}", str(root)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    loaded = set(out.split())
    assert "pallet.image.store" in loaded
    assert sorted(loaded & set(BANNED)) == []
