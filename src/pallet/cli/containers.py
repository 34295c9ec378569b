"""The container verbs of ``pallet``: run, create, start, stop, restart, kill, rm, ps, logs, wait,
inspect, attach, exec, pause, unpause, rename, container prune.

Each verb parses docker's flags and calls the engine (``pallet.engine``);
output and exit codes follow docker's CLI: ``run`` exits with the container's
status, or 125 when pallet itself fails, 126/127 when the command cannot be
invoked / found.
"""

from __future__ import annotations

import os
import time

from pallet.cli.exits import EXIT_ENGINE, UsageError
from pallet.cli.flags import REMAINDER
from pallet.errors import FailedPrecondition, InvalidArgument, NotFound, PalletError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import Any, BinaryIO

    from pallet.cli.context import Context
    from pallet.cli.flags import FlagParser, Namespace
    from pallet.engine.containers.execs import ExecRequest
    from pallet.engine.containers.lifecycle import Engine
    from pallet.engine.containers.records import ContainerRecord
    from pallet.engine.shim.attach import AttachConnection
    from pallet.engine.shim.launch import PendingShim
    from pallet.engine.spec.options import RunOptions

__all__ = [
    "configure_attach",
    "configure_create",
    "configure_exec",
    "configure_inspect",
    "configure_kill",
    "configure_logs",
    "configure_pause",
    "configure_prune",
    "configure_ps",
    "configure_rename",
    "configure_restart",
    "configure_rm",
    "configure_run",
    "configure_start",
    "configure_stop",
    "configure_unpause",
    "configure_wait",
]


def _engine(ctx: Context) -> Engine:
    from pallet.engine.containers.lifecycle import Engine

    return Engine.open(ctx.root, ctx.run_root, leave_open=ctx.exits_after)


def _write_err(ctx: Context, data: bytes) -> None:
    buffer = getattr(ctx.err, "buffer", None)
    if buffer is not None:
        ctx.err.flush()
        buffer.write(data)
        buffer.flush()
    else:
        ctx.err.write(data.decode("utf-8", "replace"))


# --- run / create ---------------------------------------------------------------------------


def _add_create_flags(parser: FlagParser) -> None:
    from pallet.cli.run_flags import add_create_flags

    add_create_flags(parser)


def _integer(text: str, flag: str) -> int:
    body = text.strip()
    if not body.lstrip("-").isdigit():
        raise InvalidArgument(
            f'invalid argument "{text}" for "{flag}" flag: strconv.ParseInt: parsing "{text}": invalid syntax'
        )
    return int(body)


def _parse_options(args: Namespace, command: str) -> RunOptions:
    from pallet.cli.run_flags import parse_options

    return parse_options(args, command)


def _create(
    ctx: Context,
    engine: Engine,
    args: Namespace,
    options: RunOptions,
    container_id: str | None = None,
    *,
    start_with: PendingShim | None = None,
    exit_command: bool = True,
) -> ContainerRecord:
    from pallet.engine.spec.security import warnings_for

    def warn(text: str) -> None:
        ctx.err.write(f"WARNING: {text}\n")

    for warning in warnings_for(options, options.mounts, engine_paths=(ctx.root, ctx.run_root)):
        warn(warning)
    return engine.create(
        args.image,
        options,
        warn=warn,
        container_id=container_id,
        start_with=start_with,
        exit_command=exit_command,
    )


def _run_create(ctx: Context, args: Namespace) -> int:
    options = _parse_options(args, "create")
    ctx.failure = EXIT_ENGINE
    with _engine(ctx) as engine:
        record = _create(ctx, engine, args, options)
        ctx.out.write(record.id + "\n")
    return 0


