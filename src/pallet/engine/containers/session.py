"""Attached sessions: a front end's streams joined to a container's until it exits.

What ``docker run`` (in the foreground), ``start -a`` and ``attach`` do once
the container is there, in one place for every front end:

1. connect to the container's shim (``shim/attach.py``), or take the
   connection a ``prelaunch``-ed shim holds for its first client;
2. with ``sig_proxy`` (not with a tty, where ctrl-c is input), send the
   signals this process gets to the container (``proxy_signals``);
3. copy the container's output to the front end's ``Streams`` and its stdin
   to the container, until the container exits (or the user detaches with
   ctrl-p ctrl-q: the container runs on);
4. read the exit status from the shim's ``exit.json``, which the shim writes
   before it closes its clients; with ``remove`` (a foreground ``--rm``),
   remove the container after that.

``RunSession`` is ``pallet run``'s sequence around it: the shim is prelaunched
first (its interpreter loads while the caller parses options and the engine
creates the container), then create, start, and attach or hand back the id.

What only a front end knows comes in as values: ``Streams`` (where output
goes, its stdin, its terminal's size) and a ``warn`` callback.
"""

from __future__ import annotations

from pallet.errors import FailedPrecondition, NotFound, PalletError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from pallet.engine.containers.lifecycle import Engine
    from pallet.engine.containers.records import ContainerRecord
    from pallet.engine.shim.attach import AttachConnection
    from pallet.engine.shim.launch import PendingShim
    from pallet.engine.spec.options import RunOptions

__all__ = ["RunResult", "RunSession", "Streams", "attach", "start_attached"]


class Streams:
    """A front end's side of a session.

    ``stdin_fd``/``stdout_fd``/``stderr_fd`` are file descriptors when the
    front end has them (a terminal, pipes): then output is copied fd to fd
    (``shim/attach.pump``, which also handles a tty's raw mode, resizes and
    the detach keys). Without (in-process callers, tests), output goes to
    ``write_stdout``/``write_stderr``. ``flush`` runs before fds are written
    directly; ``terminal_size`` is (rows, columns) of the front end's
    terminal, or None.
    """

    __slots__ = (
        "flush",
        "stderr_fd",
        "stdin_fd",
        "stdout_fd",
        "terminal_size",
        "write_stderr",
        "write_stdout",
    )

    def __init__(
        self,
        *,
        write_stdout: Callable[[bytes], None],
        write_stderr: Callable[[bytes], None],
        stdin_fd: int | None = None,
        stdout_fd: int | None = None,
        stderr_fd: int | None = None,
        flush: Callable[[], None] = lambda: None,
        terminal_size: Callable[[], tuple[int, int] | None] = lambda: None,
    ) -> None:
        self.write_stdout = write_stdout
        self.write_stderr = write_stderr
        self.stdin_fd = stdin_fd
        self.stdout_fd = stdout_fd
        self.stderr_fd = stderr_fd
        self.flush = flush
        self.terminal_size = terminal_size


class RunResult:
    """What ``RunSession.run`` did: the container, and its exit status (None: detached, it runs on)."""

    __slots__ = ("container", "exit_code")

    def __init__(self, container: ContainerRecord, exit_code: int | None) -> None:
        self.container = container
        self.exit_code = exit_code


#: what docker's CLI forwards to the container: SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM
_PROXIED_SIGNALS = (1, 2, 3, 10, 12, 15)


def proxy_signals(engine: Engine, container_id: str) -> Callable[[], None]:
    """Send the signals this process receives to the container (``kill -s``); returns what undoes that.

    A handler runs between two of the streaming loop's waits, so the kill is an
    ordinary engine call. A container that is gone meanwhile is no error.
    Only a process's main thread may do this (a CLI's, never a server's).
    """
    if TYPE_CHECKING:
        import signal as _signal
    else:
        import _signal

    def forward(signum: int, frame: object) -> None:
        try:  # noqa: SIM105 - contextlib costs ~7 ms on `pallet run`
            engine.kill(container_id, str(signum))
        except PalletError:
            pass  # it exited meanwhile: the stream ends by itself

    previous: dict[int, Any] = {}
    try:
        for signum in _PROXIED_SIGNALS:
            previous[signum] = _signal.signal(signum, forward)
    except ValueError:
        # signals reach the main thread only: a worker (the API's build running its RUN steps)
        # has none to forward, and Python refuses handlers there (asked this way, not through
        # threading, which the run path does not import)
        for signum, handler in previous.items():
            _signal.signal(signum, handler)
        return lambda: None

    def restore() -> None:
        for signum, handler in previous.items():
            _signal.signal(signum, handler)

    return restore


