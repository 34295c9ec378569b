"""Layer blobs decompress as Go's readers do, and their digests come out right."""

from __future__ import annotations

import gzip
import hashlib
import io
import threading
import zlib

import pytest
from backports import zstd

from pallet.errors import InvalidArgument, Unsupported
from pallet.image.compression import GZIP, NONE, ZSTD, LayerReader, LayerWriter, compression_of

TAR_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
PAYLOAD = b"".join(b"line %d of a layer\n" % i for i in range(200_000)) + bytes(range(256)) * 4000


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def read_all(blob: bytes, *, threaded: bool = False, media_type: str = TAR_GZ) -> tuple[bytes, LayerReader]:
    reader = LayerReader(io.BytesIO(blob), media_type, threaded=threaded)
    parts = []
    try:
        while chunk := reader.read(1 << 16):
            parts.append(chunk)
        reader.finish()
    finally:
        reader.close()
    return b"".join(parts), reader


@pytest.mark.parametrize("threaded", [False, True])
@pytest.mark.parametrize(
    ("blob", "kind"),
    [
        (gzip.compress(PAYLOAD, mtime=0), GZIP),
        (zstd.compress(PAYLOAD), ZSTD),
        (PAYLOAD, NONE),
    ],
)
def test_each_compression_gives_the_payload_and_both_digests(blob, kind, threaded):
    data, reader = read_all(blob, threaded=threaded)
    assert data == PAYLOAD
    assert reader.compression == kind
    assert reader.diff_id == sha(PAYLOAD)
    assert reader.digest == sha(blob)
    assert (reader.size, reader.compressed_size) == (len(PAYLOAD), len(blob))


def test_gzip_members_are_concatenated_and_trailing_garbage_ends_the_stream():
    blob = gzip.compress(b"first ") + gzip.compress(b"second") + b"\x00\x00garbage after the members"
    data, reader = read_all(blob)
    assert data == b"first second"
    assert reader.diff_id == sha(b"first second")
    assert reader.digest == sha(blob)  # the blob digest still covers every byte


def test_zstd_frames_are_concatenated_and_skippable_frames_skipped():
    skippable = (0x184D2A50).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"index"
    blob = skippable + zstd.compress(b"one ") + skippable + zstd.compress(b"two") + skippable
    data, reader = read_all(blob)
    assert (data, reader.compression) == (b"one two", ZSTD)


@pytest.mark.parametrize("threaded", [False, True])
def test_truncated_gzip_is_an_error(threaded):
    blob = gzip.compress(PAYLOAD)[:-100]
    with pytest.raises(InvalidArgument, match="ends early"):
        read_all(blob, threaded=threaded)


def test_corrupt_gzip_is_an_error():
    blob = bytearray(gzip.compress(PAYLOAD))
    blob[100:110] = b"\xff" * 10
    with pytest.raises(InvalidArgument, match="not valid gzip"):
        read_all(bytes(blob))


def test_compression_is_sniffed_whatever_the_media_type_says():
    data, reader = read_all(gzip.compress(b"x"), media_type="application/vnd.docker.image.rootfs.diff.tar")
    assert (data, reader.compression) == (b"x", GZIP)


def test_non_layer_media_type_is_refused():
    with pytest.raises(Unsupported, match="unsupported layer media type"):
        LayerReader(io.BytesIO(b""), "application/vnd.oci.image.config.v1+json")


@pytest.mark.parametrize(
    ("media_type", "kind"),
    [
        ("application/vnd.oci.image.layer.v1.tar", NONE),
        ("application/vnd.oci.image.layer.v1.tar+gzip", GZIP),
        ("application/vnd.oci.image.layer.v1.tar+zstd", ZSTD),
        ("application/vnd.docker.image.rootfs.diff.tar.gzip", GZIP),
        ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", GZIP),
    ],
)
def test_media_types_name_their_compression(media_type, kind):
    assert compression_of(media_type) == kind


@pytest.mark.parametrize("kind", [NONE, GZIP, ZSTD])
def test_writer_compresses_and_reports_digests_that_the_reader_confirms(kind):
    out = io.BytesIO()
    writer = LayerWriter(out, kind)
    for i in range(0, len(PAYLOAD), 70_000):
        writer.write(PAYLOAD[i : i + 70_000])
    writer.close()
    blob = out.getvalue()
    assert writer.diff_id == sha(PAYLOAD)
    assert writer.digest == sha(blob)
    data, reader = read_all(blob)
    assert data == PAYLOAD
    assert reader.compression == kind


def test_gzip_writer_output_is_deterministic():
    def make() -> bytes:
        out = io.BytesIO()
        writer = LayerWriter(out, GZIP)
        writer.write(PAYLOAD)
        writer.close()
        return out.getvalue()

    first = make()
    assert first == make()
    assert zlib.decompress(first, 31) == PAYLOAD


def test_closing_a_threaded_reader_early_stops_its_thread():
    reader = LayerReader(io.BytesIO(gzip.compress(PAYLOAD * 4)), TAR_GZ, threaded=True)
    assert reader.read(10)
    reader.close()
    assert not [t for t in threading.enumerate() if t.name == "layer-decompress"]
