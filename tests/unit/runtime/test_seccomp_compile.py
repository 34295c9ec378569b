"""Seccomp profiles: the compiled program is libseccomp's own, the cache keeps pyseccomp off the hot path,
bad profiles are refused with their JSON path. No root needed: nothing is loaded into the kernel here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyseccomp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pallet.errors import FailedPrecondition, SpecError
from pallet.linux import seccomp as kernel
from pallet.oci.runtime_spec import Seccomp
from pallet.runtime import seccomp

SRC = Path(__file__).resolve().parents[3] / "src"

ACTIONS = {
    "SCMP_ACT_KILL": pyseccomp.KILL,
    "SCMP_ACT_KILL_THREAD": pyseccomp.KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": pyseccomp.KILL_PROCESS,
    "SCMP_ACT_TRAP": pyseccomp.TRAP,
    "SCMP_ACT_LOG": pyseccomp.LOG,
    "SCMP_ACT_ALLOW": pyseccomp.ALLOW,
    "SCMP_ACT_NOTIFY": pyseccomp.NOTIFY,
}
OPERATORS = {
    "SCMP_CMP_NE": pyseccomp.NE,
    "SCMP_CMP_LT": pyseccomp.LT,
    "SCMP_CMP_LE": pyseccomp.LE,
    "SCMP_CMP_EQ": pyseccomp.EQ,
    "SCMP_CMP_GE": pyseccomp.GE,
    "SCMP_CMP_GT": pyseccomp.GT,
    "SCMP_CMP_MASKED_EQ": pyseccomp.MASKED_EQ,
}
ARCHES = {
    "SCMP_ARCH_X86_64": pyseccomp.Arch.X86_64,
    "SCMP_ARCH_X86": pyseccomp.Arch.X86,
    "SCMP_ARCH_X32": pyseccomp.Arch.X32,
}


def _action(name: str, errno_ret: int | None) -> int:
    if name == "SCMP_ACT_ERRNO":
        return int(pyseccomp.ERRNO(1 if errno_ret is None else errno_ret))
    if name == "SCMP_ACT_TRACE":
        return int(pyseccomp.TRACE(1 if errno_ret is None else errno_ret))
    return ACTIONS[name]


def libseccomp_program(doc: dict[str, Any]) -> bytes:
    """What libseccomp itself exports for ``doc``, driven directly the way runc drives it."""
    default = _action(doc["defaultAction"], doc.get("defaultErrnoRet"))
    f = pyseccomp.SyscallFilter(default)
    for arch in doc.get("architectures", []):
        if arch != "SCMP_ARCH_X86_64":
            f.add_arch(ARCHES[arch])
    rules = [(call, name) for call in doc.get("syscalls", []) for name in call["names"]]
    if len(rules) > 8:
        f.set_attr(pyseccomp.Attr.CTL_OPTIMIZE, 2)
    for call, name in rules:
        action = _action(call["action"], call.get("errnoRet"))
        number = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)
        if action == default or number == -1:  # -1: unknown to libseccomp
            continue
        args = [
            pyseccomp.Arg(a["index"], OPERATORS[a["op"]], a["value"], a.get("valueTwo", 0))
            for a in call.get("args", [])
        ]
        indexes = [a["index"] for a in call.get("args", [])]
        if len(set(indexes)) < len(indexes):
            for arg in args:
                f.add_rule(action, number, arg)
        else:
            f.add_rule(action, number, *args)
    fd = os.memfd_create("reference")
    try:
        with open(fd, "rb", closefd=False) as out:
            f.export_bpf(out)
        return os.pread(fd, 1 << 20, 0)
    finally:
        os.close(fd)


def profile(doc: dict[str, Any]) -> Seccomp:
    return Seccomp.from_json(doc, "linux.seccomp")


def prepare(doc: dict[str, Any], cache: Path) -> seccomp.PreparedSeccomp:
    prepared = seccomp.prepare(profile(doc), cache_dir=str(cache))
    assert prepared is not None
    return prepared


ERRNO_PROFILE: dict[str, Any] = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95},
        {"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["ptrace"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["acct"], "action": "SCMP_ACT_TRACE", "errnoRet": 3},
        {"names": ["syslog"], "action": "SCMP_ACT_LOG"},
        {"names": ["reboot"], "action": "SCMP_ACT_TRAP"},
        {
            "names": ["personality"],
            "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_NE"}],
        },
    ],
}


def test_compiled_errno_profile_is_libseccomp_output(tmp_path: Path) -> None:
    assert prepare(ERRNO_PROFILE, tmp_path).program == libseccomp_program(ERRNO_PROFILE)


def test_every_operator_compiles_as_libseccomp_does(tmp_path: Path) -> None:
    doc: dict[str, Any] = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "syscalls": [
            {
                "names": ["read"],
                "action": "SCMP_ACT_ALLOW",
                "args": [
                    {"index": 0, "value": 3, "op": op}
                    if op != "SCMP_CMP_MASKED_EQ"
                    else {"index": 0, "value": 0xFF, "valueTwo": 3, "op": op}
                ],
            }
            for op in OPERATORS
        ],
    }
    assert prepare(doc, tmp_path).program == libseccomp_program(doc)


def test_conditions_on_one_argument_become_separate_rules(tmp_path: Path) -> None:
    same_index = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {
                "names": ["kill"],
                "action": "SCMP_ACT_ERRNO",
                "args": [
                    {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": 15, "op": "SCMP_CMP_EQ"},
                ],
            }
        ],
    }
    compiled = prepare(same_index, tmp_path).program
    assert compiled == libseccomp_program(same_index)
    # libseccomp cannot take two conditions on one index in one rule: the split is what made this compile
    assert len(compiled) > len(libseccomp_program({"defaultAction": "SCMP_ACT_ALLOW"}))


def test_unknown_syscall_names_are_skipped(tmp_path: Path) -> None:
    with_unknown = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "no_such_syscall_pallet"], "action": "SCMP_ACT_ERRNO"}],
    }
    without = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}],
    }
    assert prepare(with_unknown, tmp_path).program == libseccomp_program(without)


def test_rule_with_the_default_action_is_dropped(tmp_path: Path) -> None:
    doc = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}],
    }
    assert prepare(doc, tmp_path).program == libseccomp_program({"defaultAction": "SCMP_ACT_ALLOW"})


def test_docker_sized_allow_list_compiles_as_binary_tree_like_runc(tmp_path: Path) -> None:
    names = [
        "read",
        "write",
        "openat",
        "close",
        "fstat",
        "mmap",
        "munmap",
        "brk",
        "execve",
        "exit_group",
        "futex",
    ]
    doc = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": [name], "action": "SCMP_ACT_ALLOW"} for name in names],
    }
    assert prepare(doc, tmp_path).program == libseccomp_program(doc)


_names = st.sampled_from(
    ["read", "mkdir", "uname", "personality", "kill", "chmod", "socket", "no_such_call_x"]
)
_arg = st.fixed_dictionaries(
    {
        "index": st.integers(0, 5),
        "value": st.integers(0, 2**64 - 1),
        "valueTwo": st.integers(0, 2**64 - 1),
        "op": st.sampled_from(sorted(OPERATORS)),
    }
)
_call = st.fixed_dictionaries(
    {
        "names": st.lists(_names, min_size=1, max_size=3, unique=True),
        "action": st.sampled_from(["SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_LOG", "SCMP_ACT_TRAP"]),
        "errnoRet": st.integers(1, 4095),
        "args": st.lists(_arg, max_size=3),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    default=st.sampled_from(["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS"]),
    calls=st.lists(_call, max_size=5),
)
def test_random_profiles_compile_as_libseccomp_does(
    tmp_path: Path, default: str, calls: list[dict[str, Any]]
) -> None:
    # one name per call: the same syscall in two calls with conflicting conditions is a libseccomp error either way
    seen: set[str] = set()
    for call in calls:
        call["names"] = [n for n in call["names"] if n not in seen]
        seen.update(call["names"])
    doc = {"defaultAction": default, "syscalls": [c for c in calls if c["names"]]}
    try:
        expected = libseccomp_program(doc)
    except OSError:
        with pytest.raises(SpecError):
            prepare(doc, tmp_path)
        return
    assert prepare(doc, tmp_path).program == expected


# ---------------------------------------------------------------------------
# the cache


def _prepare_in_fresh_python(cache: Path) -> str:
    """``prepare`` in a Python started as the pallet-runtime launcher starts it (-I -S: no site-packages)."""
    code = f"""
