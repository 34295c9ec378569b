"""``DocumentCache``: a container.json is read once while unchanged, and read again once rewritten."""

from __future__ import annotations

from pathlib import Path

from pallet.engine.containers.records import DocumentCache, write_document


def test_a_rewritten_document_is_read_again_and_an_unchanged_one_is_not(tmp_path: Path) -> None:
    path = str(tmp_path / "container.json")
    write_document(path, {"Name": "/a"})
    cache = DocumentCache()
    first = cache.read(path)
    assert first == {"Name": "/a"}
    assert cache.read(path) is first  # same file: the parsed document is shared
    write_document(path, {"Name": "/b"})  # a rename puts a new inode in place
    assert cache.read(path) == {"Name": "/b"}


def test_a_missing_document_reads_empty(tmp_path: Path) -> None:
    assert DocumentCache().read(str(tmp_path / "gone.json")) == {}
