"""Volumes, networks, disk usage and build through the API, with the docker CLI and raw requests."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from pallet.testing.host import require_host_path

if TYPE_CHECKING:
    from conftest import ApiService

pytestmark = pytest.mark.root


def need_docker() -> None:
    require_host_path("/usr/local/bin/docker", "the docker CLI")


def test_docker_volume_commands_work_through_the_service(api: ApiService) -> None:
    need_docker()
    assert api.docker_ok("volume", "create", "--label", "k=v", "apivol") == "apivol\n"
    assert "apivol" in api.docker_ok("volume", "ls", "--format", "{{.Name}}").split()
    assert api.docker_ok("volume", "ls", "-q", "--filter", "label=k=v") == "apivol\n"
    doc = json.loads(api.docker_ok("volume", "inspect", "apivol"))[0]
    assert (doc["Name"], doc["Driver"], doc["Labels"]) == ("apivol", "local", {"k": "v"})
    out = api.docker_ok(
        "run", "--rm", "-v", "apivol:/data", "busybox", "sh", "-c", "echo hi > /data/f; cat /data/f"
    )
    assert out == "hi\n"
    assert "apivol" in api.env.ok("volume", "ls", "-q").split()  # one store, two front doors
    assert api.docker_ok("volume", "rm", "apivol") == "apivol\n"
    missing = api.docker("volume", "inspect", "apivol")
    assert missing.returncode != 0
    assert "no such volume" in missing.stderr.lower()


def test_volume_prune_removes_anonymous_volumes_only_by_default(api: ApiService) -> None:
    api.json("POST", "/volumes/create", {"Name": "named"})
    anonymous = api.json("POST", "/volumes/create", {"Labels": {"com.docker.volume.anonymous": ""}})
    pruned = api.json("POST", "/volumes/prune")
    assert "named" not in pruned["VolumesDeleted"]
    names = [v["Name"] for v in api.json("GET", "/volumes")["Volumes"]]
    assert "named" in names
    assert anonymous["Name"] not in names or anonymous["Name"] in pruned["VolumesDeleted"]
    all_pruned = api.json("POST", '/volumes/prune?filters={"all":["true"]}')
    assert "named" in all_pruned["VolumesDeleted"]


def test_a_bad_volume_request_is_a_docker_error(api: ApiService) -> None:
    status, _, body = api.request(
        "POST", "/volumes/create", b'{"Name": 5}', {"Content-Type": "application/json"}
    )
    assert status == 400
    assert "Name" in json.loads(body)["message"]
    status, _, body = api.request("GET", "/volumes/nope")
    assert status == 404
    status, _, body = api.request("GET", '/volumes?filters={"colour":["red"]}')
    assert status == 400


def test_docker_network_commands_work_through_the_service(api: ApiService) -> None:
    need_docker()
    net_id = api.docker_ok(
        "network", "create", "--subnet", "10.231.7.0/24", "--label", "k=v", "apinet"
    ).strip()
    assert len(net_id) == 64
    assert "apinet" in api.docker_ok("network", "ls", "--format", "{{.Name}}").split()
    assert api.docker_ok("network", "ls", "-q", "--no-trunc", "--filter", "label=k=v").split() == [net_id]
    doc = json.loads(api.docker_ok("network", "inspect", "apinet"))[0]
    assert doc["IPAM"]["Config"][0]["Subnet"] == "10.231.7.0/24"
    assert "apinet" in api.env.ok("network", "ls", "--format", "{{.Name}}").split()
    out = api.docker_ok(
        "run", "--rm", "--network", "apinet", "busybox", "ip", "-4", "-o", "addr", "show", "eth0"
    )
    assert "10.231.7." in out
    api.docker_ok("run", "-d", "--name", "sleeper", "busybox", "sleep", "60")
    api.docker_ok("network", "connect", "apinet", "sleeper")
    doc = json.loads(api.docker_ok("network", "inspect", "apinet"))[0]
    assert len(doc["Containers"]) == 1
    api.docker_ok("network", "disconnect", "apinet", "sleeper")
    assert api.docker_ok("network", "rm", "apinet") == "apinet\n"
    assert api.docker("network", "inspect", "apinet").returncode != 0


def test_network_create_refuses_bad_input_in_dockers_words(api: ApiService) -> None:
    status, _, body = api.request("POST", "/networks/create", {"Driver": "bridge"})
    assert status == 400
    assert json.loads(body)["message"] == "network name is required"
    status, _, body = api.request(
        "POST", "/networks/create", {"Name": "badnet", "IPAM": {"Config": [{"Subnet": "not-a-cidr"}]}}
    )
    assert status == 400
    status, _, _ = api.request("DELETE", "/networks/nosuchnet")
    assert status == 404
    assert "badnet" not in [n["Name"] for n in api.json("GET", "/networks")]


def test_system_df_counts_images_containers_and_volumes(api: ApiService) -> None:
    need_docker()
    api.docker_ok("volume", "create", "dfvol")
    api.docker_ok("create", "--name", "dfbox", "-v", "dfvol:/d", "busybox", "true")
    doc = api.json("GET", "/system/df")
    assert [i["RepoTags"] for i in doc["Images"]] == [["busybox:latest"]]
    assert doc["Images"][0]["Containers"] == 1
    assert [c["Names"] for c in doc["Containers"]] == [["/dfbox"]]
    volume = next(v for v in doc["Volumes"] if v["Name"] == "dfvol")
    assert volume["UsageData"]["RefCount"] == 1
    assert doc["BuildCache"] == []
    out = api.docker_ok("system", "df", "--format", "{{.Type}} {{.TotalCount}}")
    assert out.splitlines()[:3] == ["Images 1", "Containers 1", "Local Volumes 1"]


def test_host_and_none_are_networks_of_the_api_and_of_docker_py(api: ApiService) -> None:
    listed = {n["Name"]: n for n in api.json("GET", "/networks")}
    assert (listed["host"]["Driver"], listed["none"]["Driver"], listed["bridge"]["Driver"]) == (
        "host", "null", "bridge",
    )  # fmt: skip
    assert api.json("GET", "/networks/host")["Id"] == listed["host"]["Id"]
    builtin = {n["Name"] for n in api.json("GET", '/networks?filters={"type":["builtin"]}')}
    assert builtin == {"bridge", "host", "none"}
    for name in ("host", "none"):
        status, _, body = api.request("DELETE", f"/networks/{name}")
        assert status == 409
        assert json.loads(body)["message"] == f"{name} is a pre-defined network and cannot be removed"
    pytest.importorskip("docker")
    import docker

    sdk = docker.DockerClient(base_url=api.host, version="auto", timeout=120)
    try:
        assert {"bridge", "host", "none"} <= {n.name for n in sdk.networks.list()}
        assert sdk.networks.get("none").attrs["Driver"] == "null"
        sdk.containers.run("busybox", ["sleep", "60"], name="apihost", network_mode="host", detach=True)
        members = sdk.networks.get("host").attrs["Containers"]
        assert [m["Name"] for m in members.values()] == ["apihost"]
        settings = sdk.containers.get("apihost").attrs["NetworkSettings"]["Networks"]
        assert settings["host"]["NetworkID"] == listed["host"]["Id"]
        sdk.containers.get("apihost").remove(force=True)
    finally:
        sdk.close()
