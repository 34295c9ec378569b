"""The docker SDK for Python (``docker`` 7.2, pinned) drives pallet's API service unchanged.

Containers, images, exec, logs and attach sockets, networks, volumes and
events, as a Python program using the SDK would; each check is an effect
seen through the SDK or through ``pallet`` on the same root.
"""

from __future__ import annotations

import io
import socket
import tarfile
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

docker = pytest.importorskip("docker")

if TYPE_CHECKING:
    from conftest import ApiService

pytestmark = pytest.mark.root


@pytest.fixture
def client(api: ApiService) -> Iterator[Any]:
    sdk = docker.DockerClient(base_url=api.host, version="auto", timeout=120)
    try:
        yield sdk
    finally:
        sdk.close()


# --- containers ------------------------------------------------------------------------------------


def test_run_returns_the_output_and_a_failing_run_raises_with_its_stderr(client: Any) -> None:
    assert client.containers.run("busybox", ["echo", "hello"], remove=True) == b"hello\n"
    with pytest.raises(docker.errors.ContainerError) as failed:
        client.containers.run("busybox", ["sh", "-c", "echo oops >&2; exit 3"], remove=True)
    assert failed.value.exit_status == 3
    assert b"oops" in failed.value.stderr


def test_a_detached_container_lives_its_life_through_the_sdk(client: Any, api: ApiService) -> None:
    box = client.containers.run(
        "busybox", ["sh", "-c", "echo up; sleep 60"], detach=True, name="pybox", labels={"suite": "py"}
    )
    box.reload()
    assert box.status == "running"
    assert [c.name for c in client.containers.list(filters={"label": "suite=py"})] == ["pybox"]
    assert "pybox" in api.env.ok("ps", "--format", "{{.Names}}").split()  # one store, two doors
    deadline = time.monotonic() + 30
    while b"up" not in box.logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert box.logs() == b"up\n"
    assert any("sleep" in " ".join(p) for p in box.top()["Processes"])
    stats = box.stats(stream=False)
    assert "cpu_stats" in stats
    assert "precpu_stats" in stats
    box.pause()
    box.reload()
    assert box.status == "paused"
    box.unpause()
    box.rename("pybox2")
    box.reload()
    assert box.name == "pybox2"
    box.stop(timeout=1)
    assert box.wait()["StatusCode"] == 137
    box.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("pybox2")


def test_archives_go_in_and_out(client: Any) -> None:
    box = client.containers.create("busybox", ["true"], name="pyfiles")
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"hello\n"))
    assert box.put_archive("/tmp", data.getvalue())
    stream, stat = box.get_archive("/tmp/hello.txt")
    assert stat["name"] == "hello.txt"
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.extractfile("hello.txt")
        assert member is not None
        assert member.read() == b"hello\n"
    box.remove()


# --- exec, logs and attach sockets -------------------------------------------------------------------


def test_exec_run_demuxes_streams_and_reports_the_exit_code(client: Any) -> None:
    box = client.containers.run("busybox", ["sleep", "60"], detach=True)
    try:
        code, (out, err) = box.exec_run(["sh", "-c", "echo out; echo err >&2; exit 4"], demux=True)
        assert (code, out, err) == (4, b"out\n", b"err\n")
        code, output = box.exec_run("cat /etc/hostname")
        assert code == 0
        assert output.strip() == box.id[:12].encode()
    finally:
        box.remove(force=True)


def test_logs_follow_streams_until_the_container_exits(client: Any) -> None:
    box = client.containers.run("busybox", ["sh", "-c", "for i in 1 2 3; do echo $i; done"], detach=True)
    lines = list(box.logs(stream=True, follow=True))
    assert b"".join(lines) == b"1\n2\n3\n"
    box.remove()


def test_an_attach_socket_carries_stdin_in_and_output_out(client: Any) -> None:
    box = client.containers.create("busybox", ["cat"], stdin_open=True, name="pycat")
    sock = box.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
    raw: socket.socket = sock._sock
    box.start()
    raw.sendall(b"ping\n")
    raw.shutdown(socket.SHUT_WR)
    received = b""
    raw.settimeout(60)
    while len(received) < 8 + 5:
        chunk = raw.recv(4096)
        if not chunk:
            break
        received += chunk
    sock.close()
    assert received[:1] == b"\x01"  # stdout frame, no tty
    assert received[8:13] == b"ping\n"
    assert box.wait()["StatusCode"] == 0
    box.remove()


# --- images --------------------------------------------------------------------------------------


def test_images_list_get_tag_save_load_and_remove(client: Any) -> None:
    image = client.images.get("busybox")
    assert "busybox:latest" in image.tags
    assert [i.id for i in client.images.list(name="busybox")] == [image.id]
    assert image.tag("pycopy", "v1")
    assert "pycopy:v1" in client.images.get("pycopy:v1").tags
    archive = b"".join(image.save(named=True))
    client.images.remove("pycopy:v1")
    client.images.remove("busybox")
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("busybox")
    loaded = client.images.load(archive)
    assert [i.id for i in loaded] == [image.id]
    assert image.history()[0]["Id"] == image.id


