"""Container file and process verbs: ``cp``, ``diff``, ``commit``, ``export``, ``top``, ``stats``
and ``port``. Thin: parse docker's flags, call the engine, print what docker prints.
"""

from __future__ import annotations

import os

from pallet.cli.exits import UsageError
from pallet.cli.flags import REMAINDER, SUPPRESS, parse_bool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pallet.cli.context import Context
    from pallet.cli.flags import FlagParser, Namespace
    from pallet.engine.service import ContainerRecord, Service, Usage

__all__ = [
    "configure_commit",
    "configure_cp",
    "configure_diff",
    "configure_export",
    "configure_port",
    "configure_stats",
    "configure_top",
]


def _handler(run: Callable[[Context, Namespace, Service], int]) -> Callable[..., int]:
    """Wrap a handler so it gets the engine's service, closed whatever happens."""

    def handler(ctx: Context, args: Namespace) -> int:
        from pallet.engine.service import Service

        with Service.open(ctx.root, ctx.run_root) as service:
            return run(ctx, args, service)

    return handler


# --- cp -------------------------------------------------------------------------------------------


def _split(arg: str) -> tuple[str | None, str]:
    """docker's ``splitCpArg``: ``CONTAINER:PATH``, unless the argument is a local path (``/``, ``.``)."""
    if arg.startswith(("/", ".")) or arg == "-":
        return None, arg
    container, sep, path = arg.partition(":")
    if not sep:
        return None, arg
    return container, path


def _host_path(path: str) -> str:
    """An absolute host path, keeping the trailing ``/`` or ``/.`` that cp's rules read."""
    suffix = "/." if path.endswith("/.") or path == "." else "/" if path.endswith("/") else ""
    return os.path.abspath(path).rstrip("/") + suffix if suffix else os.path.abspath(path)


def _decimal(size: int) -> str:
    from pallet.cli.tables import human_size

    return human_size(size)


def _run_cp(ctx: Context, args: Namespace, service: Service) -> int:
    from pallet.errors import InvalidArgument

    src_ctr, src = _split(args.src)
    dst_ctr, dst = _split(args.dest)
    if src_ctr is not None and dst_ctr is not None:
        raise UsageError("copying between containers is not supported", "cp")
    if src_ctr is None and dst_ctr is None:
        raise UsageError("must specify at least one container source", "cp")
    if (src_ctr is not None and not src) or (dst_ctr is not None and not dst):
        raise UsageError("filepath cannot be empty", "cp")
    if src_ctr is not None:  # out of the container
        if dst == "-":
            service.copy_from(src_ctr, src, to_stream=ctx.stdout_binary, follow_link=args.follow_link)
            ctx.stdout_binary.flush()
            return 0
        owner = None if args.archive else (os.getuid(), os.getgid())
        result = service.copy_from(
            src_ctr, src, to_path=_host_path(dst), follow_link=args.follow_link, owner=owner
        )
        if not args.quiet:
            ctx.err.write(f"Successfully copied {_decimal(result.bytes)} to {dst}\n")
        return 0
    assert dst_ctr is not None
    owner = None if args.archive else (0, 0)
    if src == "-":
        try:
            result = service.copy_into(dst_ctr, dst, from_stream=ctx.stdin, owner=owner)
        except InvalidArgument as e:
            raise UsageError(e.message, "cp") from None
    else:
        result = service.copy_into(
            dst_ctr, dst, from_path=_host_path(src), follow_link=args.follow_link, owner=owner
        )
    if not args.quiet:
        ctx.err.write(f"Successfully copied {_decimal(result.bytes)} to {dst_ctr}:{dst}\n")
    return 0


def configure_cp(parser: FlagParser) -> None:
    parser.add_argument("src", metavar="SRC", help="CONTAINER:SRC_PATH, a host path, or - (a tar on stdin)")
    parser.add_argument(
        "dest", metavar="DEST", help="CONTAINER:DEST_PATH, a host path, or - (a tar on stdout)"
    )
    parser.add_argument(
        "-a", "--archive", action="store_true", help="archive mode (copy all uid/gid information)"
    )
    parser.add_argument(
        "-L", "--follow-link", action="store_true", help="always follow symbol link in SRC_PATH"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="suppress the progress line on stderr")
    parser.set_defaults(run=_handler(_run_cp))


# --- diff -----------------------------------------------------------------------------------------


def _run_diff(ctx: Context, args: Namespace, service: Service) -> int:
    for change in service.diff(args.container):
        ctx.out.write(f"{change}\n")
    return 0


def configure_diff(parser: FlagParser) -> None:
    parser.add_argument("container", metavar="CONTAINER")
    parser.set_defaults(run=_handler(_run_diff))


# --- commit ---------------------------------------------------------------------------------------


def _run_commit(ctx: Context, args: Namespace, service: Service) -> int:
    image = service.commit(
        args.container,
        args.repository,
        changes=args.change,
        message=args.message or "",
        author=args.author or "",
        pause=args.pause,
    )
    ctx.out.write(f"{image.id}\n")
    return 0


