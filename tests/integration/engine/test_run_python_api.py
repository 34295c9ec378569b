"""``pallet.Client``: the engine as a library, docker-SDK-shaped, on the same root as the CLI."""

from __future__ import annotations

import pytest

import pallet
from pallet.engine.client import ContainerError
from pallet.errors import FailedPrecondition, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import PalletEnv

pytestmark = pytest.mark.root


@pytest.fixture
def client(pallet_env: PalletEnv) -> pallet.Client:
    return pallet.Client(root=pallet_env.root, run_root=pallet_env.run_root)


def test_run_returns_the_output(client: pallet.Client, pallet_env: PalletEnv) -> None:
    assert client.containers.run("busybox", ["echo", "hi"], remove=True) == b"hi\n"
    assert pallet_env.container_ids() == []


def test_run_raises_container_error_with_status_and_stderr(client: pallet.Client) -> None:
    with pytest.raises(ContainerError) as caught:
        client.containers.run("busybox", "sh -c 'echo bad >&2; exit 4'", name="oops")
    assert caught.value.exit_status == 4
    assert caught.value.stderr == b"bad\n"
    assert client.containers.get("oops").status == "exited"


def test_detached_container_object_drives_the_lifecycle(client: pallet.Client, pallet_env: PalletEnv) -> None:
    box = client.containers.run(
        "busybox", ["sleep", "300"], detach=True, name="api", environment={"K": "v"}, labels={"by": "api"},
        runtime="runc",
    )  # fmt: skip
    assert (box.name, box.status, box.labels["by"]) == ("api", "running", "api")
    assert [c.id for c in client.containers.list(filters={"label": "by=api"})] == [box.id]
    result = box.exec_run(["sh", "-c", "echo $K; exit 2"])
    assert (result.exit_code, result.output) == (2, b"v\n")
    box.stop(timeout=0)
    assert box.status == "exited"
    assert box.wait() == {"StatusCode": 137, "Error": None}
    with pytest.raises(FailedPrecondition):
        box.exec_run(["true"])
    assert pallet_env.ok("ps", "-a", "--format", "{{.Names}} {{.State}}") == "api exited\n"
    box.remove()
    with pytest.raises(NotFound):
        client.containers.get("api")


def test_images_list_and_get(client: pallet.Client) -> None:
    (image,) = client.images.list()
    assert image.tags == ["busybox:latest"]
    assert client.images.get("busybox").id == image.id


def test_volumes_create_get_list_remove(client: pallet.Client) -> None:
    made = client.volumes.create("data", labels={"k": "v"})
    assert (made["Name"], made["Labels"]) == ("data", {"k": "v"})
    assert [v["Name"] for v in client.volumes.list()] == ["data"]
    client.volumes.remove("data")
    assert client.volumes.list() == []


def test_the_cli_and_the_client_list_by_the_same_filters(
    client: pallet.Client, pallet_env: PalletEnv
) -> None:
    ran = pallet_env.pallet(
        "run", "--name", "three", "--label", "tier=web", "--label", "team=a", "busybox", "sh", "-c", "exit 3"
    )  # fmt: skip
    assert ran.returncode == 3, ran.stderr
    pallet_env.ok("create", "--name", "fresh", "--label", "tier=web", "--label", "team=b", "busybox", "true")
    cases: list[dict[str, list[str]]] = [
        {"label": ["tier=web"]},
        {"label": ["tier=web", "team=a"]},  # every label must match
        {"exited": ["3"]},
        {"status": ["created"]},
        {"status": ["created", "exited"]},
        {"name": ["thr", "fre"]},
        {"ancestor": ["busybox"], "status": ["exited"]},
    ]
    for filters in cases:
        flags = [a for key, values in filters.items() for v in values for a in ("--filter", f"{key}={v}")]
        by_cli = pallet_env.ok("ps", "-a", "--format", "{{.Names}}", *flags).split()
        by_client = [c.name for c in client.containers.list(all=True, filters=filters)]
        assert by_cli == by_client, filters
    assert [c.name for c in client.containers.list(filters={"label": ["tier=web", "team=a"]})] == []
    assert [c.name for c in client.containers.list(filters={"exited": 3})] == ["three"]
