"""Storage of pallet's registry: atomic blobs, verified uploads, safe concurrency, links."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from pallet.oci.digest import Digest
from pallet.registry.server.errorcodes import RegistryError
from pallet.registry.server.storage import Storage, write_atomic


def _digest(data: bytes) -> Digest:
    return Digest("sha256:" + hashlib.sha256(data).hexdigest())


def _files(root: Path, sub: str) -> list[str]:
    return sorted(str(p.relative_to(root / sub)) for p in (root / sub).rglob("*") if p.is_file())


def test_finished_upload_is_stored_once_and_linked_into_its_repository(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    data = b"layer bytes" * 1000
    upload = storage.start_upload("app")
    storage.append(upload, [data[:5000], data[5000:]])
    storage.finish_upload(upload, _digest(data))
    assert Path(storage.blob_path(_digest(data))).read_bytes() == data
    assert storage.blob_size("app", _digest(data)) == len(data)
    assert storage.blob_size("other", _digest(data)) is None
    assert _files(tmp_path, "uploads") == []


def test_digest_mismatch_stores_nothing_and_ends_the_session(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    upload = storage.start_upload("app")
    storage.append(upload, [b"what was sent"])
    with pytest.raises(RegistryError) as info:
        storage.finish_upload(upload, _digest(b"what was promised"))
    assert info.value.code == "DIGEST_INVALID"
    assert _files(tmp_path, "blobs") == []
    assert list((tmp_path / "uploads").iterdir()) == []
    with pytest.raises(RegistryError, match="upload unknown"):
        storage.upload("app", upload.id)


def test_concurrent_uploads_of_one_blob_leave_one_correct_blob(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    data = os.urandom(300_000)
    errors: list[Exception] = []
    barrier = threading.Barrier(8)

    def push(repo: str) -> None:
        try:
            upload = storage.start_upload(repo)
            barrier.wait()
            for i in range(0, len(data), 65536):
                storage.append(upload, [data[i : i + 65536]])
            storage.finish_upload(upload, _digest(data))
        except (OSError, RegistryError) as exc:
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(f"repo{i % 2}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _files(tmp_path, "blobs") == [f"sha256/{_digest(data).hex}"]
    assert Path(storage.blob_path(_digest(data))).read_bytes() == data
    assert storage.blob_size("repo0", _digest(data)) == storage.blob_size("repo1", _digest(data)) == len(data)
    assert list((tmp_path / "uploads").iterdir()) == []


def test_failed_append_cuts_the_session_back_to_its_last_good_size(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    upload = storage.start_upload("app")
    storage.append(upload, [b"first"])

    def broken() -> list[bytes]:
        raise ConnectionResetError("client went away")

    def chunks():  # type: ignore[no-untyped-def]
        yield b"half of the second"
        broken()

    with pytest.raises(ConnectionResetError):
        storage.append(upload, chunks())
    assert upload.size == 5
    assert Path(upload.path).read_bytes() == b"first"
    storage.append(upload, [b"-second"])
    storage.finish_upload(upload, _digest(b"first-second"))
    assert Path(storage.blob_path(_digest(b"first-second"))).read_bytes() == b"first-second"


def test_upload_session_survives_a_restart_of_the_server(tmp_path: Path) -> None:
    before = Storage(str(tmp_path))
    upload = before.start_upload("app")
    before.append(upload, [b"resumed "])
    after = Storage(str(tmp_path))  # a new process: no in-memory session
    again = after.upload("app", upload.id)
    assert again.size == 8
    after.append(again, [b"upload"])
    after.finish_upload(again, _digest(b"resumed upload"))
    assert after.blob_size("app", _digest(b"resumed upload")) == 14


def test_upload_of_another_repository_is_unknown(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    upload = storage.start_upload("app")
    with pytest.raises(RegistryError) as info:
        storage.upload("other", upload.id)
    assert info.value.code == "BLOB_UPLOAD_UNKNOWN"


def test_write_atomic_replaces_content_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "dir" / "tag"
    write_atomic(str(target), b"old")
    write_atomic(str(target), b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["tag"]


def test_mount_links_a_blob_only_from_a_repository_that_has_it(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    upload = storage.start_upload("src")
    storage.append(upload, [b"shared"])
    storage.finish_upload(upload, _digest(b"shared"))
    assert not storage.mount_blob("dst", "elsewhere", _digest(b"shared"))
    assert storage.mount_blob("dst", "src", _digest(b"shared"))
    assert storage.blob_size("dst", _digest(b"shared")) == 6
    assert storage.delete_blob("src", _digest(b"shared"))
    assert storage.blob_size("src", _digest(b"shared")) is None
    assert storage.blob_size("dst", _digest(b"shared")) == 6  # shared content stays for dst


def test_deleting_a_manifest_removes_its_tags_and_referrer_entry(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    subject = _digest(b"subject")
    digest = storage.put_manifest(
        "app",
        b'{"schemaVersion":2}',
        "application/vnd.oci.image.manifest.v1+json",
        tags=["v1"],
        subject=subject,
        referrer={"digest": "x"},
    )
    assert storage.resolve("app", "v1") == digest
    assert storage.referrers("app", subject) == [{"digest": "x"}]
    assert storage.repositories() == ["app"]
    assert storage.delete_manifest("app", digest, subject)
    assert storage.resolve("app", "v1") is None
    assert storage.resolve("app", str(digest)) is None
    assert storage.tags("app") == []
    assert storage.referrers("app", subject) == []


def test_repositories_lists_nested_names_sorted(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    for name in ("b/c/d", "a", "b"):
        storage.put_manifest(name, b"{}", "application/json", tags=["t"], subject=None, referrer=None)
    assert storage.repositories() == ["a", "b", "b/c/d"]


def test_purge_removes_only_uploads_untouched_for_longer_than_the_limit(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    old = storage.start_upload("app")
    fresh = storage.start_upload("app")
    (tmp_path / "uploads" / ".blob-stray").write_bytes(b"x")
    for path in (Path(old.path), Path(old.path).parent, tmp_path / "uploads" / ".blob-stray"):
        os.utime(path, (1000, 1000))
    assert storage.purge_uploads(3600) == 2
    assert sorted(p.name for p in (tmp_path / "uploads").iterdir()) == [fresh.id]
    with pytest.raises(RegistryError):
        storage.upload("app", old.id)


def test_manifest_gives_digest_media_type_and_size_by_tag_or_digest(tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    data = b'{"schemaVersion":2}'
    media_type = "application/vnd.oci.image.manifest.v1+json"
    digest = storage.put_manifest("app", data, media_type, tags=["v1"], subject=None, referrer=None)
    assert storage.manifest("app", "v1") == (digest, media_type, len(data))
    assert storage.manifest("app", str(digest)) == (digest, media_type, len(data))
    assert storage.manifest("app", "v2") is None
    assert storage.manifest("other", str(digest)) is None
    os.unlink(storage.blob_path(digest))  # the content is gone: the manifest is not served
    assert storage.manifest("app", "v1") is None
