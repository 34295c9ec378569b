"""``launch``: how the engine starts a container's shim and learns whether the container started.

Contract: ``launch(shim_json)`` returns once the shim reports, with the shim's
and the container's pids, or raises ``PalletError`` with the runtime's
message; then the shim has removed what it made (runtime state, sockets) and
exited. ``prelaunch`` + ``PendingShim.go`` is the same in two steps, so the
shim's interpreter starts while the caller still creates the container. The
shim runs in its own session with stdio on /dev/null and stderr appended to
``<run dir>/shim.log``; it is not the caller's child, so the caller may exit or
be SIGKILLed at any point without touching the container.
"""

from __future__ import annotations

import os
import sys

from pallet.engine.runtimes import exec_failed, spawn_started
from pallet.engine.shim.config import load
from pallet.errors import PalletError, Unavailable
from pallet.oci.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket

    from pallet.engine.shim.attach import AttachConnection
    from pallet.engine.shim.config import ShimConfig

__all__ = ["SHIM_LOG", "PendingShim", "ShimStarted", "launch", "prelaunch", "shim_command"]

SHIM_LOG = "shim.log"


class ShimStarted(Record):
    pid: int
    container_pid: int


def shim_command() -> list[str]:
    """The command that runs ``pallet-shim``: its fast launcher next to the interpreter, else the module."""
    launcher = os.path.join(os.path.dirname(sys.executable), "pallet-shim")
    if os.access(launcher, os.X_OK):
        return [launcher]
    # no installed launcher (a plain pip install): an isolated interpreter with pallet's own path
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    code = (
        f"import sys; sys.path.insert(0, {top!r}); from pallet.engine.shim.main import main; sys.exit(main())"
    )
    return [sys.executable, "-I", "-S", "-c", code]


def launch(config_path: str, *, timeout: float = 120.0, run_root: str | None = None) -> ShimStarted:
    """Start the shim described by ``config_path`` (a ``shim.json``) and wait for its report."""
    return prelaunch(config_path, run_root=run_root).go(timeout=timeout)


def prelaunch(
    config_path: str, *, client: bool = False, preload_runtime: bool = False, run_root: str | None = None
) -> PendingShim:
    """Start the shim of ``config_path`` (a ``shim.json`` not written yet); ``PendingShim.go`` lets it read it.

    With ``run_root`` (the engine's run dir) the shim is forked by that run
    dir's zygote (``zygote``), started in the background if there is none;
    without, or when the zygote does not answer, it is a new interpreter.
    ``PALLET_SHIM_ZYGOTE=0`` in the environment turns the zygote off.

    The shim's interpreter starts and imports while the caller creates the
    container (a ``pallet run`` saves the ~25 ms of a Python start that way).
    Until ``go`` its stderr is the caller's, so a shim that cannot start says
    why; then it moves to ``<run dir>/shim.log``. With ``client`` the caller
    keeps one end of a socket pair that the shim serves as an attach client
    from the start (``PendingShim.attach``): no connect, no output missed.
    ``preload_runtime``: the container will likely run under pallet-runtime,
    whose code the shim then loads while it waits (~11 ms off each runtime
    call, ~1 MiB more shim for the container's life).
    """
    import _socket

    if run_root is not None and os.environ.get("PALLET_SHIM_ZYGOTE") != "0":
        forked = _forked(config_path, run_root, client=client, preload_runtime=preload_runtime)
        if forked is not None:
            return forked
    argv = [*shim_command(), "--report-fd", "3", "--wait-fd", "4"]
    report_r, report_w = os.pipe()
    wait_r, wait_w = os.pipe()
    ours = theirs = None
    if client:
        ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        argv += ["--client-fd", "5"]
    if preload_runtime:
        argv.append("--preload-runtime")
    argv.append(config_path)
    null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    fds = [null, null, 2, report_w, wait_r]
    if theirs is not None:
        fds.append(theirs.fileno())
    try:
        # the exec is checked in ``go``: the interpreter's start overlaps the caller's work
        first, exec_r = spawn_started(argv[0], argv, fds, setsid=True)
    except OSError as e:
        for fd in (report_r, wait_w):
            os.close(fd)
        if ours is not None:
            ours.close()
        raise Unavailable(f"cannot start pallet-shim ({argv[0]}): {(e.strerror or str(e)).lower()}") from None
    finally:
        for fd in (report_w, wait_r, null):
            os.close(fd)
        if theirs is not None:
            theirs.close()
    return PendingShim(
        config_path=config_path,
        first_pid=first,
        exec_fd=exec_r,
        wait_fd=wait_w,
        report_fd=report_r,
        client=ours,
        program=argv[0],
    )


