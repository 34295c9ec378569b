"""The shim's work: run one container through the OCI runtime and look after it until it is gone.

One single-threaded ``select.poll`` loop (no asyncio, no threads: an idle shim
costs one sleeping process). It owns:

- the container's stdio: pipes (stdout, stderr, and stdin with ``open_stdin``)
  or the pty master received on the console socket with a tty;
- the json-file log (every byte of output goes there, line by line);
- ``attach.sock``: clients get the live output and may feed stdin and resize;
- the exit: the init is reparented to the shim (a child subreaper) and reaped
  here; ``exit.json`` is written atomically, then attach clients see EOF;
- the restart policy: ``no | always | on-failure[:N] | unless-stopped``, never
  after the engine set ``stopped-by-user``, with docker's back-off (100 ms,
  doubling, reset after 10 s of running, at most 1 min);
- the healthcheck, if the container has one (``probes``): probes while it runs.

Caller contract: the process is already detached and a child subreaper, its
working directory is the container's run dir, and ``SIGCHLD`` wakes the loop
through ``wake_fd`` (see ``main``). Standard library only.
"""

from __future__ import annotations

import os
import select
import time
from errno import EINVAL

from pallet.engine import events as event_log
from pallet.engine.runtimes import spawn
from pallet.engine.shim import attach, exitfile
from pallet.engine.shim.logfile import LineBuffer, LogWriter, rfc3339nano
from pallet.errors import PalletError, SystemError_, Unknown, report_line
from pallet.errors import exit_code_of as error_exit_code
from pallet.oci.jsonfast import dumps, loads

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket
    from collections.abc import Callable

    from pallet.engine.runtimes import Runtime
    from pallet.engine.shim.config import ShimConfig
    from pallet.engine.shim.probes import HealthMonitor

__all__ = ["ATTACH_SOCKET", "Supervisor", "exit_code_of"]

# Files of the run dir, the shim's working directory: relative names, so sockets
# bind whatever the run dir's length (sun_path holds 108 bytes).
ATTACH_SOCKET = "attach.sock"
_CONSOLE_SOCKET = "console.sock"
_PID_FILE = "init.pid"

_POLLIN = select.POLLIN | select.POLLPRI
_ERRORS = select.POLLERR | select.POLLHUP | select.POLLNVAL
#: an attach client that lets this much output pile up is dropped, so the container never waits on it
_CLIENT_BACKLOG = 8 * 1024 * 1024
_TIOCSWINSZ = 0x5414
_BACKOFF_START = 0.1
_BACKOFF_MAX = 60.0
#: a run this long resets the back-off, as dockerd does
_BACKOFF_RESET = 10.0
#: a container's exit code when its program could not be started for a reason that has no code
_EXIT_START_FAILED = 128


def exit_code_of(status: int) -> int:
    """A wait status as docker reports it: the exit code, or 128 + the signal."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class _Client:
    __slots__ = ("frames", "header", "out", "ready", "sock", "stderr", "stdin", "stdout")

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.header = b""
        self.ready = False
        self.out = b""
        self.frames = attach.FrameReader()
        self.stdin = self.stdout = self.stderr = False


class _Relayed(Exception):
    """The report line of a setup child that failed (``_create_apart``), to pass on as it is."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


