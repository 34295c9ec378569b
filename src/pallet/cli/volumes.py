"""Volume commands: ``volume create``, ``volume ls``, ``volume inspect``, ``volume rm`` and
``volume prune``. Thin: parse flags, call the engine's surface (``pallet.engine.service``), print
what docker prints.
"""

from __future__ import annotations

from pallet.cli.exits import UsageError
from pallet.cli.output import inspect_each, print_rows
from pallet.cli.prune import confirm, write_report
from pallet.cli.tables import human_size
from pallet.errors import InvalidArgument, PalletError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pallet.cli.context import Context
    from pallet.cli.flags import FlagParser, Namespace
    from pallet.engine.service import Service, VolumeFilters

__all__ = [
    "configure_create",
    "configure_inspect",
    "configure_ls",
    "configure_prune",
    "configure_rm",
]

_LS_TABLE = "table {{.Driver}}\t{{.Name}}"
_LS_TITLES = {
    "Driver": "DRIVER",
    "Name": "VOLUME NAME",
    "Mountpoint": "MOUNTPOINT",
    "Labels": "LABELS",
    "Scope": "SCOPE",
    "CreatedAt": "CREATED AT",
    "Links": "LINKS",
}


def _handler(run: Callable[[Context, Namespace, Service], int]) -> Callable[..., int]:
    """Wrap a handler so it gets the engine's service, closed whatever happens."""

    def handler(ctx: Context, args: Namespace) -> int:
        from pallet.engine.service import Service

        with Service.open(ctx.root, ctx.run_root, leave_open=ctx.exits_after) as service:
            return run(ctx, args, service)

    return handler


def _pairs(values: list[str], flag: str, command: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, _, val = value.partition("=")
        if not key:
            raise UsageError(f'invalid argument "{value}" for "{flag}" flag: a key is required', command)
        out[key] = val
    return out


def _filters(values: list[str], command: str) -> VolumeFilters:
    from pallet.engine.service import volume_filters

    try:
        return volume_filters(values)
    except InvalidArgument as e:
        raise UsageError(e.message, command) from None


# --- create ---------------------------------------------------------------------------------------


def _run_create(ctx: Context, args: Namespace, service: Service) -> int:
    if args.name and args.name_flag and args.name != args.name_flag:
        raise UsageError(
            f'conflicting options: either specify --name or provide positional arg, not both ("{args.name_flag}" vs "{args.name}")',
            "volume create",
        )
    volume = service.create_volume(
        args.name or args.name_flag,
        driver=args.driver,
        labels=_pairs(args.label, "--label", "volume create"),
        options=_pairs(args.opt, "--opt", "volume create"),
    )
    ctx.out.write(volume.name + "\n")
    return 0


def configure_create(parser: FlagParser) -> None:
    parser.add_argument("name", nargs="?", metavar="VOLUME", help="the name (random if not given)")
    parser.add_argument("--name", dest="name_flag", help="the name, as a flag")
    parser.add_argument("-d", "--driver", default="local", help="volume driver (only 'local')")
    parser.add_argument("--label", action="append", default=[], help="set metadata on the volume (KEY=VALUE)")
    parser.add_argument("-o", "--opt", action="append", default=[], help="driver specific options")
    parser.set_defaults(run=_handler(_run_create))


# --- ls -------------------------------------------------------------------------------------------


def _run_ls(ctx: Context, args: Namespace, service: Service) -> int:
    filters = _filters(args.filter, "volume ls")
    rows = [
        {
            "Driver": v.driver,
            "Name": v.name,
            "Mountpoint": v.mountpoint,
            "Labels": ",".join(f"{k}={val}" for k, val in sorted(v.labels.items())),
            "Scope": "local",
            "CreatedAt": v.created_at,
            "Links": str(len(v.users)),
            "Size": "N/A",
        }
        for v in service.volumes(filters)
    ]
    fmt = "{{.Name}}" if args.quiet else args.format
    print_rows(ctx.out, rows, fmt, default=_LS_TABLE, titles=_LS_TITLES)
    return 0


def configure_ls(parser: FlagParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="only display volume names")
    parser.add_argument(
        "-f",
        "--filter",
        action="append",
        default=[],
        help="filter output: dangling=true|false, name=TEXT, label=KEY[=VALUE], driver=local",
    )
    parser.add_argument("--format", help="'table', 'json', 'table TEMPLATE' or a Go template")
    parser.set_defaults(run=_handler(_run_ls))


# --- inspect --------------------------------------------------------------------------------------


def _run_inspect(ctx: Context, args: Namespace, service: Service) -> int:
    return inspect_each(ctx, args.volumes, lambda name: service.volume(name).to_inspect(), args.format)


def configure_inspect(parser: FlagParser) -> None:
    parser.add_argument("volumes", nargs="+", metavar="VOLUME")
    parser.add_argument("-f", "--format", help="a Go template such as '{{.Mountpoint}}', or 'json'")
    parser.set_defaults(run=_handler(_run_inspect))


# --- rm -------------------------------------------------------------------------------------------


def _run_rm(ctx: Context, args: Namespace, service: Service) -> int:
    failed = 0
    for name in args.volumes:
        try:
            service.remove_volume(name, force=args.force)
        except PalletError as e:
            failed += 1
            ctx.err.write(f"pallet: {e}\n")
            continue
        ctx.out.write(name + "\n")
    return 1 if failed else 0


def configure_rm(parser: FlagParser) -> None:
    parser.add_argument("volumes", nargs="+", metavar="VOLUME")
    parser.add_argument("-f", "--force", action="store_true", help="no error for volumes that do not exist")
    parser.set_defaults(run=_handler(_run_rm))


# --- prune ----------------------------------------------------------------------------------------


def _run_prune(ctx: Context, args: Namespace, service: Service) -> int:
    filters = _filters(args.filter, "volume prune")
    if not args.force:
        what = "all local volumes" if args.all else "anonymous local volumes"
        if not confirm(ctx, f"This will remove {what} not used by at least one container."):
            return 0
    removed, freed = service.prune_volumes(all=args.all, filters=filters)
    write_report(ctx.out, "Deleted Volumes", removed, human_size(freed))
    return 0


def configure_prune(parser: FlagParser) -> None:
    parser.add_argument(
        "-a", "--all", action="store_true", help="remove all unused volumes, not just anonymous ones"
    )
    parser.add_argument("--filter", action="append", default=[], help="provide filter values (label=KEY)")
    parser.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    parser.set_defaults(run=_handler(_run_prune))
