"""The last steps of a container process before its program, shared by the init (``create``) and ``exec``.

``finalize_process``: rlimits and oom_score_adj, cwd and umask, the program's
path, then no_new_privs, credentials and seccomp in runc's order: without
no_new_privs the filter is loaded before capabilities are dropped (it needs
CAP_SYS_ADMIN), with it as close to execve as possible (fewer calls the
profile must allow). Every kernel call goes through the ``Syscalls`` seam.
``exec_program``: restore the signals Python ignores and execve.

Imported before the process enters the container's mount namespace (it
imports ``credentials`` and ``executable``): later imports would search the
container's files. The seccomp module is loaded by then wherever a filter is
given.
"""

from __future__ import annotations

import os
from errno import EACCES, EPERM

from pallet.errors import InvalidArgument, SystemError_
from pallet.linux.flags import PR_SET_NO_NEW_PRIVS
from pallet.runtime import credentials
from pallet.runtime.executable import resolve

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.linux.syscalls import Syscalls
    from pallet.oci.runtime_spec import Process
    from pallet.runtime.seccomp import PreparedSeccomp


def finalize_process(
    sys: Syscalls, process: Process, seccomp: PreparedSeccomp | None
) -> tuple[str, list[str]]:
    """Limits, cwd, umask, credentials and seccomp; the program's path and environment.

    The cwd is entered as runc does: first as the runtime's user (it may reach what the
    container's user cannot); if that is refused, again once ``process.user`` is set (a cwd
    only that user may enter, e.g. a volume chowned to it, where the runtime lacks the
    capabilities to enter).
    """
    credentials.apply_rlimits(sys, process.rlimits)
    credentials.apply_oom_score_adj(process.oom_score_adj)
    cwd = process.cwd or "/"
    deferred = not _chdir(sys, cwd, refused_ok=True)
    if process.user.umask is not None:
        sys.umask(process.user.umask)
    env = list(process.env)
    if not process.args:
        raise InvalidArgument("process.args: must not be empty")
    # a relative args[0] is resolved from the cwd: after it is entered
    path = "" if deferred else resolve(process.args[0], env)
    nnp = process.no_new_privileges
    if nnp:
        # before the user changes, as runc sets it (it changes nothing for setresuid or capset)
        sys.prctl(PR_SET_NO_NEW_PRIVS, 1)
    elif seccomp is not None:
        _install(seccomp)
    credentials.apply_user_and_capabilities(sys, process)
    if deferred:
        _chdir(sys, cwd)
        path = resolve(process.args[0], env)
    if seccomp is not None and nnp:
        _install(seccomp)
    return path, env


def _chdir(sys: Syscalls, cwd: str, *, refused_ok: bool = False) -> bool:
    """Enter ``cwd``; with ``refused_ok``, False when permission is refused (EACCES, EPERM)."""
    try:
        sys.chdir(cwd)
    except SystemError_ as e:
        if refused_ok and e.errno in (EACCES, EPERM):
            return False
        raise SystemError_(f"chdir to cwd ({cwd!r}) set in config.json", e.errno) from None
    return True


def _install(seccomp: PreparedSeccomp) -> None:
    from pallet.runtime.seccomp import install

    install(seccomp)


def exec_program(path: str, args: list[str], env: list[str], *, keep_fds: int = 3) -> None:
    """Replace this process with the program (``env``: ``KEY=value`` items); raises if execve fails.

    Only fds below ``keep_fds`` (stdio, plus ``--preserve-fds``) reach the
    program: whatever else the caller let us inherit (its pipes, sockets) is
    closed on exec, as runc does.
    """
    _close_on_exec_from(keep_fds)
    if TYPE_CHECKING:
        import signal as _signal  # the stubs; at run time the C module, without signal's enums
    else:
        import _signal

    # Python ignores SIGPIPE and SIGXFSZ; an ignored signal stays ignored across exec
    for number in (13, 25):
        _signal.signal(number, _signal.SIG_DFL)
    environ = {}
    for item in env:
        key, sep, value = item.partition("=")
        if sep:
            environ[key] = value
    os.execve(path, args, environ)


def _close_on_exec_from(first: int) -> None:
    """Mark every open fd >= ``first`` close-on-exec."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc in the container: every fd the limit allows
        import resource

        fds = list(range(first, min(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 1 << 16)))
    for fd in fds:
        if fd >= first:
            try:  # noqa: SIM105 - contextlib costs ~7 ms at start
                os.set_inheritable(fd, False)
            except OSError:
                pass  # the directory fd listdir used, closed by now
