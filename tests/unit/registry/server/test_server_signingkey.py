"""The token signing key lives in the storage directory: private, made once, the same after a restart."""

from __future__ import annotations

import base64
import os
import stat
import threading
from pathlib import Path

import bcrypt
import pytest

from pallet.errors import InvalidArgument
from pallet.registry.server import signingkey
from pallet.registry.server.auth import TokenAuth
from pallet.registry.server.serve import build_server
from pallet.registry.server.tokens import Scope

PULL = [Scope("repository", "app", frozenset({"pull"}))]


def test_signing_key_is_made_once_in_the_storage_directory_with_mode_0600(tmp_path: Path) -> None:
    key = signingkey.load_or_create(str(tmp_path))
    path = tmp_path / signingkey.KEY_FILE
    assert len(key) == signingkey.KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == key
    assert signingkey.load_or_create(str(tmp_path)) == key
    assert sorted(os.listdir(tmp_path)) == [signingkey.KEY_FILE]  # no temp file left


def test_servers_starting_at_once_on_one_directory_agree_on_one_key(tmp_path: Path) -> None:
    keys: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: keys.append(signingkey.load_or_create(str(tmp_path))))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8
    assert len(set(keys)) == 1
    assert sorted(os.listdir(tmp_path)) == [signingkey.KEY_FILE]


def test_truncated_key_file_is_refused_saying_how_to_recover(tmp_path: Path) -> None:
    (tmp_path / signingkey.KEY_FILE).write_bytes(b"short")
    with pytest.raises(InvalidArgument, match="remove it and a new key is made"):
        signingkey.load_or_create(str(tmp_path))


def _token_server(tmp_path: Path) -> TokenAuth:
    server = build_server(
        addr="127.0.0.1:0",
        storage_dir=str(tmp_path / "storage"),
        auth="token",
        htpasswd=str(tmp_path / "htpasswd"),
    )
    server.server_close()  # only its token auth is used here
    assert server.token_auth is not None
    return server.token_auth


def test_token_issued_before_a_restart_is_accepted_after_it(tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    (tmp_path / "htpasswd").write_text(f"alice:{hashed}\n")
    basic = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    before = _token_server(tmp_path)
    token = str(before.issue(basic, ["repository:app:pull"], "pallet-registry")["token"])
    after = _token_server(tmp_path)  # a new server process would read the same directory
    assert after.authorize(f"Bearer {token}", PULL, "http://127.0.0.1") == "alice"
