"""``warnings_for``: the options that give isolation away are named, one line each, with the escape they open."""

from __future__ import annotations

import pytest

from pallet.engine.spec.options import (
    MountOptions,
    NetworkOptions,
    ResourceOptions,
    RunOptions,
    SecurityOptions,
    security_options,
)
from pallet.engine.spec.security import warnings_for
from pallet.engine.spec.syntax import DeviceMapping, MountSpec, parse_mount, parse_network, parse_volume


def mounts(*specs: MountSpec) -> MountOptions:
    return MountOptions(specs=specs)


def test_docker_defaults_and_harmless_options_warn_about_nothing() -> None:
    options = RunOptions(
        security=security_options(
            ["no-new-privileges=true"], cap_add=("CAP_NET_BIND_SERVICE",), cap_drop=("ALL",)
        ),
        mounts=mounts(
            parse_volume("data:/data"),
            parse_volume("/srv/app:/app:ro"),
            parse_mount("type=tmpfs,target=/t"),
        ),
        network=NetworkOptions(mode=parse_network("none")),
    )
    assert warnings_for(options) == []


def test_privileged_is_called_out_as_full_host_access() -> None:
    [warning] = warnings_for(RunOptions(security=SecurityOptions(privileged=True)))
    assert warning.startswith("--privileged (high): every capability, every host device")


@pytest.mark.parametrize(
    ("cap", "words"),
    [
        ("CAP_SYS_ADMIN", "mount filesystems"),
        ("CAP_SYS_PTRACE", "trace processes"),
        ("CAP_SYS_MODULE", "kernel modules"),
        ("CAP_NET_ADMIN", "firewall"),
        ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
    ],
)
def test_dangerous_capabilities_say_what_they_allow(cap: str, words: str) -> None:
    [warning] = warnings_for(RunOptions(security=SecurityOptions(cap_add=(cap,))))
    assert warning.startswith(f"--cap-add {cap.removeprefix('CAP_')} (")
    assert words in warning


def test_cap_add_all_is_one_warning() -> None:
    [warning] = warnings_for(RunOptions(security=SecurityOptions(cap_add=("ALL", "CAP_SYS_ADMIN"))))
    assert "every capability" in warning


def test_unconfined_seccomp_and_system_paths_warn() -> None:
    security = security_options(["seccomp=unconfined", "systempaths=unconfined"])
    warnings = warnings_for(RunOptions(security=security))
    assert any(
        w.startswith("--security-opt seccomp=unconfined (high): no system call filter") for w in warnings
    )
    assert any("/proc/kcore" in w for w in warnings)
    assert len(warnings) == 2


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("/var/run/docker.sock:/var/run/docker.sock", "Docker engine socket"),
        ("/:/host:ro", "the host's whole filesystem"),
        ("/proc:/hostproc", "host processes"),
        ("/sys/fs/cgroup:/cg", "the host's cgroups"),
        ("/etc/shadow:/shadow:ro", "/etc/shadow is inside /etc"),
        ("/run:/hostrun", "/run holds /run/pallet"),
        ("/dev/sda:/disk", "every device of the host"),
        ("/run/pallet:/p", "pallet's run directory"),
    ],
)
def test_bind_mounts_of_host_control_surfaces_warn(spec: str, words: str) -> None:
    [warning] = warnings_for(RunOptions(mounts=mounts(parse_volume(spec))))
    assert warning.startswith("-v ")
    assert words in warning
    assert (":ro (" in warning) == spec.endswith(":ro")


def test_engine_paths_given_by_the_caller_are_control_surfaces_too() -> None:
    mount = parse_mount("type=bind,source=/tmp/my-root/containers,target=/c")
    assert warnings_for(RunOptions(mounts=mounts(mount))) == []
    [warning] = warnings_for(RunOptions(mounts=mounts(mount)), engine_paths=["/tmp/my-root"])
    assert "this engine's own state" in warning


def test_host_network_and_devices_warn() -> None:
    warnings = warnings_for(
        RunOptions(
            network=NetworkOptions(mode=parse_network("host")),
            resources=ResourceOptions(
                devices=(DeviceMapping(path_on_host="/dev/sda", path_in_container="/dev/xvda"),)
            ),
        )
    )
    assert any(w.startswith("--network host (high): the host's network stack") for w in warnings)
    assert any(w.startswith("--device /dev/sda:/dev/xvda:rwm (") for w in warnings)
