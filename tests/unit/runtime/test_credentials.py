"""The order of a container process's credential calls, as runc makes them, on the recording fake.

runc (libcontainer/standard_init_linux.go, init_linux.go finalizeNamespace and
setupUser): rlimits while still privileged; no_new_privs; the bounding set
dropped; PR_SET_KEEPCAPS; setgroups, setgid, setuid; PR_SET_KEEPCAPS cleared;
capset; the ambient set cleared and raised.
"""

from __future__ import annotations

from errno import EACCES, EINVAL, EPERM

import pytest

from pallet.errors import SystemError_
from pallet.linux import flags as f
from pallet.oci.runtime_spec import Capabilities, Process, Rlimit, User
from pallet.runtime.credentials import apply_user_and_capabilities
from pallet.runtime.finalize import finalize_process
from pallet.testing.fake_syscalls import RLIM_INFINITY, FakeSyscalls

_PRCTL = {
    f.PR_SET_KEEPCAPS: "PR_SET_KEEPCAPS",
    f.PR_CAPBSET_DROP: "PR_CAPBSET_DROP",
    f.PR_SET_NO_NEW_PRIVS: "PR_SET_NO_NEW_PRIVS",
    f.PR_CAP_AMBIENT: "PR_CAP_AMBIENT",
}
_NOFILE = 7
_NPROC = 6
_LAST_CAP = 40


