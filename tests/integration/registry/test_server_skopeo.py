"""``pallet registry serve`` with skopeo as the client: push and pull in every auth mode, and TLS.

The image is a one-layer busybox made with umoci; what comes back from the
registry must be byte for byte what went in (same manifest digest, same blobs).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from server_process import RegistryProcess

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        not (shutil.which("skopeo") and shutil.which("umoci")), reason="needs skopeo and umoci"
    ),
]

USER, PASSWORD = "tester", "pa55word"


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OCI layout ``busybox:latest`` (static busybox, sh and ls links, /etc/passwd)."""
    base = tmp_path_factory.mktemp("image")
    rootfs = base / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "etc").mkdir()
    busybox = shutil.which("busybox") or pytest.skip("needs busybox-static")
    shutil.copy(busybox, rootfs / "bin" / "busybox")
    for applet in ("sh", "ls"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    layout = base / "oci"
    for cmd in (
        ["umoci", "init", "--layout", str(layout)],
        ["umoci", "new", "--image", f"{layout}:latest"],
        ["umoci", "insert", "--image", f"{layout}:latest", str(rootfs), "/"],
        ["umoci", "config", "--image", f"{layout}:latest", "--config.cmd", "/bin/sh"],
        ["umoci", "gc", "--layout", str(layout)],
    ):
        result = run(*cmd)
        assert result.returncode == 0, result.stderr
    return layout


@pytest.fixture
def htpasswd(tmp_path: Path) -> Path:
    path = tmp_path / "htpasswd"
    path.write_text(f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()}\n")
    return path


@pytest.fixture
def start(tmp_path: Path) -> Iterator[object]:
    started: list[RegistryProcess] = []

    def _start(*args: str, cafile: str | None = None) -> RegistryProcess:
        reg = RegistryProcess(
            tmp_path / "storage", tmp_path / f"registry{len(started)}.log", *args, cafile=cafile
        )
        started.append(reg)
        return reg

    yield _start
    for reg in started:
        reg.stop()


def manifest_digest(layout: Path) -> str:
    return str(json.loads((layout / "index.json").read_text())["manifests"][0]["digest"])


def blobs(layout: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (layout / "blobs" / "sha256").iterdir()}


def round_trip(reg: RegistryProcess, layout: Path, out: Path, *flags: str) -> None:
    """skopeo copy the layout to the registry and back; assert the copy is identical."""
    dest = f"docker://{reg.host}/test/busybox:v1"
    push = run("skopeo", "copy", "-q", *flags, f"oci:{layout}:latest", dest)
    assert push.returncode == 0, push.stderr
    pull_flags = [f.replace("--dest-", "--src-") for f in flags]
    pull = run("skopeo", "copy", "-q", *pull_flags, dest, f"oci:{out}:latest")
    assert pull.returncode == 0, pull.stderr
    assert manifest_digest(out) == manifest_digest(layout)
    assert blobs(out) == blobs(layout)


def test_skopeo_round_trip_without_auth_is_byte_identical(start, layout: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    reg = start()
    round_trip(reg, layout, tmp_path / "back", "--dest-tls-verify=false")
    tags = run("skopeo", "list-tags", "--tls-verify=false", f"docker://{reg.host}/test/busybox")
    assert json.loads(tags.stdout)["Tags"] == ["v1"]


def test_skopeo_round_trip_with_htpasswd_basic_auth(
    start, layout: Path, htpasswd: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    reg = start("--auth", "htpasswd", "--htpasswd", str(htpasswd))
    round_trip(reg, layout, tmp_path / "back", "--dest-tls-verify=false", f"--dest-creds={USER}:{PASSWORD}")


def test_skopeo_round_trip_with_bearer_tokens_from_the_token_endpoint(
    start, layout: Path, htpasswd: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    reg = start("--auth", "token", "--htpasswd", str(htpasswd), "--log-level", "info")
    round_trip(reg, layout, tmp_path / "back", "--dest-tls-verify=false", f"--dest-creds={USER}:{PASSWORD}")
    assert '"GET /token?' in reg.log.read_text()


@pytest.mark.parametrize("mode", ["htpasswd", "token"])
def test_skopeo_push_with_a_wrong_password_is_refused_and_stores_no_manifest(  # type: ignore[no-untyped-def]
    start, layout: Path, htpasswd: Path, mode: str
) -> None:
    reg = start("--auth", mode, "--htpasswd", str(htpasswd))
    push = run(
        "skopeo", "copy", "-q", "--dest-tls-verify=false", f"--dest-creds={USER}:wrong",
        f"oci:{layout}:latest", f"docker://{reg.host}/test/busybox:v1",
    )  # fmt: skip
    assert push.returncode != 0
    assert "unauthorized" in push.stderr.lower() or "authentication required" in push.stderr.lower()
    assert not (reg.storage / "repositories" / "test").exists()


def test_token_mode_challenges_with_bearer_realm_service_and_scope(start, htpasswd: Path) -> None:  # type: ignore[no-untyped-def]
    reg = start("--auth", "token", "--htpasswd", str(htpasswd))
    status, headers, body = reg.request("GET", "/v2/app/tags/list")
    assert (status, reg.error_code(body)) == (401, "UNAUTHORIZED")
    assert headers["www-authenticate"] == (
        f'Bearer realm="http://{reg.host}/token",service="pallet-registry",scope="repository:app:pull"'
    )


def test_skopeo_round_trip_over_tls_verifies_the_servers_certificate(
    start, layout: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    certs = tmp_path / "certs"
    certs.mkdir()
    made = run(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-keyout", str(certs / "server.key"), "-out", str(certs / "ca.crt"),
        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    reg = start(
        "--tls-cert",
        str(certs / "ca.crt"),
        "--tls-key",
        str(certs / "server.key"),
        cafile=str(certs / "ca.crt"),
    )
    assert reg.scheme == "https"
    assert reg.request("GET", "/v2/")[0] == 200
    # skopeo reads *.crt in the cert dir as CAs: the copy verifies the certificate
    cert_dir = tmp_path / "client-certs"
    cert_dir.mkdir()
    shutil.copy(certs / "ca.crt", cert_dir / "ca.crt")
    round_trip(reg, layout, tmp_path / "back", f"--dest-cert-dir={cert_dir}")


def test_token_endpoint_oauth2_password_grant_gives_a_usable_bearer_token(start, htpasswd: Path) -> None:  # type: ignore[no-untyped-def]
    reg = start("--auth", "token", "--htpasswd", str(htpasswd))
    form = f"grant_type=password&username={USER}&password={PASSWORD}&service=pallet-registry&scope=repository:app:pull,push"
    status, _, body = reg.request(
        "POST", "/token", form.encode(), {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 200
    token = json.loads(body)["access_token"]
    status, _, body = reg.request("GET", "/v2/app/tags/list", headers={"Authorization": f"Bearer {token}"})
    assert (status, reg.error_code(body)) == (404, "NAME_UNKNOWN")  # authorized; the repository is empty
    status, _, _ = reg.request("GET", "/v2/other/tags/list", headers={"Authorization": f"Bearer {token}"})
    assert status == 401


def test_htpasswd_mode_challenges_anonymous_requests_with_basic(start, htpasswd: Path) -> None:  # type: ignore[no-untyped-def]
    reg = start("--auth", "htpasswd", "--htpasswd", str(htpasswd))
    status, headers, _ = reg.request("GET", "/v2/")
    assert (status, headers["www-authenticate"]) == (401, 'Basic realm="pallet-registry"')
