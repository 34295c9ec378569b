"""The endpoints of the distribution API, as functions from a request to a response.

Each handler gets a ``Request`` (the matched route, the query, the headers,
the body stream) and the ``Storage``, and returns a ``Response``; failures
are ``RegistryError``s with the spec's codes. Nothing here touches sockets:
``server`` does the HTTP, these say what the answer is.
"""

from __future__ import annotations

import json

from pallet.errors import InvalidArgument
from pallet.oci import mediatypes
from pallet.oci.digest import Digest
from pallet.registry.server.errorcodes import RegistryError
from pallet.registry.server.manifests import MAX_MANIFEST_BYTES, parse_manifest
from pallet.registry.server.pagination import paginate
from pallet.registry.server.routes import validate_name, validate_tag
from pallet.registry.server.tokens import Scope

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from email.message import Message

    from pallet.registry.server.requestbody import Body
    from pallet.registry.server.routes import Route
    from pallet.registry.server.storage import Storage, Upload

__all__ = ["FileBody", "Request", "Response", "dispatch", "needed_scopes"]


class FileBody:
    """A response body sent from a file: ``length`` bytes from ``offset`` (sendfile)."""

    __slots__ = ("length", "offset", "path")

    def __init__(self, path: str, offset: int, length: int) -> None:
        self.path = path
        self.offset = offset
        self.length = length


class Response:
    """Status, headers and body; ``repeated`` holds headers sent once per value (``OCI-Tag``)."""

    __slots__ = ("body", "headers", "repeated", "status")

    def __init__(
        self, status: int, headers: dict[str, str] | None = None, body: bytes | FileBody = b""
    ) -> None:
        self.status = status
        self.headers = headers or {}
        self.body = body
        self.repeated: list[tuple[str, str]] = []


class Request:
    __slots__ = ("body", "headers", "method", "query", "route")

    def __init__(
        self, method: str, route: Route, query: dict[str, list[str]], headers: Message, body: Body
    ) -> None:
        self.method = method
        self.route = route
        self.query = query
        self.headers = headers
        self.body = body

    def arg(self, key: str) -> str:
        return self.query.get(key, [""])[0]


def _json(status: int, doc: object, headers: dict[str, str] | None = None) -> Response:
    all_headers = {"Content-Type": "application/json"}
    all_headers.update(headers or {})
    return Response(status, all_headers, json.dumps(doc).encode())


def _digest(text: str) -> Digest:
    try:
        return Digest.parse(text)
    except InvalidArgument as exc:
        raise RegistryError("DIGEST_INVALID", str(exc), detail={"digest": text}) from None


def needed_scopes(req: Request) -> list[Scope]:
    """The access a request needs, in the token spec's terms."""
    route = req.route
    if route.kind == "base":
        return []
    if route.kind == "catalog":
        return [Scope("registry", "catalog", frozenset({"*"}))]
    if req.method in ("GET", "HEAD") and route.kind != "upload":
        return [Scope("repository", route.name, frozenset({"pull"}))]
    if req.method == "DELETE" and route.kind in ("manifest", "blob"):
        return [Scope("repository", route.name, frozenset({"delete"}))]
    scopes = [Scope("repository", route.name, frozenset({"pull", "push"}))]
    source = req.arg("from")
    if route.kind == "upload_start" and req.arg("mount") and source and source != route.name:
        scopes.append(Scope("repository", validate_name(source), frozenset({"pull"})))
    return scopes


# --- base, catalog, tags ---------------------------------------------------------


def _base(req: Request, storage: Storage) -> Response:
    return _json(200, {})


def _catalog(req: Request, storage: Storage) -> Response:
    page = paginate(storage.repositories(), req.query, "/v2/_catalog")
    return _json(200, {"repositories": page.items}, {"Link": page.link} if page.link else None)


def _tags(req: Request, storage: Storage) -> Response:
    name = req.route.name
    if not storage.has_repository(name):
        raise RegistryError("NAME_UNKNOWN", detail={"name": name})
    page = paginate(storage.tags(name), req.query, f"/v2/{name}/tags/list")
    return _json(200, {"name": name, "tags": page.items}, {"Link": page.link} if page.link else None)


# --- blobs -----------------------------------------------------------------------


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``(first, last)`` of a single ``bytes=`` range; None when it cannot be satisfied."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, sep, last_text = spec.strip().partition("-")
    if not sep:
        return None
    try:
        if not first_text:  # suffix range: the last N bytes
            count = int(last_text)
            return (max(size - count, 0), size - 1) if count > 0 and size > 0 else None
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if first < 0 or first > last or first >= size:
        return None
    return first, min(last, size - 1)


