"""pallet pull/push against Debian's docker-registry (distribution 2.8) with htpasswd auth, compared with skopeo/umoci."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from client_fixtures import PASSWORD, USER, DockerRegistry, make_layout, pallet, skopeo, tree, umoci_rootfs

from pallet.image import snapshots
from pallet.image.store import ImageStore

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerRegistry]:
    if os.geteuid() != 0:
        pytest.skip("needs root (umoci unpack keeps owners; overlay snapshots)")
    reg = DockerRegistry(tmp_path_factory.mktemp("docker-registry"))
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("layout") / "oci"
    make_layout(path, payload=os.urandom(2 << 20))
    return path


@pytest.fixture(scope="module")
def reference_tree(layout: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[object, ...]]:
    """The image's rootfs as umoci unpacks it from the layout: what every pull must reproduce."""
    found = tree(umoci_rootfs(layout, tmp_path_factory.mktemp("umoci") / "bundle"))
    assert "etc/gone" not in found  # the whiteout applied
    assert found["home/user/notes"][2:4] == (1000, 1000)
    assert found["bin/suid"][1] == 0o4755
    return found


@pytest.fixture
def logged_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: DockerRegistry) -> Path:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    code, out, err = pallet("login", "-u", USER, "--password-stdin", registry.host, stdin=PASSWORD.encode())
    assert (code, out) == (0, "Login Succeeded\n"), err
    return tmp_path / "docker-config" / "config.json"


def _pallet_rootfs(root: Path, name: str, mountpoint: Path) -> Iterator[Path]:
    """The image's full rootfs from pallet's store (the overlay driver's layers mounted together)."""
    with ImageStore.open(root) as store:
        key = store.unpack(name)
        assert key is not None
        if store.snapshots.driver == snapshots.COPY:
            yield store.snapshots.get(key).path / "fs"
            return
        mounts = store.snapshots.prepare("test-view", key)
        mountpoint.mkdir()
        snapshots.mount(mounts, mountpoint)
        try:
            yield mountpoint
        finally:
            snapshots.unmount(mountpoint)
            store.snapshots.remove("test-view")


@pytest.mark.parametrize("driver", ["overlay", "copy"])
def test_pallet_pulls_what_skopeo_pushed_with_an_identical_rootfs(
    driver: str,
    tmp_path: Path,
    registry: DockerRegistry,
    layout: Path,
    reference_tree: dict[str, tuple[object, ...]],
    logged_in: Path,
) -> None:
    ref = f"{registry.host}/skopeo/img:{driver}"
    skopeo(
        "copy",
        "-q",
        "--dest-tls-verify=false",
        f"--dest-creds={USER}:{PASSWORD}",
        f"oci:{layout}:latest",
        f"docker://{ref}",
    )
    root = tmp_path / "root"
    ImageStore.open(root, snapshot_driver=driver).close()
    code, out, err = pallet("--root", str(root), "pull", ref)
    assert code == 0, err
    assert out.splitlines()[-1] == ref
    for rootfs in _pallet_rootfs(root, ref, tmp_path / "view"):
        assert tree(rootfs) == reference_tree


