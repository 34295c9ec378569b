"""What a container shares: namespace modes, --volumes-from, links, device cgroup rules, swappiness,
log drivers, isolation, volume subpaths and env names without a value, from their syntax through
the options' checks to config.json (no containers run here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pallet.engine.containers.sharing import link_env
from pallet.engine.spec.generate import HostFacts, build_spec
from pallet.engine.spec.options import NamespaceOptions, RunOptions, options_from_json, options_to_json
from pallet.engine.spec.syntax import (
    check_subpath,
    parse_cgroupns_mode,
    parse_device_cgroup_rule,
    parse_ipc_mode,
    parse_link,
    parse_log_driver,
    parse_mount,
    parse_pid_mode,
    parse_uts_mode,
    parse_volumes_from,
)
from pallet.errors import InvalidArgument, PalletError, Unsupported
from pallet.oci.image_spec import ContainerConfig
from pallet.oci.runtime_spec import DeviceRule, Spec
from pallet.testing.options import run_options

CID = "fedcba987654" + "d" * 52
V1 = HostFacts(
    arch="amd64", kernel=(6, 1), capabilities=("CAP_CHOWN",), cgroup_v2=False, swap_accounting=True, cpus=2,
    hostname="the-host",
)  # fmt: skip
V2 = V1.replace(cgroup_v2=True)
IMAGE = ContainerConfig(cmd=("sh",), env=("FROM_IMAGE=1", "DROPPED=image"))


@pytest.fixture
def rootfs(tmp_path: Path) -> str:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\n")
    return str(tmp_path)


def spec_for(rootfs: str, host: HostFacts = V1, **options: Any) -> Spec:
    extra = {k: options.pop(k) for k in ("joined_namespaces", "shm", "linked_env") if k in options}
    return build_spec(
        container_id=CID,
        image_config=IMAGE,
        options=run_options(**options),
        rootfs=rootfs,
        host=host,
        **extra,
    )


def namespaces(spec: Spec) -> dict[str, str]:
    assert spec.linux is not None
    return {n.type: n.path for n in spec.linux.namespaces}


def shm_mounts(spec: Spec) -> list[tuple[str, str]]:
    return [(m.type, m.source) for m in spec.mounts if m.destination == "/dev/shm"]


# --- syntax ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parse", "text", "error"),
    [
        (parse_pid_mode, "private", "invalid PID mode: private"),
        (parse_pid_mode, "container:", "invalid PID mode: container:"),
        (parse_ipc_mode, "public", "invalid IPC mode: public"),
        (parse_uts_mode, "container:x", "invalid UTS mode: container:x"),
        (parse_cgroupns_mode, "both", "invalid cgroup namespace mode: both"),
        (parse_link, "a:b:c", "bad format for links: a:b:c"),
        (parse_link, "a:", "bad format for links: a:"),
        (parse_volumes_from, "web:rx", "invalid mode: rx"),
        (parse_device_cgroup_rule, "c 7:128", "invalid device cgroup format 'c 7:128'"),
        (parse_device_cgroup_rule, "c 7:x rwm", "invalid device cgroup format 'c 7:x rwm'"),
        (parse_device_cgroup_rule, "c 7:1 rwx", "invalid device cgroup format 'c 7:1 rwx'"),
        (parse_log_driver, "asdf", "logger: no log driver named 'asdf' is registered"),
        (check_subpath, "/abs", "must be a relative path within the volume"),
        (check_subpath, "a/../../b", "must be a relative path within the volume"),
    ],
)
def test_bad_syntax_is_refused_in_dockers_words(parse: Any, text: str, error: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse(text)
    assert error in str(caught.value)


def test_modes_and_links_parse_as_docker_writes_them() -> None:
    assert parse_pid_mode("container:db") == "container:db"
    assert parse_ipc_mode("shareable") == "shareable"
    assert parse_link("/db") == "db:db"
    assert parse_link("db:alias") == "db:alias"
    assert parse_volumes_from("web") == ("web", "")
    assert parse_volumes_from("web:ro") == ("web", "ro")
    assert parse_device_cgroup_rule("c 7:128 rwm") == ("c", 7, 128, "rwm")
    assert parse_device_cgroup_rule("b *:* r") == ("b", None, None, "r")
    assert parse_log_driver("json-file") == "json-file"
    assert parse_log_driver("none") == "none"
    with pytest.raises(Unsupported, match='log driver "syslog" is not supported by pallet'):
        parse_log_driver("syslog")
    spec = parse_mount("type=volume,src=data,dst=/m,volume-subpath=sub/dir/")
    assert spec.volume_subpath == "sub/dir"
    with pytest.raises(InvalidArgument, match="cannot mix 'volume-subpath' options with mount type 'bind'"):
        parse_mount("type=bind,src=/tmp,dst=/m,volume-subpath=x")


# --- the options' checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: run_options(uts="host", hostname="box"), "conflicting options: hostname and the UTS mode"),
        (lambda: run_options(links=("db",), network="host"), "host type networking can't be used with links"),
        (
            lambda: run_options(links=("db",), network="container:x"),
            "container type network can't be used with links",
        ),
        (
            lambda: run_options(isolation="hyperv"),
            "invalid isolation: \"hyperv\" - linux only supports 'default'",
        ),
        (
            lambda: run_options(ipc="host", sysctls={"kernel.shmmax": "1"}),
            "not allowed with the host IPC namespace",
        ),
        (lambda: run_options(memory_swappiness=101), "valid memory swappiness range is 0-100"),
        (lambda: run_options(device_cgroup_rules=("z 1:1 r",)), "invalid device cgroup format"),
        (lambda: run_options(volumes_from=("web:x",)), "invalid mode: x"),
        (lambda: run_options(pid="container"), "invalid PID mode: container"),
        (
            lambda: run_options(log_driver="none", log_opts={"max-size": "1m"}),
            "invalid logging opts for driver none",
        ),
    ],
)
def test_options_that_cannot_go_together_are_refused(make: Any, error: str) -> None:
    with pytest.raises(PalletError) as caught:
        make()
    assert error in str(caught.value)


def test_shared_options_are_stored_and_read_back_equal() -> None:
    options = run_options(
        pid="container:db", ipc="shareable", uts="host", cgroupns="private", volumes_from=("web:ro",),
        links=("/db:alias",), device_cgroup_rules=("c 1:3 rw",), memory_swappiness=10, isolation="default",
        log_driver="json-file", env=("NAME_ONLY", "A=b"),
    )  # fmt: skip
    assert options.network.links == ("db:alias",)
    assert options_from_json(options_to_json(options)) == options
    # a record of an older pallet has no namespaces: the defaults
    old = options_to_json(RunOptions())
    del old["namespaces"]
    assert options_from_json(old).namespaces == NamespaceOptions()


# --- config.json ------------------------------------------------------------------------------------


def test_default_namespaces_are_private_and_cgroup_follows_the_cgroup_version(rootfs: str) -> None:
    assert set(namespaces(spec_for(rootfs, V1))) == {"mount", "network", "uts", "pid", "ipc"}
    assert set(namespaces(spec_for(rootfs, V2))) == {"mount", "network", "uts", "pid", "ipc", "cgroup"}
    assert "cgroup" in namespaces(spec_for(rootfs, V1, cgroupns="private"))
    assert "cgroup" not in namespaces(spec_for(rootfs, V2, cgroupns="host"))
    assert shm_mounts(spec_for(rootfs)) == [("tmpfs", "shm")]


def test_host_modes_leave_the_namespace_out(rootfs: str) -> None:
    spec = spec_for(rootfs, pid="host", ipc="host", uts="host")
    assert set(namespaces(spec)) == {"mount", "network"}
    assert spec.hostname == ""  # a runtime refuses a hostname without its own uts namespace
    assert shm_mounts(spec) == [("bind", "/dev/shm")]
    assert spec.process is not None
    assert f"HOSTNAME={CID[:12]}" in spec.process.env  # dockerd's: the id, though the kernel says the host's


def test_container_modes_join_the_paths_given(rootfs: str) -> None:
    spec = spec_for(
        rootfs, pid="container:db", ipc="container:db",
        joined_namespaces={"pid": "/proc/42/ns/pid", "ipc": "/proc/42/ns/ipc"}, shm="/var/lib/x/shm",
    )  # fmt: skip
    found = namespaces(spec)
    assert found["pid"] == "/proc/42/ns/pid"
    assert found["ipc"] == "/proc/42/ns/ipc"
    assert shm_mounts(spec) == [("bind", "/var/lib/x/shm")]


def test_ipc_none_has_no_dev_shm_and_shareable_binds_its_own(rootfs: str) -> None:
    assert shm_mounts(spec_for(rootfs, ipc="none")) == []
    assert shm_mounts(spec_for(rootfs, ipc="shareable", shm="/c/shm", shm_size=1 << 20)) == [
        ("bind", "/c/shm")
    ]
    assert "ipc" in namespaces(spec_for(rootfs, ipc="shareable", shm="/c/shm"))


def test_device_cgroup_rules_and_swappiness(rootfs: str) -> None:
    spec = spec_for(rootfs, V1, device_cgroup_rules=("c 7:128 rwm", "a *:* r"), memory_swappiness=40)
    assert spec.linux is not None
    assert spec.linux.resources is not None
    rules = spec.linux.resources.devices
    assert DeviceRule(allow=True, type="c", major=7, minor=128, access="rwm") in rules
    assert DeviceRule(allow=True, type="a", access="r") in rules
    assert spec.linux.resources.memory is not None
    assert spec.linux.resources.memory.swappiness == 40
    v2 = spec_for(rootfs, V2, memory_swappiness=40)
    assert v2.linux is not None
    assert v2.linux.resources is not None
    assert v2.linux.resources.memory is None  # cgroup v2 has no swappiness


def test_env_name_without_value_unsets_it_and_link_variables_come_under_the_users(rootfs: str) -> None:
    spec = spec_for(
        rootfs,
        env=("DROPPED", "MINE=1", "LINK_NAME=mine"),
        linked_env=("LINK_NAME=/app/link", "LINK_ENV_X=y"),
    )
    assert spec.process is not None
    env = spec.process.env
    assert not any(e.startswith("DROPPED") for e in env)
    assert "LINK_NAME=mine" in env
    assert "LINK_ENV_X=y" in env
    assert "FROM_IMAGE=1" in env
    assert "LINK_NAME=/app/link" not in env


def test_link_variables_are_dockers() -> None:
    env = link_env(
        "my-db", "/app/my-db", "10.0.0.2", ("5432/tcp", "53/udp", "53/tcp", "7000/tcp", "7001/tcp", "7002/tcp"),
        ("PATH=/bin", "HOME=/root", "SECRET=s", "BARE"),
    )  # fmt: skip
    assert env[0] == "MY_DB_PORT=tcp://10.0.0.2:53"
    assert "MY_DB_PORT_53_UDP=udp://10.0.0.2:53" in env
    assert "MY_DB_PORT_5432_TCP_ADDR=10.0.0.2" in env
    assert "MY_DB_PORT_5432_TCP_PORT=5432" in env
    assert "MY_DB_PORT_5432_TCP_PROTO=tcp" in env
    assert "MY_DB_PORT_7000_TCP_START=tcp://10.0.0.2:7000" in env
    assert "MY_DB_PORT_7000_TCP_END=tcp://10.0.0.2:7002" in env
    assert "MY_DB_NAME=/app/my-db" in env
    assert "MY_DB_ENV_SECRET=s" in env
    assert not any("_ENV_PATH" in e or "_ENV_HOME" in e or "BARE" in e for e in env)


def test_host_namespaces_are_findings_with_their_severity() -> None:
    from pallet.engine.spec.findings import findings_for

    found = {f.setting: f.severity for f in findings_for(run_options(pid="host", ipc="host", uts="host"))}
    assert found == {"--pid host": "high", "--ipc host": "medium", "--uts host": "low"}
    assert not findings_for(run_options(pid="container:db", ipc="shareable"))
    assert [f.setting for f in findings_for(run_options(cgroupns="host"))] == ["--cgroupns host"]
    # where the default container shares the host's cgroup namespace (cgroup v1), asking for it gives nothing away
    assert not findings_for(run_options(cgroupns="host"), private_cgroupns=False)
