"""Bearer tokens of the registry's token mode: scopes, signing, verification.

A token is JWT-shaped (``base64url(header).base64url(claims).base64url(mac)``)
and signed with HMAC-SHA256 under the key of the registry's storage directory
(``signingkey``), so only a server on that directory accepts it, and a token
stays valid across a restart until it expires.
The claims follow distribution's token spec: ``iss``, ``sub``, ``aud`` (the
service), ``exp``, ``nbf``, ``iat``, ``jti`` and ``access``, a list of
``{"type", "name", "actions"}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time

__all__ = ["Scope", "TokenError", "TokenSigner", "parse_scope"]


class TokenError(Exception):
    """A token that is malformed, forged, expired or meant for another service."""


class Scope:
    """``type:name:actions`` as in ``repository:library/busybox:pull,push``."""

    __slots__ = ("actions", "name", "type")

    def __init__(self, type_: str, name: str, actions: frozenset[str]) -> None:
        self.type = type_
        self.name = name
        self.actions = actions

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scope) and (self.type, self.name, self.actions) == (
            other.type,
            other.name,
            other.actions,
        )

    def __hash__(self) -> int:
        return hash((self.type, self.name, self.actions))

    def covered_by(self, granted: list[Scope]) -> bool:
        """Whether the ``granted`` scopes allow every action of this one."""
        allowed: set[str] = set()
        for g in granted:
            if g.type == self.type and g.name == self.name:
                allowed |= g.actions
        return "*" in allowed or self.actions <= allowed


def parse_scope(text: str) -> Scope:
    """Parse a scope; the name may itself hold colons (``repository:host:5000/app:pull``).

    Raises ``ValueError`` when ``text`` is not ``type:name:actions``.
    """
    type_, sep, rest = text.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not (sep and sep2 and type_ and name):
        raise ValueError(f"malformed scope {text!r}: expected type:name:actions")
    return Scope(type_, name, frozenset(a for a in actions.split(",") if a))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_HEADER = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())


class TokenSigner:
    """Issues and verifies the tokens of one server (one key, one issuer)."""

    def __init__(self, *, key: bytes | None = None, issuer: str = "pallet-registry", ttl: int = 300) -> None:
        self._key = key if key is not None else os.urandom(32)
        self.issuer = issuer
        self.ttl = ttl

    def _mac(self, signing_input: str) -> str:
        return _b64(hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest())

    def issue(self, *, subject: str, audience: str, access: list[Scope], now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": issued,
            "nbf": issued - 5,
            "exp": issued + self.ttl,
            "jti": _b64(os.urandom(12)),
            "access": [{"type": s.type, "name": s.name, "actions": sorted(s.actions)} for s in access],
        }
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{_HEADER}.{payload}"
        return f"{signing_input}.{self._mac(signing_input)}"

    def verify(self, token: str, *, audience: str, now: float | None = None) -> tuple[str, list[Scope]]:
        """The subject and granted scopes of a valid ``token``; ``TokenError`` otherwise."""
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("malformed token")
        header, payload, mac = parts
        if not hmac.compare_digest(self._mac(f"{header}.{payload}"), mac):
            raise TokenError("bad token signature")
        try:
            claims = json.loads(_unb64(payload))
            access = [
                Scope(str(a["type"]), str(a["name"]), frozenset(str(x) for x in a["actions"]))
                for a in claims.get("access") or []
            ]
            expires, not_before = int(claims["exp"]), int(claims["nbf"])
            subject, aud = str(claims.get("sub", "")), claims.get("aud")
        except (ValueError, KeyError, TypeError) as exc:
            raise TokenError(f"malformed token claims: {exc}") from None
        moment = time.time() if now is None else now
        if moment >= expires:
            raise TokenError("token expired")
        if moment < not_before:
            raise TokenError("token not valid yet")
        if aud != audience:
            raise TokenError("token issued for another service")
        return subject, access
