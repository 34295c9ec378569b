"""pallet pull/push against ``pallet registry serve`` in every auth mode (none, htpasswd, token), with skopeo in and out."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from client_fixtures import make_layout, pallet, skopeo, tree, umoci_rootfs
from server_process import RegistryProcess

from pallet.image.store import ImageStore

pytestmark = pytest.mark.root

USER, PASSWORD = "tester", "pa55word"
MODES = ["none", "htpasswd", "token"]


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.geteuid() != 0:
        pytest.skip("needs root (umoci unpack keeps owners)")
    path = tmp_path_factory.mktemp("layout") / "oci"
    make_layout(path, payload=os.urandom(1 << 20))
    return path


@pytest.fixture(scope="module")
def reference_tree(layout: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[object, ...]]:
    return tree(umoci_rootfs(layout, tmp_path_factory.mktemp("umoci") / "bundle"))


@pytest.fixture
def server(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[RegistryProcess, list[str]]]:
    """The server in ``request.param`` auth mode, pallet logged in to it; yields it and skopeo's credential flags."""
    mode: str = request.param
    args = ["--auth", mode]
    if mode != "none":
        htpasswd = tmp_path / "htpasswd"
        htpasswd.write_text(f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()}\n")
        args += ["--htpasswd", str(htpasswd)]
    reg = RegistryProcess(tmp_path / "storage", tmp_path / "registry.log", *args, "--log-level", "info")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    try:
        creds: list[str] = []
        if mode != "none":
            code, out, err = pallet(
                "login", "-u", USER, "--password-stdin", reg.host, stdin=PASSWORD.encode()
            )
            assert (code, out) == (0, "Login Succeeded\n"), err
            creds = [f"--creds={USER}:{PASSWORD}"]
        yield reg, creds
    finally:
        reg.stop()


def _rootfs_tree(root: Path, name: str) -> dict[str, tuple[object, ...]]:
    with ImageStore.open(root) as store:
        key = store.unpack(name)
        assert key is not None
        return tree(store.snapshots.get(key).path / "fs")


@pytest.mark.parametrize("server", MODES, indirect=True)
def test_pallet_round_trip_and_skopeo_in_and_out(
    server: tuple[RegistryProcess, list[str]],
    tmp_path: Path,
    layout: Path,
    reference_tree: dict[str, tuple[object, ...]],
) -> None:
    reg, creds = server
    src_creds = [c.replace("--creds", "--src-creds") for c in creds]
    dest_creds = [c.replace("--creds", "--dest-creds") for c in creds]
    # skopeo in, pallet out
    source = f"{reg.host}/skopeo/img:v1"
    skopeo("copy", "-q", "--dest-tls-verify=false", *dest_creds, f"oci:{layout}:latest", f"docker://{source}")
    root = tmp_path / "root"
    ImageStore.open(root, snapshot_driver="copy").close()
    code, _, err = pallet("--root", str(root), "pull", "-q", source)
    assert code == 0, err
    assert _rootfs_tree(root, source) == reference_tree
    # pallet in (to another repository: mounted), pallet and skopeo out
    target = f"{reg.host}/pallet/img:v2"
    assert pallet("--root", str(root), "tag", source, target)[0] == 0
    code, out, err = pallet("--root", str(root), "push", target)
    assert code == 0, err
    # the two layers; as docker, the config blob has no line
    assert out.count(": Mounted from skopeo/img") == 2
    other = tmp_path / "other"
    ImageStore.open(other, snapshot_driver="copy").close()
    code, _, err = pallet("--root", str(other), "pull", "-q", target)
    assert code == 0, err
    assert _rootfs_tree(other, target) == reference_tree
    copied = tmp_path / "copied"
    skopeo("copy", "-q", "--src-tls-verify=false", *src_creds, f"docker://{target}", f"oci:{copied}:latest")
    assert tree(umoci_rootfs(copied, tmp_path / "bundle")) == reference_tree


@pytest.mark.parametrize("server", ["token"], indirect=True)
def test_token_mode_push_of_new_blobs_gets_a_push_scope(
    server: tuple[RegistryProcess, list[str]], tmp_path: Path, layout: Path
) -> None:
    reg, creds = server
    source = f"{reg.host}/skopeo/img:v1"
    skopeo(
        "copy",
        "-q",
        "--dest-tls-verify=false",
        *[c.replace("--creds", "--dest-creds") for c in creds],
        f"oci:{layout}:latest",
        f"docker://{source}",
    )
    root = tmp_path / "root"
    assert pallet("--root", str(root), "pull", "-q", source)[0] == 0
    os.remove(root / "distribution.db")  # no mount hint: every blob is uploaded
    target = f"{reg.host}/uploaded/img:v1"
    assert pallet("--root", str(root), "tag", source, target)[0] == 0
    code, out, err = pallet("--root", str(root), "push", target)
    assert code == 0, err
    assert out.count(": Pushed") == 2  # the two layers; as docker, the config blob has no line
    log = reg.log.read_text()
    assert "scope=repository%3Auploaded%2Fimg%3Apull%2Cpush" in log


@pytest.mark.parametrize("server", ["none"], indirect=True)
def test_chunked_push_to_pallet_server_pulls_back_identical(
    server: tuple[RegistryProcess, list[str]],
    tmp_path: Path,
    layout: Path,
    reference_tree: dict[str, tuple[object, ...]],
) -> None:
    from pallet.oci.reference import parse
    from pallet.registry.client.progress import QuietProgress
    from pallet.registry.client.push import push
    from pallet.registry.client.transport import Transport

    reg, _ = server
    source = f"{reg.host}/skopeo/img:v1"
    skopeo("copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:latest", f"docker://{source}")
    root = tmp_path / "root"
    assert pallet("--root", str(root), "pull", "-q", source)[0] == 0
    os.remove(root / "distribution.db")  # no mount hint: every blob is uploaded
    transport = Transport()
    try:
        with ImageStore.open(root) as store:
            result = push(
                store,
                source,
                parse(f"{reg.host}/chunked/img:v1"),
                transport=transport,
                credentials=None,
                progress=QuietProgress(io.StringIO()),
                monolithic_max=128 << 10,
                chunk_size=128 << 10,
            )
    finally:
        transport.close()
    assert {how for _, how in result.blobs} == {"uploaded"}
    other = tmp_path / "other"
    ImageStore.open(other, snapshot_driver="copy").close()
    assert pallet("--root", str(other), "pull", "-q", f"{reg.host}/chunked/img:v1")[0] == 0
    assert _rootfs_tree(other, f"{reg.host}/chunked/img:v1") == reference_tree