def configure_commit(parser: FlagParser) -> None:
    parser.add_argument("container", metavar="CONTAINER")
    parser.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    parser.add_argument("-a", "--author", help='author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
    parser.add_argument(
        "-c",
        "--change",
        action="append",
        default=[],
        help="apply Dockerfile instruction to the created image",
    )
    parser.add_argument("-m", "--message", help="commit message")
    parser.add_argument(
        "-p",
        "--pause",
        type=parse_bool,
        nargs="?",
        const=True,
        default=True,
        help="pause container during commit",
    )
    parser.set_defaults(run=_handler(_run_commit))


# --- export ---------------------------------------------------------------------------------------


def _run_export(ctx: Context, args: Namespace, service: Service) -> int:
    if args.output is None:
        isatty = getattr(ctx.stdout_binary, "isatty", None)
        if isatty is not None and isatty():
            raise UsageError("cowardly refusing to save to a terminal. Use the -o flag or redirect", "export")
        service.export(args.container, ctx.stdout_binary)
        ctx.stdout_binary.flush()
        return 0
    from pallet.cli.outfile import atomic_output

    with atomic_output(args.output) as out:  # the file is complete or absent
        service.export(args.container, out)
    return 0


def configure_export(parser: FlagParser) -> None:
    parser.add_argument("container", metavar="CONTAINER")
    parser.add_argument("-o", "--output", help="write to a file, instead of STDOUT")
    parser.set_defaults(run=_handler(_run_export))


# --- top ------------------------------------------------------------------------------------------


def _run_top(ctx: Context, args: Namespace, service: Service) -> int:
    from pallet.cli.tables import write_columns

    listing = service.top(args.container, args.ps_args)
    write_columns(ctx.out, [list(listing.titles), *(list(p) for p in listing.processes)])
    return 0


def configure_top(parser: FlagParser) -> None:
    parser.add_argument("container", metavar="CONTAINER")
    parser.add_argument("ps_args", nargs=REMAINDER, metavar="[ps OPTIONS]")
    parser.set_defaults(run=_handler(_run_top))


# --- stats ----------------------------------------------------------------------------------------

_STATS_TABLE = (
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
)
_STATS_TITLES = {
    "ID": "CONTAINER ID",
    "Container": "CONTAINER",
    "Name": "NAME",
    "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT",
    "MemPerc": "MEM %",
    "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O",
    "PIDs": "PIDS",
}


def _binary(size: float) -> str:
    """go-units ``BytesSize``: ``%.4g`` with KiB, MiB, ..."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    i = 0
    while size >= 1024 and i < len(units) - 1:
        size /= 1024
        i += 1
    return f"{size:.4g}{units[i]}"


def _stats_row(record: ContainerRecord, use: Usage, no_trunc: bool, ref: str) -> dict[str, object]:
    return {
        "BlockIO": f"{_decimal(use.block_read)} / {_decimal(use.block_write)}",
        "CPUPerc": f"{use.cpu_percent:.2f}%",
        "Container": ref,
        "ID": record.id if no_trunc else record.short_id,
        "MemPerc": f"{use.memory_percent:.2f}%",
        "MemUsage": f"{_binary(use.memory)} / {_binary(use.memory_limit)}",
        "Name": record.name,
        "NetIO": f"{_decimal(use.net_rx)} / {_decimal(use.net_tx)}",
        "PIDs": str(use.pids),
    }


def _run_stats(ctx: Context, args: Namespace, service: Service) -> int:
    from pallet.cli.output import print_rows

    if args.containers:
        records = [(service.get(ref), ref) for ref in args.containers]
    else:
        records = [(r, r.short_id) for r in service.ps(all=args.all)]
    while True:
        usage = service.stats([r for r, _ in records], args.interval)
        rows = [_stats_row(r, use, args.no_trunc, ref) for (r, ref), use in zip(records, usage, strict=True)]
        if not args.no_stream:
            ctx.out.write("\033[2J\033[H")  # clear the screen, as docker's live view
        print_rows(ctx.out, rows, args.format, default=_STATS_TABLE, titles=_STATS_TITLES)
        ctx.out.flush()
        if args.no_stream:
            return 0


def configure_stats(parser: FlagParser) -> None:
    parser.add_argument("containers", nargs="*", metavar="CONTAINER")
    parser.add_argument(
        "-a", "--all", action="store_true", help="show all containers (default shows just running)"
    )
    parser.add_argument(
        "--no-stream", action="store_true", help="disable streaming stats and only pull the first result"
    )
    parser.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    parser.add_argument("--format", help="'table', 'json', 'table TEMPLATE' or a Go template")
    # the sampling period of CPU % (docker's is about a second); hidden, for tests
    parser.add_argument("--interval", type=float, default=1.0, help=SUPPRESS)
    parser.set_defaults(run=_handler(_run_stats))


# --- port -----------------------------------------------------------------------------------------


def _run_port(ctx: Context, args: Namespace, service: Service) -> int:
    for line in service.port(args.container, args.port):
        ctx.out.write(line + "\n")
    return 0


def configure_port(parser: FlagParser) -> None:
    parser.add_argument("container", metavar="CONTAINER")
    parser.add_argument("port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")
    parser.set_defaults(run=_handler(_run_port))
