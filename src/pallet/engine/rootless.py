"""Rootless mode: an unprivileged user's engine, inside a user namespace of their own.

A user who is not root gets a store of their own (``$XDG_DATA_HOME/pallet``,
``~/.local/share/pallet``) and a run dir (``$XDG_RUNTIME_DIR/pallet``, else a
private ``/tmp/pallet-run-<uid>``). Every ``pallet`` command of theirs runs in
one user namespace, as podman's do:

1. the first command starts a *pause process*: it unshares a user namespace,
   which ``newuidmap``/``newgidmap`` map (the user's uid and gid to 0, their
   ranges from /etc/subuid and /etc/subgid to 1…), then a mount namespace of
   that user namespace, and sleeps; its pid and start time go to
   ``<run>/pause.pid`` (under ``<run>/pause.lock``);
2. each command (the first too) joins the pause process's user and mount
   namespaces (``setns``, while it has one thread), and from then on is root
   there: it can make the store's files with the image's owners, mount
   overlayfs (the kernel's rootless overlay), make namespaces for containers.

Processes the command starts (the shim, the OCI runtime, the containers) are
born inside. The pause process keeps the namespaces alive between commands;
it goes with a reboot (the run dir is on tmpfs), or with ``rm`` of its pid file
and a kill of it, after which the next command starts another. Mounts made
in the old mount namespace (rootfs of running containers) go with it.

cgroups: a rootless user can only use a cgroup v2 tree delegated to them by
systemd; on cgroup v1 (this machine) containers run without resource limits,
which the first command of a session says on stderr.
"""

from __future__ import annotations

import os

from pallet.errors import FailedPrecondition, Unavailable
from pallet.oci.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pallet.engine.spec.generate import SpecOption

__all__ = [
    "ROOTLESS_ENV",
    "RootlessPaths",
    "default_paths",
    "enter",
    "is_rootless",
    "rootless_spec_option",
]

#: set by a command that entered the rootless namespace, for the processes it starts
ROOTLESS_ENV = "PALLET_ROOTLESS"
_PAUSE_PID = "pause.pid"
_PING_GROUPS = "net.ipv4.ping_group_range"
_PAUSE_LOCK = "pause.lock"
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNS = 0x00020000
_MS_REC = 0x4000
_MS_SLAVE = 0x80000


class RootlessPaths(Record):
    root: str
    run_root: str


class _IdMap(Record):
    """What newuidmap/newgidmap are given: the user's ids (to 0) and their ranges (to 1…)."""

    uid: int
    gid: int
    uids: tuple[tuple[int, int], ...]
    gids: tuple[tuple[int, int], ...]
    #: the paths of newuidmap and newgidmap
    tools: tuple[str, str]


def is_rootless() -> bool:
    """Whether pallet runs rootless here: not root, or inside the namespace a rootless command entered."""
    return os.geteuid() != 0 or os.environ.get(ROOTLESS_ENV) == "1"


def default_paths() -> RootlessPaths:
    """The store and run dir of this user (XDG base directories)."""
    home = os.environ.get("HOME") or os.path.expanduser("~")
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime_dir and _owned_private_dir(runtime_dir):
        run_root = os.path.join(runtime_dir, "pallet")
    else:
        run_root = f"/tmp/pallet-run-{os.getuid()}"
    return RootlessPaths(root=os.path.join(data, "pallet"), run_root=run_root)


