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
from pallet.errors import InvalidArgument, NotFound, PalletError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from pallet.cli.context import Context
    from pallet.cli.flags import FlagParser, Namespace
    from pallet.engine.service import ContainerRecord, RunOptions, Service, Streams

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
    "configure_update",
    "configure_wait",
]


def _engine(ctx: Context) -> Service:
    from pallet.engine.service import Service

    return Service.open(ctx.root, ctx.run_root, leave_open=ctx.exits_after)


def _write_err(ctx: Context, data: bytes) -> None:
    buffer = getattr(ctx.err, "buffer", None)
    if buffer is not None:
        ctx.err.flush()
        buffer.write(data)
        buffer.flush()
    else:
        ctx.err.write(data.decode("utf-8", "replace"))


def _warn(ctx: Context) -> Callable[[str], None]:
    def warn(text: str) -> None:
        ctx.err.write(f"WARNING: {text}\n")

    return warn


def _streams(ctx: Context) -> Streams:
    """This process's side of an attached session: our fds where there are some, else ``ctx``'s streams."""
    from pallet.engine.service import streams

    def write_stdout(data: bytes) -> None:
        ctx.stdout_binary.write(data)
        ctx.stdout_binary.flush()

    def flush() -> None:
        ctx.out.flush()
        ctx.err.flush()

    return streams(
        write_stdout=write_stdout,
        write_stderr=lambda data: _write_err(ctx, data),
        stdin_fd=_fileno(ctx.stdin),
        stdout_fd=_fileno(ctx.stdout_binary),
        stderr_fd=_fileno(getattr(ctx.err, "buffer", None)),
        flush=flush,
        terminal_size=lambda: _terminal_size(ctx),
    )


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


def _run_create(ctx: Context, args: Namespace) -> int:
    options = _parse_options(args, "create")
    ctx.failure = EXIT_ENGINE
    with _engine(ctx) as service:
        record = service.create(args.image, options, warn=_warn(ctx))
        ctx.out.write(record.id + "\n")
    return 0


def _run_run(ctx: Context, args: Namespace) -> int:
    from pallet.engine.service import run_session

    # first: the shim's interpreter starts now and loads while we parse and create
    with run_session(
        ctx.root, ctx.run_root, detach=args.detach, runtime=args.runtime, leave_open=ctx.exits_after
    ) as session:
        options = _parse_options(args, "run")
        ctx.failure = EXIT_ENGINE
        result = session.run(
            args.image,
            options,
            _streams(ctx),
            interactive=args.interactive,
            remove=args.rm,
            sig_proxy=args.sig_proxy,
            warn=_warn(ctx),
        )
    if result.exit_code is None:
        ctx.out.write(result.container.id + "\n")
        return 0
    return result.exit_code


def _terminal_size(ctx: Context) -> tuple[int, int] | None:
    """(rows, columns) of our stdin's terminal, if it is one (sent only for a container with a tty)."""
    fd = _fileno(ctx.stdin)
    if fd is None or not os.isatty(fd):
        return None
    size = os.get_terminal_size(fd)
    return size.lines, size.columns


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
    with _engine(ctx) as service:
        if args.attach or args.interactive:
            if len(args.containers) > 1:
                raise UsageError("you cannot start and attach multiple containers at once", "start")
            ctx.failure = EXIT_ENGINE
            return service.start_attached(args.containers[0], _streams(ctx), interactive=args.interactive)
        return _each(ctx, args.containers, service.start)


def configure_start(parser: FlagParser) -> None:
    parser.add_argument("-a", "--attach", action="store_true")
    parser.add_argument("-i", "--interactive", action="store_true")
    parser.add_argument("containers", nargs="+")
    parser.set_defaults(run=_run_start)


def _timeout(args: Namespace) -> int | None:
    return None if args.time is None else _integer(args.time, "-t, --time")


def _run_stop(ctx: Context, args: Namespace) -> int:
    timeout = _timeout(args)
    with _engine(ctx) as service:
        return _each(ctx, args.containers, lambda ref: service.stop(ref, timeout=timeout, signal=args.signal))


