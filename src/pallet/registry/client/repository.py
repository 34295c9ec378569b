"""The distribution API v2 of one repository: manifests, blobs, uploads, mounts.

``Registry`` is a session with one registry (transport, base URL, authorizer);
``Repository`` speaks the endpoints of ``/v2/<name>/``. Every call asks for the
scope it needs (``repository:<name>:pull`` or ``pull,push``) and repeats itself
once after a ``401`` when the authorizer learned something (a challenge, or a
stale token to refresh). Non-2xx answers become ``errors.from_status``.
"""

from __future__ import annotations

import json
import urllib.parse

from pallet.oci import mediatypes
from pallet.oci.digest import Digest
from pallet.registry.client.auth import Authorizer
from pallet.registry.client.errors import DigestMismatch, Unauthorized, from_status

__all__ = ["MANIFEST_ACCEPT", "Registry", "Repository"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from urllib3 import BaseHTTPResponse

    from pallet.registry.client.credentials import Credentials
    from pallet.registry.client.transport import Body, Transport

#: every manifest kind pallet can use, most specific first
MANIFEST_ACCEPT = ", ".join(
    (
        mediatypes.OCI_INDEX,
        mediatypes.DOCKER_MANIFEST_LIST,
        mediatypes.OCI_MANIFEST,
        mediatypes.DOCKER_MANIFEST,
    )
)
#: the biggest manifest pallet reads (the spec suggests registries accept at least 4 MiB)
MANIFEST_MAX = 4 << 20


class Registry:
    """A session with one registry: where it is, and how to authorize against it."""

    def __init__(self, transport: Transport, name: str, credentials: Credentials | None) -> None:
        self.transport = transport
        self.name = name
        self.authorizer = Authorizer(transport, name, credentials)
        self._base: str | None = None

    @property
    def base(self) -> str:
        if self._base is None:
            self._base = self.transport.base_url(self.name)
        return self._base

    def ping(self) -> None:
        """``GET /v2/``: learn the auth challenge; raise if the registry is not a v2 registry or refuses us."""
        response = self.transport.request("GET", f"{self.base}/v2/", registry=self.name)
        if response.status == 401:
            self.authorizer.unauthorized(response.headers.get("WWW-Authenticate", ""), (), False)
            return
        if response.status not in (200, 404):
            raise from_status(response.status, response.data, what="the /v2/ endpoint", host=self.name)

    def login_check(self) -> None:
        """Verify the credentials now (``pallet login``): ping, then authenticate once with no scope."""
        self.ping()
        challenge = self.authorizer.challenge
        if challenge is None:
            return  # an open registry accepts anything
        headers = self.authorizer.headers(())
        response = self.transport.request("GET", f"{self.base}/v2/", registry=self.name, headers=headers)
        if response.status in (401, 403):
            raise Unauthorized(f"unauthorized: incorrect username or password for {self.name}")
        if response.status != 200:
            raise from_status(response.status, response.data, what="the /v2/ endpoint", host=self.name)

    def request(
        self,
        method: str,
        url: str,
        *,
        scopes: tuple[str, ...],
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        stream: bool = False,
    ) -> BaseHTTPResponse:
        """Send with authorization; on ``401`` learn the challenge and send again (at most twice more)."""
        if not url.startswith(("http://", "https://")):
            url = self.base + url
        for _ in range(3):
            auth = self.authorizer.headers(scopes)
            response = self.transport.request(
                method, url, registry=self.name, headers={**(headers or {}), **auth}, body=body, stream=stream
            )
            if response.status != 401:
                return response
            challenge = response.headers.get("WWW-Authenticate", "")
            if stream:
                response.drain_conn()
                response.release_conn()
            if not self.authorizer.unauthorized(challenge, scopes, bool(auth)):
                return response
        return response


class Repository:
    """``/v2/<name>/…`` on one registry; ``name`` is the path part (``library/busybox``)."""

    def __init__(self, registry: Registry, name: str, *, push: bool = False) -> None:
        self.registry = registry
        self.name = name
        self.scope = f"repository:{name}:{'pull,push' if push else 'pull'}"

    def _url(self, tail: str) -> str:
        return f"/v2/{self.name}/{tail}"

    def _fail(self, response: BaseHTTPResponse, what: str) -> Exception:
        body = response.data if response.data is not None else b""
        return from_status(response.status, body, what=what, host=self.registry.name)

    # --- manifests --------------------------------------------------------------------------------

    def get_manifest(self, reference: str, *, what: str) -> tuple[bytes, str, Digest]:
        """The manifest or index named by a tag or digest: (bytes, media type, digest of the bytes).

        A manifest asked for by digest must hash to it (``DigestMismatch`` otherwise).
        """
        response = self.registry.request(
            "GET",
            self._url(f"manifests/{reference}"),
            scopes=(self.scope,),
            headers={"Accept": MANIFEST_ACCEPT},
        )
        if response.status != 200:
            raise self._fail(response, what)
        data = response.data
        if len(data) > MANIFEST_MAX:
            raise DigestMismatch(
                f"{what} is {len(data)} bytes, more than the {MANIFEST_MAX} a manifest may have"
            )
        media_type = (response.headers.get("Content-Type") or "").partition(";")[0].strip()
        if reference.startswith(("sha256:", "sha512:")):
            want = Digest.parse(reference)
            found = Digest.of_bytes(data, want.algorithm)
            if found != want:
                raise DigestMismatch(
                    f"digest mismatch: {what} was requested as {want} but the registry sent {found}"
                )
        else:
            found = Digest.of_bytes(data)
        return data, media_type, found

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> Digest:
        """Upload a manifest under a tag or its digest; returns its digest."""
        response = self.registry.request(
            "PUT",
            self._url(f"manifests/{reference}"),
            scopes=(self.scope,),
            headers={"Content-Type": media_type},
            body=data,
        )
        if response.status not in (200, 201, 202):
            raise self._fail(response, f"manifest {self.name}:{reference}")
        return Digest.of_bytes(data)

    def tags(self) -> list[str]:
        """Every tag of the repository, following the ``Link`` pagination of ``/tags/list``."""
        url = self._url("tags/list?n=1000")
        found: list[str] = []
        for _ in range(10_000):  # a registry that links in a circle must not hang us
            response = self.registry.request("GET", url, scopes=(self.scope,))
            if response.status != 200:
                raise self._fail(response, f"tags of {self.name}")
            try:
                doc = json.loads(response.data)
            except ValueError:
                doc = None
            tags = doc.get("tags") if isinstance(doc, dict) else None
            found += [t for t in tags or () if isinstance(t, str)]
            link = response.headers.get("Link", "")
            if 'rel="next"' not in link:
                break
            url = self._absolute(link.partition("<")[2].partition(">")[0])
        return found

    # --- blobs ------------------------------------------------------------------------------------

    def blob_size(self, digest: str) -> int | None:
        """``HEAD`` a blob: its size if the registry has it, None if not."""
        response = self.registry.request("HEAD", self._url(f"blobs/{digest}"), scopes=(self.scope,))
        if response.status == 200:
            length = response.headers.get("Content-Length")
            return int(length) if length and length.isdigit() else -1
        if response.status == 404:
            return None
        raise self._fail(response, f"blob {digest} in {self.name}")

    def open_blob(self, digest: str, offset: int = 0) -> tuple[BaseHTTPResponse, int]:
        """Start reading a blob at ``offset``: (streaming response, the offset it really starts at).

        A registry that ignores ``Range`` answers 200 with the whole blob: the
        returned offset is then 0 and the caller starts over.
        """
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        response = self.registry.request(
            "GET", self._url(f"blobs/{digest}"), scopes=(self.scope,), headers=headers, stream=True
        )
        if response.status == 206 and offset:
            return response, offset
        if response.status == 200:
            return response, 0
        response.read()
        response.release_conn()
        raise self._fail(response, f"blob {digest} of {self.name}")

    def mount(self, digest: str, source: str) -> bool:
        """Ask to mount ``digest`` from repository ``source`` of the same registry; True if it did."""
        query = urllib.parse.urlencode({"mount": digest, "from": source})
        response = self.registry.request(
            "POST",
            self._url(f"blobs/uploads/?{query}"),
            scopes=(self.scope, f"repository:{source}:pull"),
            headers={"Content-Length": "0"},
        )
        if response.status == 201:
            return True
        if response.status == 202:
            self._cancel(response)  # the registry opened an upload instead: not needed
            return False
        if response.status in (401, 403, 404):
            return False  # no pull access to the source: upload normally
        raise self._fail(response, f"blob {digest} mount into {self.name}")

    def _cancel(self, response: BaseHTTPResponse) -> None:
        location = response.headers.get("Location")
        if location:
            self.registry.request("DELETE", self._absolute(location), scopes=(self.scope,))

    def _absolute(self, location: str) -> str:
        return urllib.parse.urljoin(self.registry.base + "/", location)

    def start_upload(self) -> str:
        """Open an upload session; returns its URL."""
        response = self.registry.request(
            "POST", self._url("blobs/uploads/"), scopes=(self.scope,), headers={"Content-Length": "0"}
        )
        location = response.headers.get("Location")
        if response.status != 202 or not location:
            raise self._fail(response, f"blob upload to {self.name}")
        return self._absolute(location)

    def upload_chunk(self, url: str, body: Body, start: int, length: int) -> str:
        """``PATCH`` bytes ``start..start+length-1`` to an upload; returns the URL for the next request."""
        response = self.registry.request(
            "PATCH",
            url,
            scopes=(self.scope,),
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(length),
                "Content-Range": f"{start}-{start + length - 1}",
            },
            body=body,
        )
        location = response.headers.get("Location")
        if response.status != 202 or not location:
            raise self._fail(response, f"blob upload to {self.name}")
        return self._absolute(location)

    def finish_upload(self, url: str, digest: str, body: Body = None, length: int = 0) -> None:
        """``PUT ?digest=`` to close an upload, with the last bytes (or all of them: monolithic)."""
        sep = "&" if "?" in url else "?"
        response = self.registry.request(
            "PUT",
            f"{url}{sep}{urllib.parse.urlencode({'digest': digest})}",
            scopes=(self.scope,),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(length)},
            body=body if length else b"",
        )
        if response.status not in (201, 204):
            raise self._fail(response, f"blob {digest} upload to {self.name}")
