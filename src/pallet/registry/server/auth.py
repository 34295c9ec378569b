"""Who may do what: the server's three auth modes and the 401 challenges they answer with.

- ``none``: everyone may pull and push.
- ``htpasswd``: HTTP basic auth against an htpasswd file of bcrypt hashes
  (``htpasswd -B``, docker-registry's format); any user in it may do anything.
- ``token``: the bearer flow of Docker Hub and distribution. A request without
  a valid token gets ``401`` with ``WWW-Authenticate: Bearer realm=…,
  service=…,scope=…``; the client takes its credentials to the realm (the
  server's own ``/token`` endpoint), which checks them against the htpasswd
  file and issues a token for the scopes asked for.

Checking a bcrypt hash costs tens of milliseconds by design, and a push makes
dozens of requests: a successful check is remembered (as a SHA-256 of the
credentials, never the password) until the htpasswd file changes.

bcrypt reads at most 72 bytes of a password. docker-registry checks with Go's
``bcrypt.CompareHashAndPassword``, which uses the first 72 bytes and ignores
the rest, as Apache's ``htpasswd -B`` did when it made the hash; Python's
``bcrypt`` (4.1 and later) raises instead. So a longer password is cut to its
first 72 bytes before the check: the same passwords open the same entries
here as under docker-registry, and no password length makes the check fail
with anything but a 401.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading

from pallet.errors import InvalidArgument, NotFound
from pallet.registry.server.errorcodes import RegistryError
from pallet.registry.server.tokens import Scope, TokenError, TokenSigner, parse_scope

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    class Authorizer(Protocol):
        """Decides whether a request may proceed; raises ``RegistryError`` (401) if not."""

        def authorize(self, authorization: str | None, needed: list[Scope], base_url: str) -> str:
            """The user name ('' for anonymous) the request acts as."""


__all__ = [
    "BasicAuth",
    "Htpasswd",
    "NoAuth",
    "TokenAuth",
    "parse_basic",
    "parse_bearer",
]

SERVICE = "pallet-registry"

#: the bytes of a password bcrypt reads; the rest is ignored, as docker-registry does (module docstring)
BCRYPT_MAX_PASSWORD = 72

#: actions a token may grant on a repository
_REPOSITORY_ACTIONS = frozenset({"pull", "push", "delete", "*"})


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from ``Authorization: Basic …``, None if absent or malformed."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def parse_bearer(header: str | None) -> str | None:
    """The token of ``Authorization: Bearer …``, None if absent or another scheme."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