def _run_run(ctx: Context, args: Namespace) -> int:
    from pallet.engine.containers import names
    from pallet.engine.layout import Layout
    from pallet.engine.shim.launch import prelaunch

    # the shim's interpreter starts now and loads while this process creates the container;
    # a foreground one also loads pallet-runtime's code (the default runtime), a detached one
    # stays small for its container's life
    container_id = names.new_id()
    layout = Layout(ctx.root, ctx.run_root)
    shim = prelaunch(
        layout.shim_config(container_id),
        client=not args.detach,
        preload_runtime=not args.detach and args.runtime in (None, "", "pallet-runtime"),
        run_root=layout.run_root,
    )
    try:
        options = _parse_options(args, "run")
        ctx.failure = EXIT_ENGINE
        if not args.detach:  # our first line to the shim, read before the container starts
            shim.greet(stdin=args.interactive, size=_terminal_size(ctx) if args.interactive else None)
        with _engine(ctx) as engine:
            try:
                # a foreground --rm container is removed here, after its exit code is read;
                # otherwise by its shim's exit command
                record = _create(
                    ctx,
                    engine,
                    args,
                    options,
                    container_id,
                    start_with=shim,
                    exit_command=args.detach or not args.rm,
                )
            except PalletError:
                if shim.started and args.rm:  # created, but it did not start
                    _remove_quietly(engine, container_id)
                raise
            if args.detach:
                ctx.out.write(record.id + "\n")
                return 0
            return _follow(
                ctx,
                engine,
                record,
                shim.attach(),
                interactive=args.interactive,
                remove=args.rm,
                sig_proxy=args.sig_proxy,
            )
    finally:
        shim.cancel()


def _run_attached(
    ctx: Context,
    engine: Engine,
    record: ContainerRecord,
    shim: PendingShim,
    *,
    interactive: bool,
    remove: bool,
) -> int:
    """Start ``record`` under ``shim`` with this process as its first attach client; its exit status."""
    from pallet.engine.shim import attach

    try:
        shim.greet(stdin=interactive, size=_terminal_size(ctx) if interactive else None)
        # a --rm container is removed here, after its exit code is read; otherwise by its shim
        engine.start(record.id, exit_command=not remove, shim=shim)
        if shim.started:
            conn = shim.attach()
        else:  # it ran already (start -a): attach to its shim
            conn = attach.connect(engine.layout.attach_socket(record.id), stdin=interactive)
    except PalletError:
        if remove:
            engine.remove(record.id, force=True, volumes=True)
        raise
    return _follow(ctx, engine, record, conn, interactive=interactive, remove=remove)


def _follow(
    ctx: Context,
    engine: Engine,
    record: ContainerRecord,
    conn: AttachConnection,
    *,
    interactive: bool,
    remove: bool,
    sig_proxy: bool = True,
) -> int:
    """Stream the container's output (and our stdin) until it exits; its exit status (0: detached).

    With ``sig_proxy`` (docker's ``--sig-proxy``, on by default) the signals
    this process gets (SIGINT, SIGTERM, …) go to the container's process
    instead of ending the command; not with a tty, where ctrl-c is input.
    """
    from pallet.engine.shim import exitfile

    restore = _proxy_signals(engine, record.id) if sig_proxy and not conn.tty else None
    try:
        detached = _stream(ctx, conn, interactive=interactive)
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


#: what docker's CLI forwards to the container: SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM
_PROXIED_SIGNALS = (1, 2, 3, 10, 12, 15)


def _proxy_signals(engine: Engine, container_id: str) -> Callable[[], None]:
    """Send the signals we receive to the container (``kill -s``); returns what undoes that.

    A handler runs between two of the streaming loop's waits, so the kill is an
    ordinary engine call. A container that is gone meanwhile is no error.
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

    previous = {signum: _signal.signal(signum, forward) for signum in _PROXIED_SIGNALS}

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


def _terminal_size(ctx: Context) -> tuple[int, int] | None:
    """(rows, columns) of our stdin's terminal, if it is one (sent only for a container with a tty)."""
    fd = _fileno(ctx.stdin)
    if fd is None or not os.isatty(fd):
        return None
    size = os.get_terminal_size(fd)
    return size.lines, size.columns


