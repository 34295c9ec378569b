"""Registry authentication: anonymous, HTTP basic, and bearer tokens from a ``WWW-Authenticate`` challenge.

The flow real registries use (Docker Hub, distribution, Harbor, pallet's own
server): a request answered ``401`` carries ``WWW-Authenticate: Bearer
realm="…",service="…",scope="…"``; the client asks the realm for a token for
that scope (with basic credentials when it has them, anonymously otherwise),
then repeats the request with ``Authorization: Bearer <token>``. ``Basic
realm="…"`` asks for the credentials on every request instead.

Tokens are cached per scope set until shortly before they expire
(``expires_in``, 60 s when the server does not say); a ``401`` on a request
that carried a cached token drops it and fetches a new one, once.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse

from pallet.oci.record import Record
from pallet.registry.client.errors import Unauthorized

__all__ = ["Authorizer", "Challenge", "parse_challenge"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from pallet.registry.client.credentials import Credentials
    from pallet.registry.client.transport import Transport

#: minimum token lifetime the spec promises when ``expires_in`` is absent
_DEFAULT_EXPIRY = 60.0
#: a token this close to expiry is not used again
_EXPIRY_MARGIN = 5.0


class Challenge(Record):
    """One ``WWW-Authenticate`` challenge: ``scheme`` in lowercase, its parameters."""

    scheme: str
    params: Mapping[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """Parse ``Bearer realm="https://auth",service="reg",scope="repository:a:pull"``; None if empty."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " ,":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        if i < n and rest[i] == '"':
            i += 1
            value = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                value.append(rest[i])
                i += 1
            i += 1
            params[key] = "".join(value)
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            params[key] = rest[i:end].strip()
            i = end
    return Challenge(scheme=scheme.lower(), params=params)


class Authorizer:
    """The ``Authorization`` header for requests to one registry, per scope; thread-safe."""

    def __init__(self, transport: Transport, registry: str, credentials: Credentials | None) -> None:
        self.transport = transport
        self.registry = registry
        self.credentials = credentials
        self.challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def _basic(self) -> str | None:
        creds = self.credentials
        if creds is None or not creds.username:
            return None
        return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()

    def headers(self, scopes: tuple[str, ...]) -> dict[str, str]:
        """The header to send with a request needing ``scopes`` (empty when anonymous is all we know)."""
        challenge = self.challenge
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            basic = self._basic()
            return {"Authorization": basic} if basic else {}
        if challenge.scheme == "bearer":
            return {"Authorization": f"Bearer {self._token(scopes)}"}
        return {}

    def unauthorized(self, header: str, scopes: tuple[str, ...], sent: bool) -> bool:
        """Learn from a ``401``: True if a retry may succeed (new challenge, or a stale token dropped).

        ``sent`` says whether the failed request carried an Authorization header.
        """
        challenge = parse_challenge(header)
        if challenge is None:
            return False
        with self._lock:
            first = self.challenge is None or self.challenge.scheme != challenge.scheme
            self.challenge = challenge
            if challenge.scheme == "bearer" and sent:
                # an expired or revoked token, or a token for too small a scope
                dropped = self._tokens.pop(scopes, None) is not None
                return dropped or first
        if challenge.scheme == "basic":
            return not sent and self._basic() is not None
        return first or not sent

    def _token(self, scopes: tuple[str, ...]) -> str:
        now = time.monotonic()
        with self._lock:
            cached = self._tokens.get(scopes)
        if cached is not None and cached[1] > now:
            return cached[0]
        token, lifetime = self._fetch_token(scopes)
        with self._lock:
            self._tokens[scopes] = (token, now + max(lifetime - _EXPIRY_MARGIN, 1.0))
        return token

    def _fetch_token(self, scopes: tuple[str, ...]) -> tuple[str, float]:
        assert self.challenge is not None
        params = self.challenge.params
        realm = params.get("realm")
        if not realm:
            raise Unauthorized(
                f"registry {self.registry} asked for a bearer token but named no realm to get it from"
            )
        query: list[tuple[str, str]] = []
        if params.get("service"):
            query.append(("service", params["service"]))
        for scope in scopes:
            query.append(("scope", scope))
        creds = self.credentials
        headers: dict[str, str] = {}
        if creds is not None and creds.identity_token:
            form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", creds.identity_token),
                ("client_id", "pallet"),
            ]
            response = self.transport.request(
                "POST",
                realm,
                registry=self.registry,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                body=urllib.parse.urlencode(form + query).encode(),
            )
        else:
            basic = self._basic()
            if basic:
                headers["Authorization"] = basic
            sep = "&" if "?" in realm else "?"
            url = realm + (sep + urllib.parse.urlencode(query) if query else "")
            response = self.transport.request("GET", url, registry=self.registry, headers=headers)
        if response.status in (401, 403):
            if creds is None:
                raise Unauthorized(
                    f'unauthorized: authentication required; run "pallet login {self.registry}"'
                )
            raise Unauthorized(
                f'unauthorized: incorrect username or password for {self.registry}; run "pallet login {self.registry}"'
            )
        if response.status != 200:
            raise Unauthorized(
                f"token server {realm} of registry {self.registry} answered HTTP {response.status}; try again later"
            )
        try:
            doc = json.loads(response.data)
        except ValueError:
            doc = None
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise Unauthorized(f"token server {realm} of registry {self.registry} returned no token")
        lifetime = doc.get("expires_in") if isinstance(doc, dict) else None
        return token, float(lifetime) if isinstance(
            lifetime, int | float
        ) and lifetime > 0 else _DEFAULT_EXPIRY
