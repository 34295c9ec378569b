"""``pallet registry serve --auth token`` restarted on the same storage keeps accepting its tokens."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import bcrypt
import pytest
from server_process import RegistryProcess

pytestmark = pytest.mark.root


def test_bearer_token_issued_before_a_restart_is_accepted_after_it(tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$")
    (tmp_path / "htpasswd").write_text(f"alice:{hashed}\n")
    args = ("--auth", "token", "--htpasswd", str(tmp_path / "htpasswd"))
    storage = tmp_path / "storage"
    form = b"grant_type=password&username=alice&password=s3cret&service=pallet-registry&scope=repository:app:pull"

    first = RegistryProcess(storage, tmp_path / "first.log", *args)
    try:
        status, _, body = first.request(
            "POST", "/token", form, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert status == 200
        token = json.loads(body)["access_token"]
    finally:
        first.stop()
    key = storage / "token-signing.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600

    second = RegistryProcess(storage, tmp_path / "second.log", *args)
    try:
        status, _, body = second.request(
            "GET", "/v2/app/tags/list", headers={"Authorization": f"Bearer {token}"}
        )
        assert (status, second.error_code(body)) == (404, "NAME_UNKNOWN")  # authorized; nothing pushed
    finally:
        second.stop()