def test_push_and_pull_through_a_local_registry(client: Any) -> None:
    from pallet.testing.registry import FakeRegistry

    with FakeRegistry(auth="basic", users={"bob": "pw"}) as registry:
        target = f"{registry.host}/py/bb"
        client.images.get("busybox").tag(target, "v1")
        auth = {"username": "bob", "password": "pw"}
        pushed = list(client.images.push(target, tag="v1", auth_config=auth, stream=True, decode=True))
        assert any("aux" in m and m["aux"]["Tag"] == "v1" for m in pushed)
        client.images.remove(f"{target}:v1")
        pulled = client.images.pull(target, tag="v1", auth_config=auth)
        assert f"{target}:v1" in pulled.tags
        with pytest.raises(docker.errors.APIError):
            client.images.pull(target, tag="v1", auth_config={"username": "bob", "password": "wrong"})


def test_build_from_a_fileobj_and_a_path(client: Any, tmp_path: Any) -> None:
    image, lines = client.images.build(
        fileobj=io.BytesIO(b"FROM busybox\nRUN echo built-here\n"), tag="pybuilt:v1"
    )
    stream = "".join(line.get("stream", "") for line in lines)
    assert "Step 2/2 : RUN echo built-here" in stream
    assert "built-here\n" in stream
    assert "pybuilt:v1" in image.tags
    context = tmp_path / "context"  # not tmp_path itself: the service's root lives there
    context.mkdir()
    (context / "Dockerfile").write_text("FROM busybox\nARG WHO\nCOPY greeting /\nLABEL who=$WHO\n")
    (context / "greeting").write_text("hello\n")
    image, _ = client.images.build(path=str(context), tag="pybuilt:v2", buildargs={"WHO": "py"}, rm=True)
    assert image.labels == {"who": "py"}
    out = client.containers.run("pybuilt:v2", ["cat", "/greeting"], remove=True)
    assert out == b"hello\n"
    with pytest.raises(docker.errors.BuildError) as failed:
        client.images.build(fileobj=io.BytesIO(b"FROM busybox\nRUN exit 3\n"), tag="pybroken")
    assert "exit code: 3" in str(failed.value) or "returned a non-zero code: 3" in str(failed.value)
    client.images.remove("pybuilt:v1")
    client.images.remove("pybuilt:v2")


def test_build_with_a_dockerfile_outside_the_context(client: Any, tmp_path: Any) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (context / "file.txt").write_text("hello world")
    (context / ".dockerignore").write_text(".dockerignore\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "Dockerfile").write_text("FROM busybox\nCOPY . /src\nWORKDIR /src\n")
    # docker-py sends such a Dockerfile inside the context tar as .dockerfile.<random>
    image, _ = client.images.build(
        path=str(context), dockerfile=str(elsewhere / "Dockerfile"), tag="pyoutside"
    )
    assert "pyoutside:latest" in image.tags
    listing = client.containers.run("pyoutside", ["ls", "-a"], remove=True).decode().split()
    assert "file.txt" in listing
    assert ".dockerignore" not in listing
    client.images.remove("pyoutside")


def test_build_of_a_gzipped_context_ends_with_successfully_built(client: Any, tmp_path: Any) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM busybox\nCOPY . /test\n")
    lines = list(client.api.build(path=str(context), decode=True, nocache=True, gzip=True))
    assert "Successfully built" in str(lines[-1].get("stream")), lines
    image_id = next(line["aux"]["ID"] for line in lines if "aux" in line)
    client.images.remove(image_id)


# --- networks, volumes, events ---------------------------------------------------------------------


def test_networks_and_volumes_through_the_sdk(client: Any) -> None:
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.231.9.0/24")])
    net = client.networks.create("pynet", driver="bridge", ipam=ipam, labels={"suite": "py"})
    assert [n.name for n in client.networks.list(filters={"label": "suite=py"})] == ["pynet"]
    volume = client.volumes.create("pyvol", labels={"suite": "py"})
    box = client.containers.run("busybox", ["sleep", "60"], detach=True, volumes={"pyvol": {"bind": "/data"}})
    try:
        net.connect(box)
        net.reload()
        assert box.id in net.attrs["Containers"]
        code, out = box.exec_run(["ip", "-4", "-o", "addr"])
        assert code == 0
        assert b"10.231.9." in out
        net.disconnect(box)
    finally:
        box.remove(force=True)
    assert [v.name for v in client.volumes.list(filters={"label": "suite=py"})] == ["pyvol"]
    volume.remove()
    net.remove()
    with pytest.raises(docker.errors.NotFound):
        client.networks.get("pynet")


def test_events_report_what_happened_with_filters(client: Any) -> None:
    since = time.time()
    client.containers.run("busybox", ["true"], remove=True, name="pyevents")
    events = client.events(
        since=since, until=time.time() + 0.5, filters={"container": "pyevents"}, decode=True
    )
    actions = [e["Action"] for e in events]
    assert actions[0] == "create"
    assert "start" in actions
    assert "die" in actions
    assert actions[-1] == "destroy"
