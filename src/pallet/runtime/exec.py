"""``exec``: one more process in an existing container, confined exactly as its init.

The chain, a shorter ``create``: the exec command (P) does what needs the host
(the process definition, the seccomp program from the cache, the console
socket, fds of the init's namespaces) and forks E1. E1 joins the container's
cgroup in every hierarchy (before the user namespace, where the write would be
refused), then ``setns`` into each namespace the container has, the user
namespace first (after those it does not own: a network namespace an engine
made, joined by path) and the mount namespace last, as runc does, and forks E2: a
pid namespace applies to children only. E1 reports E2's host pid and exits.
E2 sets up the terminal, rlimits, cwd, seccomp and credentials in the init's
order, and execs. Errors reach P over a close-on-exec pipe: end of file with
no message means the program runs.

Without a user namespace there is no E1: P enters the container's pid
namespace for its next child only (``setns`` of a pid namespace changes
nothing else), forks the process, and returns to its own; the process joins
the cgroup and the other namespaces itself, then does E2's work.

The forked process (E1, or the process itself) joins the cgroup itself: in
v1, by writing 0 to ``tasks`` (``V1Cgroups.join_self``), which waits for no
RCU grace period. A v2 ``cgroup.procs`` write does after a quiet spell: a
warm-up write starts as soon as the container's cgroup is known
(``cgroups.warm_up_attach``).

Detached (``--detach``, what containerd and conmon send): P writes the pid
file and exits; the process (E2, orphaned by E1) is reparented to the
caller's subreaper. Otherwise P makes itself a subreaper first, so the
process is its child, relays signals and returns its exit status (128+n for
a signal).
"""

from __future__ import annotations

import os

from pallet.errors import UNKNOWN, FailedPrecondition, InvalidArgument, PalletError, SystemError_
from pallet.linux import flags as f
from pallet.runtime import sync
from pallet.runtime.containers import ContainerDir, status_of, write_pid_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.linux.syscalls import Syscalls
    from pallet.oci.runtime_spec import Process, Spec
    from pallet.runtime.cgroup_driver import Driver
    from pallet.runtime.logsink import LogSink
    from pallet.runtime.seccomp import PreparedSeccomp


class ExecOptions:
    """What the command line asked for besides the container id."""

    def __init__(
        self,
        *,
        process_file: str = "",
        args: list[str] | None = None,
        tty: bool = False,
        console_socket: str = "",
        detach: bool = False,
        pid_file: str = "",
        cwd: str = "",
        env: list[str] | None = None,
        user: str = "",
        caps: list[str] | None = None,
        additional_gids: list[str] | None = None,
        no_new_privs: bool = False,
        preserve_fds: int = 0,
    ) -> None:
        self.process_file = process_file
        self.args = args or []
        self.tty = tty
        self.console_socket = console_socket
        self.detach = detach
        self.pid_file = pid_file
        self.cwd = cwd
        self.env = env or []
        self.user = user
        self.caps = caps or []
        self.additional_gids = additional_gids or []
        self.no_new_privs = no_new_privs
        self.preserve_fds = preserve_fds


def _read_process_file(path: str) -> Process:
    from pallet.oci.jsonfast import loads
    from pallet.oci.runtime_spec import Process

    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as e:
        raise SystemError_(f"open {path}", e.errno or 0) from None
    return Process.from_json(loads(data), "process")


def _merge_env(base: tuple[str, ...], extra: list[str]) -> tuple[str, ...]:
    """``base`` with ``extra`` entries added, a later KEY replacing an earlier one in place."""
    merged: dict[str, str] = {}
    for item in (*base, *extra):
        key = item.partition("=")[0]
        merged[key] = item
    return tuple(merged.values())


def _uint(text: str, what: str) -> int:
    if not text.isdigit():
        raise InvalidArgument(f'invalid {what} "{text}": a number is required')
    return int(text)