def _blob(req: Request, storage: Storage) -> Response:
    name, digest = req.route.name, _digest(req.route.ref)
    if req.method == "DELETE":
        if not storage.delete_blob(name, digest):
            raise RegistryError("BLOB_UNKNOWN", detail={"digest": str(digest)})
        return Response(202, {"Content-Length": "0", "Docker-Content-Digest": digest})
    size = storage.blob_size(name, digest)
    if size is None:
        raise RegistryError("BLOB_UNKNOWN", detail={"digest": str(digest)})
    headers = {
        "Content-Type": "application/octet-stream",
        "Docker-Content-Digest": digest,
        "Accept-Ranges": "bytes",
        "ETag": f'"{digest}"',
        "Cache-Control": "max-age=31536000",
    }
    path = storage.blob_path(digest)
    wanted = req.headers.get("Range")
    if wanted:
        span = _parse_range(wanted, size)
        if span is None:
            raise RegistryError(
                "BLOB_UNKNOWN",
                f"range {wanted!r} cannot be satisfied for {size} bytes",
                status=416,
                headers={"Content-Range": f"bytes */{size}"},
            )
        first, last = span
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        return Response(206, headers, FileBody(path, first, last - first + 1))
    return Response(200, headers, FileBody(path, 0, size))


# --- uploads ---------------------------------------------------------------------


def _upload_state(status: int, name: str, upload: Upload) -> Response:
    return Response(
        status,
        {
            "Location": f"/v2/{name}/blobs/uploads/{upload.id}",
            "Range": f"0-{max(upload.size - 1, 0)}",
            "Docker-Upload-UUID": upload.id,
            "Content-Length": "0",
        },
    )


