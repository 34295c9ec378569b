"""The init's identity and limits: rlimits, oom_score_adj, user and groups, capabilities, no_new_privs.

Order (runc's, and the only one that works): rlimits and oom_score_adj while
still privileged; drop the bounding set; keep capabilities across setresuid
(PR_SET_KEEPCAPS); setgroups/setresgid/setresuid; capset the effective,
permitted and inheritable sets; raise the ambient ones; then no_new_privs.
"""

from __future__ import annotations

import os
import resource

from pallet.errors import InvalidArgument, SystemError_
from pallet.linux import flags as f
from pallet.linux.capabilities import capability_mask, last_capability

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.linux.syscalls import Syscalls
    from pallet.oci.runtime_spec import Process

_RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}  # fmt: skip
_RLIM_INFINITY = 0xFFFFFFFFFFFFFFFF


def apply_rlimits(process: Process) -> None:
    for rlimit in process.rlimits:
        number = _RLIMITS.get(rlimit.type)
        if number is None:
            raise InvalidArgument(f'process.rlimits: unknown rlimit "{rlimit.type}"')
        soft = -1 if rlimit.soft >= _RLIM_INFINITY else rlimit.soft
        hard = -1 if rlimit.hard >= _RLIM_INFINITY else rlimit.hard
        try:
            resource.setrlimit(number, (soft, hard))
        except (OSError, ValueError) as e:
            current = resource.getrlimit(number)[1]
            shown = "unlimited" if current == resource.RLIM_INFINITY else str(current)
            errno = getattr(e, "errno", None) or 1
            raise SystemError_(
                f"error setting rlimit {rlimit.type} to soft={rlimit.soft} hard={rlimit.hard} "
                f"(the hard limit here is {shown}; raising it needs CAP_SYS_RESOURCE)",
                errno,
            ) from None


def apply_oom_score_adj(value: int | None) -> None:
    if value is None:
        return
    try:
        with open("/proc/self/oom_score_adj", "w") as f_:
            f_.write(str(value))
    except OSError as e:
        raise SystemError_(
            f"set oom_score_adj to {value} (lowering it needs CAP_SYS_RESOURCE)", e.errno or 0
        ) from None


def apply_user_and_capabilities(sys: Syscalls, process: Process) -> None:
    """Switch to ``process.user`` with exactly ``process.capabilities``."""
    caps = process.capabilities
    last = last_capability()
    if caps is not None:
        keep = capability_mask(caps.bounding or (), last)
        for number in range(last + 1):
            if not keep & (1 << number):
                sys.prctl(f.PR_CAPBSET_DROP, number)
    user = process.user
    sys.prctl(f.PR_SET_KEEPCAPS, 1)
    try:
        os.setgroups(list(user.additional_gids))
        os.setresgid(user.gid, user.gid, user.gid)
        os.setresuid(user.uid, user.uid, user.uid)
    except OSError as e:
        raise SystemError_(f"set user {user.uid}:{user.gid}", e.errno or 0) from None
    sys.prctl(f.PR_SET_KEEPCAPS, 0)
    if caps is not None:
        sys.capset(
            capability_mask(caps.effective or (), last),
            capability_mask(caps.permitted or (), last),
            capability_mask(caps.inheritable or (), last),
        )
        sys.prctl(f.PR_CAP_AMBIENT, f.PR_CAP_AMBIENT_CLEAR_ALL)
        # the kernel raises an ambient capability only if it is permitted and inheritable;
        # others are skipped, as runc 1.2 does (its own default spec lists ambient without inheritable)
        raisable = capability_mask(caps.permitted or (), last) & capability_mask(caps.inheritable or (), last)
        for name in caps.ambient or ():
            number = capability_mask((name,), last).bit_length() - 1
            if number >= 0 and raisable & (1 << number):
                sys.prctl(f.PR_CAP_AMBIENT, f.PR_CAP_AMBIENT_RAISE, number)
    if process.no_new_privileges:
        sys.prctl(f.PR_SET_NO_NEW_PRIVS, 1)