def _stream(ctx: Context, conn: AttachConnection, *, interactive: bool) -> bool:
    """Copy the container's output to our streams (and our stdin to it) until it exits.

    True when the user detached (docker's ctrl-p ctrl-q) instead. The shim
    closes the connection when the container is gone; if our last stdin or
    resize frame was still unread, that close arrives as a reset, which means
    the same.
    """
    try:
        return _copy_streams(ctx, conn, interactive=interactive)
    except ConnectionResetError:
        return False


def _copy_streams(ctx: Context, conn: AttachConnection, *, interactive: bool) -> bool:
    from pallet.engine.shim import attach

    stdin_fd = _fileno(ctx.stdin) if interactive else None
    out_fd = _fileno(ctx.stdout_binary)
    err_buffer = getattr(ctx.err, "buffer", None)
    err_fd = _fileno(err_buffer) if err_buffer is not None else None
    if out_fd is not None and err_fd is not None and (stdin_fd is not None or not interactive):
        ctx.out.flush()
        ctx.err.flush()
        return attach.pump(conn, stdin_fd=stdin_fd, stdout_fd=out_fd, stderr_fd=err_fd)
    # in-process callers (tests) hand us streams without file descriptors
    while (pieces := conn.read()) is not None:
        for stream, data in pieces:
            if stream == attach.STDERR:
                _write_err(ctx, data)
            else:
                ctx.stdout_binary.write(data)
                ctx.stdout_binary.flush()
    return False


def _fileno(stream: object) -> int | None:
    try:
        fd = stream.fileno()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return None
    return fd if isinstance(fd, int) else None


def configure_run(parser: FlagParser) -> None:
    parser.add_argument("-d", "--detach", action="store_true")
    parser.add_argument(
        "--sig-proxy", action="store_true", default=True, help="send received signals to the container"
    )
    _add_create_flags(parser)
    parser.set_defaults(run=_run_run)


def configure_create(parser: FlagParser) -> None:
    _add_create_flags(parser)
    parser.set_defaults(run=_run_create)


# --- start / stop / restart / kill / pause / unpause / rm -------------------------------------


def _each(ctx: Context, refs: Sequence[str], action: Callable[[str], object]) -> int:
    """Apply ``action`` to every ref, printing each ref done; docker's rule: go on after an error, exit 1."""
    failed = False
    for ref in refs:
        try:
            action(ref)
        except PalletError as e:
            failed = True
            ctx.err.write(f"pallet: {e.message}\n")
            continue
        ctx.out.write(ref + "\n")
    return 1 if failed else 0


def _run_start(ctx: Context, args: Namespace) -> int:
    with _engine(ctx) as engine:
        if args.attach or args.interactive:
            if len(args.containers) > 1:
                raise UsageError("you cannot start and attach multiple containers at once", "start")
            ctx.failure = EXIT_ENGINE
            record = engine.containers.get(args.containers[0])
            from pallet.engine.shim.launch import prelaunch

            shim = prelaunch(
                engine.layout.shim_config(record.id), client=True, run_root=engine.layout.run_root
            )
            try:
                return _run_attached(ctx, engine, record, shim, interactive=args.interactive, remove=False)
            finally:
                shim.cancel()
        return _each(ctx, args.containers, engine.start)


def configure_start(parser: FlagParser) -> None:
    parser.add_argument("-a", "--attach", action="store_true")
    parser.add_argument("-i", "--interactive", action="store_true")
    parser.add_argument("containers", nargs="+")
    parser.set_defaults(run=_run_start)


def _timeout(args: Namespace) -> int | None:
    return None if args.time is None else _integer(args.time, "-t, --time")


def _run_stop(ctx: Context, args: Namespace) -> int:
    timeout = _timeout(args)
    with _engine(ctx) as engine:
        return _each(ctx, args.containers, lambda ref: engine.stop(ref, timeout=timeout, signal=args.signal))


def configure_stop(parser: FlagParser) -> None:
    parser.add_argument("-t", "--time", "--timeout", dest="time")
    parser.add_argument("-s", "--signal")
    parser.add_argument("containers", nargs="+")
    parser.set_defaults(run=_run_stop)