def _forked(config_path: str, run_root: str, *, client: bool, preload_runtime: bool) -> PendingShim | None:
    """A shim forked by ``run_root``'s zygote, or None (no zygote: one is started for the next run)."""
    import _socket

    from pallet.engine.shim import zygote

    try:
        where = zygote.address(run_root)
    except OSError:
        return None  # no run dir yet: the engine's first command makes it, a later one the zygote
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(where)
        if zygote.peer_uid(sock) != os.geteuid():
            return None  # not ours: never hand our fds to it
    except OSError:
        sock.close()
        zygote.start(run_root, shim_command())
        return None
    report_r, report_w = os.pipe()
    wait_r, wait_w = os.pipe()
    ours = theirs = None
    fds = [2, report_w, wait_r]
    if client:
        ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        fds.append(theirs.fileno())
    umask = os.umask(0o022)
    os.umask(umask)
    request = b"\0".join(
        [b"fork", str(umask).encode(), b"1" if preload_runtime else b"0", os.fsencode(config_path)]
    )
    reply = b""
    try:
        sock.settimeout(3.0)  # a zygote that cannot answer by then (stopped?) is passed over
        sock.sendmsg(
            [request],
            [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, b"".join(fd.to_bytes(4, "little") for fd in fds))],
        )
        reply = sock.recv(64)
    except OSError:
        reply = b""
    finally:
        sock.close()
        for fd in (report_w, wait_r):
            os.close(fd)
        if theirs is not None:
            theirs.close()
    if reply == b"ok":
        return PendingShim(
            config_path=config_path,
            first_pid=0,
            exec_fd=-1,
            wait_fd=wait_w,
            report_fd=report_r,
            client=ours,
            program="pallet-shim (forked)",
        )
    for fd in (report_r, wait_w):
        os.close(fd)
    if ours is not None:
        ours.close()
    if reply == b"stale":  # it has left: a new one loads the code as it is now
        zygote.start(run_root, shim_command())
    return None


