"""``POST /containers/create``'s body onto the engine's run options."""

from __future__ import annotations

import pytest

from pallet.api.container_config import run_options
from pallet.errors import InvalidArgument


def _targets(body: dict[str, object]) -> list[tuple[str, str, str]]:
    _, options = run_options(body, None)
    return [(spec.type, spec.source, spec.target) for spec in options.mounts.specs]


def test_config_volumes_that_binds_or_mounts_cover_make_no_anonymous_volume() -> None:
    body = {
        "Image": "busybox",
        "Volumes": {"/data": {}, "/www/": {}, "/cache": {}, "/scratch": {}},
        "HostConfig": {
            "Binds": ["content:/data:rw"],
            "Mounts": [{"Type": "volume", "Source": "web", "Target": "/www"}],
            "Tmpfs": {"/scratch": ""},
        },
    }
    assert _targets(body) == [
        ("volume", "content", "/data"),
        ("volume", "web", "/www"),
        ("volume", "", "/cache"),
    ]


def test_config_volumes_alone_are_anonymous_volumes() -> None:
    assert _targets({"Image": "busybox", "Volumes": {"/a": {}}}) == [("volume", "", "/a")]


def test_host_config_sharing_fields_reach_the_options() -> None:
    _, options = run_options(
        {
            "Image": "busybox",
            "Env": ["Foo", "Other=one", "Blank="],
            "Runtime": "runc",  # docker-py puts it here; dockerd reads only HostConfig.Runtime
            "HostConfig": {
                "PidMode": "host",
                "IpcMode": "container:db",
                "UTSMode": "host",
                "CgroupnsMode": "private",
                "VolumesFrom": ["data:ro"],
                "Links": ["db:alias"],
                "DeviceCgroupRules": ["c 7:128 rwm"],
                "MemorySwappiness": 40,
                "Isolation": "default",
                "LogConfig": {"Type": "json-file", "Config": {}},
                "Mounts": [
                    {"Type": "volume", "Source": "vol", "Target": "/m", "VolumeOptions": {"Subpath": "sub"}}
                ],
            },
        },
        None,
    )
    assert options.process.env == ("Foo", "Other=one", "Blank=")
    assert options.runtime == ""
    ns = options.namespaces
    assert (ns.pid, ns.ipc, ns.uts, ns.cgroupns) == ("host", "container:db", "host", "private")
    assert options.mounts.volumes_from == ("data:ro",)
    assert options.network.links == ("db:alias",)
    assert options.resources.device_cgroup_rules == ("c 7:128 rwm",)
    assert options.resources.memory_swappiness == 40
    assert options.isolation == "default"
    assert options.log_driver == "json-file"
    assert options.mounts.specs[0].volume_subpath == "sub"


def test_memory_swappiness_minus_one_is_unset() -> None:
    _, options = run_options({"Image": "busybox", "HostConfig": {"MemorySwappiness": -1}}, None)
    assert options.resources.memory_swappiness is None


@pytest.mark.parametrize(
    ("host", "version", "error"),
    [
        ({"PidMode": "invalid"}, (1, 47), "invalid PID mode: invalid"),
        ({"IpcMode": "container:"}, (1, 47), "invalid IPC mode: container:"),
        ({"UTSMode": "invalid"}, (1, 47), "invalid UTS mode: invalid"),
        ({"LogConfig": {"Type": "asdf"}}, (1, 47), "logger: no log driver named 'asdf' is registered"),
        ({"Isolation": "hyperv"}, (1, 47), "invalid isolation"),
        ({"MemorySwappiness": 200}, (1, 47), "valid memory swappiness range is 0-100"),
        (
            {
                "Mounts": [
                    {"Type": "volume", "Source": "vol", "Target": "/m", "VolumeOptions": {"Subpath": "s"}}
                ]
            },
            (1, 44),
            "Subpath is only supported in API version 1.45 and above",
        ),
    ],
)
def test_bad_sharing_fields_are_dockers_errors(
    host: dict[str, object], version: tuple[int, int], error: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        run_options({"Image": "busybox", "HostConfig": host}, None, version)
    assert error in str(caught.value)


def _networking(endpoints: dict[str, object], mode: str = "front") -> dict[str, object]:
    return {
        "Image": "busybox",
        "HostConfig": {"NetworkMode": mode},
        "NetworkingConfig": {"EndpointsConfig": endpoints},
    }


def test_every_endpoints_config_entry_is_a_network_joined_at_create() -> None:
    from pallet.engine.spec.options import EndpointOptions

    body = _networking({
        "front": {"Aliases": ["web"]},
        "back": {"Aliases": ["api"], "IPAMConfig": {"IPv4Address": "10.7.0.9", "LinkLocalIPs": ["169.254.7.9"]},
                 "DriverOpts": {"k": "v"}, "MacAddress": "02:42:0a:07:00:09", "Links": ["db:data"]},
        "side": None,
    })  # fmt: skip
    _, options = run_options(body, None, (1, 44))
    network = options.network
    assert network.mode.name == "front"
    assert network.aliases == ("web",)
    assert network.networks == (
        EndpointOptions(
            network="back", aliases=("api",), ip="10.7.0.9", link_local_ips=("169.254.7.9",),
            driver_opts={"k": "v"}, mac_address="02:42:0a:07:00:09", links=("db:data",),
        ),
        EndpointOptions(network="side"),
    )  # fmt: skip


def test_a_lone_entry_keyed_otherwise_is_the_mode_networks() -> None:
    _, options = run_options(_networking({"front-id": {"Aliases": ["web"]}}), None)
    assert options.network.aliases == ("web",)
    assert options.network.networks == ()


def test_several_endpoints_before_api_1_44_are_dockers_400() -> None:
    with pytest.raises(InvalidArgument) as caught:
        run_options(_networking({"front": {}, "back": {}}), None, (1, 43))
    assert caught.value.message == "Container cannot be created with multiple network endpoints: front, back"
