"""The OCI runtime CLI client: how the engine and the shim drive ``pallet-runtime``, ``runc`` or ``crun``.

Every call is ``<path> [runtimeArgs] --root <root> --log <file> --log-format json <verb> …``,
as containerd's shim calls runc (see ``shared/runtime-contract.md``). Each call
gets its own log file (``<log_dir>/<id>.<pid>.<n>.json``, removed afterwards),
so concurrent calls from the CLI and the shim never mix their errors; the error
reported is the ``msg`` of the last ``"level":"error"`` line of that file, as
containerd reports it, else the runtime's stderr.

Runtime selection (``select_runtime``): ``pallet-runtime`` (the default),
``runc``, ``crun`` and ``runsc`` (gVisor) are known by name; the root's
``config.toml`` (``pallet.engine.config``) may register others by name and
change the default, in dockerd's ``daemon.json`` shape::

    default-runtime = "crun"
    [runtimes.myrunc]
    path = "/usr/local/bin/runc"
    runtimeArgs = ["--debug"]

The shim uses this module: processes are started by ``spawn`` (no
``subprocess``), JSON goes through ``pallet.oci.jsonfast``.
"""

from __future__ import annotations

import fcntl
import os
import stat

from pallet.errors import (
    UNKNOWN,
    CommandNotExecutable,
    CommandNotFound,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PalletError,
    Unavailable,
)
from pallet.oci.jsonfast import dumps, loads
from pallet.oci.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from pallet.engine.config import EngineConfig, RuntimeEntry
    from pallet.oci.runtime_spec import Seccomp

__all__ = [
    "BUILTIN_RUNTIMES",
    "DEFAULT_RUNTIME",
    "RESTORED_SIGNALS",
    "Runtime",
    "RuntimeFailed",
    "create_args",
    "default_runtime_name",
    "error_from_log",
    "exec_failed",
    "find_executable",
    "known_runtimes",
    "precompiled_seccomp",
    "run_in_child",
    "runtime_root",
    "select_runtime",
    "spawn",
    "spawn_started",
]

DEFAULT_RUNTIME = "pallet-runtime"
#: the runtimes known without a config file: name -> global arguments. runsc (gVisor 2022 in
#: Debian 12) runs with its defaults here: platform ptrace (no KVM in a VM, and systrap is
#: newer than this runsc), network "sandbox" (its own stack inside the netns the engine
#: gives it), cgroups as the spec says.
BUILTIN_RUNTIMES: dict[str, tuple[str, ...]] = {
    "pallet-runtime": (),
    "runc": (),
    "crun": (),
    "runsc": (),
}
#: what to install for a built-in runtime's program
_DEBIAN_PACKAGES = {
    "runc": "runc",
    "crun": "crun",
    "runsc": "runsc",
    "pallet-runtime": "pallet (scripts/install.sh)",
}

_counter = [0]
#: crun's annotation for a ready-made seccomp program (base64 of the BPF)
_CRUN_SECCOMP_BPF = "run.oci.seccomp_bpf_data"

#: SIGPIPE and SIGXFSZ, which Python ignores and children would inherit ignored (and pass on
#: to the container's processes); set back to default as subprocess's ``restore_signals`` does
RESTORED_SIGNALS = (13, 25)
_SIGCHLD = 17
#: the verbs that start a program in a container: their "not found" is the program's
_STARTING_VERBS = frozenset({"create", "start", "run", "exec"})

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal
else:
    import _signal  # imported here, not in a forked child (the import lock may be held)


def spawn(path: str, argv: Sequence[str], fds: Sequence[int], *, setsid: bool = False) -> int:
    """Start ``path`` with ``fds`` as its fds 0, 1, 2, … and default signal dispositions; its pid.

    fork and exec, not ``posix_spawn``: glibc's posix_spawn leaves its internal
    signals (32, 33) ignored in the child, a runtime passes that on to the
    container, and docker's containers have no signal ignored. The child runs
    only dup2/signal/exec, safe after fork in a threaded caller. Raises
    ``OSError`` when the program cannot be executed.
    """
    pid, err_r = spawn_started(path, argv, fds, setsid=setsid)
    try:
        exec_failed(pid, err_r, path)
    finally:
        os.close(err_r)
    return pid