class Supervisor:
    def __init__(
        self, config: ShimConfig, runtime: Runtime, wake_fd: int, *, create_apart: bool = False
    ) -> None:
        """``create_apart``: the first create runs in a child that exits (``_create_apart``)."""
        self.config = config
        self.create_apart = create_apart
        self.runtime = runtime
        self.wake_fd = wake_fd
        self.log = LogWriter(config.log_path, config.log_max_size, config.log_max_file)
        self.clients: list[_Client] = []
        self.listener: _socket.socket | None = None
        self.outputs: dict[int, int] = {}  # fd -> attach.STDOUT | attach.STDERR
        self.lines: dict[int, LineBuffer] = {}
        self.stdin_fd = -1  # the pipe's write end, or the pty master
        self.stdin_pending = b""
        self.stdin_closing = False
        self.master = -1
        self.init_pid = 0
        self.started = False
        self.started_at = 0.0
        self.restart_count = 0
        self.backoff = _BACKOFF_START
        self.restart_at: float | None = None
        self.finished = False
        self.oom_file = ""
        #: with ``start_on_attach``: when to start without a client's request
        self.gate_until: float | None = None
        self.health = self._health_monitor()

    def _health_monitor(self) -> HealthMonitor | None:
        """The container's healthcheck, if it has one (its modules are loaded only then)."""
        c = self.config
        if not c.health_argv:
            return None
        from pallet.engine.healthcheck import Settings
        from pallet.engine.shim.probes import HealthMonitor

        settings = Settings(
            argv=c.health_argv,
            interval=c.health_interval,
            timeout=c.health_timeout,
            start_period=c.health_start_period,
            start_interval=c.health_start_interval,
            retries=c.health_retries,
        )
        return HealthMonitor(
            settings,
            self.runtime,
            container_id=c.id,
            bundle=c.bundle,
            run_dir=c.run_dir,
            event=self._event,
            close_in_child=self._close_in_child,
        )

    def _close_in_child(self) -> None:
        """In a forked helper: let go of what tells the other side of an EOF (attach clients, stdin)."""
        for client in self.clients:
            client.sock.close()
        if self.stdin_fd >= 0 and self.stdin_fd != self.master:
            os.close(self.stdin_fd)

    # -- the life of the shim -------------------------------------------------------------------

    def run(self, report: Callable[[str], None], *, client_fd: int = -1) -> int:
        """Create (and start) the container, report ``started <pid>`` or ``error <msg>``, then supervise.

        ``client_fd`` (``-1``: none) is a connected attach client whose first
        line is already sent: adopted before the container starts, it misses
        nothing, so the runtime creates and starts in one call.
        """
        try:
            self.listener = _listen(ATTACH_SOCKET)
            rest = self._adopt(client_fd) if client_fd >= 0 else b""
            if self.config.start_on_attach:
                self._create()
            elif self.config.tty and rest and self.clients:
                # the client's terminal size came with its first line: the process starts with it
                self._create()
                self._frames_of(self.clients[0], rest)
                rest = b""
                self._start()
            elif self.create_apart:
                self._create_apart()
            else:
                self._create(start=True)
                self._running()
            if rest and self.clients:
                self._frames_of(self.clients[0], rest)
        except _Relayed as e:
            self._abandon()  # the child deleted what the runtime made; the rest is ours
            report(e.line)
            return 1
        except (PalletError, OSError) as e:
            self._abandon()  # before the report: the caller then finds nothing left behind
            report(f"error {report_line(e)}")
            return 1
        if self.config.start_on_attach:
            # a client killed between launch and attach must not leave a created container
            # and a shim waiting for ever: start it anyway after the gate
            self.gate_until = time.monotonic() + self.config.start_gate_seconds
        report(f"started {self.init_pid}")
        while not self.finished:
            self._turn()
        self._shutdown()
        return 0

    def _turn(self) -> None:
        timeout = None
        health_at = self.health.deadline() if self.health is not None else None
        due = [t for t in (self.restart_at, self.gate_until, health_at) if t is not None]
        if due:
            timeout = max(0, int((min(due) - time.monotonic()) * 1000) + 1)
        handlers = self._handlers()
        poller = select.poll()
        for fd, (mask, _) in handlers.items():
            poller.register(fd, mask)
        for fd, events in poller.poll(timeout):
            entry = handlers.get(fd)
            if entry is not None and not self.finished:
                self._guarded(entry[1], events)
        if self.restart_at is not None and time.monotonic() >= self.restart_at:
            self.restart_at = None
            self._guarded(lambda _: self._restart(), 0)
        if self.gate_until is not None and time.monotonic() >= self.gate_until:
            # the client that should have started it is gone (killed)
            self._guarded(lambda _: self._start_requested(), 0)
        if self.health is not None and not self.finished:
            health = self.health
            self._guarded(lambda _: health.on_time(time.monotonic()), 0)

    def _guarded(self, handler: Callable[[int], None], events: int) -> None:
        """Run one event handler; an OS error (the run dir removed under us, a full disk) is
        logged and the shim carries on: the container must not lose its supervisor over it."""
        try:
            handler(events)
        except OSError as e:
            os.write(2, f"pallet-shim {self.config.id}: {_os_error_text(e)}\n".encode())

    def _handlers(self) -> dict[int, tuple[int, Callable[[int], None]]]:
        handlers: dict[int, tuple[int, Callable[[int], None]]] = {self.wake_fd: (_POLLIN, self._on_wake)}
        if self.listener is not None:
            handlers[self.listener.fileno()] = (_POLLIN, self._on_accept)
        for fd in self.outputs:
            handlers[fd] = (_POLLIN, self._on_output_event(fd))
        if self.health is not None:
            handlers.update(self.health.handlers())
        if self.stdin_pending and self.stdin_fd >= 0:
            mask, handler = handlers.get(self.stdin_fd, (0, self._on_stdin_writable))
            handlers[self.stdin_fd] = (mask | select.POLLOUT, self._both(handler, self._on_stdin_writable))
        for client in self.clients:
            mask = _POLLIN | (select.POLLOUT if client.out else 0)
            handlers[client.sock.fileno()] = (mask, self._on_client_event(client))
        return handlers

    @staticmethod
    def _both(first: Callable[[int], None], second: Callable[[int], None]) -> Callable[[int], None]:
        if first is second:
            return first

        def handle(events: int) -> None:
            if events & (_POLLIN | _ERRORS):
                first(events)
            if events & select.POLLOUT:
                second(events)

        return handle

    # -- container ---------------------------------------------------------------------------

    def _adopt(self, fd: int) -> bytes:
        """Take ``fd`` as an attach client and answer its first line; what it sent after that line."""
        import _socket

        sock = _socket.socket(fileno=fd)
        sock.settimeout(10.0)
        data = b""
        try:
            while b"\n" not in data and len(data) <= 4096:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            data = b""
        sock.setblocking(False)
        client = _Client(sock)
        self.clients.append(client)
        line, newline, rest = data.partition(b"\n")
        if not newline or not self._greet(client, line):
            self._drop(client)
            return b""
        return rest

    def _create(self, *, start: bool = False) -> None:
        """``create`` the container (``start``: ``run --detach``, one runtime call) with its stdio here."""
        c = self.config
        pid_file = os.path.join(c.run_dir, _PID_FILE)  # absolute: crun resolves it against the bundle
        if c.tty:
            console = _listen(_CONSOLE_SOCKET)
            try:
                self.init_pid = self.runtime.create(
                    c.id,
                    c.bundle,
                    pid_file,
                    console_socket=f"/proc/{os.getpid()}/cwd/{_CONSOLE_SOCKET}",
                    start=start,
                )
                self.master = _receive_master(console)
            finally:
                console.close()
                _unlink(_CONSOLE_SOCKET)
            os.set_blocking(self.master, False)
            self.outputs = {self.master: attach.STDOUT}
            self.stdin_fd = self.master if c.open_stdin else -1
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            if c.open_stdin:
                in_r, in_w = os.pipe()
            else:
                in_r, in_w = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC), -1
            try:
                self.init_pid = self.runtime.create(
                    c.id, c.bundle, pid_file, stdio=(in_r, out_w, err_w), start=start
                )
            except PalletError:
                for fd in (out_r, err_r, in_w):
                    if fd >= 0:
                        os.close(fd)
                raise
            finally:
                for fd in (in_r, out_w, err_w):
                    os.close(fd)
            for fd in (out_r, err_r):
                os.set_blocking(fd, False)
            self.outputs = {out_r: attach.STDOUT, err_r: attach.STDERR}
            self.stdin_fd = in_w
            if in_w >= 0:
                os.set_blocking(in_w, False)
        self.lines = {fd: LineBuffer() for fd in self.outputs}

    def _create_apart(self) -> None:
        """``_create(start=True)`` and ``_running`` in a forked child that exits once they are done.

        For a shim forked by the zygote: every page that work writes (the
        runtime's call, its JSON, the files) would be a private copy kept for
        the container's life; in the child they go away with it. The child
        sends back the container's pid, when it started, its OOM counter file
        and its stdio fds (``SCM_RIGHTS``), or its report line if it failed,
        after deleting what the runtime made. The container's init is
        reparented to us, the child subreaper, not to the child.
        """
        import _socket

        ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child, covered by every forked shim's container
            try:
                ours.close()
                theirs.sendmsg(*self._set_up_for_parent())
            finally:
                os._exit(0)
        theirs.close()
        try:
            msg, ancillary, _, _ = ours.recvmsg(4096, _socket.CMSG_SPACE(4 * 3), _socket.MSG_CMSG_CLOEXEC)
        finally:
            ours.close()
            _reap(pid)
        fds: list[int] = []
        for level, kind, data in ancillary:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                fds += [int.from_bytes(data[i : i + 4], "little") for i in range(0, len(data) - 3, 4)]
        line = msg.decode("utf-8", "replace")
        word, _, rest = line.partition(" ")
        fields = rest.split(" ", 2)
        if word != "ok" or len(fields) != 3 or not fds:
            for fd in fds:
                os.close(fd)
            raise _Relayed(line if word == "error" else "error system the shim's setup child died")
        self.init_pid, self.started_at, self.oom_file = int(fields[0]), float(fields[1]), fields[2]
        self.started = True
        if self.health is not None:
            self.health.start()
        if self.config.tty:
            self.master = fds[0]
            self.outputs = {self.master: attach.STDOUT}
            self.stdin_fd = self.master if self.config.open_stdin else -1
        else:
            self.outputs = {fds[0]: attach.STDOUT, fds[1]: attach.STDERR}
            self.stdin_fd = fds[2] if len(fds) > 2 else -1
        self.lines = {fd: LineBuffer() for fd in self.outputs}

    def _set_up_for_parent(self) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
        """In ``_create_apart``'s child: create and start; the message for the parent."""
        import _socket

        try:
            self._create(start=True)
            self._running()
        except (PalletError, OSError) as e:
            if self.init_pid or self._runtime_has_state():
                self._delete_container(force=True)
            return [f"error {report_line(e)}".encode()], []
        fds = [self.master] if self.master >= 0 else [*self.outputs]
        if self.master < 0 and self.stdin_fd >= 0:
            fds.append(self.stdin_fd)
        rights = b"".join(fd.to_bytes(4, "little") for fd in fds)
        line = f"ok {self.init_pid} {self.started_at!r} {self.oom_file}"
        return [line.encode()], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)]

    def _start(self) -> None:
        self.runtime.start(self.config.id)
        self._running()

    def _running(self) -> None:
        """Bookkeeping once the container's process runs: ``init.json`` for the engine."""
        self.started = True
        self.started_at = time.monotonic()
        exitfile.write_init(
            ".",
            exitfile.InitStatus(
                pid=self.init_pid, started_at=rfc3339nano(time.time_ns()), restart_count=self.restart_count
            ),
        )
        self.oom_file = _oom_file(self.init_pid)
        if self.health is not None:
            self.health.start()

    def _on_wake(self, events: int) -> None:
        try:
            os.read(self.wake_fd, 4096)
        except BlockingIOError:
            return
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.init_pid:
                self._exited(exit_code_of(status))
            elif self.health is not None:
                self.health.reaped(pid, status)

    def _exited(self, code: int) -> None:
        """The init is gone: drain its output, record the exit, then restart or finish."""
        self.init_pid = 0
        if self.health is not None:
            self.health.stop()
        oom = _oom_killed(self.oom_file)  # before the runtime's delete takes the cgroup away
        # the runtime's delete (~10 ms) runs while the output is drained and the clients learn
        # of the exit: a `run --rm` removes the rest of the container meanwhile
        deleting = self._delete_in_background()
        for fd in list(self.outputs):
            self._read_output(fd, drain=True)
        restart = self._should_restart(code)
        status = exitfile.ExitStatus(
            exit_code=code,
            finished_at=rfc3339nano(time.time_ns()),
            oom_killed=oom,
            restart_count=self.restart_count,
            restarting=restart,
        )
        try:
            exitfile.write_exit(".", status)
        except OSError as e:  # the run dir is gone (removed with the container): nobody will read it
            os.write(2, f"pallet-shim {self.config.id}: exit {code}: {_os_error_text(e)}\n".encode())
        # the shim is the one witness of every exit, whether or not a pallet command runs now
        if oom:
            self._event("oom")
        self._event("die", exitCode=str(code), execDuration=str(int(time.monotonic() - self.started_at)))
        self._attachment_events(attached=False)
        self._close_stdio()
        self._close_clients()
        _reap(deleting)
        if restart:
            if time.monotonic() - self.started_at >= _BACKOFF_RESET:
                self.backoff = _BACKOFF_START
            self.restart_at = time.monotonic() + self.backoff
            self.backoff = min(self.backoff * 2, _BACKOFF_MAX)
        else:
            self.finished = True

    def _event(self, action: str, **extra: str) -> None:
        """Append a container event with its attributes of the moment (``events.json``, which the engine
        rewrites on a rename), else those the engine handed over at the start (``events.append``)."""
        c = self.config
        if c.events_root:
            current = event_log.read_attachments(".")
            attributes = current.attributes if current is not None else c.event_attributes
            event_log.append(c.events_root, "container", action, c.id, {**attributes, **extra})

    def _attachment_events(self, *, attached: bool) -> None:
        """The networks' ``connect`` and volumes' ``mount`` before a restart, or their ``disconnect``
        and ``unmount`` after an exit, as the engine last wrote them (``events.json``)."""
        c = self.config
        current = event_log.read_attachments(".") if c.events_root else None
        if current is None:
            return
        if attached:
            event_log.record_attached(c.events_root, c.id, current)
        else:
            event_log.record_detached(c.events_root, c.id, current)

    def _should_restart(self, code: int) -> bool:
        c = self.config
        if c.auto_remove or exitfile.stopped_by_user("."):
            return False
        # an ``update --restart`` while we run replaces the policy we were started with
        name, retries = exitfile.read_restart_policy(".") or (c.restart_name, c.restart_max_retries)
        if name in ("always", "unless-stopped"):
            return True
        if name == "on-failure":
            return code != 0 and (retries <= 0 or self.restart_count < retries)
        return False

    def _restart(self) -> None:
        last = exitfile.read_exit(".")
        if exitfile.stopped_by_user("."):
            # stopped during the back-off: the last exit is final after all
            if last is not None:
                exitfile.write_exit(".", last.replace(restarting=False))
            self.finished = True
            return
        self.restart_count += 1
        self._attachment_events(attached=True)
        try:
            from pallet.engine.shim.joins import rejoin

            rejoin(self.config.bundle, self.config.run_dir)  # the joined containers' inits of now
            self._create(start=True)
            self._running()
            self._event("start")
        except PalletError as e:
            os.write(2, f"pallet-shim: restart {self.config.id}: {e.message}\n".encode())
            self._close_stdio()
            if self.init_pid or self._runtime_has_state():
                self._delete_container(force=True)
            self.init_pid = 0
            self._exited_without_start(e)

    def _exited_without_start(self, error: PalletError) -> None:
        # docker's codes for a start that failed, from the error's category: 127 command not
        # found, 126 not executable; 128 for any other failure to start
        self.started_at = time.monotonic()
        self.log.write("stderr", (error.message + "\n").encode())
        self._exited(error_exit_code(error, _EXIT_START_FAILED))

    def _runtime_has_state(self) -> bool:
        """Whether the runtime kept state of the container (a ``run --detach`` that failed half-way)."""
        return os.path.isdir(os.path.join(self.runtime.root, self.config.id))

    def _delete_in_background(self) -> int:
        """``_delete_container`` in a forked child; its pid (0: done here, the fork failed)."""
        try:
            pid = os.fork()
        except OSError:
            self._delete_container()
            return 0
        if pid == 0:  # pragma: no cover - the child, covered by every container's exit
            try:
                # our copies of the clients' sockets would hold back the EOF they wait for
                for client in self.clients:
                    client.sock.close()
                self._delete_container()
            finally:
                os._exit(0)
        return pid

    def _delete_container(self, *, force: bool = False) -> None:
        try:
            self.runtime.delete(self.config.id, force=force)
        except PalletError:
            if force:
                return  # nothing left to delete (the engine removed it)
            self._delete_container(force=True)

    def _close_stdio(self) -> None:
        for fd in self.outputs:
            rest = self.lines[fd].flush()
            if rest:
                self.log.write(self._stream_name(fd), rest)
            if fd != self.master:
                os.close(fd)
        if self.master >= 0:
            os.close(self.master)
        elif self.stdin_fd >= 0:
            os.close(self.stdin_fd)
        self.outputs, self.lines = {}, {}
        self.stdin_fd, self.master, self.stdin_pending, self.stdin_closing = -1, -1, b"", False

    def _abandon(self) -> None:
        """Creation failed: leave nothing behind (the caller reports the error)."""
        if self.init_pid or self._runtime_has_state():
            self._delete_container(force=True)
        self._close_stdio()
        self._shutdown(run_exit_command=False)

    def _shutdown(self, *, run_exit_command: bool = True) -> None:
        if self.health is not None:
            self.health.stop()
        self._close_clients()
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        _unlink(ATTACH_SOCKET)
        _unlink(exitfile.SHIM_PID_FILE)
        _unlink(_PID_FILE)
        self.log.close()
        if run_exit_command and self.config.exit_command:
            _spawn_detached(list(self.config.exit_command))

    # -- output ------------------------------------------------------------------------------

    def _stream_name(self, fd: int) -> str:
        return "stderr" if self.outputs.get(fd) == attach.STDERR else "stdout"

    def _on_output_event(self, fd: int) -> Callable[[int], None]:
        def handle(events: int) -> None:
            self._read_output(fd, drain=False)

        return handle

    def _read_output(self, fd: int, *, drain: bool) -> None:
        stream = self.outputs.get(fd)
        if stream is None:
            return
        name = "stderr" if stream == attach.STDERR else "stdout"
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError:  # EIO: the pty's last slave is closed
                data = b""
            if not data:
                rest = self.lines[fd].flush()
                if rest:
                    self.log.write(name, rest)
                del self.outputs[fd], self.lines[fd]
                if fd != self.master:  # the master is closed at the exit: it is also the stdin target
                    os.close(fd)
                return
            for line in self.lines[fd].feed(data):
                self.log.write(name, line)
            self._broadcast(stream, data)
            if not drain:
                return

    def _broadcast(self, stream: int, data: bytes) -> None:
        framed = data if self.config.tty else attach.output_frame(stream, data)
        for client in list(self.clients):
            if client.ready and (client.stderr if stream == attach.STDERR else client.stdout):
                client.out += framed
                self._flush_client(client)

    # -- stdin -------------------------------------------------------------------------------

    def _on_stdin_writable(self, events: int) -> None:
        if events & _ERRORS and not events & select.POLLOUT:
            self.stdin_pending = b""
            return
        try:
            written = os.write(self.stdin_fd, self.stdin_pending)
        except BlockingIOError:
            return
        except OSError:  # EPIPE: nobody reads the container's stdin any more
            self.stdin_pending = b""
            written = 0
        self.stdin_pending = self.stdin_pending[written:]
        if not self.stdin_pending and self.stdin_closing:
            self._close_stdin()

    def _close_stdin(self) -> None:
        if self.stdin_fd >= 0 and self.stdin_fd != self.master:
            os.close(self.stdin_fd)
            self.stdin_fd = -1
        self.stdin_closing = False

    # -- attach ------------------------------------------------------------------------------

    def _on_accept(self, events: int) -> None:
        assert self.listener is not None
        import _socket

        try:
            fd, _ = self.listener._accept()  # type: ignore[attr-defined]  # _socket's accept
        except (BlockingIOError, InterruptedError):
            return
        client = _Client(_socket.socket(fileno=fd))
        client.sock.setblocking(False)
        self.clients.append(client)

    def _on_client_event(self, client: _Client) -> Callable[[int], None]:
        def handle(events: int) -> None:
            if events & select.POLLOUT:
                self._flush_client(client)
            if events & (_POLLIN | _ERRORS) and client in self.clients:
                self._read_client(client)

        return handle

    def _read_client(self, client: _Client) -> None:
        try:
            data = client.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        if not client.ready:
            client.header += data
            if b"\n" not in client.header:
                if len(client.header) > 4096:
                    self._drop(client)
                return
            line, _, data = client.header.partition(b"\n")
            if not self._greet(client, line):
                return
        self._frames_of(client, data)

    def _frames_of(self, client: _Client, data: bytes) -> None:
        for kind, payload in client.frames.feed(data):
            self._on_frame(client, kind, payload)

    def _greet(self, client: _Client, line: bytes) -> bool:
        try:
            doc = loads(line)
        except PalletError:
            doc = None
        if not isinstance(doc, dict):
            self._drop(client)
            return False
        client.stdin = doc.get("stdin") is True
        client.stdout = doc.get("stdout", True) is True
        client.stderr = doc.get("stderr", True) is True
        client.ready = True
        client.out += dumps({"tty": self.config.tty}).encode() + b"\n"
        self._flush_client(client)
        if doc.get("start") is True:
            self._start_requested()
        return client in self.clients

    def _start_requested(self) -> None:
        self.gate_until = None
        if self.started or not self.init_pid:
            return
        try:
            self._start()
        except PalletError as e:
            os.write(2, f"pallet-shim: start {self.config.id}: {e.message}\n".encode())
            self._exited_without_start(e)

    def _on_frame(self, client: _Client, kind: int, payload: bytes) -> None:
        if kind == attach.FRAME_RESIZE and len(payload) == 4 and self.master >= 0:
            import fcntl

            rows, cols = int.from_bytes(payload[:2], "big"), int.from_bytes(payload[2:], "big")
            winsize = rows.to_bytes(2, "little") + cols.to_bytes(2, "little") + bytes(4)
            try:  # noqa: SIM105 - contextlib costs ~6 ms on the shim's path
                fcntl.ioctl(self.master, _TIOCSWINSZ, winsize)
            except OSError:
                pass  # the terminal is gone with the container; the next exit event says so
        elif not client.stdin or self.stdin_fd < 0:
            return
        elif kind == attach.FRAME_STDIN:
            self.stdin_pending += payload
            self._on_stdin_writable(select.POLLOUT)
        elif kind == attach.FRAME_CLOSE_STDIN and self.master < 0:
            self.stdin_closing = True
            if not self.stdin_pending:
                self._close_stdin()

    def _flush_client(self, client: _Client) -> None:
        try:
            sent = client.sock.send(client.out)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._drop(client)
            return
        client.out = client.out[sent:]
        if len(client.out) > _CLIENT_BACKLOG:
            self._drop(client)

    def _drop(self, client: _Client) -> None:
        if client in self.clients:
            self.clients.remove(client)
        client.sock.close()

    def _close_clients(self) -> None:
        """EOF to every client, after what is left of the output (bounded wait per client).

        What a client sent and we did not read yet (a last resize) is read
        first: a close with unread input reaches the client as a reset.
        """
        for client in self.clients:
            _drain(client.sock)
            if client.out:
                try:
                    client.sock.settimeout(2.0)
                    client.sock.sendall(client.out)
                except OSError:
                    pass
            client.sock.close()
        self.clients = []