def _run_restart(ctx: Context, args: Namespace) -> int:
    timeout = _timeout(args)
    with _engine(ctx) as engine:
        return _each(ctx, args.containers, lambda ref: engine.restart(ref, timeout=timeout))


def configure_restart(parser: FlagParser) -> None:
    parser.add_argument("-t", "--time", "--timeout", dest="time")
    parser.add_argument("containers", nargs="+")
    parser.set_defaults(run=_run_restart)


def _run_kill(ctx: Context, args: Namespace) -> int:
    with _engine(ctx) as engine:
        return _each(ctx, args.containers, lambda ref: engine.kill(ref, args.signal))


def configure_kill(parser: FlagParser) -> None:
    parser.add_argument("-s", "--signal")
    parser.add_argument("containers", nargs="+")
    parser.set_defaults(run=_run_kill)


def configure_pause(parser: FlagParser) -> None:
    def run(ctx: Context, args: Namespace) -> int:
        with _engine(ctx) as engine:
            return _each(ctx, args.containers, engine.pause)

    parser.add_argument("containers", nargs="+")
    parser.set_defaults(run=run)


def configure_unpause(parser: FlagParser) -> None:
    def run(ctx: Context, args: Namespace) -> int:
        with _engine(ctx) as engine:
            return _each(ctx, args.containers, engine.unpause)

    parser.add_argument("containers", nargs="+")
    parser.set_defaults(run=run)


def _run_rm(ctx: Context, args: Namespace) -> int:
    with _engine(ctx) as engine:
        return _each(
            ctx, args.containers, lambda ref: engine.remove(ref, force=args.force, volumes=args.volumes)
        )


def configure_rm(parser: FlagParser) -> None:
    parser.add_argument("-f", "--force", action="store_true")
    parser.add_argument("-v", "--volumes", action="store_true")
    parser.add_argument("containers", nargs="+")
    parser.set_defaults(run=_run_rm)


def _run_rename(ctx: Context, args: Namespace) -> int:
    with _engine(ctx) as engine:
        engine.rename(args.container, args.new_name)
    return 0


def configure_rename(parser: FlagParser) -> None:
    parser.add_argument("container")
    parser.add_argument("new_name")
    parser.set_defaults(run=_run_rename)


def _run_wait(ctx: Context, args: Namespace) -> int:
    failed = False
    with _engine(ctx) as engine:
        for ref in args.containers:
            try:
                ctx.out.write(f"{engine.wait(ref)}\n")
                ctx.out.flush()
            except PalletError as e:
                failed = True
                ctx.err.write(f"pallet: {e.message}\n")
    return 1 if failed else 0


def configure_wait(parser: FlagParser) -> None:
    parser.add_argument("containers", nargs="+")
    parser.set_defaults(run=_run_wait)


def _run_prune(ctx: Context, args: Namespace) -> int:
    from pallet.cli.prune import confirm, write_report
    from pallet.cli.tables import human_size
    from pallet.engine.gc.prune import PruneFilters, prune_containers

    filters = PruneFilters(args.filter)  # bad filters fail before the question
    if not args.force and not confirm(ctx, "This will remove all stopped containers."):
        return 0
    with _engine(ctx) as engine:
        removed, freed = prune_containers(engine, filters)
    write_report(ctx.out, "Deleted Containers", removed, human_size(freed, precision=4))
    return 0


def configure_prune(parser: FlagParser) -> None:
    parser.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        help="until=TIME|DURATION, label=KEY[=VALUE], label!=KEY[=VALUE]",
    )
    parser.set_defaults(run=_run_prune)


# --- ps ---------------------------------------------------------------------------------------

_PS_DEFAULT = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
_PS_TITLES = {
    "ID": "CONTAINER ID",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED",
    "Status": "STATUS",
    "Ports": "PORTS",
    "Names": "NAMES",
    "State": "STATE",
    "Labels": "LABELS",
    "Mounts": "MOUNTS",
    "Networks": "NETWORKS",
    "Size": "SIZE",
    "LocalVolumes": "LOCAL VOLUMES",
}