def build_process(spec: Spec, options: ExecOptions) -> Process:
    """The process to run: ``--process`` as given, or the container's process with the flags applied (runc)."""
    if options.process_file:
        process = _read_process_file(options.process_file)
        if options.tty and not process.terminal:
            process = process.replace(terminal=True)
    else:
        if spec.process is None:
            raise InvalidArgument("the container's config has no process to derive the exec process from")
        process = spec.process.replace(
            args=tuple(options.args),
            terminal=options.tty,
            console_size=None,
            env=_merge_env(spec.process.env, options.env),
        )
        if options.cwd:
            process = process.replace(cwd=options.cwd)
        user = process.user
        if options.user:
            uid_text, _, gid_text = options.user.partition(":")
            user = user.replace(
                uid=_uint(uid_text, "user"), gid=_uint(gid_text, "group") if gid_text else user.gid
            )
        if options.additional_gids:
            user = user.replace(
                additional_gids=tuple(_uint(g, "additional gid") for g in options.additional_gids)
            )
        process = process.replace(user=user)
        if options.caps:
            process = process.replace(capabilities=_add_caps(process, options.caps))
        if options.no_new_privs:
            process = process.replace(no_new_privileges=True)
    if not process.args:
        raise InvalidArgument("args must not be empty")
    return process


def _add_caps(process: Process, names: list[str]) -> object:
    from pallet.oci.runtime_spec import ALL_CAPABILITIES, Capabilities

    for name in names:
        if name not in ALL_CAPABILITIES:
            raise InvalidArgument(f'unknown capability "{name}"')
    caps = process.capabilities or Capabilities()
    added = tuple(names)
    # as runc: ambient only when the spec has an inheritable set (ambient needs inheritable)
    return caps.replace(
        bounding=(*(caps.bounding or ()), *added),
        effective=(*(caps.effective or ()), *added),
        permitted=(*(caps.permitted or ()), *added),
        ambient=(*(caps.ambient or ()), *added) if caps.inheritable is not None else caps.ambient,
    )


#: ioctl(2) on a namespace fd: an fd of the user namespace that owns it (linux/nsfs.h)
_NS_GET_USERNS = 0xB701


def _namespace_fds(spec: Spec, init_pid: int) -> list[tuple[int, int]]:
    """Open fds of the init's namespaces the container has, ordered user first, mount last."""
    from pallet.linux.flags import NAMESPACE_FLAGS

    linux = spec.linux
    wanted = [NAMESPACE_FLAGS[ns.type] for ns in (linux.namespaces if linux else ())]
    order = {f.CLONE_NEWUSER: 0, f.CLONE_NEWNS: 2}
    wanted.sort(key=lambda item: order.get(item[0], 1))
    opened: list[tuple[int, int]] = []
    try:
        for flag, name in wanted:
            path = f"/proc/{init_pid}/ns/{name}"
            try:
                opened.append((os.open(path, os.O_RDONLY | os.O_CLOEXEC), flag))
            except OSError as e:
                raise SystemError_(f"open {path}", e.errno or 0) from None
    except BaseException:
        for fd, _ in opened:
            os.close(fd)
        raise
    return _host_owned_first(opened)