def configure_stop(parser: FlagParser) -> None:
    parser.add_argument("-t", "--time", "--timeout", dest="time")
    parser.add_argument("-s", "--signal")
    parser.add_argument("containers", nargs="+")
    parser.set_defaults(run=_run_stop)


def _run_restart(ctx: Context, args: Namespace) -> int:
    timeout = _timeout(args)
    with _engine(ctx) as service:
        return _each(ctx, args.containers, lambda ref: service.restart(ref, timeout=timeout))


def configure_restart(parser: FlagParser) -> None:
    parser.add_argument("-t", "--time", "--timeout", dest="time")
    parser.add_argument("containers", nargs="+")
    parser.set_defaults(run=_run_restart)


def _run_kill(ctx: Context, args: Namespace) -> int:
    with _engine(ctx) as service:
        return _each(ctx, args.containers, lambda ref: service.kill(ref, args.signal))


def configure_kill(parser: FlagParser) -> None:
    parser.add_argument("-s", "--signal")
    parser.add_argument("containers", nargs="+")
    parser.set_defaults(run=_run_kill)


def configure_pause(parser: FlagParser) -> None:
    def run(ctx: Context, args: Namespace) -> int:
        with _engine(ctx) as service:
            return _each(ctx, args.containers, service.pause)

    parser.add_argument("containers", nargs="+")
    parser.set_defaults(run=run)


def configure_unpause(parser: FlagParser) -> None:
    def run(ctx: Context, args: Namespace) -> int:
        with _engine(ctx) as service:
            return _each(ctx, args.containers, service.unpause)

    parser.add_argument("containers", nargs="+")
    parser.set_defaults(run=run)


def _run_rm(ctx: Context, args: Namespace) -> int:
    with _engine(ctx) as service:
        return _each(
            ctx,
            args.containers,
            lambda ref: service.remove(ref, force=args.force, volumes=args.volumes, link=args.link),
        )


def configure_rm(parser: FlagParser) -> None:
    parser.add_argument("-f", "--force", action="store_true")
    parser.add_argument("-l", "--link", action="store_true")
    parser.add_argument("-v", "--volumes", action="store_true")
    parser.add_argument("containers", nargs="+")
    parser.set_defaults(run=_run_rm)


def _run_rename(ctx: Context, args: Namespace) -> int:
    with _engine(ctx) as service:
        service.rename(args.container, args.new_name)
    return 0


def configure_rename(parser: FlagParser) -> None:
    parser.add_argument("container")
    parser.add_argument("new_name")
    parser.set_defaults(run=_run_rename)


def _run_update(ctx: Context, args: Namespace) -> int:
    from pallet.cli.run_flags import update_request

    try:
        request = update_request(args)
    except InvalidArgument as e:
        raise UsageError(e.message, "update") from None
    if request == type(request)():
        raise UsageError("you must provide one or more flags when using this command", "update")
    with _engine(ctx) as service:
        return _each(ctx, args.containers, lambda ref: service.update(ref, request))


def configure_update(parser: FlagParser) -> None:
    add = parser.add_argument
    add("--blkio-weight")
    add("--cpu-period")
    add("--cpu-quota")
    add("-c", "--cpu-shares")
    add("--cpus")
    add("--cpuset-cpus")
    add("--cpuset-mems")
    add("-m", "--memory")
    add("--memory-reservation")
    add("--memory-swap")
    add("--pids-limit")
    add("--restart")
    add("containers", nargs="+")
    parser.set_defaults(run=_run_update)


def _run_wait(ctx: Context, args: Namespace) -> int:
    failed = False
    with _engine(ctx) as service:
        for ref in args.containers:
            try:
                ctx.out.write(f"{service.wait(ref)}\n")
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
    from pallet.engine.service import prune_filters

    filters = prune_filters(args.filter)  # bad filters fail before the question
    if not args.force and not confirm(ctx, "This will remove all stopped containers."):
        return 0
    with _engine(ctx) as service:
        removed, freed = service.prune_containers(filters)
    write_report(ctx.out, "Deleted Containers", removed, human_size(freed, precision=4))
    return 0


def configure_prune(parser: FlagParser) -> None:
    from pallet.cli.prune import add_prune_flags

    add_prune_flags(parser)
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