class PendingShim:
    """A shim started by ``prelaunch``, waiting for its config: ``go`` once, or ``cancel``.

    Caller contract: exactly one of ``go`` and ``cancel`` is called (``cancel``
    after ``go`` is harmless). If the caller dies first, the shim reads EOF
    and exits without a trace.
    """

    def __init__(
        self,
        *,
        config_path: str,
        first_pid: int,
        exec_fd: int,
        wait_fd: int,
        report_fd: int,
        client: _socket.socket | None,
        program: str,
    ) -> None:
        self.config_path = config_path
        self._first = first_pid
        self._exec_fd = exec_fd
        self._program = program
        self._wait_fd = wait_fd
        self._report_fd = report_fd
        self._client = client
        self._greeted = False
        #: ``go`` was called: the shim owns the container now (whatever it reported)
        self.started = False
        self._config: ShimConfig | None = None

    def go(self, *, timeout: float = 120.0) -> ShimStarted:
        """Let the shim read its config (written by now); its pids once it started the container, else its error."""
        self.release()
        return self.result(timeout=timeout)

    def release(self) -> None:
        """The first half of ``go``: the shim reads its config and starts the container meanwhile."""
        config = load(self.config_path)
        self._config = config
        os.makedirs(config.run_dir, mode=0o700, exist_ok=True)
        self._check_exec()
        self.started = True
        if self._client is not None and not self._greeted:
            self.greet()
        try:
            os.write(self._wait_fd, b"go\n")
        except BrokenPipeError:
            pass  # the shim died before reading: it reports nothing, said in ``result``
        finally:
            os.close(self._wait_fd)
            self._wait_fd = -1
        self._reap_first()

    def result(self, *, timeout: float = 120.0) -> ShimStarted:
        """The second half of ``go``: the shim's pids once it started the container, else its error."""
        config = self._config
        if config is None:
            raise Unavailable("pallet-shim was not released (PendingShim.release)")
        try:
            line = _read_report(self._report_fd, timeout, config.id, config.run_dir)
        finally:
            os.close(self._report_fd)
            self._report_fd = -1
        word, _, rest = line.partition(" ")
        if word == "started":
            fields = rest.split()
            if len(fields) == 2 and all(f.isdigit() for f in fields):
                return ShimStarted(pid=int(fields[1]), container_pid=int(fields[0]))
        self.close_client()
        if word == "error" and rest:
            raise _error_from_report(rest)
        raise Unavailable(
            f"pallet-shim for {config.id} exited without reporting; see {config.run_dir}/{SHIM_LOG}"
        )

    @property
    def attached(self) -> bool:
        """Whether a client streams the container (prelaunched with one, not yet handed over)."""
        return self._client is not None

    def greet(self, *, stdin: bool = False, size: tuple[int, int] | None = None) -> None:
        """Say what the attach client wants (before ``go``: the shim reads it before it starts).

        ``size`` (rows, columns) is the client's terminal: a container with a
        tty starts with that size.
        """
        from pallet.engine.shim import attach

        if self._client is None or self._greeted:
            return
        attach.greet(self._client, stdin=stdin)
        if size is not None:
            rows, cols = size
            self._client.sendall(
                attach.frame(attach.FRAME_RESIZE, rows.to_bytes(2, "big") + cols.to_bytes(2, "big"))
            )
        self._greeted = True

    def attach(self) -> AttachConnection:
        """The attach connection, after a successful ``go`` of a shim prelaunched with ``client``."""
        from pallet.engine.shim import attach

        if self._client is None:
            raise Unavailable("this shim was started without an attach client")
        sock, self._client = self._client, None
        try:
            return attach.answer(sock, "pallet-shim")
        except (OSError, Unavailable):
            sock.close()
            raise

    def close_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _check_exec(self) -> None:
        """``Unavailable`` if the shim's program could not be executed (then nothing runs)."""
        fd, self._exec_fd = self._exec_fd, -1
        if fd < 0:
            return
        try:
            exec_failed(self._first, fd, self._program)
        except OSError as e:
            self._first = 0  # reaped by exec_failed
            self.cancel()
            raise Unavailable(
                f"cannot start pallet-shim ({self._program}): {(e.strerror or str(e)).lower()}"
            ) from None
        finally:
            os.close(fd)

    def cancel(self) -> None:
        """The container will not be started: the shim exits (idempotent)."""
        for name in ("_exec_fd", "_wait_fd", "_report_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)
        self.close_client()
        self._reap_first()

    def _reap_first(self) -> None:
        if self._first > 0:
            try:  # noqa: SIM105 - contextlib costs ~7 ms on `pallet run`
                os.waitpid(self._first, 0)  # it exits as soon as it has forked the real shim
            except ChildProcessError:
                pass
            self._first = 0


def _read_report(fd: int, timeout: float, container_id: str, run_dir: str) -> str:
    """The shim's one report line ("" if it exited without one)."""
    import select

    data = b""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while b"\n" not in data:
        if not poller.poll(int(timeout * 1000)):
            raise Unavailable(
                f"pallet-shim for {container_id} did not report within {timeout:.0f}s; see {run_dir}/{SHIM_LOG}"
            )
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace").strip()


def _error_from_report(report: str) -> PalletError:
    """The shim's ``<category> <message>`` (``errors.report_line``) as an error of that category."""
    from pallet.errors import from_category

    category, _, message = report.partition(" ")
    return from_category(category, message)
