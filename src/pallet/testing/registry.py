"""An in-memory registry on 127.0.0.1 for tests of the registry client (the test kit's "in-process registry").

It speaks enough of the distribution API v2 for pull and push (manifests,
blobs with ``Range``, monolithic and chunked uploads, cross-repository
mounts) and the three auth schemes (none, basic, bearer with its own
``/token`` endpoint and per-repository scopes), and it can misbehave on
purpose, so tests can check the client's reaction:

- ``cut_once[digest] = n``: the next GET of that blob sends ``n`` bytes, then
  drops the connection (an interrupted pull);
- ``corrupt.add(digest)``: serve other bytes under that digest;
- ``ignore_range``: answer ranged GETs with the whole blob (200);
- ``token_lifetime``: seconds a token lives (0: every token is already stale);
- ``throttle``: bytes per second for blob bodies, so a test can kill a slow pull;
- ``redirect_blobs``: GETs of blobs redirect to ``localhost:<port>`` (another
  host name than ``127.0.0.1``), to check the client drops ``Authorization``.

Every request is logged in ``requests`` as ``(method, path, status, had_auth)``.
Use as a context manager; ``host`` is ``127.0.0.1:<port>``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["FakeRegistry"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Self


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class FakeRegistry:
    """A registry in memory; ``auth`` is ``none``, ``basic`` or ``bearer``; ``users`` maps name to password."""

    def __init__(self, *, auth: str = "none", users: dict[str, str] | None = None) -> None:
        self.auth = auth
        self.users = users or {}
        self.blobs: dict[str, bytes] = {}
        #: repository -> set of blob digests it holds
        self.repo_blobs: dict[str, set[str]] = {}
        #: (repository, tag or digest) -> (bytes, media type)
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.uploads: dict[str, bytearray] = {}
        self.requests: list[tuple[str, str, int, bool]] = []
        self.cut_once: dict[str, int] = {}
        self.corrupt: set[str] = set()
        self.ignore_range = False
        self.redirect_blobs = False
        self.token_lifetime = 300
        #: most tags per page of ``/tags/list`` (small, so clients must follow ``Link``)
        self.page_size = 2
        #: bytes per second for blob bodies (0: as fast as possible)
        self.throttle = 0
        #: token -> (granted scopes, expiry)
        self.tokens: dict[str, tuple[set[str], float]] = {}
        self.token_requests: list[dict[str, list[str]]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-registry",
            daemon=True,
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # --- content set-up for tests ---------------------------------------------------------------

    def put_blob(self, repository: str, data: bytes) -> str:
        digest = _digest(data)
        with self._lock:
            self.blobs[digest] = data
            self.repo_blobs.setdefault(repository, set()).add(digest)
        return digest

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        digest = _digest(data)
        with self._lock:
            self.manifests[(repository, reference)] = (data, media_type)
            self.manifests[(repository, digest)] = (data, media_type)
        return digest

    def count(self, method: str, fragment: str) -> int:
        """How many requests of ``method`` had ``fragment`` in their path."""
        return sum(1 for m, p, _, _ in self.requests if m == method and fragment in p)

    # --- auth -----------------------------------------------------------------------------------

    def _user(self, header: str) -> str | None:
        if not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return user if self.users.get(user) == password else None

    def allowed(self, header: str, repository: str | None, action: str) -> bool:
        if self.auth == "none":
            return True
        if self.auth == "basic":
            return self._user(header) is not None
        if not header.startswith("Bearer "):
            return False
        with self._lock:
            grant = self.tokens.get(header[7:])
        if grant is None or grant[1] <= time.monotonic():
            return False
        if repository is None:
            return True
        return f"repository:{repository}:{action}" in grant[0]

    def issue_token(self, header: str, query: dict[str, list[str]]) -> tuple[int, bytes]:
        self.token_requests.append(query)
        user = self._user(header) if header else None
        if header and user is None:
            return 401, b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}'
        granted: set[str] = set()
        for scope in query.get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            for action in actions.split(","):
                if user is not None or (action == "pull" and name.startswith("public/")):
                    granted.add(f"{kind}:{name}:{action}")
        token = secrets.token_hex(16)
        with self._lock:
            self.tokens[token] = (granted, time.monotonic() + self.token_lifetime)
        return 200, json.dumps({"token": token, "expires_in": max(self.token_lifetime, 1)}).encode()

    def challenge(self, repository: str | None, action: str) -> str:
        if self.auth == "basic":
            return 'Basic realm="fake"'
        scope = f',scope="repository:{repository}:{action}"' if repository else ""
        return f'Bearer realm="http://{self.host}/token",service="fake-registry"{scope}'


def _handler(reg: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if "Content-Length" not in (headers or {}):
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            reg.requests.append((self.command, self.path, status, bool(self.headers.get("Authorization"))))

        def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
            body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
            self._send(status, body, {"Content-Type": "application/json", **(headers or {})})

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _route(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            path = url.path
            auth = self.headers.get("Authorization", "")
            if path == "/token":
                status, body = reg.issue_token(auth, query)
                self._send(status, body, {"Content-Type": "application/json"})
                return
            if path.startswith("/_storage/"):
                data = reg.blobs.get(path[len("/_storage/") :])
                self._send(200 if data is not None else 404, data or b"")
                return
            if path in ("/v2/", "/v2"):
                if not reg.allowed(auth, None, "pull"):
                    self._error(
                        401,
                        "UNAUTHORIZED",
                        "authentication required",
                        {"WWW-Authenticate": reg.challenge(None, "")},
                    )
                    return
                self._send(200, b"{}", {"Content-Type": "application/json"})
                return
            if not path.startswith("/v2/"):
                self._error(404, "NOT_FOUND", "not found")
                return
            rest = path[4:]
            if rest.endswith("/tags/list"):
                self._tags(rest[: -len("/tags/list")], query, auth)
                return
            for marker in ("/manifests/", "/blobs/uploads/", "/blobs/"):
                if marker in rest:
                    repository, _, tail = rest.partition(marker)
                    break
            else:
                self._error(404, "NOT_FOUND", "not found")
                return
            action = "pull" if self.command in ("GET", "HEAD") else "push"
            if not reg.allowed(auth, repository, action):
                self._error(
                    401,
                    "UNAUTHORIZED",
                    "authentication required",
                    {
                        "WWW-Authenticate": reg.challenge(
                            repository, "pull,push" if action == "push" else "pull"
                        )
                    },
                )
                return
            if marker == "/manifests/":
                self._manifest(repository, tail)
            elif marker == "/blobs/":
                self._blob(repository, tail)
            else:
                self._upload(repository, tail, query, auth)

        def _tags(self, repository: str, query: dict[str, list[str]], auth: str) -> None:
            if not reg.allowed(auth, repository, "pull"):
                self._error(
                    401,
                    "UNAUTHORIZED",
                    "authentication required",
                    {"WWW-Authenticate": reg.challenge(repository, "pull")},
                )
                return
            tags = sorted(
                ref for repo, ref in reg.manifests if repo == repository and not ref.startswith("sha256:")
            )
            last = query.get("last", [""])[0]
            tags = [t for t in tags if t > last]
            n = int(query.get("n", ["2"])[0])
            n = min(n, reg.page_size)
            headers = {"Content-Type": "application/json"}
            if len(tags) > n:
                headers["Link"] = f'</v2/{repository}/tags/list?n={n}&last={tags[n - 1]}>; rel="next"'
            self._send(200, json.dumps({"name": repository, "tags": tags[:n]}).encode(), headers)

        def _manifest(self, repository: str, reference: str) -> None:
            if self.command in ("GET", "HEAD"):
                found = reg.manifests.get((repository, reference))
                if found is None:
                    self._error(404, "MANIFEST_UNKNOWN", "manifest unknown")
                    return
                data, media_type = found
                self._send(200, data, {"Content-Type": media_type, "Docker-Content-Digest": _digest(data)})
                return
            data = self._body()
            media_type = self.headers.get("Content-Type", "")
            doc = json.loads(data)
            blobs = [doc.get("config"), *doc.get("layers", [])] if "layers" in doc else []
            missing = [
                d["digest"] for d in blobs if d and d["digest"] not in reg.repo_blobs.get(repository, set())
            ]
            if missing:
                self._error(400, "MANIFEST_BLOB_UNKNOWN", f"blob unknown {missing[0]}")
                return
            digest = reg.put_manifest(repository, reference, data, media_type)
            self._send(
                201,
                b"",
                {"Docker-Content-Digest": digest, "Location": f"/v2/{repository}/manifests/{digest}"},
            )

        def _blob(self, repository: str, digest: str) -> None:
            data = reg.blobs.get(digest)
            if data is None or digest not in reg.repo_blobs.get(repository, set()):
                self._error(404, "BLOB_UNKNOWN", "blob unknown to registry")
                return
            if self.command == "HEAD":
                self._send(200, b"", {"Content-Length": str(len(data)), "Docker-Content-Digest": digest})
                return
            if reg.redirect_blobs and self.headers.get("Host", "").startswith("127.0.0.1"):
                self._send(307, b"", {"Location": f"http://localhost:{reg.port}/_storage/{digest}"})
                return
            if digest in reg.corrupt:
                data = bytes(len(data))
            start = 0
            ranged = self.headers.get("Range", "")
            if ranged.startswith("bytes=") and not reg.ignore_range:
                start = int(ranged[6:].partition("-")[0])
            body = data[start:]
            cut = reg.cut_once.pop(digest, None)
            status = 206 if start else 200
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            reg.requests.append(
                (
                    self.command,
                    self.path + (f" {ranged}" if ranged else ""),
                    status,
                    bool(self.headers.get("Authorization")),
                )
            )
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            if reg.throttle:
                for start in range(0, len(body), 16384):
                    self.wfile.write(body[start : start + 16384])
                    time.sleep(16384 / reg.throttle)
                return
            self.wfile.write(body)

        def _upload(self, repository: str, tail: str, query: dict[str, list[str]], auth: str) -> None:
            if self.command == "POST":
                self._body()
                mount, source = query.get("mount", [""])[0], query.get("from", [""])[0]
                if (
                    mount
                    and source
                    and mount in reg.repo_blobs.get(source, set())
                    and reg.allowed(auth, source, "pull")
                ):
                    reg.repo_blobs.setdefault(repository, set()).add(mount)
                    self._send(
                        201,
                        b"",
                        {"Location": f"/v2/{repository}/blobs/{mount}", "Docker-Content-Digest": mount},
                    )
                    return
                session = secrets.token_hex(8)
                reg.uploads[session] = bytearray()
                self._send(
                    202, b"", {"Location": f"/v2/{repository}/blobs/uploads/{session}", "Range": "0-0"}
                )
                return
            session = tail
            buf = reg.uploads.get(session)
            if buf is None:
                self._error(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown")
                return
            buf += self._body()
            if self.command == "PATCH":
                self._send(
                    202,
                    b"",
                    {"Location": f"/v2/{repository}/blobs/uploads/{session}", "Range": f"0-{len(buf) - 1}"},
                )
                return
            if self.command == "PUT":
                want = query.get("digest", [""])[0]
                data = bytes(buf)
                if _digest(data) != want:
                    self._error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
                    return
                del reg.uploads[session]
                reg.put_blob(repository, data)
                self._send(
                    201, b"", {"Location": f"/v2/{repository}/blobs/{want}", "Docker-Content-Digest": want}
                )
                return
            if self.command == "DELETE":
                del reg.uploads[session]
                self._send(204)
                return
            self._error(405, "UNSUPPORTED", "method not allowed")

        def do_GET(self) -> None:
            self._route()

        # http.server dispatches on these names
        do_HEAD = do_GET  # noqa: N815
        do_PUT = do_GET  # noqa: N815
        do_POST = do_GET  # noqa: N815
        do_PATCH = do_GET  # noqa: N815
        do_DELETE = do_GET  # noqa: N815

    return Handler
