"""The container side of ``create``: the intermediate process (C1) and the container init (C2).

Python cannot run after ``clone(CLONE_NEWPID)`` safely, so as youki does:
C1 unshares the user namespace first (the parent writes its id maps), joins
namespaces given by path, unshares the others, writes the time offsets, forks
C2 and exits. C2 is PID 1 of the new pid namespace. It builds the rootfs,
lets the parent run prestart/createRuntime hooks, runs createContainer hooks,
pivots, sets hostname, sysctl, masked/read-only paths, limits and
credentials, resolves the program, reports READY and blocks on the exec FIFO
until ``start``.

Without a user or time namespace (and no pid namespace given by path) there
is no C1: the parent unshares the pid namespace for its next child only and
forks C2 itself (``init_forked_directly``), which does C1's namespace work
first. One fork fewer, and the parent knows the init's pid at once.

The functions that run in C1 and C2 never return: they ``os._exit``. Any error
is sent to the parent as one ERROR message (the parent reports it and cleans
up). Everything they run is imported here, by the parent, before it forks:
an import in a freshly forked child costs about twice as much (each page the
import system touches is copied), and after ``pivot_root`` it would search
the container's files.
"""

from __future__ import annotations

import os

from pallet.errors import InvalidArgument, PalletError, SystemError_, errno_text
from pallet.linux import flags as f
from pallet.linux.loopback import bring_up_loopback
from pallet.runtime import sync
from pallet.runtime.cgroups import V1Cgroups
from pallet.runtime.finalize import exec_program, finalize_process
from pallet.runtime.hooks import run_hooks
from pallet.runtime.rootfs import RootfsBuilder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.linux.syscalls import Syscalls
    from pallet.oci.runtime_spec import Spec
    from pallet.runtime.cgroup_driver import Driver
    from pallet.runtime.seccomp import PreparedSeccomp

_CLOCKS = {"monotonic": "monotonic", "boottime": "boottime"}


class InitPlan:
    """What the parent prepared for the child processes (inherited across fork)."""

    def __init__(
        self,
        *,
        spec: Spec,
        bundle: str,
        rootfs: str,
        cgroups: Driver,
        cgroup_mounts: dict[str, str],
        fifo_fd: int,
        to_parent: int,
        from_parent: int,
        ns_fds: list[tuple[int, int]],
        new_ns_flags: int,
        console: object | None,
        no_pivot: bool,
        needs_hooks: bool,
        seccomp: PreparedSeccomp | None = None,
        preserve_fds: int = 0,
        self_join: bool = False,
    ) -> None:
        self.spec = spec
        self.preserve_fds = preserve_fds
        self.bundle = bundle
        self.rootfs = rootfs
        self.cgroups = cgroups
        self.cgroup_mounts = cgroup_mounts
        # O_PATH fd of exec.fifo, opened by the parent: the init may not be able to reach the state dir
        self.fifo_fd = fifo_fd
        self.to_parent = to_parent
        self.from_parent = from_parent
        # (fd of /proc/.../ns/X, clone flag) to setns, the user namespace first
        self.ns_fds = ns_fds
        self.new_ns_flags = new_ns_flags
        self.console = console
        self.no_pivot = no_pivot
        self.needs_hooks = needs_hooks
        self.seccomp = seccomp
        # the init moves itself into its (v1) cgroup once the parent has written the limits
        self.self_join = self_join
        # set by the init on its way: the state the hooks got
        self.state_json = ""


def _expect(fd: int, kind: str) -> str:
    got, text = sync.receive(fd)
    if got != kind:
        raise InvalidArgument(f"unexpected sync message {got!r} (wanted {kind!r})")
    return text


def intermediate(plan: InitPlan, sys: Syscalls | None) -> None:
    """C1: cgroup, namespaces, then fork the init. Never returns.

    ``sys`` None means the real libc, loaded here: ``create`` alone never needs it in the parent.
    """
    try:
        if sys is None:
            from pallet.linux.libc import Libc

            sys = Libc()
        # the cgroup namespace is the init's to make, once it is in its cgroup (see sync.CGROUP_DONE)
        new_flags = plan.new_ns_flags & ~f.CLONE_NEWCGROUP
        # runc's nsexec order: namespaces given by path first (a user namespace among them first
        # of all), while this process still has the host's privileges over them; then a new user
        # namespace, which owns only what is made after it (a network namespace an engine made
        # and configured stays the host's)
        for fd, nstype in plan.ns_fds:
            sys.setns(fd, nstype)
            os.close(fd)
        if _network_sysctls_by_host(plan):
            for key, value in _network_sysctls(plan.spec):
                _write_sysctl(key, _as_host_ids(key, value, plan.spec))
        if new_flags & f.CLONE_NEWUSER:
            sys.unshare(f.CLONE_NEWUSER)
            sync.send(plan.to_parent, sync.USERNS)
            _expect(plan.from_parent, sync.USERNS_DONE)
            new_flags &= ~f.CLONE_NEWUSER
        if plan.new_ns_flags & f.CLONE_NEWUSER or any(t == f.CLONE_NEWUSER for _, t in plan.ns_fds):
            # become root of the user namespace (the mapped uid/gid 0)
            sys.setresgid(0, 0, 0)
            sys.setresuid(0, 0, 0)
        if new_flags:
            sys.unshare(new_flags)
        if new_flags & f.CLONE_NEWNET:
            # a namespace made here gets lo up (runc's "loopback" network); one joined by path is left as is
            bring_up_loopback()
        if new_flags & f.CLONE_NEWTIME:
            _write_time_offsets(plan.spec)
        pid = os.fork()
    except BaseException as e:  # noqa: BLE001 - everything goes to the parent as ERROR
        sync.fail(plan.to_parent, e)
        return
    if pid == 0:
        assert sys is not None
        init(plan, sys)
        return
    try:
        sync.send(plan.to_parent, sync.PID, str(pid))
    finally:
        os._exit(0)


