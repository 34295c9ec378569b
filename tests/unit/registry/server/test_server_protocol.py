"""Pure pieces of the registry's HTTP protocol: routes, pagination, request bodies, manifests."""

from __future__ import annotations

import io
import json
from email.message import Message

import pytest

from pallet.registry.server.errorcodes import RegistryError, error_body
from pallet.registry.server.manifests import parse_manifest
from pallet.registry.server.pagination import paginate
from pallet.registry.server.requestbody import Body
from pallet.registry.server.routes import match

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64


def test_routes_take_names_with_slashes_and_the_last_part_as_reference() -> None:
    route = match(f"/v2/library/busy-box/manifests/{D1}")
    assert route is not None
    assert (route.kind, route.name, route.ref) == ("manifest", "library/busy-box", D1)
    upload = match("/v2/a/b/blobs/uploads/0b7c2f1e-1111-2222-3333-444455556666")
    assert upload is not None
    assert (upload.kind, upload.name) == ("upload", "a/b")
    start = match("/v2/a/blobs/uploads/")
    assert start is not None
    assert start.kind == "upload_start"
    assert match("/v2/_catalog") is not None
    assert match("/v3/x") is None


def test_routes_reject_uppercase_repository_names() -> None:
    with pytest.raises(RegistryError) as info:
        match("/v2/Library/tags/list")
    assert info.value.code == "NAME_INVALID"


def test_pagination_pages_after_last_and_links_to_the_next_page() -> None:
    items = ["a", "b", "c", "d", "e"]
    first = paginate(items, {"n": ["2"]}, "/v2/x/tags/list")
    assert first.items == ["a", "b"]
    assert first.link == '</v2/x/tags/list?n=2&last=b>; rel="next"'
    second = paginate(items, {"n": ["2"], "last": ["b"]}, "/v2/x/tags/list")
    assert second.items == ["c", "d"]
    third = paginate(items, {"n": ["2"], "last": ["d"]}, "/v2/x/tags/list")
    assert third.items == ["e"]
    assert third.link is None
    assert paginate(items, {"last": ["bb"]}, "/p").items == ["c", "d", "e"]


def test_pagination_refuses_a_negative_count() -> None:
    with pytest.raises(RegistryError) as info:
        paginate(["a"], {"n": ["-1"]}, "/p")
    assert info.value.code == "PAGINATION_NUMBER_INVALID"


def _headers(**values: str) -> Message:
    msg = Message()
    for key, value in values.items():
        msg[key.replace("_", "-")] = value
    return msg


def test_chunked_body_is_decoded_across_extensions_and_trailers() -> None:
    raw = b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nTrailer: x\r\n\r\nNEXT"
    stream = io.BytesIO(raw)
    body = Body(stream, _headers(Transfer_Encoding="chunked"))
    assert b"".join(body.chunks(size=3)) == b"hello world"
    assert body.done
    assert stream.read() == b"NEXT"  # the next request starts right there


def test_unread_body_is_drained_to_keep_the_connection() -> None:
    stream = io.BytesIO(b"0123456789NEXT")
    body = Body(stream, _headers(Content_Length="10"))
    assert body.drain()
    assert stream.read() == b"NEXT"


def test_body_larger_than_limit_is_refused_with_413() -> None:
    body = Body(io.BytesIO(b"x" * 100), _headers(Content_Length="100"))
    with pytest.raises(RegistryError) as info:
        body.read_all(10)
    assert info.value.status == 413


def _manifest(**extra: object) -> bytes:
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D1, "size": 2},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D2, "size": 3},
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": D2,
                "size": 3,
                "urls": ["http://x"],
            },
        ],
    }
    doc.update(extra)
    return json.dumps(doc).encode()


def test_manifest_lists_config_and_layers_but_not_foreign_layers() -> None:
    manifest = parse_manifest(_manifest(), "")
    assert manifest.blobs == (D1, D2)
    assert manifest.artifact_type == "application/vnd.oci.image.config.v1+json"


def test_manifest_with_subject_gives_referrer_descriptor_with_artifact_type() -> None:
    data = _manifest(
        subject={"mediaType": "x", "digest": D2, "size": 1}, artifactType="app/sig", annotations={"a": "b"}
    )
    manifest = parse_manifest(data, "application/vnd.oci.image.manifest.v1+json")
    assert manifest.subject == D2
    assert manifest.referrer(D1, len(data)) == {  # type: ignore[arg-type]
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": D1,
        "size": len(data),
        "artifactType": "app/sig",
        "annotations": {"a": "b"},
    }


def test_manifest_whose_media_type_contradicts_content_type_is_invalid() -> None:
    with pytest.raises(RegistryError, match="does not match Content-Type"):
        parse_manifest(_manifest(), "application/vnd.docker.distribution.manifest.v2+json")


def test_index_lists_its_child_manifests() -> None:
    data = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D1, "size": 9}
            ],
        }
    ).encode()
    manifest = parse_manifest(data, "")
    assert manifest.manifests == (D1,)
    assert manifest.blobs == ()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"schemaVersion": 1, "fsLayers": []}', "schema 1"),
        (_manifest(schemaVersion=3), "schemaVersion must be 2"),
        (_manifest(config={"digest": "sha256:zz", "size": 1}), "config.digest"),
        (_manifest(layers=[{"digest": D1, "size": -1}]), "layers\\[0\\].size"),
    ],
)
def test_malformed_manifest_is_invalid_saying_why(data: bytes, reason: str) -> None:
    with pytest.raises(RegistryError, match=reason) as info:
        parse_manifest(data, "")
    assert info.value.code == "MANIFEST_INVALID"


def test_error_body_has_the_specs_shape() -> None:
    body = json.loads(error_body([RegistryError("BLOB_UNKNOWN", detail={"digest": D1})]))
    assert body == {
        "errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry", "detail": {"digest": D1}}]
    }