def _seconds(rfc3339: str | None) -> float | None:
    if not rfc3339 or rfc3339.startswith("0001-"):
        return None
    from pallet.engine.shim.logfile import parse_rfc3339

    try:
        return parse_rfc3339(rfc3339) / 1e9
    except PalletError:
        return None


def status_text(record: ContainerRecord, now: float) -> str:
    """Docker's STATUS column: ``Up 5 seconds``, ``Exited (0) 2 minutes ago``, ``Created``..."""
    from pallet.cli.tables import human_duration

    state = record.state
    if state in ("running", "paused"):
        started = _seconds(record.started_at) or record.created
        text = f"Up {human_duration(now - started)}"
        return text + " (Paused)" if state == "paused" else text
    if state in ("exited", "restarting"):
        finished = _seconds(record.finished_at)
        ago = f" {human_duration(now - finished)} ago" if finished is not None else ""
        word = "Exited" if state == "exited" else "Restarting"
        return f"{word} ({record.exit_code if record.exit_code is not None else 0}){ago}"
    if state == "removing":
        return "Removal In Progress"
    if state == "dead":
        return "Dead"
    return "Created"


def ps_row(
    record: ContainerRecord, document: dict[str, Any], *, now: float, no_trunc: bool
) -> dict[str, object]:
    """One row of ``ps`` with docker's field names (what ``--format`` templates see)."""
    import json

    from pallet.cli.tables import human_duration

    command = " ".join([document.get("Path", ""), *document.get("Args", [])]).strip()
    if not no_trunc and len(command) > 20:
        command = command[:19] + "…"
    image = record.image
    if image.startswith("sha256:") and not no_trunc:
        image = image[7:19]
    labels = ",".join(f"{k}={v}" for k, v in sorted(record.labels.items()))
    mounts = ",".join(m.get("Name") or m.get("Source", "") for m in document.get("Mounts", []))
    network = document.get("HostConfig", {}).get("NetworkMode", "default")
    return {
        "Command": json.dumps(command, ensure_ascii=False),
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(record.created)),
        "ID": record.id if no_trunc else record.short_id,
        "Image": image,
        "Labels": labels,
        "LocalVolumes": str(sum(1 for m in document.get("Mounts", []) if m.get("Type") == "volume")),
        "Mounts": mounts,
        "Names": record.name,
        "Networks": network,
        "Ports": "",
        "RunningFor": f"{human_duration(now - record.created)} ago",
        "Size": "0B",
        "State": record.state if record.state != "creating" else "created",
        "Status": status_text(record, now),
    }


class _Filters:
    """``ps --filter``: id, name, label, status, exited, ancestor; several values of a key are ORed."""

    KEYS = ("id", "name", "label", "status", "exited", "ancestor", "before", "since")

    def __init__(self, values: Sequence[str]) -> None:
        self.by_key: dict[str, list[str]] = {}
        for value in values:
            key, sep, want = value.partition("=")
            if not sep or key not in self.KEYS:
                raise UsageError(f'invalid filter "{value}"', "ps")
            self.by_key.setdefault(key, []).append(want)

    def matches(self, record: ContainerRecord, engine: Engine) -> bool:
        checks: dict[str, Callable[[str], bool]] = {
            "id": record.id.startswith,
            "name": lambda w: w.lstrip("/") in record.name,
            "label": lambda w: _label_matches(record, w),
            "status": lambda w: (record.state if record.state != "creating" else "created") == w,
            "exited": lambda w: record.state == "exited" and str(record.exit_code) == w,
            "ancestor": lambda w: (
                w in (record.image, record.image_id)
                or record.image_id.startswith(w if w.startswith("sha256:") else "sha256:" + w)
            ),
            "before": lambda w: _relative(engine, w, record, before=True),
            "since": lambda w: _relative(engine, w, record, before=False),
        }
        return all(any(checks[key](w) for w in wants) for key, wants in self.by_key.items())


def _label_matches(record: ContainerRecord, want: str) -> bool:
    key, sep, value = want.partition("=")
    if key not in record.labels:
        return False
    return not sep or record.labels[key] == value


