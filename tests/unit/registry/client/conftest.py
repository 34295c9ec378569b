"""Fixtures for the registry client: a fake registry, a store in a temp root, images made on the fly."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pallet.image.store import ImageStore
from pallet.oci import mediatypes
from pallet.registry.client.progress import Progress
from pallet.registry.client.transport import Transport
from pallet.testing.registry import FakeRegistry


def layer(files: dict[str, bytes], level: int = 9) -> tuple[bytes, str]:
    """A gzip'd tar of ``files``: (blob, diff id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1577836800
            tar.addfile(info, io.BytesIO(data))
    plain = raw.getvalue()
    return gzip.compress(plain, compresslevel=level, mtime=0), "sha256:" + hashlib.sha256(plain).hexdigest()


def seed_image(
    reg: FakeRegistry,
    repository: str,
    tag: str | None,
    layers: list[dict[str, bytes]],
    *,
    architecture: str = "amd64",
    level: int = 9,
) -> tuple[bytes, str]:
    """Put an OCI image into ``reg``; returns (manifest bytes, manifest digest)."""
    descs, diff_ids = [], []
    for files in layers:
        blob, diff_id = layer(files, level)
        digest = reg.put_blob(repository, blob)
        descs.append({"mediaType": mediatypes.OCI_LAYER_GZIP, "digest": digest, "size": len(blob)})
        diff_ids.append(diff_id)
    config = json.dumps(
        {
            "architecture": architecture,
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()
    config_digest = reg.put_blob(repository, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_MANIFEST,
            "config": {"mediaType": mediatypes.OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": descs,
        }
    ).encode()
    digest = reg.put_manifest(repository, tag or "sha256:none", manifest, mediatypes.OCI_MANIFEST)
    if tag is None:
        del reg.manifests[(repository, "sha256:none")]
    return manifest, digest


class RecordingProgress(Progress):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        #: bytes ``advance``d per key
        self.moved: dict[str, int] = {}

    def start(self, key: str, total: int, status: str) -> None:
        self.events.append((key, status))

    def advance(self, key: str, n: int) -> None:
        self.moved[key] = self.moved.get(key, 0) + n

    def status(self, key: str, text: str) -> None:
        self.events.append((key, text))

    def message(self, text: str) -> None:
        self.events.append(("", text))

    def result(self, text: str, *, quiet_only: bool = False) -> None:
        self.events.append(("result", text))


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with FakeRegistry() as reg:
        yield reg


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ImageStore]:
    with ImageStore.open(tmp_path / "root", snapshot_driver="copy") as s:
        yield s


@pytest.fixture
def transport() -> Iterator[Transport]:
    t = Transport()
    yield t
    t.close()