def ps_row(
    record: ContainerRecord,
    document: dict[str, Any],
    *,
    now: float,
    no_trunc: bool,
    ports: Sequence[tuple[str, str, int]] = (),
    health: str = "",
) -> dict[str, object]:
    """One row of ``ps`` with docker's field names (what ``--format`` templates see); ``ports``: the
    published ports the container holds (``80/tcp``, host address, host port); ``health``: its
    healthcheck's status ("" for none)."""
    import json

    from pallet.engine.service import human_duration, status_text

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
        "Ports": ", ".join(
            f"{f'[{ip}]' if ':' in ip else ip}:{host_port}->{private}" for private, ip, host_port in ports
        ),
        "RunningFor": f"{human_duration(now - record.created)} ago",
        "Size": "0B",
        "State": record.state if record.state != "creating" else "created",
        "Status": status_text(record, now, health),
    }


def _run_ps(ctx: Context, args: Namespace) -> int:
    from pallet.cli.output import print_rows
    from pallet.engine.service import container_filters

    try:
        filters = container_filters(args.filter)
    except InvalidArgument as e:
        raise UsageError(e.message, "ps") from None
    last = 1 if args.latest else args.last
    with _engine(ctx) as service:
        records = service.ps(all=args.all, filters=filters, last=last)
        if args.quiet:
            for record in records:
                ctx.out.write((record.id if args.no_trunc else record.short_id) + "\n")
            return 0
        now = time.time()
        rows = [
            ps_row(
                r,
                service.document(r),
                now=now,
                no_trunc=args.no_trunc,
                ports=service.ports_of(r),
                health=service.health_status(r),
            )
            for r in records
        ]
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

    found: list[dict[str, object]] = []
    failed = False
    with _engine(ctx) as service:
        for ref in args.containers:
            try:
                found.append(service.inspect(ref))
            except NotFound:
                failed = True
                ctx.err.write(f"pallet: No such container: {ref}\n")
    print_inspect(ctx.out, found, args.format)
    return 1 if failed else 0


def configure_inspect(parser: FlagParser) -> None:
    parser.add_argument("-f", "--format")
    parser.add_argument("--type", choices=["container"], default="container")
    parser.add_argument("containers", nargs="+")
    parser.set_defaults(run=_run_inspect)


# --- logs ---------------------------------------------------------------------------------------


def _run_logs(ctx: Context, args: Namespace) -> int:
    from pallet.engine.service import format_log_entry

    tail: int | None = None
    if args.tail not in (None, "all"):
        tail = _integer(args.tail, "-n, --tail")
    with _engine(ctx) as service:
        out = ctx.stdout_binary
        entries = service.logs(
            args.container, follow=args.follow, since=args.since, until=args.until, tail=tail
        )
        for entry in entries:
            data = format_log_entry(entry, args.timestamps)
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
    with _engine(ctx) as service:
        return service.attach(
            args.container, _streams(ctx), stdin=not args.no_stdin, sig_proxy=args.sig_proxy
        )


def configure_attach(parser: FlagParser) -> None:
    parser.add_argument("--no-stdin", action="store_true")
    parser.add_argument(
        "--sig-proxy", action="store_true", default=True, help="send received signals to the container"
    )
    parser.add_argument("container")
    parser.set_defaults(run=_run_attach)


def _run_exec(ctx: Context, args: Namespace) -> int:
    from pallet.engine.service import exec_request
    from pallet.engine.spec.syntax import collect_env

    if not args.command:
        raise UsageError('"exec" requires at least 2 arguments', "exec")
    try:
        env = collect_env(args.env, args.env_file)
    except InvalidArgument as e:
        raise UsageError(e.message, "exec") from None
    request = exec_request(
        cmd=tuple(args.command),
        tty=args.tty,
        interactive=args.interactive,
        detach=args.detach,
        env=env,
        workdir=args.workdir,
        user=args.user,
    )
    ctx.failure = EXIT_ENGINE
    with _engine(ctx) as service:
        if args.detach:
            service.exec(args.container, request)
            return 0
        return service.exec_attached(args.container, request, _streams(ctx))


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