def init_forked_directly(plan: InitPlan, sys: Syscalls) -> None:
    """The init when ``create`` forked it itself (no user or time namespace): C1's work, then C2's.

    It joins the namespaces given by path and makes the others but pid (the
    parent's ``unshare`` made it this process's) and cgroup (made once in its
    cgroup). Never returns.
    """
    try:
        new_flags = plan.new_ns_flags & ~(f.CLONE_NEWCGROUP | f.CLONE_NEWPID)
        for fd, nstype in plan.ns_fds:
            sys.setns(fd, nstype)
            os.close(fd)
        if new_flags:
            sys.unshare(new_flags)
        if new_flags & f.CLONE_NEWNET:
            # as runc's "loopback" network; a namespace joined by path is left as is
            bring_up_loopback()
    except BaseException as e:  # noqa: BLE001 - everything goes to the parent as ERROR
        sync.fail(plan.to_parent, e)
        return
    init(plan, sys)


def _write_time_offsets(spec: Spec) -> None:
    linux = spec.linux
    if linux is None or not linux.time_offsets:
        return
    lines = []
    for clock, offset in linux.time_offsets.items():
        if clock not in _CLOCKS:
            raise InvalidArgument(f'linux.timeOffsets: unknown clock "{clock}" (monotonic or boottime)')
        lines.append(f"{clock} {offset.secs or 0} {offset.nanosecs or 0}\n")
    try:
        with open("/proc/self/timens_offsets", "w") as out:
            out.write("".join(lines))
    except OSError as e:
        raise SystemError_("write /proc/self/timens_offsets", e.errno or 0) from None


def init(plan: InitPlan, sys: Syscalls) -> None:
    """C2: the container init. Never returns: it execs the user program or exits."""
    try:
        path, args, env = _prepare(plan, sys)
    except BaseException as e:  # noqa: BLE001 - everything goes to the parent as ERROR
        sync.fail(plan.to_parent, e)
        return
    _wait_for_start_and_exec(plan, path, args, env)


def _prepare(plan: InitPlan, sys: Syscalls) -> tuple[str, list[str], list[str]]:
    spec = plan.spec
    process = spec.process
    linux = spec.linux
    # everything imported after pivot_root would be looked up in the container's filesystem
    if process is not None and process.terminal:
        from pallet.runtime import console  # noqa: F401
    if spec.hooks is not None and spec.hooks.start_container:
        import subprocess  # noqa: F401
    if process is None:
        raise InvalidArgument("process: required to create a container")
    os.setsid()
    from pallet.linux.userns import in_user_namespace

    builder = RootfsBuilder(
        sys,
        spec,
        plan.rootfs,
        plan.bundle,
        # a new one, or the one a rootless runtime runs in
        in_user_namespace=bool(plan.new_ns_flags & f.CLONE_NEWUSER) or in_user_namespace(),
        host_mount_namespace=linux is None or linux.namespace("mount") is None,
        cgroup_dirs=plan.cgroups.paths,
        cgroup_mounts=plan.cgroup_mounts,
    )
    builder.prepare()
    state_json = ""
    # hooks' processes must start in the container's cgroup; a self-join needs the host's cgroup files
    early_cgroup = plan.needs_hooks or plan.self_join
    if early_cgroup:
        _await_cgroup(plan, sys)
    if plan.needs_hooks:
        sync.send(plan.to_parent, sync.HOOKS)
        state_json = _expect(plan.from_parent, sync.HOOKS_DONE)
        if spec.hooks is not None:
            run_hooks("createContainer", spec.hooks.create_container, state_json)
    plan.state_json = state_json
    builder.pivot(plan.no_pivot)
    if process.terminal:
        _setup_terminal(plan, sys)
    if spec.hostname:
        sys.sethostname(spec.hostname)
    if spec.domainname:
        sys.setdomainname(spec.domainname)
    if linux is not None:
        written = {key for key, _ in _network_sysctls(spec)} if _network_sysctls_by_host(plan) else set()
        for key, value in linux.sysctl.items():
            if key not in written:
                _write_sysctl(key, value)
    cwd = process.cwd or "/"
    # made before the root may turn read-only, as runc does
    os.makedirs(cwd, exist_ok=True)
    builder.finish()
    if not early_cgroup:
        _await_cgroup(plan, sys)
    path, env = finalize_process(sys, process, plan.seccomp)
    return path, list(process.args), env


