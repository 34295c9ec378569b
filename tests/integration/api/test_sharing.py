"""What a container shares, through the API: namespace modes, --volumes-from, legacy links and their
removal, env names without a value, log drivers and runtimes, as docker-py and the docker CLI send them."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import ApiService

pytestmark = pytest.mark.root


def _create(api: ApiService, body: dict[str, Any], name: str = "") -> tuple[int, dict[str, Any]]:
    path = "/v1.47/containers/create" + (f"?name={name}" if name else "")
    status, _, data = api.request("POST", path, {"Image": "busybox", **body})
    return status, json.loads(data)


def _host_config(api: ApiService, ref: str) -> dict[str, Any]:
    found = api.json("GET", f"/v1.47/containers/{ref}/json")
    assert isinstance(found, dict)
    host = found["HostConfig"]
    assert isinstance(host, dict)
    return host


def test_create_shows_dockers_namespace_modes_and_defaults(api: ApiService) -> None:
    status, made = _create(api, {"Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}, "plain")
    assert status == 201, made
    host = _host_config(api, "plain")
    assert (host["PidMode"], host["IpcMode"], host["UTSMode"]) == ("", "private", "")
    assert host["CgroupnsMode"] == (
        "private" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "host"
    )
    assert (host["VolumesFrom"], host["Links"], host["DeviceCgroupRules"]) == (None, None, None)
    assert host["MemorySwappiness"] is None
    assert host["Isolation"] == ""
    status, made = _create(
        api,
        {
            "Cmd": ["true"],
            "HostConfig": {
                "NetworkMode": "none", "PidMode": "host", "UTSMode": "host", "IpcMode": "none",
                "CgroupnsMode": "private", "Isolation": "default", "DeviceCgroupRules": ["c 7:128 rwm"],
            },
        },
        "hosted",
    )  # fmt: skip
    assert status == 201, made
    assert any("--pid host" in w for w in made["Warnings"])
    host = _host_config(api, "hosted")
    assert (host["PidMode"], host["UTSMode"], host["IpcMode"], host["CgroupnsMode"]) == (
        "host",
        "host",
        "none",
        "private",
    )
    assert (host["Isolation"], host["DeviceCgroupRules"]) == ("default", ["c 7:128 rwm"])
    api.json("POST", "/v1.47/containers/hosted/start")
    assert api.json("POST", "/v1.47/containers/hosted/wait")["StatusCode"] == 0


@pytest.mark.parametrize(
    ("host", "status", "words"),
    [
        ({"PidMode": "invalid"}, 400, "invalid PID mode: invalid"),
        ({"UTSMode": "invalid"}, 400, "invalid UTS mode: invalid"),
        (
            {"LogConfig": {"Type": "asdf", "Config": {}}},
            400,
            "logger: no log driver named 'asdf' is registered",
        ),
        ({"VolumesFrom": ["nosuch"]}, 400, "No such container: nosuch"),
        ({"Links": ["nosuch:alias"]}, 400, "could not get container for nosuch"),
        ({"Isolation": "hyperv"}, 400, "invalid isolation"),
    ],
)
def test_bad_sharing_fields_are_dockers_errors_and_leave_nothing(
    api: ApiService, host: dict[str, Any], status: int, words: str
) -> None:
    got, answer = _create(api, {"Cmd": ["true"], "HostConfig": host})
    assert got == status
    assert words in answer["message"]
    assert api.json("GET", "/v1.47/containers/json?all=1") == []


def test_env_name_without_value_is_kept_in_config_and_unset_in_the_process(api: ApiService) -> None:
    status, made = _create(api, {"Cmd": ["env"], "Env": ["Foo", "Other=one", "Blank="]}, "envs")
    assert status == 201, made
    env = api.json("GET", "/v1.47/containers/envs/json")["Config"]["Env"]
    assert {"Foo", "Other=one", "Blank="} <= set(env)
    api.json("POST", "/v1.47/containers/envs/start")
    api.json("POST", "/v1.47/containers/envs/wait")
    _, _, logs = api.request("GET", "/v1.47/containers/envs/logs?stdout=1")
    assert b"Other=one" in logs
    assert b"Foo" not in logs


def test_docker_cli_links_volumes_from_and_ipc_container(api: ApiService) -> None:
    api.need_docker()
    api.docker_ok(
        "run",
        "-d",
        "--name",
        "db",
        "-e",
        "FOO=1",
        "--ipc",
        "shareable",
        "-v",
        "/data",
        "busybox",
        "sleep",
        "300",
    )
    api.docker_ok("exec", "db", "sh", "-c", "echo in-volume > /data/f; echo in-shm > /dev/shm/f")
    out = api.docker_ok(
        "run", "--rm", "--link", "db:mydb", "--volumes-from", "db", "--ipc", "container:db", "busybox",
        "sh", "-c", "echo $MYDB_NAME $MYDB_ENV_FOO; cat /data/f /dev/shm/f; grep -c mydb /etc/hosts",
    )  # fmt: skip
    assert out.split() == [out.split()[0], "1", "in-volume", "in-shm", "1"]
    assert out.split()[0].endswith("/mydb")
    api.docker_ok("create", "--name", "app", "--link", "db:mydb", "busybox", "true")
    assert _host_config(api, "app")["Links"] == ["/db:/app/mydb"]
    # docker-py's remove_container(link=True): DELETE /containers/app/mydb?link=1
    status, _, data = api.request("DELETE", "/v1.47/containers/app/mydb?link=1")
    assert status == 204, data
    assert _host_config(api, "app")["Links"] is None
    status, _, data = api.request("DELETE", "/v1.47/containers/app/mydb?link=1")
    assert status == 404
    assert b"No such container: app/mydb" in data
    names = {c["Names"][0] for c in api.json("GET", "/v1.47/containers/json?all=1")}
    assert names == {"/db", "/app"}


def test_runtime_is_the_one_asked_for_in_host_config(api: ApiService) -> None:
    if not os.access("/usr/sbin/runc", os.X_OK):
        pytest.skip("runc is not installed")
    # docker-py's create_container(runtime=) puts it in Config, which dockerd ignores: the default runs
    status, made = _create(api, {"Cmd": ["true"], "Runtime": "runc"}, "in-config")
    assert status == 201, made
    assert _host_config(api, "in-config")["Runtime"] == "pallet-runtime"
    status, made = _create(api, {"Cmd": ["true"], "HostConfig": {"Runtime": "runc"}}, "in-host")
    assert status == 201, made
    assert _host_config(api, "in-host")["Runtime"] == "runc"
