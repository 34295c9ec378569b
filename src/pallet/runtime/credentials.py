"""The init's identity and limits: rlimits, oom_score_adj, user and groups, capabilities.

Order (runc's, and the only one that works): rlimits and oom_score_adj while
still privileged; drop the bounding set; keep capabilities across setresuid
(PR_SET_KEEPCAPS); setgroups/setresgid/setresuid; capset the effective,
permitted and inheritable sets; raise the ambient ones. ``finalize`` runs
these steps, with cwd, umask, no_new_privs and seccomp between them. Every
call goes through the ``Syscalls`` seam.
"""

from __future__ import annotations

from errno import EINVAL, EPERM

from pallet.errors import InvalidArgument, SystemError_, errno_text
from pallet.linux import flags as f
from pallet.linux.capabilities import capability_mask, last_capability

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.linux.syscalls import Syscalls
    from pallet.oci.runtime_spec import Process, Rlimit, User

_RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}  # fmt: skip
_RLIM_INFINITY = 0xFFFFFFFFFFFFFFFF


def apply_rlimits(sys: Syscalls, rlimits: tuple[Rlimit, ...]) -> None:
    """Set each rlimit, in the config's order; the first refusal is raised in runc's words.

    runc: ``error setting rlimit type 7: operation not permitted``, followed here by
    what was asked and what the hard limit is.
    """
    for rlimit in rlimits:
        number = _RLIMITS.get(rlimit.type)
        if number is None:
            raise InvalidArgument(f'process.rlimits: unknown rlimit "{rlimit.type}"')
        soft = min(rlimit.soft, _RLIM_INFINITY)
        hard = min(rlimit.hard, _RLIM_INFINITY)
        try:
            sys.setrlimit(number, soft, hard)
        except SystemError_ as e:
            raise _rlimit_error(sys, rlimit, number, e.errno) from None


def _rlimit_error(sys: Syscalls, rlimit: Rlimit, number: int, errno: int) -> SystemError_:
    asked = f"{rlimit.type} soft={rlimit.soft} hard={rlimit.hard}"
    if errno == EPERM:
        try:
            current = sys.getrlimit(number)[1]
        except SystemError_:
            hint = f"{asked}: raising a hard limit needs CAP_SYS_RESOURCE"
        else:
            shown = "unlimited" if current >= _RLIM_INFINITY else str(current)
            hint = f"{asked}, the hard limit here is {shown}: raising it needs CAP_SYS_RESOURCE"
    elif errno == EINVAL:
        hint = f"{asked}: the soft limit must not exceed the hard limit"
    else:
        hint = asked
    error = SystemError_.reported(f"error setting rlimit type {number}: {errno_text(errno)} ({hint})")
    error.errno = errno
    return error


def apply_oom_score_adj(value: int | None) -> None:
    """Set the process's oom_score_adj; nothing to do when it has that value already.

    In a user namespace the init cannot write it (its /proc files are host
    root's): the runtime sets it before the fork, as runc's nsexec does, and
    the init finds it set.
    """
    if value is None:
        return
    try:
        with open("/proc/self/oom_score_adj") as f_:
            if f_.read().strip() == str(value):
                return
    except OSError:
        pass  # the write below says what is wrong
    try:
        with open("/proc/self/oom_score_adj", "w") as f_:
            f_.write(str(value))
    except OSError as e:
        raise SystemError_(
            f"set oom_score_adj to {value} (lowering it needs CAP_SYS_RESOURCE)", e.errno or 0
        ) from None


def apply_user_and_capabilities(sys: Syscalls, process: Process) -> None:
    """Switch to ``process.user`` with exactly ``process.capabilities`` (runc's finalizeNamespace).

    The bounding set is dropped first (PR_CAPBSET_DROP needs CAP_SETPCAP, lost
    with the uid), capabilities are kept across the uid change (PR_SET_KEEPCAPS:
    without it, leaving uid 0 clears the permitted set, and capset could not
    raise what was lost), then set exactly.
    """
    caps = process.capabilities
    last = last_capability()
    if caps is not None:
        keep = capability_mask(caps.bounding or (), last)
        for number in range(last + 1):
            if not keep & (1 << number):
                sys.prctl(f.PR_CAPBSET_DROP, number)
    sys.prctl(f.PR_SET_KEEPCAPS, 1)
    switch_user(sys, process.user)
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


def switch_user(sys: Syscalls, user: User) -> None:
    """Supplementary groups, then the gid, then the uid: each later step takes the right
    (CAP_SETGID, CAP_SETUID as uid 0) the earlier ones need. Errors in runc's words
    (``unable to setup user: ...``)."""
    try:
        sys.setgroups(tuple(user.additional_gids))
    except SystemError_ as e:
        raise SystemError_("unable to setup user: setgroups", e.errno) from None
    try:
        sys.setresgid(user.gid, user.gid, user.gid)
    except SystemError_ as e:
        if e.errno == EINVAL:
            raise _unmapped("gid", user.gid) from None
        raise SystemError_(f"unable to setup user: setgid {user.gid}", e.errno) from None
    try:
        sys.setresuid(user.uid, user.uid, user.uid)
    except SystemError_ as e:
        if e.errno == EINVAL:
            raise _unmapped("uid", user.uid) from None
        raise SystemError_(f"unable to setup user: setuid {user.uid}", e.errno) from None


def _unmapped(kind: str, number: int) -> SystemError_:
    """EINVAL from setresuid/setresgid: the id has no mapping in the user namespace (runc's words)."""
    error = SystemError_.reported(
        f"unable to setup user: cannot set{kind} to unmapped {kind} {number} in user namespace"
    )
    error.errno = EINVAL
    return error