def _relative(engine: Engine, ref: str, record: ContainerRecord, *, before: bool) -> bool:
    try:
        other = engine.containers.get(ref)
    except NotFound:
        return False
    return record.created < other.created if before else record.created > other.created


def _run_ps(ctx: Context, args: Namespace) -> int:
    from pallet.cli.output import print_rows

    filters = _Filters(args.filter)
    with _engine(ctx) as engine:
        show_all = args.all or bool(filters.by_key.get("status")) or bool(filters.by_key.get("exited"))
        records = [r for r in engine.list_containers(all=show_all) if filters.matches(r, engine)]
        if args.latest:
            records = records[:1]
        elif args.last is not None and args.last >= 0:
            records = records[: args.last]
        if args.quiet:
            for record in records:
                ctx.out.write((record.id if args.no_trunc else record.short_id) + "\n")
            return 0
        now = time.time()
        rows = [ps_row(r, engine.document(r), now=now, no_trunc=args.no_trunc) for r in records]
    print_rows(ctx.out, rows, args.format, default=_PS_DEFAULT, titles=_PS_TITLES)
    return 0


def configure_ps(parser: FlagParser) -> None:
    parser.add_argument("-a", "--all", action="store_true")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("--no-trunc", action="store_true")
    parser.add_argument("-f", "--filter", action="append", default=[])
    parser.add_argument("--format")
    parser.add_argument("-n", "--last", type=int)
    parser.add_argument("-l", "--latest", action="store_true")
    parser.set_defaults(run=_run_ps)


# --- inspect ----------------------------------------------------------------------------------


def _run_inspect(ctx: Context, args: Namespace) -> int:
    from pallet.cli.output import print_inspect
    from pallet.engine.containers.inspection import inspect_container

    found: list[dict[str, object]] = []
    failed = False
    with _engine(ctx) as engine:
        for ref in args.containers:
            try:
                record = engine.get(ref)
            except NotFound:
                failed = True
                ctx.err.write(f"pallet: No such container: {ref}\n")
                continue
            found.append(
                inspect_container(
                    record,
                    engine.document(record),
                    bundle=engine.layout.bundle(record.id),
                    run_dir=engine.layout.run_dir(record.id),
                )
            )
    print_inspect(ctx.out, found, args.format)
    return 1 if failed else 0


def configure_inspect(parser: FlagParser) -> None:
    parser.add_argument("-f", "--format")
    parser.add_argument("--type", choices=["container"], default="container")
    parser.add_argument("containers", nargs="+")
    parser.set_defaults(run=_run_inspect)


# --- logs ---------------------------------------------------------------------------------------


def _log_entries(engine: Engine, record: ContainerRecord, args: Namespace) -> Iterator[Any]:
    from pallet.engine.shim.logfile import parse_time_filter, read_logs

    now = time.time_ns()
    tail: int | None = None
    if args.tail not in (None, "all"):
        tail = _integer(args.tail, "-n, --tail")
        if tail < 0:
            tail = None
    since = parse_time_filter(args.since, now, "since") if args.since else None
    until = parse_time_filter(args.until, now, "until") if args.until else None
    container_id = record.id

    def stopped() -> bool:
        # docker stops following at --until even when nothing more is written
        if until is not None and time.time_ns() > until:
            return True
        try:
            return engine.get(container_id).state not in ("running", "paused", "restarting")
        except NotFound:
            return True

    return read_logs(
        engine.layout.log_path(record.id),
        tail=tail,
        since_ns=since,
        until_ns=until,
        follow=args.follow,
        stopped=stopped,
    )


def _run_logs(ctx: Context, args: Namespace) -> int:
    from pallet.engine.shim.logfile import format_entry

    with _engine(ctx) as engine:
        record = engine.get(args.container)
        out: BinaryIO = ctx.stdout_binary
        for entry in _log_entries(engine, record, args):
            data = format_entry(entry, args.timestamps)
            if entry.stream == "stderr":
                _write_err(ctx, data)
            else:
                out.write(data)
                if args.follow:
                    out.flush()
        out.flush()
    return 0


