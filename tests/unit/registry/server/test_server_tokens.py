"""Token signing of the registry's token mode, and scope parsing."""

from __future__ import annotations

import pytest

from pallet.registry.server.tokens import Scope, TokenError, TokenSigner, parse_scope


def test_parse_scope_keeps_colons_of_a_registry_host_in_the_name() -> None:
    scope = parse_scope("repository:localhost:5000/app:pull,push")
    assert (scope.type, scope.name, scope.actions) == ("repository", "localhost:5000/app", {"pull", "push"})


def test_parse_scope_rejects_text_without_actions_part() -> None:
    with pytest.raises(ValueError, match="malformed scope"):
        parse_scope("repository")


def test_issued_token_verifies_with_its_subject_and_access() -> None:
    signer = TokenSigner(key=b"k" * 32)
    token = signer.issue(subject="alice", audience="svc", access=[parse_scope("repository:app:pull,push")])
    subject, access = signer.verify(token, audience="svc")
    assert subject == "alice"
    assert access == [Scope("repository", "app", frozenset({"pull", "push"}))]


def test_token_with_edited_claims_is_rejected() -> None:
    signer = TokenSigner(key=b"k" * 32)
    header, payload, mac = signer.issue(subject="a", audience="svc", access=[]).split(".")
    forged = f"{header}.{payload[:-2]}xx.{mac}"
    with pytest.raises(TokenError, match="signature"):
        signer.verify(forged, audience="svc")


def test_token_of_another_server_key_is_rejected() -> None:
    token = TokenSigner(key=b"a" * 32).issue(subject="a", audience="svc", access=[])
    with pytest.raises(TokenError, match="signature"):
        TokenSigner(key=b"b" * 32).verify(token, audience="svc")


def test_expired_token_is_rejected() -> None:
    signer = TokenSigner(key=b"k" * 32, ttl=60)
    token = signer.issue(subject="a", audience="svc", access=[], now=1000)
    signer.verify(token, audience="svc", now=1059)
    with pytest.raises(TokenError, match="expired"):
        signer.verify(token, audience="svc", now=1060)


def test_token_for_another_service_is_rejected() -> None:
    signer = TokenSigner(key=b"k" * 32)
    token = signer.issue(subject="a", audience="svc", access=[])
    with pytest.raises(TokenError, match="another service"):
        signer.verify(token, audience="other")


def test_scope_is_covered_by_wildcard_or_superset_only() -> None:
    pull_push = Scope("repository", "app", frozenset({"pull", "push"}))
    assert pull_push.covered_by([Scope("repository", "app", frozenset({"*"}))])
    assert pull_push.covered_by([Scope("repository", "app", frozenset({"pull", "push", "delete"}))])
    assert not pull_push.covered_by([Scope("repository", "app", frozenset({"pull"}))])
    assert not pull_push.covered_by([Scope("repository", "other", frozenset({"pull", "push"}))])