def _host_owned_first(opened: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Namespaces the container's user namespace does not own (a network namespace an engine
    made and joined by path) move before it: once in the user namespace, setns into them is
    refused. ``opened`` is ordered user first."""
    if not opened or opened[0][1] != f.CLONE_NEWUSER:
        return opened
    import fcntl

    user = os.fstat(opened[0][0]).st_ino
    foreign: list[tuple[int, int]] = []
    own: list[tuple[int, int]] = []
    for fd, nstype in opened[1:]:
        try:
            owner = fcntl.ioctl(fd, _NS_GET_USERNS)
        except OSError:
            own.append((fd, nstype))  # an older kernel: runc's order
            continue
        try:
            (own if os.fstat(owner).st_ino == user else foreign).append((fd, nstype))
        finally:
            os.close(owner)
    return [*foreign, opened[0], *own]


def exec_process(root: str, container_id: str, options: ExecOptions, log: LogSink) -> int:
    """Run the process; the exit code (non-detached) or 0 once it runs (detached)."""
    cdir = ContainerDir(root, container_id)
    saved = cdir.load()
    status = status_of(cdir, saved)
    if status == "stopped":
        raise FailedPrecondition("cannot exec in a stopped container")
    if status == "paused":
        raise FailedPrecondition("cannot exec in a paused container")
    if status == "creating":
        raise FailedPrecondition("cannot exec in a container that is being created")
    spec = cdir.load_config()
    process = build_process(spec, options)
    if process.terminal and not options.console_socket and options.detach:
        raise InvalidArgument("cannot allocate tty if runc will detach without setting console socket")
    if not process.terminal and options.console_socket:
        raise InvalidArgument("cannot use console socket if runc will not detach or allocate tty")
    init_pid = saved.pid
    from pallet.runtime.cgroup_driver import from_saved
    from pallet.runtime.cgroups import V1Cgroups

    cgroups = from_saved(saved.cgroups)
    if cgroups is not None and not isinstance(cgroups, V1Cgroups):
        from pallet.runtime.cgroups import warm_up_attach

        warm_up_attach()  # the v2 join below waits for its grace period (see the module's docstring)
    prepared: PreparedSeccomp | None = None
    console: object | None = None
    receiver: object | None = None
    opened: list[int] = []
    try:
        if spec.linux is not None and spec.linux.seccomp is not None:
            from pallet.runtime import seccomp
            from pallet.runtime.create import SECCOMP_CACHE

            prepared = seccomp.prepare(spec.linux.seccomp, cache_dir=os.path.join(root, SECCOMP_CACHE))
        if options.console_socket:
            from pallet.runtime.console import connect_console_socket

            console = connect_console_socket(options.console_socket)
        elif process.terminal:
            from pallet.runtime.console import console_pair

            console, receiver = console_pair()
        ns_fds = _namespace_fds(spec, init_pid)
        opened += [fd for fd, _ in ns_fds]
        report_r, report_w = os.pipe()
        opened += [report_r, report_w]
        from pallet.linux.libc import Libc

        libc = Libc()
        if not options.detach:
            # the process (or, through E1, E2) must be our child, or reparented to us: waited for here
            libc.prctl(f.PR_SET_CHILD_SUBREAPER, 1)
        # without a user namespace (it must be joined first, and owns the others) the process is
        # forked here, into the container's pid namespace: no intermediate E1 (see _fork_direct)
        direct = all(nstype != f.CLONE_NEWUSER for _, nstype in ns_fds)
        if direct and any(nstype == f.CLONE_NEWPID for _, nstype in ns_fds):
            from pallet.linux.userns import in_user_namespace

            # rootless: setns back into our own pid namespace (an outer user namespace's) is refused
            direct = not in_user_namespace()
        if direct:
            # everything the child runs, loaded here: an import in a forked child costs more
            from pallet.runtime import finalize  # noqa: F401

            if console is not None:
                from pallet.runtime import console as _console  # noqa: F401
            if prepared is not None:
                from pallet.runtime import seccomp as _seccomp  # noqa: F401
            first = _fork_direct(
                libc, cgroups, ns_fds, process, console, prepared, options.preserve_fds, report_w
            )
        else:
            first = os.fork()
            if first == 0:
                _first_child(cgroups, ns_fds, process, console, prepared, options.preserve_fds, report_w)
                os._exit(1)  # not reached
        os.close(report_w)
        opened.remove(report_w)
        for fd, _ in ns_fds:
            os.close(fd)
            opened.remove(fd)
        if console is not None:
            console.close()  # type: ignore[attr-defined]
            console = None
        pid = _await_exec(report_r, first) if direct else _await_start(report_r, first)
        log.debug(f"exec: process {pid} runs")
        if prepared is not None:
            from pallet.runtime.ocistate import oci_state
            from pallet.runtime.seccomp import forward_listener

            listener_state = oci_state(saved, status, with_runc_fields=False)
            listener_state["pid"] = pid
            forward_listener(prepared, listener_state)
        master = -1
        if receiver is not None:
            from pallet.runtime.console import receive_master

            master = receive_master(receiver)
    finally:
        if prepared is not None:
            prepared.close()
        if receiver is not None:
            receiver.close()  # type: ignore[attr-defined]
        if console is not None:
            console.close()  # type: ignore[attr-defined]
        for fd in opened:
            try:  # noqa: SIM105 - contextlib costs ~7 ms at start
                os.close(fd)
            except OSError:
                pass
    if options.pid_file:
        write_pid_file(options.pid_file, pid)
    if options.detach:
        return 0
    from pallet.runtime.foreground import forward_signals, reap

    forward_signals(pid)
    if master >= 0:
        from pallet.runtime.ttyproxy import relay

        return relay(master, pid, reap)
    code = reap(pid, True)
    return 255 if code is None else code


class ExecFailed(PalletError):
    """The exec process reported an error before its program ran (its message, as written)."""

    category = UNKNOWN  # another process's words; an engine reads them (engine/runtimes.py)


def _await_start(report_r: int, first: int) -> int:
    """E2's host pid once it has exec'd; the error it reported otherwise (E1 is reaped here)."""
    pid = 0
    error = ""
    try:
        while True:
            try:
                kind, text = sync.receive(report_r)
            except sync.ChannelClosed:
                break  # E1 exited and E2 exec'd (or died)
            if kind == sync.PID:
                pid = int(text)
            elif kind == sync.ERROR:
                error = text
    finally:
        try:  # noqa: SIM105 - contextlib costs ~7 ms at start
            os.waitpid(first, 0)
        except ChildProcessError:
            pass
    if error:
        if pid:
            try:  # noqa: SIM105 - contextlib costs ~7 ms at start
                # ours when not detached (subreaper); otherwise the caller's to reap
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        raise ExecFailed(error)
    if not pid:
        raise ExecFailed("the exec process exited before it started its program")
    return pid


def _join(cgroups: Driver) -> None:
    """Move the calling process, a forked child (single-threaded), into the container's cgroup."""
    from pallet.runtime.cgroups import V1Cgroups

    if isinstance(cgroups, V1Cgroups):
        cgroups.join_self()  # no grace period to wait for
    else:
        cgroups.join(0)