def _owned_private_dir(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o077


def _make_private_dir(path: str) -> None:
    """``path`` as a directory of this user that nobody else may enter (a /tmp fallback could be
    someone else's trap: refused then)."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.lstat(path)
    if st.st_uid != os.getuid() or not os.path.isdir(path) or os.path.islink(path):
        raise FailedPrecondition(
            f"rootless run dir {path} is not a directory of yours; set XDG_RUNTIME_DIR to one (0700)"
        )
    os.chmod(path, 0o700)


def _id_ranges(user: str, uid: int, gid: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    from pallet.engine.userns import SUBGID, SUBUID, subordinate_ranges

    def read(path: str) -> str:
        try:
            with open(path, encoding="utf-8") as f:
                return f.read()
        except OSError:
            return ""

    import grp

    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    uids = subordinate_ranges(read(SUBUID), [user, str(uid)])
    gids = subordinate_ranges(read(SUBGID), [user, group, str(gid)])
    for ranges, path, flag in ((uids, SUBUID, "--add-subuids"), (gids, SUBGID, "--add-subgids")):
        if not ranges:
            raise FailedPrecondition(
                f'rootless pallet: user "{user}" has no subordinate ids in {path}; ask an administrator to '
                f"run: usermod {flag} 100000-165535 {user}"
            )
    return uids, gids


def _id_tools() -> tuple[str, str]:
    from pallet.engine.runtimes import find_executable

    tools = [find_executable(name) for name in ("newuidmap", "newgidmap")]
    if tools[0] is None or tools[1] is None:
        raise Unavailable(
            "rootless pallet needs newuidmap and newgidmap (setuid helpers that map your subordinate "
            "ids); install them: apt-get install uidmap"
        )
    return tools[0], tools[1]


def enter(paths: RootlessPaths, warn: Callable[[str], None]) -> None:
    """Join (or first start) this user's rootless namespace; on return this process is root in it.

    Idempotent: a process already inside returns at once. Call it while the
    process has a single thread (``setns`` into a user namespace needs that).
    ``warn`` gets the once-per-session notes (cgroups).
    """
    from pallet.linux.userns import in_user_namespace

    if os.environ.get(ROOTLESS_ENV) == "1" and in_user_namespace():
        return
    import pwd

    uid, gid = os.getuid(), os.getgid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    pid = _running_pause(paths.run_root)
    if pid is None:
        # what is missing is said before anything is made
        uids, gids = _id_ranges(user, uid, gid)
        ids = _IdMap(uid=uid, gid=gid, uids=tuple(uids), gids=tuple(gids), tools=_id_tools())
        _make_private_dir(paths.run_root)
        pid = _start_pause(paths.run_root, ids)
        if pid is None:  # another command started it meanwhile
            pid = _running_pause(paths.run_root)
        else:
            note = _cgroup_note()
            if note:
                warn(note)
    if pid is None:
        raise Unavailable(f"rootless pallet: the pause process in {paths.run_root} did not start")
    _join(pid)
    os.environ[ROOTLESS_ENV] = "1"
    os.environ["PALLET_ROOT"] = paths.root
    os.environ["PALLET_RUN"] = paths.run_root
    os.makedirs(paths.root, mode=0o700, exist_ok=True)


def _running_pause(run_root: str) -> int | None:
    from pallet.linux.procstat import is_alive

    try:
        with open(os.path.join(run_root, _PAUSE_PID)) as f:
            pid_text, _, started = f.read().strip().partition(" ")
        pid, start = int(pid_text), int(started)
    except (OSError, ValueError):
        return None
    return pid if start and is_alive(pid, start) else None


def _start_pause(run_root: str, ids: _IdMap) -> int | None:
    """Start the pause process under the run dir's lock; its pid, or None if one runs already."""
    import fcntl

    lock = os.open(os.path.join(run_root, _PAUSE_LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _running_pause(run_root) is not None:
            return None
        pid = _spawn_pause(ids)
        from pallet.linux.atomicfile import write_atomic
        from pallet.linux.procstat import start_time

        write_atomic(os.path.join(run_root, _PAUSE_PID), f"{pid} {start_time(pid)}\n".encode())
        return pid
    finally:
        os.close(lock)


def _spawn_pause(ids: _IdMap) -> int:
    """Fork the pause process (detached: its own session, reparented to init); its pid once ready.

    Protocol over two pipes: the grandchild unshares its user namespace and
    writes its pid; we run newuidmap/newgidmap on it and write "g"; it becomes
    root there, unshares a mount namespace (rslave /), writes "r" and pauses.
    """
    import subprocess

    up_r, up_w = os.pipe()
    go_r, go_w = os.pipe()
    first = os.fork()
    if first == 0:  # pragma: no cover - the intermediate: detaches the pause process
        try:
            os.setsid()
            if os.fork() == 0:
                _pause_main(up_w, go_r, (up_r, go_w))
            os._exit(0)
        finally:
            os._exit(1)
    os.close(up_w)
    os.close(go_r)
    try:
        os.waitpid(first, 0)
        answer = os.read(up_r, 32).decode()
        if not answer.isdigit():
            raise Unavailable(f"rootless pallet: cannot make a user namespace: {answer or 'no answer'}")
        pid = int(answer)
        for tool, own, ranges in ((ids.tools[0], ids.uid, ids.uids), (ids.tools[1], ids.gid, ids.gids)):
            args = [tool, str(pid), "0", str(own), "1"]
            inside = 1
            for start, count in ranges:
                args += [str(inside), str(start), str(count)]
                inside += count
            done = subprocess.run(args, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise Unavailable(
                    f"rootless pallet: {os.path.basename(tool)} failed: {done.stderr.strip() or done.returncode}"
                )
        os.write(go_w, b"g")
        ready = os.read(up_r, 256).decode()
        if ready != "r":
            raise Unavailable(f"rootless pallet: the pause process failed: {ready or 'it exited'}")
        return pid
    finally:
        os.close(up_r)
        os.close(go_w)


def _pause_main(
    up_w: int, go_r: int, others: tuple[int, int]
) -> None:  # pragma: no cover - the pause process
    from pallet.linux.libc import Libc

    try:
        for fd in others:
            os.close(fd)
        libc = Libc()
        try:
            libc.unshare(_CLONE_NEWUSER)
        except Exception as e:  # noqa: BLE001 - reported to the parent, which says it
            os.write(up_w, str(e).encode()[:200] or b"unshare failed")
            os._exit(1)
        os.write(up_w, str(os.getpid()).encode())
        if os.read(go_r, 1) != b"g":
            os._exit(1)
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        libc.unshare(_CLONE_NEWNS)
        libc.mount("", "/", "", _MS_REC | _MS_SLAVE, "")
        os.chdir("/")
        null = os.open(os.devnull, os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(null, target)
        os.write(up_w, b"r")
        os.closerange(3, 1 << 16)
        import signal

        for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(signum, signal.SIG_IGN)
        while True:
            signal.pause()
    except BaseException as e:  # noqa: BLE001 - the pause process ends here, whatever happened
        try:
            os.write(up_w, str(e).encode()[:200] or b"failed")
        finally:
            os._exit(1)


def _join(pid: int) -> None:
    """Enter the pause process's user and mount namespaces; become root there."""
    from pallet.errors import SystemError_
    from pallet.linux.libc import Libc

    libc = Libc()
    fds = []
    try:
        for name in ("user", "mnt"):
            try:
                fds.append(os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC))
            except OSError as e:
                raise SystemError_(
                    f"open the rootless {name} namespace of process {pid}", e.errno or 0
                ) from None
        libc.setns(fds[0], _CLONE_NEWUSER)
        libc.setns(fds[1], _CLONE_NEWNS)
    finally:
        for fd in fds:
            os.close(fd)
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    os.setgroups([])


def _cgroup_note() -> str:
    """What the session's first command says about cgroups ("" when limits work)."""
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return ""  # v2: a tree systemd delegated is used where the runtime finds one
    return (
        "WARNING: rootless pallet on cgroup v1: containers run without resource limits "
        "(--memory, --cpus, --pids-limit are not applied); limits need cgroup v2 with systemd delegation"
    )


def _mapped_gids() -> int:
    """How many gids this process's user namespace maps (the rootless one: 1 + the subordinate ranges)."""
    try:
        with open("/proc/self/gid_map") as f:
            return sum(int(line.split()[2]) for line in f if line.strip())
    except (OSError, ValueError, IndexError):
        return 1


def rootless_spec_option() -> SpecOption:
    """What a container of a rootless engine is given differently.

    ``ping_group_range`` covers the gids of the user's namespace (the kernel
    refuses gids it does not map); no ``oomScoreAdj`` (lowering the user's
    own score is refused; the container keeps it, as podman's do).
    """
    from pallet.oci.runtime_spec import Spec

    count = _mapped_gids()

    def apply(spec: Spec) -> Spec:
        if spec.process is not None:
            spec = spec.replace(process=spec.process.replace(oom_score_adj=None))
        linux = spec.linux
        if linux is not None and _PING_GROUPS in linux.sysctl:
            sysctl = {**linux.sysctl, _PING_GROUPS: f"0 {count - 1}"}
            spec = spec.replace(linux=linux.replace(sysctl=sysctl))
        return spec

    return apply