def _created_blob(name: str, digest: Digest) -> Response:
    return Response(
        201,
        {"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest, "Content-Length": "0"},
    )


def _finish(req: Request, storage: Storage, upload: Upload, digest: Digest) -> Response:
    """Take the request's body as the last bytes of ``upload``; verify and store the blob."""
    storage.append(upload, req.body.chunks())
    storage.finish_upload(upload, digest)
    return _created_blob(req.route.name, digest)


def _upload_start(req: Request, storage: Storage) -> Response:
    name = req.route.name
    if req.method != "POST":
        raise RegistryError("UNSUPPORTED", f"{req.method} is not allowed on an upload URL", status=405)
    mount, source = req.arg("mount"), req.arg("from")
    if mount:
        digest = _digest(mount)
        # without ``from`` the blob may come from any repository (OCI 1.1's automatic
        # content discovery): every user may pull every repository here, so this
        # reveals nothing a pull would not
        if storage.mount_blob(name, validate_name(source) if source else None, digest):
            return _created_blob(name, digest)
        # the spec's fallback: a mount that cannot be done starts an ordinary upload
    text = req.arg("digest")
    if text:
        digest = _digest(text)
        upload = storage.start_upload(name)
        with upload.lock:
            try:
                return _finish(req, storage, upload, digest)
            except BaseException:
                storage.cancel_upload(upload)
                raise
    upload = storage.start_upload(name)
    if req.body.length:
        with upload.lock:
            storage.append(upload, req.body.chunks())
    return _upload_state(202, name, upload)


def _content_range(header: str) -> tuple[int, int]:
    first, sep, last = header.strip().removeprefix("bytes ").partition("-")
    try:
        if sep:
            return int(first), int(last)
    except ValueError:
        pass
    raise RegistryError("RANGE_INVALID", f"malformed Content-Range {header!r}", status=416)


def _check_chunk(req: Request, upload: Upload) -> None:
    """A chunk with ``Content-Range`` must continue the upload exactly where it stands (else 416)."""
    header = req.headers.get("Content-Range")
    if not header:
        return
    first, last = _content_range(header)
    if first != upload.size or last < first:
        raise RegistryError(
            "RANGE_INVALID",
            f"chunk {first}-{last} does not continue the upload at {upload.size}",
            status=416,
            headers={
                "Location": f"/v2/{upload.name}/blobs/uploads/{upload.id}",
                "Range": f"0-{max(upload.size - 1, 0)}",
            },
        )
    if req.body.length is not None and req.body.length != last - first + 1:
        raise RegistryError("SIZE_INVALID", "Content-Length does not match Content-Range", status=416)


def _upload(req: Request, storage: Storage) -> Response:
    name = req.route.name
    upload = storage.upload(name, req.route.ref)
    if req.method == "GET":
        return _upload_state(204, name, upload)
    if req.method == "DELETE":
        storage.cancel_upload(upload)
        return Response(204, {"Content-Length": "0"})
    with upload.lock:
        _check_chunk(req, upload)
        if req.method == "PATCH":
            storage.append(upload, req.body.chunks())
            return _upload_state(202, name, upload)
        if req.method == "PUT":
            text = req.arg("digest")
            if not text:
                raise RegistryError(
                    "DIGEST_INVALID", "the digest query parameter is required to finish an upload"
                )
            return _finish(req, storage, upload, _digest(text))
    raise RegistryError("UNSUPPORTED", f"{req.method} is not allowed on an upload session", status=405)


# --- manifests and referrers -------------------------------------------------------


def _manifest_subject(storage: Storage, digest: Digest) -> Digest | None:
    try:
        with open(storage.blob_path(digest), "rb") as f:
            doc = json.loads(f.read(MAX_MANIFEST_BYTES + 1))
        return Digest.parse(doc["subject"]["digest"]) if isinstance(doc.get("subject"), dict) else None
    except (OSError, ValueError, KeyError, TypeError, InvalidArgument):
        return None


def _manifest(req: Request, storage: Storage) -> Response:
    name, ref = req.route.name, req.route.ref
    is_digest = ":" in ref
    if is_digest:
        _digest(ref)
    else:
        validate_tag(ref)
    if req.method == "PUT":
        return _put_manifest(req, storage)
    if req.method == "DELETE":
        if not is_digest:
            if not storage.delete_tag(name, ref):
                raise RegistryError("MANIFEST_UNKNOWN", detail={"tag": ref})
            return Response(202, {"Content-Length": "0"})
        digest = _digest(ref)
        if not storage.delete_manifest(name, digest, _manifest_subject(storage, digest)):
            raise RegistryError("MANIFEST_UNKNOWN", detail={"digest": ref})
        return Response(202, {"Content-Length": "0"})
    info = storage.manifest(name, ref)
    if info is None:
        raise RegistryError("MANIFEST_UNKNOWN", detail={"reference": ref})
    found, media_type, size = info
    headers = {"Content-Type": media_type, "Docker-Content-Digest": found, "ETag": f'"{found}"'}
    return Response(200, headers, FileBody(storage.blob_path(found), 0, size))


def _put_manifest(req: Request, storage: Storage) -> Response:
    name, ref = req.route.name, req.route.ref
    data = req.body.read_all(MAX_MANIFEST_BYTES)
    manifest = parse_manifest(data, req.headers.get("Content-Type") or "")
    algorithm = "sha256"
    if ":" in ref:
        expected = _digest(ref)
        algorithm = expected.algorithm
        if Digest.of_bytes(data, algorithm) != expected:
            raise RegistryError(
                "DIGEST_INVALID",
                "the manifest's digest does not match the reference it was pushed to",
                detail={"expected": str(expected), "actual": str(Digest.of_bytes(data, algorithm))},
            )
    missing = [str(d) for d in manifest.blobs if storage.blob_size(name, d) is None]
    missing += [str(d) for d in manifest.manifests if storage.manifest_type(name, d) is None]
    if missing:
        raise RegistryError("MANIFEST_BLOB_UNKNOWN", detail={"digests": missing})
    digest = Digest.of_bytes(data, algorithm)
    # a push by digest may name tags as ``?tag=`` parameters (distribution-spec 1.2)
    tags = [validate_tag(t) for t in req.query.get("tag", [])] if ":" in ref else [ref]
    storage.put_manifest(
        name,
        data,
        manifest.media_type,
        tags=tags,
        subject=manifest.subject,
        referrer=manifest.referrer(digest, len(data)),
        algorithm=algorithm,
    )
    headers = {
        "Location": f"/v2/{name}/manifests/{digest}",
        "Docker-Content-Digest": digest,
        "Content-Length": "0",
    }
    if manifest.subject is not None:
        headers["OCI-Subject"] = manifest.subject
    response = Response(201, headers)
    if ":" in ref:
        response.repeated = [("OCI-Tag", tag) for tag in tags]
    return response


def _referrers(req: Request, storage: Storage) -> Response:
    subject = _digest(req.route.ref)
    descriptors = storage.referrers(req.route.name, subject)
    headers: dict[str, str] = {}
    wanted = req.arg("artifactType")
    if wanted:
        descriptors = [d for d in descriptors if d.get("artifactType") == wanted]
        headers["OCI-Filters-Applied"] = "artifactType"
    index = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": descriptors}
    headers["Content-Type"] = mediatypes.OCI_INDEX
    return Response(200, headers, json.dumps(index).encode())


#: route kind -> (methods allowed, handler)
_HANDLERS: dict[str, tuple[frozenset[str], Callable[[Request, Storage], Response]]] = {
    "base": (frozenset({"GET", "HEAD"}), _base),
    "catalog": (frozenset({"GET", "HEAD"}), _catalog),
    "tags": (frozenset({"GET", "HEAD"}), _tags),
    "blob": (frozenset({"GET", "HEAD", "DELETE"}), _blob),
    "upload_start": (frozenset({"POST"}), _upload_start),
    "upload": (frozenset({"GET", "PATCH", "PUT", "DELETE"}), _upload),
    "manifest": (frozenset({"GET", "HEAD", "PUT", "DELETE"}), _manifest),
    "referrers": (frozenset({"GET", "HEAD"}), _referrers),
}


def dispatch(req: Request, storage: Storage) -> Response:
    """Run the handler of ``req.route`` (405 ``UNSUPPORTED`` for a method it does not take)."""
    methods, handler = _HANDLERS[req.route.kind]
    if req.method not in methods:
        raise RegistryError(
            "UNSUPPORTED",
            f"{req.method} is not allowed here",
            status=405,
            headers={"Allow": ", ".join(sorted(methods))},
        )
    return handler(req, storage)