def _remove_quietly(engine: Engine, container_id: str) -> None:
    """``rm -f -v`` of a ``--rm`` container; one removed meanwhile (by reconcile) is fine."""
    try:  # noqa: SIM105 - contextlib costs ~7 ms on `pallet run`
        engine.remove(container_id, force=True, volumes=True)
    except NotFound:
        pass


def _stream(conn: AttachConnection, streams: Streams, *, interactive: bool) -> bool:
    """Copy the container's output to ``streams`` (and their stdin to it) until it exits.

    True when the user detached (docker's ctrl-p ctrl-q) instead. The shim
    closes the connection when the container is gone; if our last stdin or
    resize frame was still unread, that close arrives as a reset, which means
    the same.
    """
    try:
        return _copy_streams(conn, streams, interactive=interactive)
    except ConnectionResetError:
        return False


def _copy_streams(conn: AttachConnection, streams: Streams, *, interactive: bool) -> bool:
    from pallet.engine.shim import attach as shim_attach

    stdin_fd = streams.stdin_fd if interactive else None
    out_fd, err_fd = streams.stdout_fd, streams.stderr_fd
    if out_fd is not None and err_fd is not None and (stdin_fd is not None or not interactive):
        streams.flush()
        return shim_attach.pump(conn, stdin_fd=stdin_fd, stdout_fd=out_fd, stderr_fd=err_fd)
    while (pieces := conn.read()) is not None:
        for stream, data in pieces:
            if stream == shim_attach.STDERR:
                streams.write_stderr(data)
            else:
                streams.write_stdout(data)
    return False


def follow(
    engine: Engine,
    record: ContainerRecord,
    conn: AttachConnection,
    streams: Streams,
    *,
    interactive: bool,
    remove: bool,
    sig_proxy: bool = True,
) -> int:
    """Stream the container's output (and ``streams``' stdin) until it exits; its exit status (0: detached).

    With ``sig_proxy`` (docker's ``--sig-proxy``, on by default) the signals
    this process gets (SIGINT, SIGTERM, …) go to the container's process
    instead of ending the command; not with a tty, where ctrl-c is input.
    """
    from pallet.engine.shim import exitfile

    restore = proxy_signals(engine, record.id) if sig_proxy and not conn.tty else None
    try:
        detached = _stream(conn, streams, interactive=interactive)
    finally:
        conn.close()
        if restore is not None:
            restore()
    if detached:  # ctrl-p ctrl-q: the container runs on (an exited --rm one is reconciled later)
        return 0
    # the shim writes exit.json before it closes its clients: no need to poll for the state
    last = exitfile.read_exit(engine.layout.run_dir(record.id))
    code = last.exit_code if last is not None else engine.wait(record.id)
    if remove:
        _remove_quietly(engine, record.id)
    return code


def attach(engine: Engine, ref: str, streams: Streams, *, stdin: bool = True, sig_proxy: bool = True) -> int:
    """``attach``: join a running container's streams until it exits; its exit status (0: detached).

    ``stdin`` is sent only to a container made with ``-i`` (docker's ``OpenStdin``).
    """
    from pallet.engine.shim import attach as shim_attach

    record = engine.get(ref)
    if record.state not in ("running", "paused", "restarting"):
        raise FailedPrecondition("You cannot attach to a stopped container, start it first")
    interactive = stdin and bool(engine.document(record).get("Config", {}).get("OpenStdin"))
    conn = shim_attach.connect(engine.layout.attach_socket(record.id), stdin=interactive)
    restore = proxy_signals(engine, record.id) if sig_proxy and not conn.tty else None
    try:
        detached = _stream(conn, streams, interactive=interactive)
    finally:
        conn.close()
        if restore is not None:
            restore()
    return 0 if detached else engine.wait(record.id)


