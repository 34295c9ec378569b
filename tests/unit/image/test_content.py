from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pallet.errors import DataLoss, InvalidArgument, NotFound
from pallet.image import owners
from pallet.image.content import ContentStore
from pallet.oci.digest import Digest
from pallet.oci.image_spec import Descriptor


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path)


def _visible_blobs(store: ContentStore) -> list[Digest]:
    return [d for d, _ in store.walk()]


def test_put_bytes_stores_a_blob_under_its_digest(store: ContentStore) -> None:
    desc = store.put_bytes(b"hello", "text/plain")
    assert desc == Descriptor(media_type="text/plain", digest=Digest.of_bytes(b"hello"), size=5)
    assert store.path(desc.digest) == store.root / "blobs" / "sha256" / desc.digest.hex
    assert store.read_bytes(desc.digest) == b"hello"
    assert list(store.walk()) == [(desc.digest, 5)]


def test_ingest_without_expectation_names_the_blob_by_its_sha256(store: ContentStore) -> None:
    desc = store.ingest(io.BytesIO(b"x" * 3_000_000))
    assert desc.digest == Digest.of_bytes(b"x" * 3_000_000)
    assert store.size(desc.digest) == 3_000_000


def test_ingest_of_a_present_blob_does_not_read_the_stream(store: ContentStore) -> None:
    desc = store.put_bytes(b"data")

    class Unreadable(io.RawIOBase):
        def read(self, n: int = -1) -> bytes:
            raise AssertionError("the stream was read")

    assert store.ingest(Unreadable(), desc.digest).digest == desc.digest  # type: ignore[arg-type]


def test_digest_mismatch_is_rejected_and_leaves_nothing(store: ContentStore) -> None:
    wrong = Digest.of_bytes(b"other")
    with pytest.raises(InvalidArgument, match="digest mismatch"):
        store.ingest(io.BytesIO(b"data"), wrong)
    assert not store.has(wrong)
    assert _visible_blobs(store) == []
    assert list(store.ingest_dir.iterdir()) == []


def test_size_mismatch_is_rejected_and_leaves_nothing(store: ContentStore) -> None:
    d = Descriptor(media_type="x", digest=Digest.of_bytes(b"data"), size=3)
    with pytest.raises(InvalidArgument, match="larger than the 3 bytes"):
        store.ingest(io.BytesIO(b"data"), d)
    with pytest.raises(InvalidArgument, match="descriptor says 5"):
        store.ingest(io.BytesIO(b"data"), d.replace(size=5))
    assert _visible_blobs(store) == []
    assert list(store.ingest_dir.iterdir()) == []


def test_verify_on_read_detects_a_blob_corrupted_on_disk(store: ContentStore) -> None:
    desc = store.put_bytes(b"good content")
    path = store.path(desc.digest)
    path.chmod(0o644)
    path.write_bytes(b"evil content")
    with store.open(desc.digest) as f:  # unverified reads see whatever is there
        assert f.read() == b"evil content"
    with pytest.raises(DataLoss, match="corrupt on disk") as e:
        store.read_bytes(desc.digest)
    assert e.value.category.name == "data-loss"  # a 500, not the 400 of bad input
    with pytest.raises(DataLoss, match="corrupt on disk"), store.open(desc.digest, verify=True) as f:
        f.read()


def test_missing_blobs_are_not_found(store: ContentStore) -> None:
    d = Digest.of_bytes(b"nothing")
    with pytest.raises(NotFound, match="not found in the content store"):
        store.open(d)
    assert store.delete(d) is False


def test_delete_removes_the_blob_and_is_idempotent(store: ContentStore) -> None:
    desc = store.put_bytes(b"bye")
    assert store.delete(desc.digest) is True
    assert store.delete(desc.digest) is False
    assert not store.has(desc.digest)


_WRITER = """
import sys
from pathlib import Path
from pallet.image.content import ContentStore
store = ContentStore(Path(sys.argv[1]))
store.ingest(sys.stdin.buffer, sys.argv[2])
"""


def test_a_writer_killed_mid_ingest_leaves_no_blob_and_its_leftover_is_removed_later(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    data = os.urandom(256 * 1024)
    digest = Digest.of_bytes(data)
    child = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), digest], stdin=subprocess.PIPE)
    try:
        assert child.stdin is not None
        child.stdin.write(data[: len(data) // 2])
        child.stdin.flush()
        deadline = time.monotonic() + 30
        while not any(p.stat().st_size for p in store.ingest_dir.iterdir()):
            assert time.monotonic() < deadline, "the writer never started writing"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdin is not None:
            child.stdin.close()
    assert child.returncode == -signal.SIGKILL
    assert not store.has(digest)
    assert _visible_blobs(store) == []
    assert len(list(store.ingest_dir.iterdir())) == 1  # the half-written temp file

    assert ContentStore(tmp_path).cleanup_leftovers() == 1
    assert list(store.ingest_dir.iterdir()) == []


def test_cleanup_keeps_the_temp_files_of_live_writers(store: ContentStore) -> None:
    mine = store.ingest_dir / f"{owners.owner_tag()}.part"
    mine.write_bytes(b"in progress")
    stranger = store.ingest_dir / "junk"
    stranger.write_bytes(b"?")
    assert store.cleanup_leftovers() == 1
    assert mine.exists()
    assert not stranger.exists()