def _warm_up_cgroup_attach() -> None:
    """Let the runtime's first ``cgroup.procs`` write skip the kernel's RCU grace period (~10 ms).

    The runtime moves the container's process into its cgroup; after a quiet
    spell the first such write on the host waits for a grace period, the next
    ones for a while do not. A no-op write of our own, started just before the
    runtime, takes that wait instead (pallet-runtime does the same for itself).
    Made by a forked child: this may run in a long-lived shim.
    """
    from pallet.runtime.cgroups import warm_up_attach

    warm_up_attach(by_child=True)


def run_in_child(argv: Sequence[str], fds: Sequence[int]) -> int:
    """Run pallet-runtime's ``main(argv[1:])`` in a forked child, as ``spawn`` would run its launcher.

    The child gets what exec of an interpreter would give it: ``fds`` as 0,
    1, 2, …, nothing else open, default signal handling but SIGPIPE and
    SIGXFSZ ignored. What it saves is an interpreter's start
    and imports (~15 ms per call). Its pid; the exit status is the runtime's.
    """
    import sys

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child, covered by every in-process runtime call
        code = 1
        try:
            _place_fds(fds)
            os.closerange(len(fds), 1 << 20)  # the caller's files: exec would have closed them
            _signal.set_wakeup_fd(-1)
            _signal.signal(_SIGCHLD, _signal.SIG_DFL)
            # as an interpreter started by exec has them: a runtime writing to an init that
            # died gets EPIPE (and reports the init's error), not a silent SIGPIPE death;
            # the init sets them back to default for the container (runtime/finalize.py)
            for signum in RESTORED_SIGNALS:
                _signal.signal(signum, _signal.SIG_IGN)
            sys.argv = list(argv)
            from pallet.runtime.cli import main

            code = main(list(argv[1:]))
        except BaseException as e:  # noqa: BLE001 - the child must end here, whatever happened
            os.write(2, f"pallet-runtime: {type(e).__name__}: {e}\n".encode())
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    return pid


def spawn_started(
    path: str, argv: Sequence[str], fds: Sequence[int], *, setsid: bool = False
) -> tuple[int, int]:
    """``spawn`` without waiting for the exec: the pid, and a pipe for ``exec_failed`` (close it after).

    For a caller with work to do meanwhile (the exec of an interpreter takes ms).
    """
    err_r, err_w = os.pipe()  # close-on-exec: EOF on a successful exec, else the errno
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child, covered by every runtime call
        code = 127
        try:
            _place_fds(fds)
            if setsid:
                os.setsid()
            for signum in RESTORED_SIGNALS:
                _signal.signal(signum, _signal.SIG_DFL)
            os.execve(path, list(argv), os.environ)
        except OSError as e:
            os.write(err_w, str(e.errno or 0).encode())
        finally:
            os._exit(code)
    os.close(err_w)
    return pid, err_r


def _place_fds(fds: Sequence[int]) -> None:
    """In a forked child: ``fds`` become 0, 1, 2, … (copies above the targets first, so no
    dup2 overwrites a source still needed)."""
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, len(fds)) for fd in fds]
    for target, fd in enumerate(moved):
        os.dup2(fd, target)


def exec_failed(pid: int, err_r: int, path: str) -> None:
    """Wait for the exec of a ``spawn_started`` child; ``OSError`` (the child reaped) if it failed."""
    failure = os.read(err_r, 32)
    if failure:
        _waitpid(pid)
        errno = int(failure)
        raise OSError(errno, os.strerror(errno), path)


#: the null device's number (1, 3)
_NULL_RDEV = os.makedev(1, 3)