def configure_logs(parser: FlagParser) -> None:
    parser.add_argument("-f", "--follow", action="store_true")
    parser.add_argument("-n", "--tail")
    parser.add_argument("--since")
    parser.add_argument("--until")
    parser.add_argument("-t", "--timestamps", action="store_true")
    parser.add_argument("container")
    parser.set_defaults(run=_run_logs)


# --- attach / exec ----------------------------------------------------------------------------


def _run_attach(ctx: Context, args: Namespace) -> int:
    from pallet.engine.shim import attach

    with _engine(ctx) as engine:
        record = engine.get(args.container)
        if record.state not in ("running", "paused", "restarting"):
            raise FailedPrecondition("You cannot attach to a stopped container, start it first")
        interactive = not args.no_stdin and bool(engine.document(record).get("Config", {}).get("OpenStdin"))
        conn = attach.connect(engine.layout.attach_socket(record.id), stdin=interactive)
        restore = _proxy_signals(engine, record.id) if args.sig_proxy and not conn.tty else None
        try:
            detached = _stream(ctx, conn, interactive=interactive)
        finally:
            conn.close()
            if restore is not None:
                restore()
        return 0 if detached else engine.wait(record.id)


def configure_attach(parser: FlagParser) -> None:
    parser.add_argument("--no-stdin", action="store_true")
    parser.add_argument(
        "--sig-proxy", action="store_true", default=True, help="send received signals to the container"
    )
    parser.add_argument("container")
    parser.set_defaults(run=_run_attach)


def _run_exec(ctx: Context, args: Namespace) -> int:
    from pallet.engine.containers.execs import ExecRequest, exec_process
    from pallet.engine.spec.syntax import collect_env

    if not args.command:
        raise UsageError('"exec" requires at least 2 arguments', "exec")
    try:
        env = collect_env(args.env, args.env_file)
    except InvalidArgument as e:
        raise UsageError(e.message, "exec") from None
    request = ExecRequest(
        cmd=tuple(args.command),
        tty=args.tty,
        interactive=args.interactive,
        detach=args.detach,
        env=env,
        workdir=args.workdir,
        user=args.user,
    )
    ctx.failure = EXIT_ENGINE
    with _engine(ctx) as engine:
        if args.detach:
            exec_process(engine, args.container, request)
            return 0
        return _exec_attached(ctx, engine, args.container, request)


def _exec_attached(ctx: Context, engine: Engine, ref: str, request: ExecRequest) -> int:
    """A foreground exec with our stdio (temp files stand in for streams without fds, in tests)."""
    import tempfile

    from pallet.engine.containers.execs import exec_process

    stdin_fd = _fileno(ctx.stdin) if request.interactive else None
    out_fd = _fileno(ctx.stdout_binary)
    err_fd = _fileno(getattr(ctx.err, "buffer", None))
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        source = stdin_fd if stdin_fd is not None else null
        if out_fd is not None and err_fd is not None:
            ctx.out.flush()
            ctx.err.flush()
            return exec_process(engine, ref, request, stdio=(source, out_fd, err_fd))
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            code = exec_process(engine, ref, request, stdio=(source, out.fileno(), err.fileno()))
            out.seek(0)
            ctx.stdout_binary.write(out.read())
            ctx.stdout_binary.flush()
            err.seek(0)
            _write_err(ctx, err.read())
            return code
    finally:
        os.close(null)


def configure_exec(parser: FlagParser) -> None:
    parser.add_argument("-i", "--interactive", action="store_true")
    parser.add_argument("-t", "--tty", action="store_true")
    parser.add_argument("-d", "--detach", action="store_true")
    parser.add_argument("-e", "--env", action="append", default=[])
    parser.add_argument("--env-file", action="append", default=[])
    parser.add_argument("-w", "--workdir", default="")
    parser.add_argument("-u", "--user", default="")
    parser.add_argument("container")
    parser.add_argument("command", nargs=REMAINDER)
    parser.set_defaults(run=_run_exec)