def _listen(name: str) -> _socket.socket:
    import _socket

    _unlink(name)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.bind(name)
        sock.listen(64)
    except OSError as e:
        sock.close()
        raise SystemError_(f"listen on {os.path.abspath(name)}", e.errno or EINVAL) from None
    sock.setblocking(False)
    return sock


def _reap(pid: int) -> None:
    """Wait for our child ``pid`` (0: none)."""
    if pid <= 0:
        return
    while True:
        try:
            os.waitpid(pid, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return
        return


def _drain(sock: _socket.socket) -> None:
    """Read and drop what is waiting on ``sock`` (non-blocking)."""
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
    except OSError:
        return


def _receive_master(console: _socket.socket) -> int:
    """The pty master the runtime sent on the console socket during ``create``."""
    import _socket

    poller = select.poll()
    poller.register(console.fileno(), select.POLLIN)
    if not poller.poll(10_000):
        raise Unknown("the OCI runtime sent no terminal on the console socket")
    conn = _socket.socket(fileno=console._accept()[0])  # type: ignore[attr-defined]
    conn.settimeout(10.0)
    try:
        _, ancillary, _, _ = conn.recvmsg(4096, _socket.CMSG_SPACE(4))
    except OSError as e:
        raise SystemError_("receive the terminal from the OCI runtime", e.errno or EINVAL) from None
    finally:
        conn.close()
    for level, kind, data in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS and len(data) >= 4:
            fd = int.from_bytes(data[:4], "little")
            os.set_inheritable(fd, False)
            return fd
    raise Unknown("the OCI runtime's console socket message carried no file descriptor")


def _oom_file(pid: int) -> str:
    """The file whose ``oom_kill`` counter tells if the container's memory cgroup killed something."""
    try:
        with open(f"/proc/{pid}/cgroup", "rb") as f:
            lines = f.read().decode().splitlines()
    except OSError:
        return ""
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return f"/sys/fs/cgroup/memory{path}/memory.oom_control"
    for line in lines:
        if line.startswith("0::"):
            return f"/sys/fs/cgroup{line[3:]}/memory.events"
    return ""


def _oom_killed(path: str) -> bool:
    if not path:
        return False
    try:
        with open(path, "rb") as f:
            for line in f.read().decode().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return value.strip() not in ("", "0")
    except OSError:
        return False
    return False


def _spawn_detached(argv: list[str]) -> None:
    """Start ``argv`` in its own session with stdio on /dev/null; nobody waits for it."""
    null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    try:
        from pallet.engine.runtimes import find_executable

        spawn(find_executable(argv[0]) or argv[0], argv, (null, null, null), setsid=True)
    except OSError as e:
        os.write(2, f"pallet-shim: exit command {argv[0]}: {e}\n".encode())
    finally:
        os.close(null)


def _os_error_text(e: OSError) -> str:
    where = f"{e.filename}: " if e.filename else ""
    return where + (e.strerror or str(e)).lower()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