@pytest.fixture(autouse=True)
def _kernel_knows_40_capabilities(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pallet.runtime.credentials.last_capability", lambda: _LAST_CAP)


def _steps(sys: FakeSyscalls) -> list[tuple[object, ...]]:
    """The recorded calls, prctl options by name, the bounding-set drops as one step."""
    steps: list[tuple[object, ...]] = []
    for call in sys.calls:
        if call[0] != "prctl":
            steps.append(call)
            continue
        option = _PRCTL.get(int(call[1]), call[1])  # type: ignore[call-overload]
        if option == "PR_CAPBSET_DROP":
            if steps and steps[-1][0] == "PR_CAPBSET_DROP":
                steps[-1] = (*steps[-1], call[2])
            else:
                steps.append((option, call[2]))
        elif option == "PR_CAP_AMBIENT":
            steps.append((option, *(a for a in call[2:] if a)))
        else:
            steps.append((option, call[2]))
    return steps


def _process(**changes: object) -> Process:
    return Process(cwd="/", args=("/bin/sh",), env=("PATH=/bin",), user=User(uid=0, gid=0)).replace(**changes)


def test_root_keeps_uid_0_after_clearing_groups_and_no_capset_without_capabilities() -> None:
    sys = FakeSyscalls()
    path, env = finalize_process(sys, _process(), None)
    assert (path, env) == ("/bin/sh", ["PATH=/bin"])
    assert _steps(sys) == [
        ("chdir", "/"),
        ("PR_SET_KEEPCAPS", 1),
        ("setgroups", ()),  # the runtime's own supplementary groups never reach the container
        ("setresgid", 0, 0, 0),
        ("setresuid", 0, 0, 0),
        ("PR_SET_KEEPCAPS", 0),
    ]


def test_a_user_with_additional_gids_gets_groups_then_gid_then_uid_and_its_umask() -> None:
    sys = FakeSyscalls()
    user = User(uid=1000, gid=1001, additional_gids=(5, 1002), umask=0o027)
    finalize_process(sys, _process(user=user, cwd="/home"), None)
    assert _steps(sys) == [
        ("chdir", "/home"),
        ("umask", 0o027),
        ("PR_SET_KEEPCAPS", 1),
        ("setgroups", (5, 1002)),
        ("setresgid", 1001, 1001, 1001),
        ("setresuid", 1000, 1000, 1000),
        ("PR_SET_KEEPCAPS", 0),
    ]
    assert sys.mask == 0o027


def test_rlimits_come_first_and_capabilities_are_kept_across_setuid_then_set_exactly() -> None:
    sys = FakeSyscalls()
    caps = Capabilities(
        bounding=("CAP_KILL", "CAP_NET_RAW"),
        effective=("CAP_NET_RAW",),
        permitted=("CAP_KILL", "CAP_NET_RAW"),
        inheritable=("CAP_NET_RAW",),
        ambient=("CAP_NET_RAW", "CAP_KILL"),
    )
    process = _process(
        user=User(uid=7, gid=8, additional_gids=(9,)),
        rlimits=(
            Rlimit(type="RLIMIT_NOFILE", soft=123, hard=456),
            Rlimit(type="RLIMIT_NPROC", soft=4096, hard=RLIM_INFINITY),
        ),
        capabilities=caps,
        no_new_privileges=True,
    )
    finalize_process(sys, process, None)
    kill, net_raw = 5, 13
    assert _steps(sys) == [
        ("setrlimit", _NOFILE, 123, 456),
        ("setrlimit", _NPROC, 4096, RLIM_INFINITY),
        ("chdir", "/"),
        ("PR_SET_NO_NEW_PRIVS", 1),
        ("PR_CAPBSET_DROP", *(n for n in range(_LAST_CAP + 1) if n not in (kill, net_raw))),
        ("PR_SET_KEEPCAPS", 1),
        ("setgroups", (9,)),
        ("setresgid", 8, 8, 8),
        ("setresuid", 7, 7, 7),
        ("PR_SET_KEEPCAPS", 0),
        ("capset", 1 << net_raw, 1 << kill | 1 << net_raw, 1 << net_raw),
        ("PR_CAP_AMBIENT", f.PR_CAP_AMBIENT_CLEAR_ALL),
        # CAP_KILL is not inheritable: the kernel would refuse to raise it, so it is skipped
        ("PR_CAP_AMBIENT", f.PR_CAP_AMBIENT_RAISE, net_raw),
    ]
    assert sys.rlimits == {_NOFILE: (123, 456), _NPROC: (4096, RLIM_INFINITY)}


def test_an_rlimit_above_the_hard_limit_fails_in_runc_words_before_any_credential_changes() -> None:
    sys = FakeSyscalls()
    sys.rlimits[_NOFILE] = (1024, 20000)
    sys.may_raise_hard_limits = False  # no CAP_SYS_RESOURCE
    process = _process(
        user=User(uid=1000, gid=1000),
        rlimits=(Rlimit(type="RLIMIT_NOFILE", soft=20001, hard=20001),),
    )
    with pytest.raises(SystemError_) as caught:
        finalize_process(sys, process, None)
    assert caught.value.errno == EPERM
    assert str(caught.value) == (
        "error setting rlimit type 7: operation not permitted (RLIMIT_NOFILE soft=20001 hard=20001, "
        "the hard limit here is 20000: raising it needs CAP_SYS_RESOURCE)"
    )
    assert sys.calls == [("setrlimit", _NOFILE, 20001, 20001)]
    assert sys.rlimits[_NOFILE] == (1024, 20000)


def test_a_cwd_refused_to_the_runtime_is_entered_again_as_the_user() -> None:
    class OnlyTheUserMayEnter(FakeSyscalls):
        uid = 0

        def setresuid(self, ruid: int, euid: int, suid: int) -> None:
            super().setresuid(ruid, euid, suid)
            self.uid = euid

        def chdir(self, path: str) -> None:
            super().chdir(path)
            if self.uid == 0:
                raise SystemError_(f"chdir {path}", EACCES)

    sys = OnlyTheUserMayEnter()
    finalize_process(sys, _process(user=User(uid=1000, gid=1000), cwd="/volume"), None)
    assert [c[0] for c in sys.calls] == [
        "chdir", "prctl", "setgroups", "setresgid", "setresuid", "prctl", "chdir",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("failing", "message"),
    [
        ("setresgid", "unable to setup user: cannot setgid to unmapped gid 1000 in user namespace"),
        ("setresuid", "unable to setup user: cannot setuid to unmapped uid 1000 in user namespace"),
    ],
)
def test_an_unmapped_id_is_reported_in_runc_words(failing: str, message: str) -> None:
    sys = FakeSyscalls()
    sys.fail[failing] = EINVAL
    with pytest.raises(SystemError_, match=f"^{message}$"):
        apply_user_and_capabilities(sys, _process(user=User(uid=1000, gid=1000)))
    assert sys.calls[-1][0] == failing
