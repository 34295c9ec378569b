"""Seccomp profiles: pallet's default allow-list resolved per container, and docker-format files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pallet.engine.spec.defaults import DEFAULT_CAPABILITIES
from pallet.engine.spec.seccomp import (
    default_profile,
    go_arch,
    kernel_version,
    load_profile,
    parse_profile,
    resolve,
)
from pallet.errors import InvalidArgument, SpecError
from pallet.oci.runtime_spec import Seccomp

CLONE_NAMESPACE_FLAGS = 0x7E020000


def _allowed(seccomp: Seccomp) -> set[str]:
    return {n for s in seccomp.syscalls if s.action == "SCMP_ACT_ALLOW" and not s.args for n in s.names}


def _default(
    caps: tuple[str, ...] = DEFAULT_CAPABILITIES, arch: str = "amd64", kernel: tuple[int, int] = (6, 1)
) -> Seccomp:
    return resolve(default_profile(), capabilities=caps, arch=arch, kernel=kernel)


def test_default_profile_is_an_allow_list_returning_eperm() -> None:
    seccomp = _default()
    assert (seccomp.default_action, seccomp.default_errno_ret) == ("SCMP_ACT_ERRNO", 1)
    allowed = _allowed(seccomp)
    assert len(allowed) > 300
    for dangerous in (
        "mount",
        "umount2",
        "unshare",
        "setns",
        "keyctl",
        "add_key",
        "bpf",
        "kexec_load",
        "init_module",
        "reboot",
        "open_by_handle_at",
        "userfaultfd",
        "perf_event_open",
        "swapon",
    ):
        assert dangerous not in allowed


def test_default_profile_restricts_clone_socket_and_personality_by_argument() -> None:
    rules = _default().syscalls
    [clone] = [s for s in rules if s.names == ("clone",)]
    [arg] = clone.args
    assert (arg.index, arg.op, arg.value, arg.value_two) == (
        0,
        "SCMP_CMP_MASKED_EQ",
        CLONE_NAMESPACE_FLAGS,
        0,
    )
    families = {s.args[0].value for s in rules if s.names == ("socket",) and s.args[0].op == "SCMP_CMP_EQ"}
    assert {1, 2, 10, 16} <= families  # unix, inet, inet6, netlink
    assert not families & {17, 40}  # never AF_PACKET or AF_VSOCK
    personas = sorted(s.args[0].value for s in rules if s.names == ("personality",))
    assert personas == [0, 8, 0x20000, 0x20008, 0xFFFFFFFF]
    [clone3] = [s for s in rules if s.names == ("clone3",)]
    assert (clone3.action, clone3.errno_ret) == ("SCMP_ACT_ERRNO", 38)  # ENOSYS: libc falls back to clone


def test_capabilities_unlock_their_syscalls() -> None:
    assert "mount" in _allowed(_default((*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN")))
    assert "clone" in _allowed(_default((*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN")))
    assert {"ptrace", "kcmp"} <= _allowed(_default((*DEFAULT_CAPABILITIES, "CAP_SYS_PTRACE")))
    assert "chroot" in _allowed(_default())  # CAP_SYS_CHROOT is a default capability
    assert "chroot" not in _allowed(_default(tuple(c for c in DEFAULT_CAPABILITIES if c != "CAP_SYS_CHROOT")))


def test_rules_depend_on_architecture_and_kernel() -> None:
    amd64 = _allowed(_default())
    assert "arch_prctl" in amd64
    assert "s390_runtime_instr" not in amd64
    s390 = _default(arch="s390x")
    assert s390.architectures == ("SCMP_ARCH_S390X", "SCMP_ARCH_S390")
    assert "s390_runtime_instr" in _allowed(s390)
    assert [s.args[0].index for s in s390.syscalls if s.names == ("clone",)] == [1]
    assert "ptrace" not in _allowed(_default(kernel=(4, 4)))
    assert "ptrace" in _allowed(_default(kernel=(4, 8)))


def test_docker_format_profile_with_includes_excludes_and_arch_map(tmp_path: Path) -> None:
    doc = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"name": "mount", "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.0"}},
            {"names": ["modify_ldt"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
            {
                "names": ["mkdir"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 95,
                "excludes": {"caps": ["CAP_CHOWN"]},
            },
        ],
    }
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    profile = load_profile(str(path))
    seccomp = resolve(profile, capabilities=("CAP_KILL",), arch="amd64", kernel=(6, 1))
    assert seccomp.architectures == ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86")
    assert [s.names for s in seccomp.syscalls] == [("read", "write"), ("modify_ldt",), ("mkdir",)]
    with_admin = resolve(profile, capabilities=("CAP_SYS_ADMIN", "CAP_CHOWN"), arch="arm64", kernel=(4, 19))
    assert [s.names for s in with_admin.syscalls] == [("read", "write"), ("mount",), ("ptrace",)]
    assert with_admin.architectures == ()


def test_plain_oci_seccomp_object_is_read_as_a_profile() -> None:
    doc = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {
                "names": ["chmod"],
                "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}],
            }
        ],
    }
    seccomp = resolve(parse_profile(doc, source="x"), capabilities=(), arch="arm64", kernel=(6, 1))
    assert seccomp.architectures == ("SCMP_ARCH_X86_64",)
    assert seccomp.syscalls[0].args[0].index == 1


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "must be a JSON object"),
        ({"defaultAction": "SCMP_ACT_MAYBE"}, 'unknown seccomp action "SCMP_ACT_MAYBE"'),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}],
            },
            "either 'name' or 'names'",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "archMap": [{"architecture": "SCMP_ARCH_X86_64"}],
                "architectures": ["SCMP_ARCH_X86"],
            },
            "not both",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "new"}}],
            },
            "kernel version",
        ),
    ],
)
def test_bad_profiles_name_the_bad_field(doc: object, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_profile(doc, source="p.json")


def test_unreadable_profile_files_are_invalid_arguments(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="opening seccomp profile"):
        load_profile(str(tmp_path / "none.json"))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InvalidArgument, match="decoding seccomp profile"):
        load_profile(str(tmp_path / "bad.json"))


def test_host_names_for_arch_and_kernel() -> None:
    assert go_arch("x86_64") == "amd64"
    assert go_arch("aarch64") == "arm64"
    assert kernel_version("6.1.0-13-amd64") == (6, 1)
    assert kernel_version("4.8") == (4, 8)
    assert kernel_version("5") == (5, 0)


def _allowed_with_args(seccomp: Seccomp, name: str) -> list[list[tuple[int, str, int, int]]]:
    return [
        [(a.index, a.op, a.value, a.value_two) for a in s.args]
        for s in seccomp.syscalls
        if s.action == "SCMP_ACT_ALLOW" and name in s.names
    ]


def test_default_profile_refuses_io_uring_keyring_userfaultfd_perf_and_bpf() -> None:
    allowed = _allowed(_default())
    for refused in (
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "add_key",
        "request_key",
        "keyctl",
        "userfaultfd",
        "perf_event_open",
        "bpf",
        "unshare",
        "socketcall",
    ):
        assert refused not in allowed, refused
    assert not _allowed_with_args(_default(), "io_uring_setup")


def test_raw_sockets_are_confined_to_icmp_and_packet_sockets_refused() -> None:
    rules = _allowed_with_args(_default(), "socket")
    assert [(0, "SCMP_CMP_EQ", 17, 0)] not in rules  # AF_PACKET
    raw = [r for r in rules if (1, "SCMP_CMP_MASKED_EQ", 15, 3) in r]
    assert raw == [[(0, "SCMP_CMP_EQ", 2, 0), (1, "SCMP_CMP_MASKED_EQ", 15, 3), (2, "SCMP_CMP_EQ", 1, 0)]]
    hdrincl = [r for r in _allowed_with_args(_default(), "setsockopt") if (2, "SCMP_CMP_EQ", 3, 0) in r]
    assert hdrincl == []  # IP_HDRINCL never


def test_capabilities_turn_the_stricter_rules_back_off() -> None:
    net_admin = _default((*DEFAULT_CAPABILITIES, "CAP_NET_ADMIN"))
    assert [(0, "SCMP_CMP_NE", 40, 0)] in _allowed_with_args(net_admin, "socket")
    assert {"setsockopt", "socketcall"} <= _allowed(net_admin)
    assert "userfaultfd" in _allowed(_default((*DEFAULT_CAPABILITIES, "CAP_SYS_PTRACE")))
    sys_admin = _allowed(_default((*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN")))
    assert {"unshare", "bpf", "perf_event_open", "setns", "clone3"} <= sys_admin


def test_one_of_makes_a_rule_per_value_with_the_rules_args(tmp_path: Path) -> None:
    doc = {
        "default": {"action": "SCMP_ACT_ERRNO"},
        "rules": [
            {
                "allow": ["socket"],
                "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": 2}],
                "one_of": {"index": 1, "mask": 15, "values": [1, 2]},
            }
        ],
    }
    seccomp = resolve(parse_profile(doc, source="p.json"), capabilities=(), arch="amd64", kernel=(6, 1))
    assert _allowed_with_args(seccomp, "socket") == [
        [(0, "SCMP_CMP_EQ", 2, 0), (1, "SCMP_CMP_MASKED_EQ", 15, 1)],
        [(0, "SCMP_CMP_EQ", 2, 0), (1, "SCMP_CMP_MASKED_EQ", 15, 2)],
    ]
    with pytest.raises(SpecError, match="one_of"):
        parse_profile({**doc, "rules": [{"allow": ["socket"], "one_of": [1]}]}, source="p.json")