def _await_exec(report_r: int, pid: int) -> int:
    """``pid`` once it has exec'd (end of file on the close-on-exec pipe); the error it reported otherwise."""
    error = ""
    while True:
        try:
            kind, text = sync.receive(report_r)
        except sync.ChannelClosed:
            break
        if kind == sync.ERROR:
            error = text
    if error:
        try:  # noqa: SIM105 - contextlib costs ~7 ms at start
            os.waitpid(pid, 0)  # it exits right after reporting
        except ChildProcessError:
            pass
        raise ExecFailed(error)
    return pid


def _fork_direct(  # noqa: PLR0917 - one call site, exec_process
    libc: Syscalls,
    cgroups: Driver | None,
    ns_fds: list[tuple[int, int]],
    process: Process,
    console: object | None,
    prepared: PreparedSeccomp | None,
    preserve_fds: int,
    report_w: int,
) -> int:
    """Fork the exec process into the container's pid namespace (no user namespace); its pid.

    ``setns`` of a pid namespace only changes where our next child is born: we
    enter the container's for the fork and return to our own right after it.
    The child joins the cgroup and the other namespaces itself (``_direct_child``).
    """
    pid_ns = [fd for fd, nstype in ns_fds if nstype == f.CLONE_NEWPID]
    own_ns = -1
    if pid_ns:
        own_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            libc.setns(pid_ns[0], f.CLONE_NEWPID)
        except BaseException:
            os.close(own_ns)
            raise
    try:
        pid = os.fork()
        if pid == 0:
            try:
                _direct_child(libc, cgroups, ns_fds, process, console, prepared, preserve_fds, report_w)
            finally:
                os._exit(1)  # not reached: it execs or exits (never the finally below)
    finally:
        if own_ns >= 0:
            try:
                libc.setns(own_ns, f.CLONE_NEWPID)
            finally:
                os.close(own_ns)
    return pid


