"""``pallet login``/``logout`` and pull through a configured credential helper (``credsStore``, ``credHelpers``)."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

from pallet.cli.main import main
from pallet.registry.client import credentials
from pallet.registry.client.credentials import Credentials
from pallet.testing.registry import FakeRegistry

from .conftest import seed_image

#: docker-credential-test: the docker credential-helper protocol over a JSON file beside the script
_HELPER = """#!{python}
import json, os, sys
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helper-store.json")
data = json.load(open(path)) if os.path.exists(path) else {{}}
action, stdin = sys.argv[1], sys.stdin.read()
with open(path + ".log", "a") as log:
    log.write(action + "\\n")
if action == "store":
    request = json.loads(stdin)
    data[request["ServerURL"]] = {{"Username": request["Username"], "Secret": request["Secret"]}}
elif action in ("get", "erase"):
    server = stdin.strip()
    if server not in data:
        print("credentials not found in native keychain")
        sys.exit(1)
    if action == "get":
        print(json.dumps({{"ServerURL": server, **data[server]}}))
    else:
        del data[server]
json.dump(data, open(path, "w"))
"""


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    path = tmp_path / "docker" / "config.json"
    path.parent.mkdir()
    return path


@pytest.fixture
def helper_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on $PATH holding ``docker-credential-test``; its secrets land in ``helper-store.json``."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "docker-credential-test"
    script.write_text(_HELPER.format(python=sys.executable))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return bindir


def _helper_store(helper_dir: Path) -> dict[str, dict[str, str]]:
    path = helper_dir / "helper-store.json"
    return json.loads(path.read_text()) if path.exists() else {}  # type: ignore[no-any-return]


def _cli(*argv: str, stdin: bytes = b"") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err, stdin=io.BytesIO(stdin), stdout_binary=io.BytesIO())
    return code, out.getvalue(), err.getvalue()


def test_login_with_creds_store_gives_the_password_to_the_helper_and_not_the_file(
    tmp_path: Path, docker_config: Path, helper_dir: Path
) -> None:
    docker_config.write_text(json.dumps({"credsStore": "test", "psFormat": "x"}))
    with FakeRegistry(auth="basic", users={"alice": "s3cret-pw"}) as reg:
        seed_image(reg, "app", "v1", [{"a": b"a"}])
        code, out, err = _cli("login", "-u", "alice", "--password-stdin", reg.host, stdin=b"s3cret-pw\n")
        assert (code, out) == (0, "Login Succeeded\n")
        assert "unencrypted" not in err
        assert _helper_store(helper_dir) == {reg.host: {"Username": "alice", "Secret": "s3cret-pw"}}
        text = docker_config.read_text()
        assert "s3cret-pw" not in text
        doc = json.loads(text)
        assert doc["auths"] == {reg.host: {}}  # docker's marker entry: the secret is with the helper
        assert doc["psFormat"] == "x"

        # pull reads the helper
        code, out, _ = _cli("--root", str(tmp_path / "root"), "pull", "-q", f"{reg.host}/app:v1")
        assert (code, out) == (0, f"{reg.host}/app:v1\n")

        code, out, _ = _cli("logout", reg.host)
        assert (code, out) == (0, f"Removing login credentials for {reg.host}\n")
        assert _helper_store(helper_dir) == {}
        assert json.loads(docker_config.read_text())["auths"] == {}
        assert credentials.lookup(reg.host) is None
        code, out, _ = _cli("logout", reg.host)
        assert (code, out) == (0, f"Not logged in to {reg.host}\n")


def test_cred_helpers_entry_overrides_creds_store_for_its_registry(
    docker_config: Path, helper_dir: Path
) -> None:
    with FakeRegistry(auth="basic", users={"bob": "pw"}) as reg:
        docker_config.write_text(json.dumps({"credsStore": "none-such", "credHelpers": {reg.host: "test"}}))
        code, _, _ = _cli("login", "-u", "bob", "--password-stdin", reg.host, stdin=b"pw\n")
        assert code == 0
        assert _helper_store(helper_dir) == {reg.host: {"Username": "bob", "Secret": "pw"}}
        assert credentials.lookup(reg.host) == Credentials(username="bob", password="pw")


def test_with_a_helper_configured_the_file_is_not_read_for_that_registry(
    docker_config: Path, helper_dir: Path
) -> None:
    # docker asks only the helper once one is configured: a stale plain entry is not used
    docker_config.write_text(json.dumps({"credsStore": "test", "auths": {"reg:5000": {"auth": "b2xkOnB3"}}}))
    assert credentials.lookup("reg:5000") is None
    assert (helper_dir / "helper-store.json.log").read_text() == "get\n"


def test_login_through_a_helper_that_is_not_installed_fails_naming_it_and_leaves_the_file(
    docker_config: Path,
) -> None:
    original = json.dumps({"credsStore": "missing-helper"})
    docker_config.write_text(original)
    with FakeRegistry(auth="basic", users={"alice": "pw"}) as reg:
        code, _, err = _cli("login", "-u", "alice", "--password-stdin", reg.host, stdin=b"pw\n")
    assert code != 0
    assert 'credential helper "docker-credential-missing-helper"' in err
    assert "Traceback" not in err
    assert docker_config.read_text() == original