class Htpasswd:
    """An htpasswd file of bcrypt entries (``user:$2y$…``), re-read when it changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] = (-1, -1)
        self._hashes: dict[str, bytes] = {}
        self._verified: set[bytes] = set()
        self._load()

    def _load(self) -> None:
        try:
            st = os.stat(self.path)
            with open(self.path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            raise NotFound(
                f"htpasswd file {self.path} not found; create it with 'htpasswd -Bc FILE USER'"
            ) from None
        hashes: dict[str, bytes] = {}
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, hashed = line.partition(":")
            if not sep or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
                raise InvalidArgument(
                    f"{self.path}:{number}: not a bcrypt entry (user:$2y$...); create entries with 'htpasswd -B'"
                )
            hashes[user] = hashed.encode()
        self._hashes = hashes
        self._verified = set()
        self._stamp = (st.st_mtime_ns, st.st_size)

    def check(self, user: str, password: str) -> bool:
        """Whether ``user``/``password`` match an entry of the file."""
        import bcrypt

        with self._lock:
            try:
                st = os.stat(self.path)
                if (st.st_mtime_ns, st.st_size) != self._stamp:
                    self._load()
            except (FileNotFoundError, InvalidArgument, NotFound):
                return False  # the file went away or broke: nobody gets in until it is fixed
            hashed = self._hashes.get(user)
            key = hashlib.sha256(f"{user}\0{password}".encode()).digest()
            if hashed is None:
                return False
            if key in self._verified:
                return True
        if not bcrypt.checkpw(password.encode()[:BCRYPT_MAX_PASSWORD], hashed):
            return False
        with self._lock:
            self._verified.add(key)
        return True


def _scope_param(needed: list[Scope]) -> str:
    return " ".join(str(s) for s in needed)


class NoAuth:
    """Everyone may do everything."""

    def authorize(self, authorization: str | None, needed: list[Scope], base_url: str) -> str:
        return ""


class BasicAuth:
    """HTTP basic auth against an htpasswd file."""

    def __init__(self, htpasswd: Htpasswd, realm: str = "pallet-registry") -> None:
        self.htpasswd = htpasswd
        self.realm = realm

    def authorize(self, authorization: str | None, needed: list[Scope], base_url: str) -> str:
        creds = parse_basic(authorization)
        if creds is not None and self.htpasswd.check(*creds):
            return creds[0]
        raise RegistryError(
            "UNAUTHORIZED",
            detail=[{"Type": s.type, "Name": s.name, "Action": a} for s in needed for a in sorted(s.actions)]
            or None,
            headers={"WWW-Authenticate": f'Basic realm="{self.realm}"'},
        )


class TokenAuth:
    """Bearer tokens from the server's own ``/token`` endpoint.

    ``realm`` is the token endpoint's URL; when not configured it is the
    URL the client used to reach this server plus ``/token``.
    """

    def __init__(
        self, htpasswd: Htpasswd, signer: TokenSigner, *, realm: str = "", service: str = SERVICE
    ) -> None:
        self.htpasswd = htpasswd
        self.signer = signer
        self.realm = realm
        self.service = service

    def challenge(self, needed: list[Scope], base_url: str, error: str = "") -> str:
        realm = self.realm or f"{base_url}/token"
        value = f'Bearer realm="{realm}",service="{self.service}"'
        if needed:
            value += f',scope="{_scope_param(needed)}"'
        if error:
            value += f',error="{error}"'
        return value

    def authorize(self, authorization: str | None, needed: list[Scope], base_url: str) -> str:
        token = parse_bearer(authorization)
        if token is None:
            raise RegistryError(
                "UNAUTHORIZED", headers={"WWW-Authenticate": self.challenge(needed, base_url)}
            )
        try:
            subject, granted = self.signer.verify(token, audience=self.service)
        except TokenError as exc:
            raise RegistryError(
                "UNAUTHORIZED",
                str(exc),
                headers={"WWW-Authenticate": self.challenge(needed, base_url, "invalid_token")},
            ) from None
        missing = [s for s in needed if not s.covered_by(granted)]
        if missing:
            raise RegistryError(
                "UNAUTHORIZED",
                "the token does not grant " + _scope_param(missing),
                headers={"WWW-Authenticate": self.challenge(needed, base_url, "insufficient_scope")},
            )
        return subject

    def issue(self, authorization: str | None, scopes: list[str], service: str) -> dict[str, object]:
        """Answer a token request: check the credentials, grant the scopes asked for.

        Anonymous requests get a token with no access (the registry then says
        which scope was missing); wrong credentials are refused outright.
        """
        creds = parse_basic(authorization)
        subject = ""
        if authorization is not None:
            if creds is None or not self.htpasswd.check(*creds):
                raise RegistryError(
                    "UNAUTHORIZED",
                    "incorrect username or password",
                    headers={"WWW-Authenticate": f'Basic realm="{self.service}"'},
                )
            subject = creds[0]
        if service and service != self.service:
            raise RegistryError("DENIED", f'this token service is "{self.service}", not "{service}"')
        granted: list[Scope] = []
        if subject:
            for text in scopes:
                for item in text.split(" "):
                    if not item:
                        continue
                    try:
                        scope = parse_scope(item)
                    except ValueError:
                        continue  # distribution ignores scopes it cannot parse
                    if scope.type == "repository":
                        actions = scope.actions & _REPOSITORY_ACTIONS
                    elif scope.type == "registry" and scope.name == "catalog":
                        actions = scope.actions & {"*"}
                    else:
                        actions = frozenset()
                    if actions:
                        granted.append(Scope(scope.type, scope.name, actions))
        token = self.signer.issue(subject=subject, audience=self.service, access=granted)
        return {"token": token, "access_token": token, "expires_in": self.signer.ttl}
