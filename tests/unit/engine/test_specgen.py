"""``build_spec``: image config + options -> config.json, merged by docker's rules (no containers run here)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pallet.engine.spec import defaults
from pallet.engine.spec.generate import (
    HostFacts,
    build_spec,
    capabilities,
    merge_config,
    resolve_user,
)
from pallet.engine.spec.mounts import ResolvedMount
from pallet.engine.spec.options import (
    ProcessOptions,
    RunOptions,
)
from pallet.engine.spec.syntax import DeviceMapping, parse_security_opt, parse_ulimit
from pallet.errors import InvalidArgument, PalletError
from pallet.oci.image_spec import ContainerConfig
from pallet.oci.runtime_spec import ALL_CAPABILITIES, Spec, load_spec
from pallet.testing.options import run_options

CID = "0123456789ab" + "c" * 52
HOST = HostFacts(
    arch="amd64",
    kernel=(6, 1),
    capabilities=tuple(ALL_CAPABILITIES),
    cgroup_v2=False,
    swap_accounting=True,
    cpus=2,
    hostname="the-host",
    init_path="/usr/bin/tini-static",
)
IMAGE = ContainerConfig(
    entrypoint=("/entry.sh",),
    cmd=("serve", "--port", "80"),
    env=("PATH=/opt/bin:/bin", "LANG=C.UTF-8", "MODE=image"),
    working_dir="/app",
    user="",
    stop_signal="SIGQUIT",
    labels={"from": "image", "both": "image"},
)


@pytest.fixture
def rootfs(tmp_path: Path) -> str:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        "# a comment\n"
        "alice:x:1000:1000::/home/alice:/bin/sh\n"
        "svc:x:200:300::/:/bin/false\n"
    )
    (root / "etc" / "group").write_text(
        "root:x:0:\nalice:x:1000:\nstaff:x:50:alice,bob\nsvcgrp:x:300:\nwheel:x:10:root\n"
    )
    return str(root)


def spec_for(rootfs: str, image: ContainerConfig | None = IMAGE, **options: Any) -> Spec:
    return build_spec(
        container_id=CID, image_config=image, options=run_options(**options), rootfs=rootfs, host=HOST
    )


# --- merging the image config -------------------------------------------------------------------


def test_image_entrypoint_and_cmd_are_the_default_args(rootfs: str) -> None:
    spec = spec_for(rootfs)
    assert spec.process is not None
    assert spec.process.args == ("/entry.sh", "serve", "--port", "80")


def test_user_args_replace_the_image_cmd_but_keep_its_entrypoint(rootfs: str) -> None:
    spec = spec_for(rootfs, cmd=("debug",))
    assert spec.process is not None
    assert spec.process.args == ("/entry.sh", "debug")


def test_user_entrypoint_drops_the_image_cmd(rootfs: str) -> None:
    spec = spec_for(rootfs, entrypoint=("/bin/sh",))
    assert spec.process is not None
    assert spec.process.args == ("/bin/sh",)
    spec = spec_for(rootfs, entrypoint=("",), cmd=("echo", "hi"))
    assert spec.process is not None
    assert spec.process.args == ("echo", "hi")


def test_no_command_at_all_is_a_clear_error(rootfs: str) -> None:
    with pytest.raises(InvalidArgument, match="no command specified"):
        spec_for(rootfs, image=ContainerConfig(), cmd=None)
    with pytest.raises(InvalidArgument, match="no command specified"):
        spec_for(rootfs, entrypoint=("",))


def test_env_is_docker_defaults_then_user_then_image(rootfs: str) -> None:
    spec = spec_for(rootfs, env=("MODE=user", "EXTRA=1"), tty=True)
    assert spec.process is not None
    assert spec.process.env == (
        "PATH=/opt/bin:/bin",
        f"HOSTNAME={CID[:12]}",
        "TERM=xterm",
        "MODE=user",
        "EXTRA=1",
        "LANG=C.UTF-8",
    )


def test_env_without_image_path_gets_the_default_path(rootfs: str) -> None:
    spec = spec_for(rootfs, image=ContainerConfig(cmd=("sh",)))
    assert spec.process is not None
    assert spec.process.env == (f"PATH={defaults.DEFAULT_PATH}", f"HOSTNAME={CID[:12]}")


def test_workdir_hostname_and_stop_settings_merge(rootfs: str) -> None:
    spec = spec_for(rootfs)
    assert spec.process is not None
    assert (spec.process.cwd, spec.hostname) == ("/app", CID[:12])
    spec = spec_for(rootfs, workdir="/tmp", hostname="box")
    assert spec.process is not None
    assert (spec.process.cwd, spec.hostname) == ("/tmp", "box")
    assert spec_for(rootfs, image=ContainerConfig(cmd=("sh",))).process.cwd == "/"  # type: ignore[union-attr]
    assert spec_for(rootfs, network="host").hostname == "the-host"
    settings = merge_config(IMAGE, ProcessOptions(), hostname=CID[:12], labels={"both": "user"})
    assert (settings.stop_signal, settings.stop_timeout) == ("SIGQUIT", 10)
    assert dict(settings.labels) == {"from": "image", "both": "user"}
    settings = merge_config(
        None, ProcessOptions(cmd=("sh",), stop_signal="SIGUSR1", stop_timeout=3), hostname=CID[:12]
    )
    assert (settings.stop_signal, settings.stop_timeout) == ("SIGUSR1", 3)


def test_generated_spec_reads_back_equal_through_the_oci_parser(rootfs: str) -> None:
    spec = spec_for(
        rootfs,
        memory=64 << 20,
        cpus=5 * 10**8,
        pids_limit=20,
        ulimits=(parse_ulimit("nofile=100:200"),),
        tmpfs={"/run": "size=1m"},
        sysctls={"net.core.somaxconn": "128"},
        init=True,
        read_only=True,
    )
    assert load_spec(json.dumps(spec.to_json())) == spec


# --- users --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("", (0, 0, (0, 10))),
        ("alice", (1000, 1000, (1000, 50))),
        ("1000", (1000, 1000, (1000, 50))),
        ("alice:staff", (1000, 50, (50,))),
        ("alice:300", (1000, 300, (300,))),
        ("4242", (4242, 0, (0,))),
        ("4242:4343", (4242, 4343, (4343,))),
        ("svc", (200, 300, (300,))),
    ],
)
def test_resolve_user_follows_docker(
    rootfs: str, user: str, expected: tuple[int, int, tuple[int, ...]]
) -> None:
    assert resolve_user(rootfs, user) == expected


def test_resolve_user_errors_use_docker_words(rootfs: str) -> None:
    with pytest.raises(InvalidArgument, match="unable to find user bob: no matching entries in passwd file"):
        resolve_user(rootfs, "bob")
    with pytest.raises(InvalidArgument, match="unable to find group nope: no matching entries in group file"):
        resolve_user(rootfs, "alice:nope")
    with pytest.raises(InvalidArgument, match="uids and gids must be in range"):
        resolve_user(rootfs, "99999999999")


def test_resolve_user_adds_group_add(rootfs: str) -> None:
    assert resolve_user(rootfs, "alice", ["wheel", "777"]) == (1000, 1000, (1000, 50, 10, 777))
    with pytest.raises(InvalidArgument, match="unable to find group ghosts"):
        resolve_user(rootfs, "alice", ["ghosts"])


def test_resolve_user_reads_passwd_inside_the_rootfs(tmp_path: Path) -> None:
    # /etc/passwd -> /etc/host-passwd: an absolute link resolves in the rootfs, never on the host
    root = tmp_path / "r"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "host-passwd").write_text("inside:x:7:7::/:/bin/sh\n")
    os.symlink("/etc/host-passwd", root / "etc" / "passwd")
    assert resolve_user(str(root), "inside")[0] == 7
    with pytest.raises(InvalidArgument, match="unable to find user root"):
        resolve_user(str(root), "root")


def test_missing_passwd_allows_numeric_users_only(tmp_path: Path) -> None:
    assert resolve_user(str(tmp_path), "12:34") == (12, 34, (34,))
    with pytest.raises(InvalidArgument, match="unable to find user app"):
        resolve_user(str(tmp_path), "app")


# --- capabilities -------------------------------------------------------------------------------


def test_default_capabilities_are_dockers_14_less_audit_write(rootfs: str) -> None:
    spec = spec_for(rootfs)
    assert spec.process is not None
    assert spec.process.capabilities is not None
    caps = spec.process.capabilities
    assert caps.bounding == caps.effective == caps.permitted == defaults.DEFAULT_CAPABILITIES
    assert len(defaults.DEFAULT_CAPABILITIES) == 13
    assert "CAP_AUDIT_WRITE" not in defaults.DEFAULT_CAPABILITIES
    assert caps.inheritable is None
    assert caps.ambient is None


def test_non_root_user_gets_only_the_bounding_set(rootfs: str) -> None:
    spec = spec_for(rootfs, user="alice")
    assert spec.process is not None
    assert spec.process.capabilities is not None
    assert spec.process.capabilities.bounding == defaults.DEFAULT_CAPABILITIES
    assert spec.process.capabilities.effective is None
    assert spec.process.user.uid == 1000


def test_cap_add_and_drop_rules() -> None:
    everything = tuple(ALL_CAPABILITIES)
    base = defaults.DEFAULT_CAPABILITIES
    tweak = capabilities
    assert tweak(["CAP_SYS_ADMIN"], ["CAP_NET_RAW"], privileged=False, all_caps=everything) == (
        *(c for c in base if c != "CAP_NET_RAW"),
        "CAP_SYS_ADMIN",
    )
    assert tweak(["CAP_CHOWN"], ["ALL"], privileged=False, all_caps=everything) == ("CAP_CHOWN",)
    assert tweak(["ALL"], ["CAP_SYS_ADMIN"], privileged=False, all_caps=everything) == tuple(
        c for c in everything if c != "CAP_SYS_ADMIN"
    )
    assert tweak([], [], privileged=True, all_caps=everything) == everything
    # added wins over dropped, as in docker
    assert "CAP_KILL" in tweak(["CAP_KILL"], ["CAP_KILL"], privileged=False, all_caps=everything)


# --- security -----------------------------------------------------------------------------------


def test_default_spec_masks_paths_and_filters_syscalls(rootfs: str) -> None:
    spec = spec_for(rootfs)
    assert spec.linux is not None
    assert spec.linux.seccomp is not None
    assert "/proc/kcore" in spec.linux.masked_paths
    assert "/proc/sys" in spec.linux.readonly_paths
    seccomp = spec.linux.seccomp
    assert (seccomp.default_action, seccomp.default_errno_ret) == ("SCMP_ACT_ERRNO", 1)
    assert seccomp.architectures == ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")
    allowed = {n for s in seccomp.syscalls if s.action == "SCMP_ACT_ALLOW" and not s.args for n in s.names}
    assert {"read", "write", "execve", "arch_prctl", "ptrace"} <= allowed
    assert not {"mount", "unshare", "keyctl", "bpf", "kexec_load", "init_module"} & allowed
    assert spec.process is not None
    assert not spec.process.no_new_privileges
    assert spec.process.oom_score_adj == 0  # never the engine's own score


def test_security_opt_no_new_privileges_and_unconfined(rootfs: str) -> None:
    spec = spec_for(rootfs, security_opt=(parse_security_opt("no-new-privileges"),))
    assert spec.process is not None
    assert spec.process.no_new_privileges
    spec = spec_for(rootfs, security_opt=("seccomp=unconfined", "systempaths=unconfined"))
    assert spec.linux is not None
    assert spec.linux.seccomp is None
    assert spec.linux.masked_paths == spec.linux.readonly_paths == ()


def test_seccomp_file_in_docker_format_is_used(rootfs: str, tmp_path: Path) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95}],
            }
        )
    )
    spec = spec_for(rootfs, security_opt=(f"seccomp={profile}",))
    assert spec.linux is not None
    assert spec.linux.seccomp is not None
    assert spec.linux.seccomp.default_action == "SCMP_ACT_ALLOW"
    assert [(s.names, s.errno_ret) for s in spec.linux.seccomp.syscalls] == [(("mkdir",), 95)]
    with pytest.raises(InvalidArgument, match=r"opening seccomp profile \(.*missing.json\) failed"):
        spec_for(rootfs, security_opt=(f"seccomp={tmp_path / 'missing.json'}",))


def test_cap_sys_admin_opens_the_syscalls_docker_ties_to_it(rootfs: str) -> None:
    spec = spec_for(rootfs, cap_add=("CAP_SYS_ADMIN",))
    assert spec.linux is not None
    assert spec.linux.seccomp is not None
    rules = spec.linux.seccomp.syscalls
    allowed = {n for s in rules if s.action == "SCMP_ACT_ALLOW" and not s.args for n in s.names}
    assert {"mount", "unshare", "setns", "clone", "clone3"} <= allowed
    assert not any(s.names == ("clone3",) and s.action == "SCMP_ACT_ERRNO" for s in rules)


def test_privileged_lifts_every_restriction(rootfs: str) -> None:
    spec = spec_for(rootfs, privileged=True)
    assert spec.linux is not None
    assert spec.process is not None
    assert spec.process.capabilities is not None
    assert spec.linux.seccomp is None
    assert spec.linux.masked_paths == spec.linux.readonly_paths == ()
    assert spec.process.capabilities.bounding == tuple(ALL_CAPABILITIES)
    assert spec.linux.resources is not None
    assert [(r.allow, r.type, r.access) for r in spec.linux.resources.devices] == [(True, "", "rwm")]
    sys_mounts = [m for m in spec.mounts if m.type in ("sysfs", "cgroup")]
    assert sys_mounts
    assert all("ro" not in m.options for m in sys_mounts)
    paths = {d.path for d in spec.linux.devices}
    assert "/dev/null" not in paths  # the runtime makes the standard nodes itself
    if os.path.exists("/dev/loop-control"):
        assert "/dev/loop-control" in paths


# --- mounts -------------------------------------------------------------------------------------


def _mount(spec: Spec, destination: str) -> tuple[str, str, tuple[str, ...]]:
    found = [m for m in spec.mounts if m.destination == destination]
    assert len(found) == 1, [m.destination for m in spec.mounts]
    return found[0].type, found[0].source, found[0].options


def test_default_mounts_and_shm_size(rootfs: str) -> None:
    spec = spec_for(rootfs, shm_size=128 << 20)
    destinations = [m.destination for m in spec.mounts]
    assert destinations == ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"]
    assert "size=134217728" in _mount(spec, "/dev/shm")[2]
    assert "ro" in _mount(spec, "/sys")[2]


def test_user_mounts_replace_defaults_and_are_sorted_by_depth(rootfs: str) -> None:
    mounts = (
        ResolvedMount(type="bind", source="/srv/a/b", destination="/data/sub", options=("rbind", "rprivate")),
        ResolvedMount(type="bind", source="/srv/shm", destination="/dev/shm", options=("rbind",)),
        ResolvedMount(type="bind", source="/srv/a", destination="/data", options=("rbind", "rslave")),
    )
    spec = build_spec(
        container_id=CID, image_config=IMAGE, options=RunOptions(), rootfs=rootfs, mounts=mounts, host=HOST
    )
    destinations = [m.destination for m in spec.mounts]
    assert destinations[-3:] == ["/data", "/data/sub", "/dev/shm"]  # parents first, else as given
    assert _mount(spec, "/dev/shm")[1] == "/srv/shm"
    assert spec.linux is not None
    assert spec.linux.rootfs_propagation == "rslave"


def test_a_user_dev_mount_drops_the_default_dev_submounts(rootfs: str) -> None:
    mounts = (ResolvedMount(type="bind", source="/srv/dev", destination="/dev", options=("rbind",)),)
    spec = build_spec(
        container_id=CID, image_config=IMAGE, options=RunOptions(), rootfs=rootfs, mounts=mounts, host=HOST
    )
    assert not [m for m in spec.mounts if m.destination.startswith("/dev/")]


def test_duplicate_destinations_are_refused(rootfs: str) -> None:
    mounts = (ResolvedMount(type="bind", source="/a", destination="/run", options=("rbind",)),)
    with pytest.raises(InvalidArgument, match="Duplicate mount point: /run"):
        build_spec(
            container_id=CID,
            image_config=IMAGE,
            options=run_options(tmpfs={"/run": ""}),
            rootfs=rootfs,
            mounts=mounts,
            host=HOST,
        )


def test_read_only_rootfs_keeps_dev_and_proc_writable(rootfs: str) -> None:
    spec = spec_for(rootfs, read_only=True, tmpfs={"/tmp": "exec,size=1m"})
    assert spec.root is not None
    assert spec.root.readonly
    assert "ro" not in _mount(spec, "/dev/shm")[2]
    assert "ro" not in _mount(spec, "/proc")[2]
    assert "ro" in _mount(spec, "/sys/fs/cgroup")[2]
    kind, _, options = _mount(spec, "/tmp")
    assert kind == "tmpfs"
    assert "exec" in options
    assert "noexec" not in options
    assert "size=1m" in options


def test_hosts_files_are_bound_unless_the_user_mounts_them(rootfs: str) -> None:
    spec = build_spec(
        container_id=CID,
        image_config=IMAGE,
        options=run_options(tmpfs={"/etc/hostname": ""}),
        rootfs=rootfs,
        host=HOST,
        hosts_files={"/etc/hosts": "/state/hosts", "/etc/hostname": "/state/hostname"},
    )
    assert _mount(spec, "/etc/hosts") == ("bind", "/state/hosts", ("rbind", "rprivate"))
    assert _mount(spec, "/etc/hostname")[0] == "tmpfs"


def test_init_binds_tini_and_prepends_it(rootfs: str) -> None:
    spec = spec_for(rootfs, init=True)
    assert spec.process is not None
    assert spec.process.args[:2] == (defaults.INIT_PATH, "--")
    assert _mount(spec, defaults.INIT_PATH) == ("bind", "/usr/bin/tini-static", ("bind", "ro"))
    with pytest.raises(InvalidArgument, match="tini"):
        build_spec(
            container_id=CID,
            image_config=IMAGE,
            options=run_options(init=True),
            rootfs=rootfs,
            host=HOST.replace(init_path=None),
        )


# --- resources, namespaces, devices -------------------------------------------------------------


def test_resources_follow_docker(rootfs: str) -> None:
    spec = spec_for(rootfs, memory=64 << 20, cpus=15 * 10**8, cpu_shares=512, cpuset_cpus="0", pids_limit=30)
    assert spec.linux is not None
    assert spec.linux.resources is not None
    res = spec.linux.resources
    assert res.memory is not None
    assert (res.memory.limit, res.memory.swap) == (64 << 20, 128 << 20)
    assert res.cpu is not None
    assert (res.cpu.quota, res.cpu.period, res.cpu.shares, res.cpu.cpus) == (
        150000,
        100000,
        512,
        "0",
    )
    assert res.pids is not None
    assert res.pids.limit == 30
    assert spec.linux.cgroups_path == f"/pallet/{CID}"
    spec = spec_for(rootfs, memory=64 << 20, memory_swap=-1)
    assert spec.linux is not None
    assert spec.linux.resources is not None
    assert spec.linux.resources.memory is not None
    assert spec.linux.resources.memory.swap == -1
    no_swap = build_spec(
        container_id=CID,
        image_config=IMAGE,
        options=run_options(memory=64 << 20),
        rootfs=rootfs,
        host=HOST.replace(swap_accounting=False),
    )
    assert no_swap.linux is not None
    assert no_swap.linux.resources is not None
    assert no_swap.linux.resources.memory is not None
    assert no_swap.linux.resources.memory.swap is None


def test_network_modes_set_the_namespaces(rootfs: str) -> None:
    private = spec_for(rootfs)
    assert private.linux is not None
    assert [n.type for n in private.linux.namespaces] == ["mount", "network", "uts", "pid", "ipc"]
    assert private.linux.sysctl["net.ipv4.ping_group_range"] == "0 2147483647"
    host = spec_for(rootfs, network="host")
    assert host.linux is not None
    assert "network" not in [n.type for n in host.linux.namespaces]
    assert not host.linux.sysctl
    assert host.hooks is None
    v2 = build_spec(
        container_id=CID,
        image_config=IMAGE,
        options=RunOptions(),
        rootfs=rootfs,
        host=HOST.replace(cgroup_v2=True),
    )
    assert v2.linux is not None
    assert "cgroup" in [n.type for n in v2.linux.namespaces]


def test_ulimits_and_sysctls_reach_the_spec(rootfs: str) -> None:
    spec = spec_for(
        rootfs, ulimits=(parse_ulimit("nofile=10:20"),), sysctls={"net.ipv4.ping_group_range": "1 1"}
    )
    assert spec.process is not None
    assert spec.linux is not None
    assert [(r.type, r.soft, r.hard) for r in spec.process.rlimits] == [("RLIMIT_NOFILE", 10, 20)]
    assert spec.linux.sysctl["net.ipv4.ping_group_range"] == "1 1"


def test_device_flag_adds_the_node_and_its_cgroup_rule(rootfs: str, tmp_path: Path) -> None:
    spec = spec_for(
        rootfs,
        devices=(DeviceMapping(path_on_host="/dev/null", path_in_container="/dev/mynull", permissions="rw"),),
    )
    assert spec.linux is not None
    assert spec.linux.resources is not None
    [device] = spec.linux.devices
    assert (device.path, device.type, device.major, device.minor) == ("/dev/mynull", "c", 1, 3)
    rule = spec.linux.resources.devices[-1]
    assert (rule.allow, rule.type, rule.major, rule.minor, rule.access) == (True, "c", 1, 3, "rw")
    (tmp_path / "plain").write_text("")
    with pytest.raises(InvalidArgument, match="not a device node"):
        spec_for(
            rootfs, devices=(DeviceMapping(path_on_host=str(tmp_path / "plain"), path_in_container="/dev/x"),)
        )
    with pytest.raises(PalletError, match="no such file or directory"):
        spec_for(
            rootfs, devices=(DeviceMapping(path_on_host="/dev/pallet-none", path_in_container="/dev/x"),)
        )


def test_capability_names_from_the_python_api_are_normalised(rootfs: str) -> None:
    spec = spec_for(rootfs, cap_add=("sys_ptrace",), cap_drop=("net_raw",))
    assert spec.process is not None
    assert spec.process.capabilities is not None
    bounding = spec.process.capabilities.bounding or ()
    assert "CAP_SYS_PTRACE" in bounding
    assert "CAP_NET_RAW" not in bounding