def start_attached(engine: Engine, ref: str, streams: Streams, *, interactive: bool) -> int:
    """``start -a``: start ``ref`` with this process as its first attach client; its exit status."""
    from pallet.engine.shim import attach as shim_attach
    from pallet.engine.shim.launch import prelaunch

    record = engine.containers.get(ref)
    shim = prelaunch(engine.layout.shim_config(record.id), client=True, run_root=engine.layout.run_root)
    try:
        shim.greet(stdin=interactive, size=streams.terminal_size() if interactive else None)
        engine.start(record.id, exit_command=True, shim=shim)
        if shim.started:
            conn = shim.attach()
        else:  # it ran already: attach to its shim
            conn = shim_attach.connect(engine.layout.attach_socket(record.id), stdin=interactive)
        return follow(engine, record, conn, streams, interactive=interactive, remove=False)
    finally:
        shim.cancel()


class RunSession:
    """``pallet run``, in two steps: the shim starts now (``__init__``), the container in ``run``.

    Make it first thing, so that the shim's interpreter starts and loads while
    the caller parses its options and the engine creates the container; a
    foreground one (not ``detach``) also loads pallet-runtime's code when that
    is the runtime, a detached one stays small for its container's life.
    ``close`` (or the ``with`` block's end) cancels a shim that was not used.
    """

    def __init__(
        self,
        root: str,
        run_root: str,
        *,
        detach: bool,
        runtime: str | None = None,
        leave_open: bool = False,
    ) -> None:
        from pallet.engine.containers import names
        from pallet.engine.layout import Layout
        from pallet.engine.shim.launch import prelaunch

        self.root, self.run_root = root, run_root
        self.detach = detach
        self._leave_open = leave_open
        self.container_id = names.new_id()
        layout = Layout(root, run_root)
        self._shim: PendingShim = prelaunch(
            layout.shim_config(self.container_id),
            client=not detach,
            preload_runtime=not detach and runtime in (None, "", "pallet-runtime"),
            run_root=layout.run_root,
        )

    def close(self) -> None:
        self._shim.cancel()

    def __enter__(self) -> RunSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self,
        image: str,
        options: RunOptions,
        streams: Streams,
        *,
        interactive: bool = False,
        remove: bool = False,
        sig_proxy: bool = True,
        warn: Callable[[str], None] | None = None,
    ) -> RunResult:
        """Create the container from ``image`` and start it; attached, stream it until it exits.

        A foreground ``remove`` (``--rm``) container is removed here, after its
        exit status is read; a detached one by its shim's exit command. A
        ``remove`` container created but not started is removed before the
        error is raised.
        """
        from pallet.engine.containers.lifecycle import Engine

        shim = self._shim
        if not self.detach:  # our first line to the shim, read before the container starts
            shim.greet(stdin=interactive, size=streams.terminal_size() if interactive else None)
        with Engine.open(self.root, self.run_root, leave_open=self._leave_open) as engine:
            try:
                record = create(
                    engine,
                    image,
                    options,
                    warn=warn,
                    container_id=self.container_id,
                    start_with=shim,
                    exit_command=self.detach or not remove,
                )
            except PalletError:
                if shim.started and remove:  # created, but it did not start
                    _remove_quietly(engine, self.container_id)
                raise
            if self.detach:
                return RunResult(record, None)
            code = follow(
                engine,
                record,
                shim.attach(),
                streams,
                interactive=interactive,
                remove=remove,
                sig_proxy=sig_proxy,
            )
            return RunResult(record, code)


def create(
    engine: Engine,
    image: str,
    options: RunOptions,
    *,
    warn: Callable[[str], None] | None = None,
    container_id: str | None = None,
    start_with: PendingShim | None = None,
    exit_command: bool = True,
) -> ContainerRecord:
    """``Engine.create``, after the foot-gun warnings of ``options`` (``spec/security.py``) went to ``warn``."""
    from pallet.engine.spec.security import warnings_for

    if warn is not None:
        if options.namespaces.cgroupns == "host":
            from pallet.engine.spec.generate import host_facts

            private = host_facts().cgroup_v2  # docker's default: private on cgroup v2 only
        else:
            private = True
        for warning in warnings_for(
            options,
            options.mounts,
            engine_paths=(engine.layout.root, engine.layout.run_root),
            private_cgroupns=private,
        ):
            warn(warning)
    return engine.create(
        image, options, warn=warn, container_id=container_id, start_with=start_with, exit_command=exit_command
    )
