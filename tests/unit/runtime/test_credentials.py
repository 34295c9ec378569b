"""The order and content of the credential calls, checked against the recording fake."""

from __future__ import annotations

import os

import pytest

from pallet.linux import flags as f
from pallet.oci.runtime_spec import Capabilities, Process, User
from pallet.runtime.credentials import apply_user_and_capabilities
from pallet.testing.fake_syscalls import FakeSyscalls


def test_bounding_drop_keepcaps_setuid_capset_then_ambient_and_no_new_privs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids: list[tuple[str, object]] = []
    monkeypatch.setattr(os, "setgroups", lambda groups: ids.append(("setgroups", tuple(groups))))
    monkeypatch.setattr(os, "setresgid", lambda *gid: ids.append(("setresgid", gid)))
    monkeypatch.setattr(os, "setresuid", lambda *uid: ids.append(("setresuid", uid)))
    monkeypatch.setattr("pallet.runtime.credentials.last_capability", lambda: 40)
    caps = Capabilities(
        bounding=("CAP_KILL", "CAP_NET_RAW"),
        effective=("CAP_NET_RAW",),
        permitted=("CAP_KILL", "CAP_NET_RAW"),
        inheritable=("CAP_NET_RAW",),
        ambient=("CAP_NET_RAW", "CAP_KILL"),
    )
    process = Process(
        cwd="/",
        args=("x",),
        user=User(uid=7, gid=8, additional_gids=(9,)),
        capabilities=caps,
        no_new_privileges=True,
    )
    sys = FakeSyscalls()
    apply_user_and_capabilities(sys, process)
    drops = [c[2] for c in sys.named("prctl") if c[1] == f.PR_CAPBSET_DROP]
    assert drops == [n for n in range(41) if n not in (5, 13)]
    assert ids == [("setgroups", (9,)), ("setresgid", (8, 8, 8)), ("setresuid", (7, 7, 7))]
    assert sys.named("capset") == [("capset", 1 << 13, 1 << 5 | 1 << 13, 1 << 13)]
    tail = [c[1:3] for c in sys.named("prctl") if c[1] != f.PR_CAPBSET_DROP]
    assert tail == [
        (f.PR_SET_KEEPCAPS, 1),
        (f.PR_SET_KEEPCAPS, 0),
        (f.PR_CAP_AMBIENT, f.PR_CAP_AMBIENT_CLEAR_ALL),
        # CAP_KILL is not inheritable: the kernel would refuse it, so it is skipped
        (f.PR_CAP_AMBIENT, f.PR_CAP_AMBIENT_RAISE),
        (f.PR_SET_NO_NEW_PRIVS, 1),
    ]
    assert [
        c[3] for c in sys.named("prctl") if c[2] == f.PR_CAP_AMBIENT_RAISE and c[1] == f.PR_CAP_AMBIENT
    ] == [13]