def _await_cgroup(plan: InitPlan, sys: Syscalls) -> None:
    """Wait until the parent has put this process in its cgroup (``self_join``: has written its
    limits, and this process joins itself), then make the cgroup namespace."""
    _expect(plan.from_parent, sync.CGROUP_DONE)
    if plan.self_join and isinstance(plan.cgroups, V1Cgroups):
        plan.cgroups.join_self()
    if plan.new_ns_flags & f.CLONE_NEWCGROUP:
        sys.unshare(f.CLONE_NEWCGROUP)


def _setup_terminal(plan: InitPlan, sys: Syscalls) -> None:
    from pallet.runtime import console

    if plan.console is None:
        raise InvalidArgument("process.terminal is true but no --console-socket was given")
    master, slave_path = console.open_pty()
    # /dev/console is the pty too, as runc arranges
    try:
        if not os.path.exists("/dev/console"):
            os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        sys.mount(slave_path, "/dev/console", "", f.MS_BIND, "")
    except (OSError, PalletError):
        pass  # a read-only /dev: the pty still works as stdio
    console.send_master(plan.console, master, slave_path)
    size = plan.spec.process.console_size if plan.spec.process else None
    console.become_terminal_session(slave_path, size.height if size else 0, size.width if size else 0)


def _network_sysctls_by_host(plan: InitPlan) -> bool:
    """Whether the intermediate writes the ``net.*`` sysctls: a network namespace joined by path
    belongs to the host's user namespace, and a new user namespace's root may not write them."""
    joined_net = any(nstype == f.CLONE_NEWNET for _, nstype in plan.ns_fds)
    return joined_net and bool(plan.new_ns_flags & f.CLONE_NEWUSER)


def _network_sysctls(spec: Spec) -> list[tuple[str, str]]:
    linux = spec.linux
    return [(k, v) for k, v in linux.sysctl.items() if k.startswith("net.")] if linux is not None else []


def _as_host_ids(key: str, value: str, spec: Spec) -> str:
    """``value`` as the host writes it: ping_group_range's gids are the container's, and /proc
    reads them in the writer's user namespace."""
    if key != "net.ipv4.ping_group_range" or spec.linux is None or not spec.linux.gid_mappings:
        return value
    try:
        low, high = (int(part) for part in value.split())
    except ValueError:
        return value  # the kernel refuses it, with its own errno
    mapping = spec.linux.gid_mappings[0]
    first, last = mapping.container_id, mapping.container_id + mapping.size - 1
    low, high = max(low, first), min(high, last)
    return f"{mapping.host_id + low - first} {mapping.host_id + high - first}"


def _write_sysctl(key: str, value: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/")
    try:
        with open(path, "w") as out:
            out.write(value)
    except OSError as e:
        raise SystemError_(f"write sysctl {key}={value}", e.errno or 0) from None


def _wait_for_start_and_exec(plan: InitPlan, path: str, args: list[str], env: list[str]) -> None:
    fifo_fd = plan.fifo_fd
    try:
        sync.send(plan.to_parent, sync.READY)
        os.close(plan.to_parent)
        os.close(plan.from_parent)
        # blocks until `start` opens the FIFO for reading
        try:
            fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
        except OSError as e:
            raise SystemError_("open exec fifo", e.errno or 0) from None
        os.write(fd, b"0")
        os.close(fd)
        os.close(fifo_fd)
        spec = plan.spec
        if spec.hooks is not None and spec.hooks.start_container:
            run_hooks("startContainer", spec.hooks.start_container, plan.state_json)

        for fd in range(3, 3 + plan.preserve_fds):
            try:  # noqa: SIM105 - contextlib costs ~7 ms at start
                os.set_inheritable(fd, True)
            except OSError:
                pass  # not open: nothing to pass on
        exec_program(path, args, env, keep_fds=3 + plan.preserve_fds)
    except BaseException as e:  # noqa: BLE001 - the parent is gone: report on the container's stderr
        if isinstance(e, PalletError):
            text = e.message
        elif isinstance(e, OSError):
            text = f"exec {path}: {errno_text(e.errno or 0)}"
        else:
            text = f"exec {path}: {type(e).__name__}: {e}"
        try:
            os.write(2, f"pallet-runtime: {text}\n".encode())
        finally:
            os._exit(127)