def test_pull_without_login_is_unauthorized_exit_77(
    tmp_path: Path, registry: DockerRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty-config"))
    code, _, err = pallet("--root", str(tmp_path / "root"), "pull", f"{registry.host}/skopeo/img:copy")
    assert code == 77
    assert err == f'pallet: unauthorized: authentication required; run "pallet login {registry.host}"\n'


def test_pull_of_unknown_tag_exits_66(tmp_path: Path, registry: DockerRegistry, logged_in: Path) -> None:
    code, _, err = pallet("--root", str(tmp_path / "root"), "pull", f"{registry.host}/skopeo/img:nope")
    assert code == 66
    assert err == f"pallet: manifest for {registry.host}/skopeo/img:nope not found: manifest unknown\n"


def test_skopeo_copies_what_pallet_pushed_with_an_identical_rootfs(
    tmp_path: Path,
    registry: DockerRegistry,
    layout: Path,
    reference_tree: dict[str, tuple[object, ...]],
    logged_in: Path,
) -> None:
    source = f"{registry.host}/skopeo/src:latest"
    skopeo(
        "copy",
        "-q",
        "--dest-tls-verify=false",
        f"--dest-creds={USER}:{PASSWORD}",
        f"oci:{layout}:latest",
        f"docker://{source}",
    )
    root = str(tmp_path / "root")
    assert pallet("--root", root, "pull", "-q", source)[0] == 0
    target = f"{registry.host}/pallet/pushed:v1"
    assert pallet("--root", root, "tag", source, target)[0] == 0
    code, out, err = pallet("--root", root, "push", target)
    assert code == 0, err
    assert "Mounted from skopeo/src" in out  # same registry: blobs are mounted, not sent again
    code, out, err = pallet("--root", root, "push", target)
    assert code == 0, err
    # HEAD finds both layers (the config has no line, as docker)
    assert out.count("Layer already exists") == 2
    copied = tmp_path / "copied"
    skopeo(
        "copy",
        "-q",
        "--src-tls-verify=false",
        f"--src-creds={USER}:{PASSWORD}",
        f"docker://{target}",
        f"oci:{copied}:latest",
    )
    assert tree(umoci_rootfs(copied, tmp_path / "bundle")) == reference_tree


def test_push_of_a_fresh_image_uploads_every_blob_and_skopeo_reads_it(
    tmp_path: Path,
    registry: DockerRegistry,
    layout: Path,
    reference_tree: dict[str, tuple[object, ...]],
    logged_in: Path,
) -> None:
    source = f"{registry.host}/skopeo/fresh:latest"
    skopeo(
        "copy",
        "-q",
        "--dest-tls-verify=false",
        f"--dest-creds={USER}:{PASSWORD}",
        f"oci:{layout}:latest",
        f"docker://{source}",
    )
    root = str(tmp_path / "root")
    assert pallet("--root", root, "pull", "-q", source)[0] == 0
    os.remove(tmp_path / "root" / "distribution.db")  # forget where the blobs came from: no mount possible
    target = f"{registry.host}/pallet/uploaded:v1"
    assert pallet("--root", root, "tag", source, target)[0] == 0
    code, out, err = pallet("--root", root, "push", target)
    assert code == 0, err
    assert out.count(": Pushed") == 2  # the layers; as docker, the config blob has no line
    copied = tmp_path / "copied"
    skopeo(
        "copy",
        "-q",
        "--src-tls-verify=false",
        f"--src-creds={USER}:{PASSWORD}",
        f"docker://{target}",
        f"oci:{copied}:latest",
    )
    assert tree(umoci_rootfs(copied, tmp_path / "bundle")) == reference_tree


def test_chunked_upload_is_accepted_and_reads_back_identical(
    tmp_path: Path,
    registry: DockerRegistry,
    layout: Path,
    reference_tree: dict[str, tuple[object, ...]],
    logged_in: Path,
) -> None:
    from pallet.oci.reference import parse
    from pallet.registry.client import credentials
    from pallet.registry.client.progress import QuietProgress
    from pallet.registry.client.push import push
    from pallet.registry.client.transport import Transport

    source = f"{registry.host}/skopeo/chunky:latest"
    skopeo(
        "copy",
        "-q",
        "--dest-tls-verify=false",
        f"--dest-creds={USER}:{PASSWORD}",
        f"oci:{layout}:latest",
        f"docker://{source}",
    )
    root = tmp_path / "root"
    assert pallet("--root", str(root), "pull", "-q", source)[0] == 0
    os.remove(root / "distribution.db")  # no mount hint: every blob is uploaded
    target = parse(f"{registry.host}/pallet/chunked:v1")
    transport = Transport()
    try:
        with ImageStore.open(root) as store:
            result = push(
                store,
                source,
                target,
                transport=transport,
                credentials=credentials.lookup(registry.host),
                progress=QuietProgress(io.StringIO()),
                monolithic_max=256 << 10,
                chunk_size=256 << 10,
            )
    finally:
        transport.close()
    assert {how for _, how in result.blobs} == {"uploaded"}
    copied = tmp_path / "copied"
    skopeo(
        "copy",
        "-q",
        "--src-tls-verify=false",
        f"--src-creds={USER}:{PASSWORD}",
        f"docker://{target}",
        f"oci:{copied}:latest",
    )
    assert tree(umoci_rootfs(copied, tmp_path / "bundle")) == reference_tree
