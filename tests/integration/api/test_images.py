"""Images through the API: the docker CLI's image verbs, a registry round trip, a pull cut short, search."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pallet.image.store import ImageStore
from pallet.testing.host import require_host_path
from pallet.testing.images import validate_image
from pallet.testing.registry import FakeRegistry

if TYPE_CHECKING:
    from conftest import ApiService

pytestmark = pytest.mark.root


def need_docker() -> None:
    require_host_path("/usr/local/bin/docker", "the docker CLI")


def test_image_listing_inspect_history_and_tag_match_the_store(api: ApiService) -> None:
    need_docker()
    listed = api.docker_ok("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").split()
    assert listed[0] == "busybox:latest"
    inspected = json.loads(api.docker_ok("image", "inspect", "busybox"))[0]
    assert inspected["Id"].startswith("sha256:" + listed[1])
    assert inspected == json.loads(api.env.ok("image", "inspect", "busybox"))[0]  # one shape, two doors
    api.docker_ok("tag", "busybox", "example.com/team/bb:v1")
    assert "example.com/team/bb:v1" in api.env.ok("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    assert api.docker_ok("images", "-q", "--filter", "reference=example.com/team/*") == listed[1] + "\n"
    assert api.docker_ok("history", "-q", "busybox").split()[0] == listed[1]
    removed = api.docker_ok("rmi", "example.com/team/bb:v1")
    assert removed == "Untagged: example.com/team/bb:v1\n"
    missing = api.docker("image", "inspect", "nosuch:image")
    assert missing.returncode == 1
    assert "nosuch:image" in missing.stderr


def test_save_then_load_and_export_then_import(api: ApiService, tmp_path: Path) -> None:
    need_docker()
    archive = tmp_path / "saved.tar"
    api.docker_ok("save", "-o", str(archive), "busybox")
    api.docker_ok("tag", "busybox", "copy:v1")
    api.docker_ok("rmi", "busybox")
    assert api.docker_ok("load", "-i", str(archive)) == "Loaded image: busybox:latest\n"
    api.docker_ok("create", "--name", "exp", "busybox", "true")
    rootfs = tmp_path / "rootfs.tar"
    api.docker_ok("export", "-o", str(rootfs), "exp")
    image_id = api.docker_ok("import", "-c", 'CMD ["echo", "imported"]', str(rootfs), "imported:v1").strip()
    assert image_id.startswith("sha256:")
    assert api.docker_ok("run", "--rm", "imported:v1") == "imported\n"
    actions = [
        json.loads(line)["Action"]
        for line in api.env.ok(
            "events",
            "--since",
            "0",
            "--until",
            str(time.time()),
            "--filter",
            "type=image",
            "--format",
            "json",
        ).splitlines()
    ]
    assert actions[:4] == ["save", "tag", "untag", "load"]
    assert "import" in actions


def test_push_and_pull_through_a_registry_with_the_clients_credentials(api: ApiService) -> None:
    need_docker()
    with FakeRegistry(auth="basic", users={"alice": "s3cret"}) as registry:
        target = f"{registry.host}/team/bb:v1"
        assert "Login Succeeded" in api.docker_ok("login", "-u", "alice", "-p", "s3cret", registry.host)
        api.docker_ok("tag", "busybox", target)
        pushed = api.docker_ok("push", target)
        assert "v1: digest: sha256:" in pushed
        api.docker_ok("rmi", target)
        pulled = api.docker_ok("pull", target)
        assert f"Status: Downloaded newer image for {target}" in pulled
        assert api.docker_ok("run", "--rm", target, "echo", "pulled") == "pulled\n"
        api.docker_ok("logout", registry.host)
        api.docker_ok("rmi", target)
        refused = api.docker("pull", target)
        assert refused.returncode != 0
    with ImageStore.open(api.env.root) as store:
        validate_image(store, "busybox:latest")


def _raw_pull_then_hang_up(api: ApiService, image: str) -> bytes:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(60)
    sock.connect(api.socket_path)
    try:
        sock.sendall(
            f"POST /v1.47/images/create?fromImage={image} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode()
        )
        head = sock.recv(65536)
        while b'"Downloading"' not in head:
            head += sock.recv(65536)
        return head
    finally:
        sock.close()  # the client goes away mid-pull


def test_a_client_that_goes_away_stops_its_pull_and_nothing_is_half_stored(api: ApiService) -> None:
    need_docker()
    with FakeRegistry() as registry:
        target = f"{registry.host}/slow/big:v1"
        # an image with a 4 MB layer of its own, pushed, then gone from the store
        api.docker_ok(
            "run", "--name", "maker", "busybox", "dd", "if=/dev/urandom", "of=/big", "bs=1M", "count=4"
        )
        api.docker_ok("commit", "maker", target)
        api.docker_ok("rm", "maker")
        api.docker_ok("push", target)
        api.docker_ok("rmi", target)
        registry.throttle = 256 * 1024
        head = _raw_pull_then_hang_up(api, target)
        assert head.startswith(b"HTTP/1.1 200 OK")
        assert api.alive()
        assert api.request("GET", f"/images/{target}/json")[0] == 404  # not there, not half there
        with ImageStore.open(api.env.root) as store:
            validate_image(store, "busybox:latest")
        registry.throttle = 0
        assert f"Downloaded newer image for {target}" in api.docker_ok(
            "pull", target
        )  # a later pull completes
        with ImageStore.open(api.env.root) as store:
            validate_image(store, target)


def test_search_filters_a_registrys_catalog(api: ApiService, tmp_path: Path) -> None:
    need_docker()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            *api.env.argv(
                "registry", "serve", "--addr", f"127.0.0.1:{port}", "--storage", str(tmp_path / "reg")
            )
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        for name in ("apps/web", "apps/worker", "tools/debug"):
            api.docker_ok("tag", "busybox", f"127.0.0.1:{port}/{name}:v1")
            api.docker_ok("push", f"127.0.0.1:{port}/{name}:v1")
        found = api.json("GET", f"/images/search?term=127.0.0.1:{port}/apps")
        assert [r["name"] for r in found] == [f"127.0.0.1:{port}/apps/web", f"127.0.0.1:{port}/apps/worker"]
        out = api.docker_ok("search", "--format", "{{.Name}}", f"127.0.0.1:{port}/debug")
        assert out == f"127.0.0.1:{port}/tools/debug\n"
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert api.request("GET", "/images/search")[0] == 400
    assert os.path.isdir(tmp_path / "reg")


def test_import_of_a_pax_tarball_with_long_names(api: ApiService) -> None:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = b"from a pax tarball\n"
        info = tarfile.TarInfo("long-" + "n" * 150)  # longer than ustar's name field: a PAX path record first
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    status, _, body = api.request("POST", "/images/create?fromSrc=-&repo=paxed&tag=v1", buffer.getvalue())
    assert status == 200, body
    assert b"errorDetail" not in body
    assert api.json("GET", "/images/paxed:v1/json")["RepoTags"] == ["paxed:v1"]


def test_a_bad_archive_to_load_is_an_error_in_the_stream_and_a_missing_image_is_no_such_image(
    api: ApiService,
) -> None:
    status, _, data = api.request("POST", "/v1.47/images/load", b"abc")
    assert status == 200  # dockerd's: the error comes in the stream (docker-py raises ImageLoadError)
    last = json.loads(data.splitlines()[-1])
    assert last["error"]
    assert last["errorDetail"]["message"] == last["error"]
    status, _, data = api.request("POST", "/v1.47/containers/create", {"Image": "nosuchimage"})
    assert (status, json.loads(data)) == (404, {"message": "No such image: nosuchimage:latest"})
