"""Auth modes of pallet's registry: header parsing, htpasswd, 401 challenges, token grants."""

from __future__ import annotations

import base64
from pathlib import Path

import bcrypt
import pytest

from pallet.registry.server.auth import BasicAuth, Htpasswd, NoAuth, TokenAuth, parse_basic, parse_bearer
from pallet.registry.server.errorcodes import RegistryError
from pallet.registry.server.tokens import Scope, TokenSigner

PULL = [Scope("repository", "app", frozenset({"pull"}))]
PUSH = [Scope("repository", "app", frozenset({"pull", "push"}))]


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def htpasswd(tmp_path: Path) -> Htpasswd:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$")
    path = tmp_path / "htpasswd"
    path.write_text(f"# users\nalice:{hashed}\n")
    return Htpasswd(str(path))


def test_parse_basic_reads_user_and_password_with_colons() -> None:
    assert parse_basic(_basic("bob", "a:b")) == ("bob", "a:b")
    assert parse_basic("Basic !!!") is None
    assert parse_basic("Bearer abc") is None
    assert parse_basic(None) is None


def test_parse_bearer_takes_the_token_case_insensitively() -> None:
    assert parse_bearer("bearer abc.def.ghi") == "abc.def.ghi"
    assert parse_bearer("Basic abc") is None
    assert parse_bearer("Bearer ") is None


def test_htpasswd_accepts_the_right_password_of_an_apache_2y_entry(htpasswd: Htpasswd) -> None:
    assert htpasswd.check("alice", "s3cret")
    assert htpasswd.check("alice", "s3cret")  # second time from the cache
    assert not htpasswd.check("alice", "wrong")
    assert not htpasswd.check("mallory", "s3cret")


def test_htpasswd_rejects_a_non_bcrypt_entry_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text("alice:{SHA}abcdef\n")
    with pytest.raises(Exception, match=r"htpasswd:1: not a bcrypt entry"):
        Htpasswd(str(path))


def test_htpasswd_change_of_file_revokes_cached_password(tmp_path: Path, htpasswd: Htpasswd) -> None:
    assert htpasswd.check("alice", "s3cret")
    hashed = bcrypt.hashpw(b"other", bcrypt.gensalt(rounds=4)).decode()
    Path(htpasswd.path).write_text(f"alice:{hashed}\n\n")
    assert not htpasswd.check("alice", "s3cret")
    assert htpasswd.check("alice", "other")


def test_no_auth_lets_anonymous_requests_through() -> None:
    assert NoAuth().authorize(None, PUSH, "http://h") == ""


def test_basic_auth_challenges_with_basic_realm(htpasswd: Htpasswd) -> None:
    auth = BasicAuth(htpasswd, realm="myrealm")
    assert auth.authorize(_basic("alice", "s3cret"), PUSH, "http://h") == "alice"
    with pytest.raises(RegistryError) as info:
        auth.authorize(_basic("alice", "bad"), PUSH, "http://h")
    assert info.value.status == 401
    assert info.value.headers["WWW-Authenticate"] == 'Basic realm="myrealm"'


def test_token_auth_challenge_names_realm_service_and_scope(htpasswd: Htpasswd) -> None:
    auth = TokenAuth(htpasswd, TokenSigner(), service="svc")
    with pytest.raises(RegistryError) as info:
        auth.authorize(None, PUSH, "http://127.0.0.1:5000")
    assert info.value.code == "UNAUTHORIZED"
    assert info.value.headers["WWW-Authenticate"] == (
        'Bearer realm="http://127.0.0.1:5000/token",service="svc",scope="repository:app:pull,push"'
    )


def test_token_issued_for_pull_does_not_allow_push(htpasswd: Htpasswd) -> None:
    auth = TokenAuth(htpasswd, TokenSigner(), realm="https://auth/token", service="svc")
    answer = auth.issue(_basic("alice", "s3cret"), ["repository:app:pull"], "svc")
    token = str(answer["token"])
    assert auth.authorize(f"Bearer {token}", PULL, "http://h") == "alice"
    with pytest.raises(RegistryError) as info:
        auth.authorize(f"Bearer {token}", PUSH, "http://h")
    assert 'error="insufficient_scope"' in info.value.headers["WWW-Authenticate"]
    assert 'realm="https://auth/token"' in info.value.headers["WWW-Authenticate"]


def test_token_request_with_wrong_password_is_refused(htpasswd: Htpasswd) -> None:
    auth = TokenAuth(htpasswd, TokenSigner())
    with pytest.raises(RegistryError) as info:
        auth.issue(_basic("alice", "nope"), ["repository:app:pull"], "")
    assert info.value.status == 401


def test_anonymous_token_grants_nothing(htpasswd: Htpasswd) -> None:
    auth = TokenAuth(htpasswd, TokenSigner())
    token = str(auth.issue(None, ["repository:app:pull"], "")["token"])
    with pytest.raises(RegistryError):
        auth.authorize(f"Bearer {token}", PULL, "http://h")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"auth": "token"}, "--auth token needs --htpasswd FILE"),
        ({"auth": "ldap"}, 'unknown auth mode "ldap"'),
        ({"addr": "5000"}, 'invalid address "5000"'),
        ({"tls_cert": "cert.pem"}, "TLS needs both --tls-cert and --tls-key"),
        (
            {"auth": "htpasswd", "htpasswd": "/nonexistent/htpasswd"},
            "htpasswd file /nonexistent/htpasswd not found",
        ),
    ],
)
def test_server_options_that_cannot_work_are_refused_naming_the_option(
    tmp_path: Path, options: dict[str, str], message: str
) -> None:
    from pallet.errors import PalletError
    from pallet.registry.server.serve import build_server

    kwargs: dict[str, str] = {"addr": "127.0.0.1:0", "storage_dir": str(tmp_path)}
    kwargs.update(options)
    with pytest.raises(PalletError, match=message):
        build_server(**kwargs)  # type: ignore[arg-type]
