"""``RunOptions`` and its groups: checked once, when made, in field words; stored and read back equal."""

from __future__ import annotations

import os

import pytest

from pallet.engine.spec.options import (
    MountOptions,
    NetworkOptions,
    OptionConflict,
    ProcessOptions,
    ResourceOptions,
    RunOptions,
    SecurityOptions,
    options_from_json,
    options_to_json,
    security_options,
)
from pallet.engine.spec.syntax import (
    DeviceMapping,
    NetworkMode,
    RestartPolicy,
    Ulimit,
    parse_mount,
    parse_network,
    parse_volume,
)
from pallet.errors import InvalidArgument, Unsupported

CPUS = os.cpu_count() or 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ResourceOptions(memory=1024), "Minimum memory limit allowed is 6MB"),
        (lambda: ResourceOptions(memory_swap=1 << 30), "always set the Memory limit"),
        (lambda: ResourceOptions(memory=1 << 30, memory_swap=1 << 20), "memoryswap limit should be larger"),
        (
            lambda: ResourceOptions(cpus=(CPUS + 1) * 10**9),
            f"Range of CPUs is from 0.01 to {CPUS}.00, as there are only {CPUS} CPUs",
        ),
        (lambda: ResourceOptions(cpuset_cpus="0-x"), "invalid value 0-x for cpuset cpus"),
        (lambda: ResourceOptions(shm_size=0), "SHM size"),
        (lambda: ResourceOptions(ulimits=(Ulimit(name="files", soft=1, hard=1),)), "invalid ulimit type"),
        (lambda: ProcessOptions(workdir="rel"), "needs to be an absolute path"),
        (lambda: ProcessOptions(env=("=value",)), 'invalid environment entry "=value"'),
        (lambda: ProcessOptions(stop_timeout=-2), "invalid stop timeout"),
        (lambda: ProcessOptions(stop_signal="SIGFOO"), "invalid signal"),
        (lambda: SecurityOptions(sysctls={"kernel.hostname": "x"}), "is not namespaced"),
        (lambda: SecurityOptions(cap_add=("CAP_FLY",)), "unknown capability"),
        (lambda: MountOptions(tmpfs={"/run": "bogus"}), 'invalid tmpfs option "bogus"'),
        (lambda: NetworkOptions(hostname="bad_host!"), 'invalid hostname "bad_host!"'),
        (lambda: NetworkOptions(hostname="x" * 64), "at most 63"),
        (lambda: NetworkOptions(publish=("99999:80",)), 'invalid host port "99999" in "99999:80"'),
        (lambda: NetworkOptions(publish=("80/icmp",)), 'invalid protocol "icmp"'),
        (lambda: NetworkOptions(dns=("dns.example",)), 'invalid IP address "dns.example"'),
        (lambda: NetworkOptions(extra_hosts=("nohost",)), "want host:ip"),
        (lambda: NetworkOptions(mac_address="02:42:zz:00:00:01"), "invalid MAC address"),
        (lambda: NetworkOptions(aliases=("web",)), "only supported for user-defined networks"),
        (lambda: NetworkOptions(ip="10.0.0.9"), "supported on user defined networks only"),
        (
            lambda: NetworkOptions(mode=parse_network("container:web"), publish=("80",)),
            "conflicting options: port publishing and the network mode",
        ),
        (
            lambda: NetworkOptions(mode=parse_network("container:web"), hostname="box"),
            "conflicting options: hostname and the network mode",
        ),
        (lambda: RunOptions(restart=RestartPolicy(name="sometimes")), "invalid restart policy format"),
        (
            lambda: RunOptions(
                network=NetworkOptions(mode=NetworkMode(kind="host")),
                security=SecurityOptions(sysctls={"net.core.somaxconn": "1"}),
            ),
            "not allowed with the host network",
        ),
    ],
)
def test_options_are_checked_when_they_are_made(make: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        make()  # type: ignore[operator]


def test_a_replace_is_checked_too() -> None:
    with pytest.raises(InvalidArgument, match="6MB"):
        ResourceOptions().replace(memory=1)


def test_rm_with_a_restart_policy_is_one_conflict_naming_both_fields() -> None:
    with pytest.raises(OptionConflict) as caught:
        RunOptions(auto_remove=True, restart=RestartPolicy(name="always"))
    assert caught.value.fields == ("restart", "auto_remove")
    assert caught.value.message == (
        "Conflicting options: restart and auto_remove (a removed container cannot restart)"
    )
    assert caught.value.worded(("--restart", "--rm")).startswith("Conflicting options: --restart and --rm")
    RunOptions(auto_remove=True, restart=RestartPolicy(name="no"))


def test_every_network_mode_is_accepted_and_names_its_network() -> None:
    named = {
        text: NetworkOptions(mode=parse_network(text)).mode.network_name
        for text in ("", "bridge", "mynet", "none", "host", "container:web")
    }
    assert named == {
        "": "bridge",
        "bridge": "bridge",
        "mynet": "mynet",
        "none": "",
        "host": "",
        "container:web": "",
    }
    user = NetworkOptions(mode=parse_network("mynet"), aliases=("web",), ip="10.1.2.3", publish=("8080:80",))
    assert user.mode.on_bridge
    assert user.ports()[0].host_start == 8080


def test_security_options_read_dockers_security_opt_texts() -> None:
    security = security_options(
        ["no-new-privileges", "seccomp=unconfined", "label=disable", "systempaths=unconfined"],
        cap_add=("sys_admin",),
        sysctls={"net/ipv4/ip_forward": "1"},
    )
    assert security.no_new_privileges is True
    assert security.seccomp == "unconfined"
    assert security.selinux_labels == ("disable",)
    assert security.unmask_system_paths
    assert security.cap_add == ("CAP_SYS_ADMIN",)  # cleaned when made
    assert dict(security.sysctls) == {"net.ipv4.ip_forward": "1"}
    assert security.opts() == (
        "no-new-privileges=true",
        "seccomp=unconfined",
        "label=disable",
        "systempaths=unconfined",
    )
    assert security_options(["no-new-privileges=false"]).no_new_privileges is False
    assert SecurityOptions().no_new_privileges is None


def test_an_apparmor_profile_that_cannot_be_applied_is_refused() -> None:
    with pytest.raises(Unsupported, match="AppArmor"):
        security_options(["apparmor=docker-default"])
    assert security_options(["apparmor=unconfined"]).apparmor == "unconfined"


def test_options_survive_a_json_round_trip() -> None:
    import json

    options = RunOptions(
        name="web",
        labels={"a": "b"},
        restart=RestartPolicy(name="on-failure", max_retries=2),
        process=ProcessOptions(env=("A=1",), entrypoint=()),
        resources=ResourceOptions(
            memory=64 << 20,
            ulimits=(Ulimit(name="nofile", soft=1, hard=2),),
            devices=(DeviceMapping(path_on_host="/dev/fuse", path_in_container="/dev/fuse"),),
        ),
        security=security_options(["no-new-privileges"], cap_add=("CAP_NET_ADMIN",)),
        network=NetworkOptions(mode=NetworkMode(kind="none"), hostname="box"),
        mounts=MountOptions(
            specs=(parse_mount("type=volume,source=v1,target=/v,volume-label=x=y"), parse_volume("/h:/c:ro")),
            tmpfs={"/run": "size=1m"},
        ),
    )
    doc = json.loads(json.dumps(options_to_json(options)))
    assert options_from_json(doc) == options
    assert options_from_json({**doc, "from_a_newer_pallet": 1}) == options