class RuntimeFailed(PalletError):
    """The OCI runtime refused an operation. ``message`` keeps the runtime's own words."""

    category = UNKNOWN

    def __init__(self, verb: str, detail: str) -> None:
        super().__init__(f"OCI runtime {verb} failed: {detail}")
        self.verb = verb
        self.detail = detail


class Runtime(Record):
    name: str
    path: str
    #: the runtime's ``--root``: its state of every container the engine runs with it
    root: str
    #: extra global arguments (``runtimeArgs`` of the config file)
    args: tuple[str, ...] = ()
    #: where per-call ``--log`` files go; ``""`` means ``<root>.log``
    log_dir: str = ""
    #: pallet-runtime of this very installation: each call runs its code in a forked child
    #: (``run_in_child``) instead of starting an interpreter for it
    in_process: bool = False

    # -- the verbs ---------------------------------------------------------------------------

    def create(
        self,
        container_id: str,
        bundle: str,
        pid_file: str,
        *,
        console_socket: str | None = None,
        stdio: tuple[int, int, int] | None = None,
        start: bool = False,
    ) -> int:
        """``create``; returns the init's pid (from ``pid_file``).

        Without a console socket, ``stdio`` (fds for 0, 1, 2) become the
        container's stdio; ``None`` means /dev/null. The runtime's output on
        success goes there too, so runtimes print nothing then. With ``start``
        it is ``run --detach``: created and started in one runtime process.
        """
        verb = "run" if start else "create"
        _warm_up_cgroup_attach()
        args = [verb, "--detach"] if start else [verb]
        args += ["--bundle", bundle, "--pid-file", pid_file]
        if console_socket is not None:
            args += ["--console-socket", console_socket]
        self._call(verb, container_id, [*args, container_id], stdio=stdio)
        try:
            with open(pid_file, "rb") as f:
                return int(f.read())
        except (OSError, ValueError) as e:
            raise RuntimeFailed(verb, f"no pid in {pid_file}: {e}") from None

    def start(self, container_id: str) -> None:
        self._call("start", container_id, ["start", container_id])

    def kill(self, container_id: str, signal: int, *, all_processes: bool = False) -> None:
        args = ["kill", "--all"] if all_processes else ["kill"]
        self._call("kill", container_id, [*args, container_id, str(signal)])

    def delete(self, container_id: str, *, force: bool = False) -> None:
        args = ["delete", "--force"] if force else ["delete"]
        self._call("delete", container_id, [*args, container_id])

    def pause(self, container_id: str) -> None:
        self._call("pause", container_id, ["pause", container_id])

    def resume(self, container_id: str) -> None:
        self._call("resume", container_id, ["resume", container_id])

    def state(self, container_id: str) -> dict[str, object]:
        """The runtime's ``state`` JSON (``status`` created|running|paused|stopped, ``pid``, …)."""
        out = self._call("state", container_id, ["state", container_id], capture=True)
        doc = _json_or_fail("state", out)
        if not isinstance(doc, dict):
            raise RuntimeFailed("state", f"not a state object: {out[:200]!r}")
        return doc

    def ps(self, container_id: str) -> list[int]:
        """Host pids of the container's processes."""
        out = self._call("ps", container_id, ["ps", "--format", "json", container_id], capture=True)
        doc = _json_or_fail("ps", out)
        if not isinstance(doc, list) or not all(isinstance(p, int) for p in doc):
            raise RuntimeFailed("ps", f"not a list of pids: {out[:200]!r}")
        return [int(p) for p in doc]

    def update(self, container_id: str, resources: dict[str, object]) -> None:
        """``update --resources -`` with the LinuxResources JSON on stdin."""
        self._call(
            "update",
            container_id,
            ["update", "--resources", "-", container_id],
            stdin=dumps(resources).encode(),
        )

    def exec_detached(
        self,
        container_id: str,
        process: dict[str, object],
        pid_file: str,
        *,
        console_socket: str | None = None,
        stdio: tuple[int, int, int] | None = None,
    ) -> int:
        """``exec --detach``: start ``process`` (an OCI process object) in the container; its host pid."""
        _warm_up_cgroup_attach()
        args = self._exec_args(container_id, process, console_socket)
        try:
            self._call(
                "exec", container_id, [*args, "--detach", "--pid-file", pid_file, container_id], stdio=stdio
            )
            with open(pid_file, "rb") as f:
                return int(f.read())
        except (OSError, ValueError) as e:
            raise RuntimeFailed("exec", f"no pid in {pid_file}: {e}") from None
        finally:
            _unlink(args[args.index("--process") + 1])

    def exec_wait(
        self, container_id: str, process: dict[str, object], *, stdio: tuple[int, int, int] | None = None
    ) -> int:
        """``exec`` in the foreground: the process's exit status (a runtime error raises ``RuntimeFailed``)."""
        _warm_up_cgroup_attach()
        args = self._exec_args(container_id, process, None)
        try:
            _, status, err = self._run(container_id, [*args, container_id], stdio=stdio)
        finally:
            _unlink(args[args.index("--process") + 1])
        if status != 0 and err:  # the runtime itself failed (it logged why), not the process
            raise _categorise("exec", err)
        return status

    # -- plumbing ----------------------------------------------------------------------------

    def _exec_args(
        self, container_id: str, process: dict[str, object], console_socket: str | None
    ) -> list[str]:
        path = self._temp_path(container_id, "process")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, dumps(process).encode())
        finally:
            os.close(fd)
        args = ["exec", "--process", path]
        if process.get("terminal") is True:
            args.append("--tty")
        if console_socket is not None:
            args += ["--console-socket", console_socket]
        return args

    def _off_the_hosts_null(self, fds: list[int], opened: list[int]) -> list[int]:
        """``fds`` with the host's /dev/null replaced: crun (1.8) hands the stdio of the process it
        starts to the process's user (fchown), and would make the host's /dev/null that user's. In
        its place a null device of our own (``null`` in the runtime's log dir), or for stdin, where
        that cannot be made (a nodev file system, a user namespace), an empty pipe."""
        host = None
        out = list(fds)
        for index, fd in enumerate(fds):
            st = os.fstat(fd)
            if not stat.S_ISCHR(st.st_mode) or st.st_rdev != _NULL_RDEV:
                continue
            if host is None:
                host = os.stat("/dev/null")
            if (st.st_dev, st.st_ino) != (host.st_dev, host.st_ino):
                continue  # already ours
            mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
            own = self._own_null(mode)
            if own is None and index == 0:
                own, writer = os.pipe()
                os.close(writer)  # reads see the end at once, as from /dev/null
            if own is not None:
                opened.append(own)
                out[index] = own
        return out

    def _own_null(self, mode: int) -> int | None:
        path = os.path.join(self.log_dir or f"{self.root}.log", "null")
        for _ in range(2):
            try:
                fd = os.open(path, mode | os.O_CLOEXEC | os.O_NOFOLLOW)
            except FileNotFoundError:
                try:
                    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
                    os.mknod(path, stat.S_IFCHR | 0o666, _NULL_RDEV)
                    os.chmod(path, 0o666)  # past the umask
                except FileExistsError:
                    pass  # another call made it meanwhile
                except OSError:
                    return None  # no mknod here (a user namespace)
                continue
            except OSError:
                return None  # a nodev file system
            st = os.fstat(fd)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == _NULL_RDEV:
                return fd
            os.close(fd)
            return None
        return None

    def _temp_path(self, container_id: str, kind: str) -> str:
        log_dir = self.log_dir or f"{self.root}.log"
        os.makedirs(log_dir, mode=0o700, exist_ok=True)
        _counter[0] += 1
        return os.path.join(log_dir, f"{container_id}.{os.getpid()}.{_counter[0]}.{kind}")

    def global_args(self, log_file: str) -> list[str]:
        return [self.path, *self.args, "--root", self.root, "--log", log_file, "--log-format", "json"]

    def _call(
        self,
        verb: str,
        container_id: str,
        args: Sequence[str],
        *,
        stdio: tuple[int, int, int] | None = None,
        stdin: bytes | None = None,
        capture: bool = False,
    ) -> bytes:
        """Run one runtime command, its stdout if ``capture``; raise ``RuntimeFailed`` (or a category) on failure."""
        out, status, err = self._run(container_id, args, stdio=stdio, stdin=stdin, capture=capture)
        if status != 0:
            raise _categorise(verb, err or f"{self.name} exited with status {status}")
        return out

    def _run(
        self,
        container_id: str,
        args: Sequence[str],
        *,
        stdio: tuple[int, int, int] | None,
        stdin: bytes | None = None,
        capture: bool = False,
    ) -> tuple[bytes, int, str]:
        """(stdout, exit status, error text) of one call; the error text is "" when none was logged."""
        log_file = self._temp_path(container_id, "json")
        # created before the call: a runtime that fails before writing it still leaves a readable log
        os.close(os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        err_file = log_file[: -len(".json")] + ".err"
        argv = [*self.global_args(log_file), *args]
        for_child: list[int] = []  # closed in the parent once the child has them
        in_w = out_r = -1
        try:
            if stdio is None:
                null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
                for_child.append(null)
                fds = [null, null, null]
            else:
                fds = list(stdio)
            if stdin is not None:
                fds[0], in_w = os.pipe()
                for_child.append(fds[0])
            if capture:
                out_r, fds[1] = os.pipe()
                for_child.append(fds[1])
            if stdio is None or capture:
                fds[2] = os.open(err_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
                for_child.append(fds[2])
            if not self.in_process:  # pallet-runtime never changes its stdio's owner
                fds = self._off_the_hosts_null(fds, for_child)
            try:
                pid = run_in_child(argv, fds) if self.in_process else spawn(self.path, argv, fds)
            except OSError as e:
                raise Unavailable(
                    f'OCI runtime "{self.name}" cannot be started: {self.path}: {(e.strerror or str(e)).lower()}'
                ) from None
            while for_child:
                os.close(for_child.pop())
            if in_w >= 0:
                try:  # noqa: SIM105 - contextlib costs ~6 ms on the shim's path
                    os.write(in_w, stdin or b"")
                except BrokenPipeError:
                    pass  # the runtime exited without reading it: its status and log say why
                os.close(in_w)
                in_w = -1
            chunks = []
            if out_r >= 0:
                while chunk := os.read(out_r, 65536):
                    chunks.append(chunk)
            status = os.waitstatus_to_exitcode(_waitpid(pid))
            err = error_from_log(log_file)
            if status != 0 and not err:
                err = _read_text(err_file)
            return b"".join(chunks), status, err
        finally:
            for fd in (*for_child, in_w, out_r):
                if fd >= 0:
                    os.close(fd)
            _unlink(log_file)
            _unlink(err_file)


def _waitpid(pid: int) -> int:
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except InterruptedError:
            continue


def _read_text(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return


def error_from_log(path: str) -> str:
    """The ``msg`` of the last ``"level":"error"`` JSON line of a runtime's ``--log`` file ("" if none)."""
    message = ""
    try:
        with open(path, "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    for line in lines:
        try:
            doc = loads(line)
        except InvalidArgument:
            continue
        if isinstance(doc, dict) and doc.get("level") == "error" and isinstance(doc.get("msg"), str):
            message = str(doc["msg"])
    return message


def _json_or_fail(verb: str, out: bytes) -> object:
    try:
        return loads(out)
    except InvalidArgument:
        raise RuntimeFailed(verb, f"output is not JSON: {out[:200]!r}") from None


def _categorise(verb: str, detail: str) -> PalletError:
    """The error an OCI runtime's failure stands for, read from its words: all an engine gets from it.

    The one place pallet reads a category from a message, as dockerd reads runc's:
    a program that cannot be found (``executable file not found``, ``no such file
    or directory``) or run (``permission denied``) when a container or an exec
    starts is docker's exit 127 or 126.
    """
    lowered = detail.lower()
    if verb in _STARTING_VERBS:
        if "executable file not found" in lowered or "no such file or directory" in lowered:
            return CommandNotFound(f"OCI runtime {verb} failed: {detail}")
        if "permission denied" in lowered:
            return CommandNotExecutable(f"OCI runtime {verb} failed: {detail}")
    if (
        "does not exist" in lowered
        or ("not found" in lowered and "container" in lowered)
        # runsc, once a sandbox has gone: its state file is removed with it
        or ("loading container" in lowered and "no such file or directory" in lowered)
    ):
        return NotFound(f"OCI runtime {verb} failed: {detail}")
    if "not running" in lowered or "not stopped" in lowered or "not paused" in lowered:
        return FailedPrecondition(f"OCI runtime {verb} failed: {detail}")
    return RuntimeFailed(verb, detail)


def precompiled_seccomp(
    runtime: Runtime, profile: Seccomp | None, *, profile_json: object, cache_dir: str
) -> dict[str, str]:
    """Annotations that hand ``runtime`` the container's seccomp filter compiled already.

    crun compiles the profile with libseccomp on every create (~20 ms for
    docker's profile here); given ``run.oci.seccomp_bpf_data`` it loads that
    BPF instead. pallet compiles each profile once, as pallet-runtime does,
    so a container gets the same filter whatever the runtime. The annotation
    itself is cached in ``cache_dir`` under a key of the profile as written
    in config.json (``profile_json``), the kernel and libseccomp: a hit costs
    one small read. Only for crun, and only for a plain filter (no flags, no
    listener: those need the runtime's own setup); otherwise ``{}``.
    """
    if profile is None or os.path.basename(runtime.path) != "crun":
        return {}
    from pallet.linux import seccomp as kernel
    from pallet.linux.atomicfile import write_atomic
    from pallet.oci.digest import Digest

    uname = os.uname()
    key = dumps([profile_json, uname.machine, uname.release, kernel.libseccomp_version()])
    path = os.path.join(cache_dir, f"crun-{Digest.of_bytes(key.encode()).hex}.b64")
    try:
        with open(path, "rb") as f:
            cached = f.read().decode("ascii")
    except (OSError, UnicodeDecodeError):
        cached = ""
    if cached:
        return {_CRUN_SECCOMP_BPF: cached} if cached != "-" else {}
    import binascii

    from pallet.runtime import seccomp

    prepared = seccomp.prepare(profile, cache_dir=cache_dir)
    if prepared is None:
        return {}
    try:
        plain = not prepared.flags and not prepared.has_listener
        text = binascii.b2a_base64(prepared.program, newline=False).decode() if plain else "-"
    finally:
        prepared.close()
    try:  # noqa: SIM105 - contextlib costs ~7 ms on `pallet run`
        write_atomic(path, text.encode())
    except OSError:
        pass  # a cache that cannot be written only costs time
    return {_CRUN_SECCOMP_BPF: text} if plain else {}


def create_args(runtime: Runtime, bundle: str) -> tuple[str, ...]:
    """The runtime's global arguments for creating the container of ``bundle``: its own and,
    for gVisor, the network mode the bundle's namespaces ask for.

    runsc builds its own network stack ("sandbox") from the interfaces of a
    network namespace given by path, and refuses to start without one. The
    engine's ``--network none`` is a new namespace without a path: runsc's
    ``--network=none`` (loopback only) is the same thing; no network namespace
    at all (``--network host``) is runsc's ``--network=host``; a namespace by
    path (a bridge network) is runsc's own stack, or with a runsc too old for
    this kernel its host mode inside that namespace. Arguments the
    registration already has win.
    """
    if os.path.basename(runtime.path) != "runsc" or any(a.startswith("--network") for a in runtime.args):
        return runtime.args
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            doc = loads(f.read())
    except (OSError, InvalidArgument):
        return runtime.args  # the runtime reports the bundle's problem itself
    linux = doc.get("linux") if isinstance(doc, dict) else None
    namespaces = linux.get("namespaces") if isinstance(linux, dict) else None
    network = [n for n in namespaces or () if isinstance(n, dict) and n.get("type") == "network"]
    if not network:
        return (*runtime.args, "--network=host")
    if not network[0].get("path"):
        return (*runtime.args, "--network=none")
    if _runsc_release(runtime.path) < _RUNSC_NETNS_FIXED:
        # older runsc mistakes any namespace for the host's on kernels that show net.core
        # sysctls in every namespace ("cannot run with network enabled in root network
        # namespace"): its host mode, in the container's namespace (it joins the path either way)
        return (*runtime.args, "--network=host")
    return runtime.args


#: the first runsc release whose root-namespace check works on current kernels
_RUNSC_NETNS_FIXED = 20240801
_runsc_releases: dict[str, int] = {}


def _runsc_release(path: str) -> int:
    """The date of a runsc build (``release-20240801.0``, Debian's ``0.0~20221219.0``); 0 if unknown."""
    if path not in _runsc_releases:
        import re
        import subprocess

        try:
            done = subprocess.run(
                [path, "--version"], capture_output=True, text=True, timeout=30, check=False
            )
            out = done.stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        found = re.search(r"(?:release-|~)(\d{8})", out)
        _runsc_releases[path] = int(found.group(1)) if found else 0
    return _runsc_releases[path]


def runtime_root(run_root: str, name: str) -> str:
    """The ``--root`` the engine gives runtime ``name``: ``<run>/runtimes/<name>``."""
    return os.path.join(run_root, "runtimes", name)


def find_executable(name: str) -> str | None:
    if os.path.isabs(name):
        return name if os.access(name, os.X_OK) else None
    import sys

    # the venv's bin first: that is where scripts/install.sh puts pallet-runtime
    dirs = [
        os.path.dirname(sys.executable),
        *os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(":"),
    ]
    for d in dirs:
        candidate = os.path.join(d, name)
        if d and os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


def _builtin_registry() -> dict[str, RuntimeEntry]:
    from pallet.engine.config import RuntimeEntry

    return {name: RuntimeEntry(path=name, args=args) for name, args in BUILTIN_RUNTIMES.items()}


def known_runtimes(config: EngineConfig) -> dict[str, RuntimeEntry]:
    """Every runtime name the engine knows: the built-in ones, then the config file's (which win)."""
    return {**_builtin_registry(), **config.runtimes}


def default_runtime_name(config: EngineConfig) -> str:
    return config.default_runtime or DEFAULT_RUNTIME


def select_runtime(
    name: str | None, *, root: str, run_root: str, config: EngineConfig | None = None
) -> Runtime:
    """The runtime called ``name`` (``--runtime``), or the configured default; checks it can be run.

    An unknown name is an ``InvalidArgument`` that lists the known ones; a known
    runtime whose program is missing is ``Unavailable``, saying what to install.
    """
    if config is None:
        from pallet.engine.config import load_config

        config = load_config(root)
    if not name:
        name = default_runtime_name(config)
    known = known_runtimes(config)
    entry = known.get(name)
    if entry is None:
        where = config.source or os.path.join(root, "config.toml")
        raise InvalidArgument(
            f"unknown or invalid runtime name: {name} (known runtimes: {', '.join(sorted(known))}; "
            f"register others under [runtimes] in {where})"
        )
    found = find_executable(entry.path)
    if found is None:
        raise Unavailable(_not_installed(name, entry.path, root))
    return Runtime(name=name, path=found, root=runtime_root(run_root, name), args=entry.args)


def _not_installed(name: str, program: str, root: str) -> str:
    package = _DEBIAN_PACKAGES.get(os.path.basename(program))
    fix = f"apt-get install {package}" if package else "install it"
    return f'OCI runtime "{name}" is not installed: {program} not found; {fix} or set its path in {root}/config.toml'