def _direct_child(  # noqa: PLR0917 - one call site, _fork_direct
    sys: Syscalls,
    cgroups: Driver | None,
    ns_fds: list[tuple[int, int]],
    process: Process,
    console: object | None,
    prepared: PreparedSeccomp | None,
    preserve_fds: int,
    report_w: int,
) -> None:
    """The exec process forked by ``_fork_direct``: cgroup, the namespaces but pid, then as E2. Never returns."""
    try:
        if cgroups is not None:
            _join(cgroups)
        for fd, nstype in ns_fds:
            if nstype != f.CLONE_NEWPID:
                sys.setns(fd, nstype)
            os.close(fd)
    except BaseException as e:  # noqa: BLE001 - everything goes to the parent as ERROR
        sync.fail(report_w, e)
        return
    _second_child(sys, process, console, prepared, preserve_fds, report_w)


def _first_child(  # noqa: PLR0917 - one call site, the fork above
    cgroups: Driver | None,
    ns_fds: list[tuple[int, int]],
    process: Process,
    console: object | None,
    prepared: PreparedSeccomp | None,
    preserve_fds: int,
    report_w: int,
) -> None:
    """E1: cgroup, namespaces, fork E2. Never returns."""
    try:
        # imported before the mount namespace: afterwards imports would search the container's files
        from pallet.linux.libc import Libc
        from pallet.runtime import finalize  # noqa: F401

        if console is not None:
            from pallet.runtime import console as _console  # noqa: F401
        if prepared is not None:
            from pallet.runtime import seccomp as _seccomp  # noqa: F401
        sys = Libc()
        if cgroups is not None:
            _join(cgroups)
        joined_user = False
        for fd, nstype in ns_fds:
            sys.setns(fd, nstype)
            os.close(fd)
            joined_user = joined_user or nstype == f.CLONE_NEWUSER
        if joined_user:
            # root of the user namespace (the mapped 0) until the process's own user is set
            sys.setresgid(0, 0, 0)
            sys.setresuid(0, 0, 0)
        pid = os.fork()
    except BaseException as e:  # noqa: BLE001 - everything goes to the parent as ERROR
        sync.fail(report_w, e)
        return
    if pid == 0:
        _second_child(sys, process, console, prepared, preserve_fds, report_w)
        return
    try:
        sync.send(report_w, sync.PID, str(pid))
    finally:
        os._exit(0)


def _second_child(  # noqa: PLR0917 - one call site, the fork above
    sys: Syscalls,
    process: Process,
    console: object | None,
    prepared: PreparedSeccomp | None,
    preserve_fds: int,
    report_w: int,
) -> None:
    """E2, in every namespace of the container: set up and exec the program. Never returns."""
    from pallet.runtime.finalize import exec_program, finalize_process

    try:
        if console is not None:
            from pallet.runtime import console as pty

            os.setsid()
            master, slave_path = pty.open_pty()
            pty.send_master(console, master, slave_path)
            size = process.console_size
            pty.become_terminal_session(slave_path, size.height if size else 0, size.width if size else 0)
        path, env = finalize_process(sys, process, prepared)
        for fd in range(3, 3 + preserve_fds):
            try:  # noqa: SIM105 - contextlib costs ~7 ms at start
                os.set_inheritable(fd, True)
            except OSError:
                pass
        exec_program(path, list(process.args), env, keep_fds=3 + preserve_fds)
    except BaseException as e:  # noqa: BLE001 - everything goes to the parent as ERROR
        sync.fail(report_w, e)
