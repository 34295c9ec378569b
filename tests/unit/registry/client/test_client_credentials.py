"""config.json credentials, Docker Hub naming, insecure-registry rules, and the CLI verbs end to end."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
from pathlib import Path

import pytest

from pallet.cli.main import main
from pallet.registry.client import credentials, hosts
from pallet.registry.client.credentials import Credentials
from pallet.testing.registry import FakeRegistry

from .conftest import seed_image


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    return tmp_path / "docker" / "config.json"


def test_login_is_stored_in_docker_format_and_keeps_other_keys(docker_config: Path) -> None:
    docker_config.parent.mkdir()
    docker_config.write_text(json.dumps({"auths": {"other:5000": {"auth": "eDp5"}}, "psFormat": "x"}))
    credentials.store("localhost:5000", Credentials(username="bob", password="pw:with:colons"))
    doc = json.loads(docker_config.read_text())
    assert base64.b64decode(doc["auths"]["localhost:5000"]["auth"]) == b"bob:pw:with:colons"
    assert doc["auths"]["other:5000"] == {"auth": "eDp5"}
    assert doc["psFormat"] == "x"
    assert stat.S_IMODE(os.stat(docker_config).st_mode) == 0o600
    assert credentials.lookup("localhost:5000") == Credentials(username="bob", password="pw:with:colons")


def test_docker_hub_uses_the_index_v1_key(docker_config: Path) -> None:
    credentials.store(hosts.normalize("docker.io"), Credentials(username="u", password="p"))
    assert "https://index.docker.io/v1/" in json.loads(docker_config.read_text())["auths"]
    assert credentials.lookup("docker.io") == Credentials(username="u", password="p")
    assert hosts.api_host("docker.io") == "registry-1.docker.io"
    assert hosts.normalize("https://index.docker.io/v1/") == "docker.io"


def test_existing_docker_login_with_https_key_is_found(docker_config: Path) -> None:
    docker_config.parent.mkdir()
    auth = base64.b64encode(b"eve:pw").decode()
    docker_config.write_text(json.dumps({"auths": {"https://reg.example.com": {"auth": auth}}}))
    assert credentials.lookup("reg.example.com") == Credentials(username="eve", password="pw")


def test_logout_erases_only_that_registry(docker_config: Path) -> None:
    credentials.store("a:1", Credentials(username="u", password="p"))
    credentials.store("b:2", Credentials(username="u", password="p"))
    assert credentials.erase("a:1")
    assert not credentials.erase("a:1")
    assert credentials.lookup("a:1") is None
    assert credentials.lookup("b:2") is not None


@pytest.mark.parametrize(
    ("registry", "insecure", "expected"),
    [
        ("localhost:5000", (), True),
        ("127.0.0.5:5000", (), True),
        ("[::1]:5000", (), True),
        ("localhost", (), True),
        ("127.255.255.254", (), True),
        ("::1", (), True),
        ("128.0.0.1:5000", (), False),
        ("[::2]:5000", (), False),
        ("localhost.example.com:5000", (), False),
        ("registry.example.com", (), False),
        ("registry.example.com:5000", ("registry.example.com:5000",), True),
        ("10.1.2.3:5000", ("10.0.0.0/8",), True),
        ("10.1.2.3:5000", ("192.168.0.0/16",), False),
    ],
)
def test_insecure_registries_follow_docker_rules(
    registry: str, insecure: tuple[str, ...], expected: bool
) -> None:
    assert hosts.is_insecure(registry, insecure) is expected


def test_insecure_list_reads_registries_json_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "registries.json").write_text(json.dumps({"insecure-registries": ["reg.lan:5000"]}))
    monkeypatch.setenv("PALLET_INSECURE_REGISTRIES", "other.lan, 10.0.0.0/8")
    found = hosts.insecure_list(tmp_path, ("flag.lan",))
    assert {"reg.lan:5000", "other.lan", "10.0.0.0/8", "flag.lan"} <= set(found)


def _cli(*argv: str, stdin: bytes = b"") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err, stdin=io.BytesIO(stdin), stdout_binary=io.BytesIO())
    return code, out.getvalue(), err.getvalue()


def test_cli_login_pull_logout_against_basic_auth(tmp_path: Path, docker_config: Path) -> None:
    root = str(tmp_path / "root")
    with FakeRegistry(auth="basic", users={"alice": "pw"}) as reg:
        seed_image(reg, "app", "v1", [{"a": b"a"}])
        code, _, err = _cli("--root", root, "pull", f"{reg.host}/app:v1")
        assert code == 77
        assert err == f'pallet: unauthorized: authentication required; run "pallet login {reg.host}"\n'
        code, out, _ = _cli("login", "-u", "alice", "--password-stdin", reg.host, stdin=b"wrong\n")
        assert code == 77
        code, out, _ = _cli("login", "-u", "alice", "--password-stdin", reg.host, stdin=b"pw\n")
        assert (code, out) == (0, "Login Succeeded\n")
        code, out, _ = _cli("--root", root, "pull", "-q", f"{reg.host}/app:v1")
        assert (code, out) == (0, f"{reg.host}/app:v1\n")
        code, out, _ = _cli("--root", root, "push", "-q", f"{reg.host}/app:v1")
        assert code == 0
        code, out, _ = _cli("logout", reg.host)
        assert (code, out) == (0, f"Removing login credentials for {reg.host}\n")
        assert credentials.lookup(reg.host) is None


def test_cli_pull_of_unknown_tag_exits_66_with_one_line(tmp_path: Path, docker_config: Path) -> None:
    with FakeRegistry() as reg:
        seed_image(reg, "busybox", "latest", [{"a": b"a"}])
        code, _, err = _cli("--root", str(tmp_path), "pull", f"{reg.host}/busybox:nope")
    assert code == 66
    assert err == f"pallet: manifest for {reg.host}/busybox:nope not found: manifest unknown\n"


def test_cli_pull_of_unreachable_registry_exits_69(tmp_path: Path, docker_config: Path) -> None:
    code, _, err = _cli("--root", str(tmp_path), "pull", "127.0.0.1:1/app:v1")
    assert code == 69
    assert "connection refused" in err
    assert err.count("\n") == 1


def test_cli_pull_prints_one_line_per_event_without_a_terminal(tmp_path: Path, docker_config: Path) -> None:
    with FakeRegistry() as reg:
        _, digest = seed_image(reg, "app", "v1", [{"a": b"a"}])
        code, out, _ = _cli("--root", str(tmp_path), "pull", f"{reg.host}/app:v1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "v1: Pulling from app"
    assert any(line.endswith(": Pull complete") for line in lines)
    assert f"Digest: {digest}" in lines
    assert lines[-1] == f"{reg.host}/app:v1"


def test_cli_pull_all_tags_follows_pagination(tmp_path: Path, docker_config: Path) -> None:
    with FakeRegistry() as reg:
        for tag in ("a", "b", "c"):
            seed_image(reg, "app", tag, [{tag: tag.encode()}])
        code, out, err = _cli("--root", str(tmp_path), "pull", "-q", "-a", f"{reg.host}/app")
    assert code == 0, err
    assert out.splitlines() == [f"{reg.host}/app:{t}" for t in ("a", "b", "c")]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_cli_pull_on_a_terminal_draws_bars_with_sizes(tmp_path: Path, docker_config: Path) -> None:
    out = _Terminal()
    with FakeRegistry() as reg:
        seed_image(reg, "app", "v1", [{"a": os.urandom(50_000)}])
        code = main(
            ["--root", str(tmp_path), "pull", f"{reg.host}/app:v1"],
            out=out,
            err=io.StringIO(),
            stdin=io.BytesIO(),
            stdout_binary=io.BytesIO(),
        )
    assert code == 0
    text = out.getvalue()
    assert "Pull complete" in text
    assert "kB" in text  # the size column
    assert text.rstrip().endswith(f"{reg.host}/app:v1")


def test_credential_helper_is_asked_for_the_registry(
    tmp_path: Path, docker_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    helper = tmp_path / "bin" / "docker-credential-fake"
    helper.parent.mkdir()
    helper.write_text(
        '#!/bin/sh\nread host\necho "{\\"ServerURL\\":\\"$host\\",\\"Username\\":\\"helped\\",\\"Secret\\":\\"pw-for-$host\\"}"\n'
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}:{os.environ['PATH']}")
    docker_config.parent.mkdir()
    docker_config.write_text(json.dumps({"credsStore": "fake", "credHelpers": {"special:1": "none-such"}}))
    assert credentials.lookup("reg.example:5000") == Credentials(
        username="helped", password="pw-for-reg.example:5000"
    )
    assert credentials.lookup("special:1") is None  # a helper that cannot run: anonymous
