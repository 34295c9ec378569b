"""Registry auth: anonymous, basic, bearer with scopes, token refresh, redirects without credentials."""

from __future__ import annotations

import pytest

from pallet.image.store import ImageStore
from pallet.oci.reference import parse
from pallet.registry.client.auth import parse_challenge
from pallet.registry.client.credentials import Credentials
from pallet.registry.client.errors import Unauthorized
from pallet.registry.client.pull import pull
from pallet.registry.client.repository import Registry, Repository
from pallet.registry.client.transport import Transport
from pallet.testing.registry import FakeRegistry

from .conftest import RecordingProgress, seed_image

ALICE = Credentials(username="alice", password="s3cret")


def _pull(store: ImageStore, transport: Transport, ref: str, creds: Credentials | None) -> None:
    pull(store, parse(ref), transport=transport, credentials=creds, progress=RecordingProgress())


def test_challenge_parameters_are_parsed_with_quotes_and_commas() -> None:
    c = parse_challenge(
        'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"'
    )
    assert c is not None
    assert c.scheme == "bearer"
    assert dict(c.params) == {
        "realm": "https://auth.example/token",
        "service": "reg",
        "scope": "repository:a/b:pull,push",
    }


@pytest.mark.parametrize("mode", ["basic", "bearer"])
def test_pull_without_credentials_is_unauthorized_with_login_hint(
    mode: str, store: ImageStore, transport: Transport
) -> None:
    with FakeRegistry(auth=mode, users={"alice": "s3cret"}) as reg:
        seed_image(reg, "private/app", "v1", [{"a": b"a"}])
        with pytest.raises(Unauthorized) as err:
            _pull(store, transport, f"{reg.host}/private/app:v1", None)
    assert str(err.value) == f'unauthorized: authentication required; run "pallet login {reg.host}"'
    assert err.value.exit_code == 77


def test_basic_auth_pull_sends_credentials(store: ImageStore, transport: Transport) -> None:
    with FakeRegistry(auth="basic", users={"alice": "s3cret"}) as reg:
        seed_image(reg, "app", "v1", [{"a": b"a"}])
        _pull(store, transport, f"{reg.host}/app:v1", ALICE)
        assert store.resolve(f"{reg.host}/app:v1")
        assert all(had_auth for _, _, status, had_auth in reg.requests if status == 200)


def test_bearer_token_is_asked_for_the_repository_scope_once(store: ImageStore, transport: Transport) -> None:
    with FakeRegistry(auth="bearer", users={"alice": "s3cret"}) as reg:
        seed_image(reg, "team/app", "v1", [{"a": b"a"}, {"b": b"b"}])
        _pull(store, transport, f"{reg.host}/team/app:v1", ALICE)
        assert store.resolve(f"{reg.host}/team/app:v1")
        assert len(reg.token_requests) == 1
        assert reg.token_requests[0]["scope"] == ["repository:team/app:pull"]
        assert reg.token_requests[0]["service"] == ["fake-registry"]


def test_anonymous_bearer_token_pulls_a_public_repository(store: ImageStore, transport: Transport) -> None:
    with FakeRegistry(auth="bearer") as reg:
        seed_image(reg, "public/app", "v1", [{"a": b"a"}])
        _pull(store, transport, f"{reg.host}/public/app:v1", None)
        assert store.resolve(f"{reg.host}/public/app:v1")


def test_wrong_password_says_so(store: ImageStore, transport: Transport) -> None:
    with FakeRegistry(auth="bearer", users={"alice": "s3cret"}) as reg:
        seed_image(reg, "app", "v1", [{"a": b"a"}])
        with pytest.raises(Unauthorized, match="incorrect username or password"):
            _pull(store, transport, f"{reg.host}/app:v1", Credentials(username="alice", password="nope"))


def test_revoked_token_is_refreshed_once_and_the_request_repeated(transport: Transport) -> None:
    with FakeRegistry(auth="bearer", users={"alice": "s3cret"}) as reg:
        seed_image(reg, "app", "v1", [{"a": b"a"}])
        repo = Repository(Registry(transport, reg.host, ALICE), "app")
        repo.get_manifest("v1", what="manifest")
        reg.tokens.clear()  # the server forgets every token: the cached one is now stale
        data, _, _ = repo.get_manifest("v1", what="manifest")
        assert data == reg.manifests[("app", "v1")][0]
        assert len(reg.token_requests) == 2


def test_expired_token_is_not_reused(transport: Transport) -> None:
    with FakeRegistry(auth="bearer", users={"alice": "s3cret"}) as reg:
        reg.token_lifetime = 0  # tokens are born expired; the client must fetch one per request
        seed_image(reg, "app", "v1", [{"a": b"a"}])
        repo = Repository(Registry(transport, reg.host, ALICE), "app")
        with pytest.raises(Unauthorized):
            repo.get_manifest("v1", what="manifest")
        assert len(reg.token_requests) >= 2  # refreshed on 401 before giving up


def test_blob_redirect_to_another_host_drops_authorization(store: ImageStore, transport: Transport) -> None:
    with FakeRegistry(auth="bearer", users={"alice": "s3cret"}) as reg:
        reg.redirect_blobs = True
        seed_image(reg, "app", "v1", [{"a": b"a"}])
        _pull(store, transport, f"{reg.host}/app:v1", ALICE)
        storage = [had_auth for _, path, _, had_auth in reg.requests if path.startswith("/_storage/")]
        assert storage
        assert not any(storage)
