"""``pallet registry serve`` driven with raw HTTP: the distribution API endpoint by endpoint."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import RegistryProcess

pytestmark = pytest.mark.root

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    reg = RegistryProcess(tmp_path / "storage", tmp_path / "registry.log", "--log-level", "info")
    try:
        yield reg
    finally:
        reg.stop()


def push_blob(reg: RegistryProcess, name: str, data: bytes) -> str:
    digest = digest_of(data)
    status, _, body = reg.request("POST", f"/v2/{name}/blobs/uploads/?digest={digest}", data)
    assert status == 201, body
    return digest


def push_manifest(
    reg: RegistryProcess, name: str, ref: str, doc: dict[str, object], media_type: str = OCI_MANIFEST
) -> str:
    data = json.dumps(doc).encode()
    status, headers, body = reg.request(
        "PUT", f"/v2/{name}/manifests/{ref}", data, {"Content-Type": media_type}
    )
    assert status == 201, body
    assert headers["docker-content-digest"] == digest_of(data)
    return digest_of(data)


def image(reg: RegistryProcess, name: str, seed: bytes = b"x", **extra: object) -> dict[str, object]:
    config = push_blob(reg, name, b'{"architecture":"amd64","os":"linux","seed":"%s"}' % seed)
    layer = push_blob(reg, name, b"layer-" + seed)
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config,
            "size": 40 + len(seed),
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 6 + len(seed)}
        ],
    }
    doc.update(extra)
    return doc


def test_ping_answers_with_the_api_version_header(registry: RegistryProcess) -> None:
    status, headers, body = registry.request("GET", "/v2/")
    assert status == 200
    assert headers["docker-distribution-api-version"] == "registry/2.0"
    assert json.loads(body) == {}


def test_chunked_upload_with_content_range_stores_the_blob(registry: RegistryProcess) -> None:
    data = os.urandom(3 * 100_000 + 17)
    conn = registry.connection()
    status, headers, _ = registry.request("POST", "/v2/app/blobs/uploads/", b"", conn=conn)
    assert status == 202
    location = headers["location"]
    for start in range(0, len(data), 100_000):
        chunk = data[start : start + 100_000]
        status, headers, _ = registry.request(
            "PATCH",
            location,
            chunk,
            {
                "Content-Range": f"{start}-{start + len(chunk) - 1}",
                "Content-Type": "application/octet-stream",
            },
            conn=conn,
        )
        assert status == 202
        assert headers["range"] == f"0-{start + len(chunk) - 1}"
        location = headers["location"]
    status, headers, _ = registry.request("GET", location, conn=conn)
    assert (status, headers["range"]) == (204, f"0-{len(data) - 1}")
    status, headers, _ = registry.request("PUT", f"{location}?digest={digest_of(data)}", b"", conn=conn)
    assert status == 201
    assert headers["docker-content-digest"] == digest_of(data)
    status, _, body = registry.request("GET", f"/v2/app/blobs/{digest_of(data)}", conn=conn)
    assert (status, body) == (200, data)
    conn.close()


def test_patch_with_chunked_transfer_encoding_is_streamed_in(registry: RegistryProcess) -> None:
    parts = [os.urandom(70_000) for _ in range(5)]
    data = b"".join(parts)
    _, headers, _ = registry.request("POST", "/v2/app/blobs/uploads/")
    conn = registry.connection()
    conn.request("PATCH", headers["location"], body=iter(parts), encode_chunked=True)
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 202
    assert resp.getheader("Range") == f"0-{len(data) - 1}"
    # the same connection carries the next request: the chunked body was consumed exactly
    status, _, _ = registry.request(
        "PUT", f"{resp.getheader('Location')}?digest={digest_of(data)}", b"", conn=conn
    )
    assert status == 201
    conn.close()
    assert registry.request("GET", f"/v2/app/blobs/{digest_of(data)}")[2] == data


def test_out_of_order_chunk_is_refused_with_416_and_the_upload_continues(registry: RegistryProcess) -> None:
    _, headers, _ = registry.request("POST", "/v2/app/blobs/uploads/")
    location = headers["location"]
    registry.request("PATCH", location, b"abc", {"Content-Range": "0-2"})
    status, headers, body = registry.request("PATCH", location, b"xyz", {"Content-Range": "10-12"})
    assert status == 416
    assert registry.error_code(body) == "RANGE_INVALID"
    assert headers["range"] == "0-2"
    status, _, _ = registry.request(
        "PUT", f"{location}?digest={digest_of(b'abcdef')}", b"def", {"Content-Range": "3-5"}
    )
    assert status == 201


def test_digest_mismatch_is_rejected_and_nothing_is_stored(registry: RegistryProcess) -> None:
    claimed = digest_of(b"the real content")
    status, _, body = registry.request(
        "POST", f"/v2/app/blobs/uploads/?digest={claimed}", b"tampered content"
    )
    assert status == 400
    assert registry.error_code(body) == "DIGEST_INVALID"
    assert registry.request("HEAD", f"/v2/app/blobs/{claimed}")[0] == 404
    assert registry.request("HEAD", f"/v2/app/blobs/{digest_of(b'tampered content')}")[0] == 404
    blobs = [p for p in (registry.storage / "blobs").rglob("*") if p.is_file()]
    uploads = list((registry.storage / "uploads").iterdir())
    assert (blobs, uploads) == ([], [])


def test_cancelled_upload_is_gone(registry: RegistryProcess) -> None:
    _, headers, _ = registry.request("POST", "/v2/app/blobs/uploads/")
    assert registry.request("DELETE", headers["location"])[0] == 204
    status, _, body = registry.request("GET", headers["location"])
    assert (status, registry.error_code(body)) == (404, "BLOB_UPLOAD_UNKNOWN")


def test_cross_repository_mount_links_without_sending_bytes(registry: RegistryProcess) -> None:
    digest = push_blob(registry, "source/app", b"shared layer")
    status, headers, _ = registry.request("POST", f"/v2/dest/blobs/uploads/?mount={digest}&from=source/app")
    assert status == 201
    assert headers["location"] == f"/v2/dest/blobs/{digest}"
    assert registry.request("GET", f"/v2/dest/blobs/{digest}")[2] == b"shared layer"
    # a mount from a repository without the blob falls back to a plain upload
    missing = digest_of(b"nowhere")
    status, headers, _ = registry.request("POST", f"/v2/dest/blobs/uploads/?mount={missing}&from=source/app")
    assert status == 202
    assert "/blobs/uploads/" in headers["location"]


def test_range_get_returns_partial_content_and_416_past_the_end(registry: RegistryProcess) -> None:
    digest = push_blob(registry, "app", b"0123456789")
    status, headers, body = registry.request("GET", f"/v2/app/blobs/{digest}", headers={"Range": "bytes=3-6"})
    assert (status, body, headers["content-range"]) == (206, b"3456", "bytes 3-6/10")
    status, _, body = registry.request("GET", f"/v2/app/blobs/{digest}", headers={"Range": "bytes=7-"})
    assert (status, body) == (206, b"789")
    status, headers, _ = registry.request("GET", f"/v2/app/blobs/{digest}", headers={"Range": "bytes=20-30"})
    assert (status, headers["content-range"]) == (416, "bytes */10")


def test_blob_of_another_repository_is_unknown(registry: RegistryProcess) -> None:
    digest = push_blob(registry, "app", b"private")
    status, _, body = registry.request("GET", f"/v2/other/blobs/{digest}")
    assert (status, registry.error_code(body)) == (404, "BLOB_UNKNOWN")


def test_tags_list_paginates_with_link_header(registry: RegistryProcess) -> None:
    doc = image(registry, "app")
    for tag in ("v3", "v1", "latest", "v2"):
        push_manifest(registry, "app", tag, doc)
    status, headers, body = registry.request("GET", "/v2/app/tags/list?n=2")
    assert (status, json.loads(body)) == (200, {"name": "app", "tags": ["latest", "v1"]})
    assert headers["link"] == '</v2/app/tags/list?n=2&last=v1>; rel="next"'
    next_url = headers["link"].split(";")[0].strip("<>")
    status, headers, body = registry.request("GET", next_url)
    assert json.loads(body)["tags"] == ["v2", "v3"]
    assert "link" not in headers


def test_catalog_lists_repositories_in_pages(registry: RegistryProcess) -> None:
    for name in ("b/two", "a", "c"):
        push_manifest(registry, name, "latest", image(registry, name))
    status, headers, body = registry.request("GET", "/v2/_catalog?n=2")
    assert (status, json.loads(body)) == (200, {"repositories": ["a", "b/two"]})
    assert headers["link"] == '</v2/_catalog?n=2&last=b%2Ftwo>; rel="next"'
    status, _, body = registry.request("GET", "/v2/_catalog?n=2&last=b/two")
    assert (status, json.loads(body)) == (200, {"repositories": ["c"]})


def test_manifest_is_served_with_its_media_type_and_digest(registry: RegistryProcess) -> None:
    doc = image(registry, "app")
    digest = push_manifest(registry, "app", "v1", doc)
    status, headers, body = registry.request("GET", "/v2/app/manifests/v1")
    assert status == 200
    assert headers["content-type"] == OCI_MANIFEST
    assert headers["docker-content-digest"] == digest
    assert digest_of(body) == digest
    status, headers, body = registry.request("HEAD", f"/v2/app/manifests/{digest}")
    assert (status, body, headers["content-length"]) == (200, b"", str(len(json.dumps(doc))))


def test_manifest_referencing_a_missing_blob_is_refused(registry: RegistryProcess) -> None:
    doc = image(registry, "app")
    doc["layers"] = [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest_of(b"never"), "size": 5}
    ]
    status, _, body = registry.request(
        "PUT", "/v2/app/manifests/v1", json.dumps(doc).encode(), {"Content-Type": OCI_MANIFEST}
    )
    assert (status, registry.error_code(body)) == (400, "MANIFEST_BLOB_UNKNOWN")
    assert registry.request("GET", "/v2/app/manifests/v1")[0] == 404


def test_deleting_manifest_and_blob_makes_them_unknown(registry: RegistryProcess) -> None:
    doc = image(registry, "app")
    digest = push_manifest(registry, "app", "v1", doc)
    assert registry.request("DELETE", f"/v2/app/manifests/{digest}")[0] == 202
    status, _, body = registry.request("GET", "/v2/app/manifests/v1")
    assert (status, registry.error_code(body)) == (404, "MANIFEST_UNKNOWN")
    assert json.loads(registry.request("GET", "/v2/app/tags/list")[2])["tags"] == []
    layer = doc["layers"][0]["digest"]  # type: ignore[index]
    assert registry.request("DELETE", f"/v2/app/blobs/{layer}")[0] == 202
    assert registry.request("GET", f"/v2/app/blobs/{layer}")[0] == 404
    assert registry.request("DELETE", f"/v2/app/blobs/{layer}")[0] == 404


def test_referrers_lists_manifests_whose_subject_is_the_digest(registry: RegistryProcess) -> None:
    subject_doc = image(registry, "app")
    subject = push_manifest(registry, "app", "v1", subject_doc)
    size = len(json.dumps(subject_doc))
    empty = push_blob(registry, "app", b"{}")
    signature = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": size},
        "annotations": {"org.example.by": "test"},
    }
    data = json.dumps(signature).encode()
    status, headers, _ = registry.request(
        "PUT", f"/v2/app/manifests/{digest_of(data)}", data, {"Content-Type": OCI_MANIFEST}
    )
    assert (status, headers["oci-subject"]) == (201, subject)
    status, headers, body = registry.request("GET", f"/v2/app/referrers/{subject}")
    assert (status, headers["content-type"]) == (200, OCI_INDEX)
    assert json.loads(body)["manifests"] == [
        {
            "mediaType": OCI_MANIFEST,
            "digest": digest_of(data),
            "size": len(data),
            "artifactType": "application/vnd.example.signature",
            "annotations": {"org.example.by": "test"},
        }
    ]
    status, headers, body = registry.request("GET", f"/v2/app/referrers/{subject}?artifactType=other/type")
    assert (json.loads(body)["manifests"], headers["oci-filters-applied"]) == ([], "artifactType")


def test_concurrent_pushes_of_one_blob_all_succeed_with_one_stored_copy(registry: RegistryProcess) -> None:
    data = os.urandom(2_000_000)
    results: list[int] = []
    lock = threading.Lock()

    def push(i: int) -> None:
        _, headers, _ = registry.request("POST", f"/v2/repo{i % 3}/blobs/uploads/")
        location = headers["location"]
        for start in range(0, len(data), 500_000):
            registry.request("PATCH", location, data[start : start + 500_000])
        status, _, _ = registry.request("PUT", f"{location}?digest={digest_of(data)}", b"")
        with lock:
            results.append(status)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [201] * 6
    stored = [p for p in (registry.storage / "blobs").rglob("*") if p.is_file()]
    assert [p.name for p in stored] == [digest_of(data).split(":")[1]]
    for i in range(3):
        assert registry.request("GET", f"/v2/repo{i}/blobs/{digest_of(data)}")[2] == data


def test_invalid_repository_name_is_refused(registry: RegistryProcess) -> None:
    status, _, body = registry.request("GET", "/v2/Bad_Name/tags/list")
    assert (status, registry.error_code(body)) == (400, "NAME_INVALID")


def test_sigterm_stops_the_server_with_exit_status_zero(registry: RegistryProcess) -> None:
    assert registry.stop() == 0
    assert "stopping" in registry.log.read_text()