import sys
sys.path.insert(0, {str(SRC)!r})
from pallet.oci.runtime_spec import Seccomp
from pallet.runtime import seccomp
doc = {ERRNO_PROFILE!r}
prepared = seccomp.prepare(Seccomp.from_json(doc, "linux.seccomp"), cache_dir={str(cache)!r})
print(prepared.program.hex(), "pyseccomp" in sys.modules, "ctypes.util" in sys.modules)
"""
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    ).stdout


def test_second_prepare_reads_the_cache_without_importing_pyseccomp(tmp_path: Path) -> None:
    first = _prepare_in_fresh_python(tmp_path).split()
    second = _prepare_in_fresh_python(tmp_path).split()
    assert first[1:] == ["True", "True"]  # a miss compiles with pyseccomp
    assert second[1:] == ["False", "False"]  # a hit does not even load ctypes.util
    assert bytes.fromhex(second[0]) == libseccomp_program(ERRNO_PROFILE)
    cached = list(tmp_path.iterdir())
    assert len(cached) == 1
    assert cached[0].suffix == ".bpf"
    assert len(cached[0].stem) == 64
    assert cached[0].read_bytes() == bytes.fromhex(first[0])


def test_cache_key_follows_the_profile(tmp_path: Path) -> None:
    prepare(ERRNO_PROFILE, tmp_path)
    changed = {**ERRNO_PROFILE, "defaultAction": "SCMP_ACT_LOG"}
    prepared = prepare(changed, tmp_path)
    assert len(list(tmp_path.glob("*.bpf"))) == 2
    assert prepared.program == libseccomp_program(changed)


def test_flags_do_not_change_the_cached_program(tmp_path: Path) -> None:
    prepare(ERRNO_PROFILE, tmp_path)
    prepared = prepare({**ERRNO_PROFILE, "flags": ["SECCOMP_FILTER_FLAG_LOG"]}, tmp_path)
    assert len(list(tmp_path.glob("*.bpf"))) == 1
    assert prepared.flags == kernel.FILTER_FLAGS["SECCOMP_FILTER_FLAG_LOG"]


def test_torn_cache_file_is_compiled_again(tmp_path: Path) -> None:
    prepare(ERRNO_PROFILE, tmp_path)
    (cached,) = tmp_path.glob("*.bpf")
    cached.write_bytes(b"\x06\x00\x00")  # not a whole instruction
    assert prepare(ERRNO_PROFILE, tmp_path).program == libseccomp_program(ERRNO_PROFILE)
    assert cached.read_bytes() == libseccomp_program(ERRNO_PROFILE)


def test_unwritable_cache_still_gives_the_program(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    prepared = seccomp.prepare(profile(ERRNO_PROFILE), cache_dir=str(blocker / "seccomp"))
    assert prepared is not None
    assert prepared.program == libseccomp_program(ERRNO_PROFILE)


def test_no_profile_prepares_nothing_and_installs_nothing(tmp_path: Path) -> None:
    assert seccomp.prepare(None, cache_dir=str(tmp_path)) is None
    seccomp.install(None)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# flags and the listener


def test_filter_flags_are_passed_to_the_kernel_call(tmp_path: Path) -> None:
    doc = {**ERRNO_PROFILE, "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}
    assert prepare(doc, tmp_path).flags == 1 | 4


def test_wait_killable_recv_is_dropped_without_a_listener(tmp_path: Path) -> None:
    doc = {**ERRNO_PROFILE, "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}
    assert prepare(doc, tmp_path).flags == kernel.FILTER_FLAGS["SECCOMP_FILTER_FLAG_LOG"]


def test_notify_rule_asks_for_a_listener_and_compiles(tmp_path: Path) -> None:
    doc = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "listenerMetadata": "hello",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
    }
    prepared = prepare(doc, tmp_path)
    try:
        assert (
            prepared.flags
            == kernel.FILTER_FLAG_TSYNC | kernel.FILTER_FLAG_NEW_LISTENER | kernel.FILTER_FLAG_TSYNC_ESRCH
        )
        assert prepared.has_listener
        assert prepared.program == libseccomp_program(doc)
    finally:
        prepared.close()
    assert not prepared.has_listener


# ---------------------------------------------------------------------------
# refused profiles: SpecError with the JSON path


def _refused(doc: dict[str, Any], tmp_path: Path) -> str:
    # built without from_json's checks, as a caller holding a model might
    model = _model(doc)
    with pytest.raises(SpecError) as info:
        seccomp.prepare(model, cache_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []
    return str(info.value)


def _model(doc: dict[str, Any]) -> Seccomp:
    from pallet.oci.runtime_spec import SeccompArg, SeccompSyscall

    calls = tuple(
        SeccompSyscall(
            names=tuple(c["names"]),
            action=c["action"],
            errno_ret=c.get("errnoRet"),
            args=tuple(
                SeccompArg(index=a["index"], value=a["value"], value_two=a.get("valueTwo", 0), op=a["op"])
                for a in c.get("args", [])
            ),
        )
        for c in doc.get("syscalls", [])
    )
    return Seccomp(
        default_action=doc["defaultAction"],
        default_errno_ret=doc.get("defaultErrnoRet"),
        architectures=tuple(doc.get("architectures", ())),
        flags=tuple(doc.get("flags", ())),
        listener_path=doc.get("listenerPath", ""),
        syscalls=calls,
    )


ALLOW_READ = {"names": ["read"], "action": "SCMP_ACT_ALLOW"}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [ALLOW_READ, ALLOW_READ, ALLOW_READ, {"names": ["x"], "action": "SCMP_ACT_FOO"}],
            },
            'linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO"',
        ),
        ({"defaultAction": "SCMP_ACT_NOPE"}, 'linux.seccomp.defaultAction: unknown action "SCMP_ACT_NOPE"'),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {
                        "names": ["kill"],
                        "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}],
                    }
                ],
            },
            'linux.seccomp.syscalls[0].args[0].op: unknown operator "SCMP_CMP_ALMOST"',
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {
                        "names": ["kill"],
                        "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}],
                    }
                ],
            },
            "linux.seccomp.syscalls[0].args[0].index: 6 is not an argument index",
        ),
        (
            {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000},
            "linux.seccomp.defaultErrnoRet: 70000 does not fit",
        ),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]},
            'linux.seccomp.architectures[0]: unknown architecture "SCMP_ARCH_VAX"',
        ),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FAST"]},
            'linux.seccomp.flags[0]: unknown flag "SECCOMP_FILTER_FLAG_FAST"',
        ),
        (
            {"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a"},
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
            },
            "linux.seccomp.listenerPath: required with the action SCMP_ACT_NOTIFY",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": "/a",
                "syscalls": [{"names": ["mkdir", "write"], "action": "SCMP_ACT_NOTIFY"}],
            },
            'linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for "write"',
        ),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]},
            "linux.seccomp.syscalls[0].names: must not be empty",
        ),
    ],
)
def test_bad_profile_is_refused_with_its_json_path(tmp_path: Path, doc: dict[str, Any], message: str) -> None:
    assert _refused(doc, tmp_path).startswith(message)


def test_importing_the_module_loads_neither_pyseccomp_nor_ctypes_util() -> None:
    code = (
        "import sys, pallet.runtime.seccomp; print('pyseccomp' in sys.modules, 'ctypes.util' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert out.split() == ["False", "False"]


def test_forwarding_before_the_init_sent_its_fd_is_refused_and_releases_the_channel(tmp_path: Path) -> None:
    prepared = prepare(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": str(tmp_path / "agent.sock"),
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
        },
        tmp_path / "cache",
    )
    with pytest.raises(FailedPrecondition, match="did not send its seccomp notification fd"):
        seccomp.forward_listener(prepared, {"pid": 1, "status": "creating"})
    assert not prepared.has_listener


def test_forwarding_without_a_listener_does_nothing(tmp_path: Path) -> None:
    prepared = prepare(ERRNO_PROFILE, tmp_path)
    seccomp.forward_listener(prepared, {"pid": 1, "status": "creating"})
    seccomp.forward_listener(None, {"pid": 1, "status": "creating"})
    assert not prepared.has_listener


def test_features_list_what_prepare_accepts_and_the_flags_this_kernel_knows() -> None:
    reported = seccomp.features()
    assert reported["enabled"] is True
    assert reported["actions"] == sorted([*ACTIONS, "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"])
    assert reported["operators"] == sorted(OPERATORS)
    assert "SCMP_ARCH_X86_64" in reported["archs"]
    assert reported["knownFlags"] == sorted(kernel.FILTER_FLAGS)
    # every kernel since 4.17 has these three; WAIT_KILLABLE_RECV came with 5.19
    supported = reported["supportedFlags"]
    assert isinstance(supported, list)
    assert {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"} <= set(
        supported
    )
    major, minor = (int(part) for part in os.uname().release.split(".")[:2])
    assert ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" in supported) == ((major, minor) >= (5, 19))
    assert not kernel.flag_supported(1 << 30)  # no such flag
