"""``system df``, ``system prune`` and ``info``. Thin: parse flags, call the engine's surface
(``pallet.engine.service``), print what docker prints."""

from __future__ import annotations

import time

from pallet.cli.exits import UsageError
from pallet.cli.tables import human_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.cli.context import Context
    from pallet.cli.flags import FlagParser, Namespace
    from pallet.engine.service import DiskUsage, EngineInfo, Service, Summary

__all__ = ["configure_df", "configure_info", "configure_prune"]

_DF_TABLE = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
_DF_TITLES = {
    "Type": "TYPE",
    "TotalCount": "TOTAL",
    "Active": "ACTIVE",
    "Size": "SIZE",
    "Reclaimable": "RECLAIMABLE",
}
_IMAGES_TABLE = (
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}"
    "\t{{.UniqueSize}}\t{{.Containers}}"
)
_IMAGES_TITLES = {
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "ID": "IMAGE ID",
    "CreatedSince": "CREATED",
    "Size": "SIZE",
    "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
    "Containers": "CONTAINERS",
}
_CONTAINERS_TABLE = (
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}"
    "\t{{.Status}}\t{{.Names}}"
)
_CONTAINERS_TITLES = {
    "ID": "CONTAINER ID",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "LocalVolumes": "LOCAL VOLUMES",
    "Size": "SIZE",
    "RunningFor": "CREATED",
    "Status": "STATUS",
    "Names": "NAMES",
}
_VOLUMES_TABLE = "table {{.Name}}\t{{.Links}}\t{{.Size}}"
_VOLUMES_TITLES = {"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}
_CACHE_TABLE = "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}"
_CACHE_TITLES = {
    "ID": "CACHE ID",
    "CacheType": "CACHE TYPE",
    "Size": "SIZE",
    "CreatedSince": "CREATED",
    "LastUsedSince": "LAST USED",
    "UsageCount": "USAGE",
    "Shared": "SHARED",
}


def _engine(ctx: Context) -> Service:
    from pallet.engine.service import Service

    return Service.open(ctx.root, ctx.run_root, leave_open=ctx.exits_after)


def _size(size: int) -> str:
    """go-units' ``HumanSize``, what ``system df`` and the prune totals print: 4 significant digits."""
    return human_size(size, precision=4)


# --- df -------------------------------------------------------------------------------------------


def _summary_row(line: Summary) -> dict[str, object]:
    reclaimable = _size(line.reclaimable)
    if line.size > 0:
        reclaimable += f" ({line.reclaimable * 100 // line.size}%)"
    return {
        "Type": line.type,
        "TotalCount": str(line.total),
        "Active": str(line.active),
        "Size": _size(line.size),
        "Reclaimable": reclaimable,
    }


def _image_rows(usage: DiskUsage) -> list[dict[str, object]]:
    from pallet.cli.images import NONE, created_since

    rows: list[dict[str, object]] = []
    for item in usage.images:
        record = item.image
        tagged = [r for r in record.references if r.tag is not None]
        # docker shows the first tag only
        repository, tag = (tagged[0].familiar_name(), tagged[0].tag) if tagged else (NONE, NONE)
        rows.append(
            {
                "Repository": repository,
                "Tag": tag,
                "ID": record.short_id,
                "CreatedSince": created_since(record.created),
                "Size": human_size(item.size),
                "SharedSize": _size(item.shared_size),
                "UniqueSize": _size(item.unique_size),
                "Containers": str(item.containers),
            }
        )
    return rows


def _container_rows(service: Service, usage: DiskUsage) -> list[dict[str, object]]:
    from pallet.cli.containers import ps_row
    from pallet.errors import PalletError

    now = time.time()
    rows: list[dict[str, object]] = []
    for item in usage.containers:
        try:
            document = service.document(item.container)
        except (PalletError, OSError):  # removed since it was measured
            document = {}
        rows.append(
            {**ps_row(item.container, document, now=now, no_trunc=False), "Size": human_size(item.size)}
        )
    return rows


def _volume_rows(usage: DiskUsage) -> list[dict[str, object]]:
    return [
        {"Name": item.volume.name, "Links": str(item.links), "Size": _size(item.size)}
        for item in usage.volumes
    ]


def _run_df(ctx: Context, args: Namespace) -> int:
    import json

    from pallet.cli.output import print_rows

    if args.verbose and args.format not in (None, "", "table", "json"):
        raise UsageError("--verbose takes no --format template; use --format json", "system df")
    with _engine(ctx) as service:
        usage = service.disk_usage()
        if not args.verbose:
            rows = [_summary_row(line) for line in usage.summary()]
            print_rows(ctx.out, rows, args.format, default=_DF_TABLE, titles=_DF_TITLES)
            return 0
        images = _image_rows(usage)
        containers = _container_rows(service, usage)
    volumes = _volume_rows(usage)
    if args.format == "json":
        document = {"Images": images, "Containers": containers, "Volumes": volumes, "BuildCache": []}
        ctx.out.write(json.dumps(document, separators=(",", ":")) + "\n")
        return 0
    ctx.out.write("Images space usage:\n\n")
    print_rows(ctx.out, images, None, default=_IMAGES_TABLE, titles=_IMAGES_TITLES)
    ctx.out.write("\nContainers space usage:\n\n")
    print_rows(ctx.out, containers, None, default=_CONTAINERS_TABLE, titles=_CONTAINERS_TITLES)
    ctx.out.write("\nLocal Volumes space usage:\n\n")
    print_rows(ctx.out, volumes, None, default=_VOLUMES_TABLE, titles=_VOLUMES_TITLES)
    ctx.out.write(f"\nBuild cache usage: {_size(0)}\n\n")
    print_rows(ctx.out, [], None, default=_CACHE_TABLE, titles=_CACHE_TITLES)
    return 0


def configure_df(parser: FlagParser) -> None:
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show detailed information on space usage"
    )
    parser.add_argument("--format", help="'table', 'json', or a Go template (not with --verbose)")
    parser.set_defaults(run=_run_df)


# --- prune ----------------------------------------------------------------------------------------


def _warning(args: Namespace, filters: list[str]) -> str:
    """Docker's list of what ``system prune`` with these flags removes (and its filters)."""
    items = ["all stopped containers", "all networks not used by at least one container"]
    if args.volumes:
        items.append("all anonymous volumes not used by at least one container")
    if args.all:
        items += ["all images without at least one container associated to them", "all build cache"]
    else:
        items += ["all dangling images", "unused build cache"]
    text = "This will remove:\n" + "".join(f"  - {item}\n" for item in items)
    if filters:
        text += "\n  Items to be pruned will be filtered with:\n" + "".join(f"  - {f}\n" for f in filters)
    return text


def _run_prune(ctx: Context, args: Namespace) -> int:
    from pallet.cli.prune import confirm
    from pallet.engine.service import prune_filters

    filters = prune_filters(args.filter)  # bad filters fail before the question
    if args.volumes:
        filters.volume_filters()
    if not args.force and not confirm(ctx, _warning(args, args.filter)):
        return 0
    with _engine(ctx) as service:
        report = service.prune(all=args.all, volumes=args.volumes, filters=filters)
    sections = [
        ("Deleted Containers", list(report.containers)),
        ("Deleted Networks", list(report.networks)),
        ("Deleted Volumes", list(report.volumes)),
        (
            "Deleted Images",
            [f"untagged: {ref.familiar_string()}" for ref in report.untagged]
            + [f"deleted: {digest}" for digest in report.deleted],
        ),
    ]
    for heading, lines in sections:
        if lines:
            ctx.out.write(f"{heading}:\n" + "".join(f"{line}\n" for line in lines) + "\n")
    ctx.out.write(f"Total reclaimed space: {_size(report.reclaimed)}\n")
    return 0


def configure_prune(parser: FlagParser) -> None:
    from pallet.cli.prune import add_prune_flags

    parser.add_argument(
        "-a", "--all", action="store_true", help="remove all unused images, not just dangling ones"
    )
    parser.add_argument("--volumes", action="store_true", help="prune anonymous volumes")
    add_prune_flags(parser)
    parser.set_defaults(run=_run_prune)


# --- info -----------------------------------------------------------------------------------------


def _info_text(info: EngineInfo) -> str:
    """docker info's server section, with pallet's runtimes, their paths and what is missing."""
    lines = [
        "Server:",
        f" Containers: {info.containers}",
        f"  Running: {info.running}",
        f"  Paused: {info.paused}",
        f"  Stopped: {info.stopped}",
        f" Images: {info.images}",
        " Storage Driver: overlay2",
        f" Cgroup Version: {info.cgroup_version}",
        f" Runtimes: {' '.join(r.name for r in info.runtimes)}",
    ]
    for r in info.runtimes:
        program = " ".join((r.found or r.path, *r.args))
        lines.append(f"  {r.name}: {program}" + ("" if r.found else " (not installed)"))
    lines.append(f" Default Runtime: {info.default_runtime}")
    lines.append(" Security Options:")
    for option in info.security_options:
        fields = dict(part.partition("=")[::2] for part in option.split(","))
        lines.append(f"  {fields.pop('name', option)}")
        lines += [f"   {key.capitalize()}: {value}" for key, value in fields.items()]
    if info.userns_remap:
        lines.append(f" User Namespace Remap: {info.userns_remap}")
    lines += [
        f" Kernel Version: {info.kernel_version}",
        f" Operating System: {info.operating_system}",
        f" Architecture: {info.architecture}",
        f" CPUs: {info.cpus}",
        f" Pallet Root Dir: {info.root}",
        f" Pallet Run Dir: {info.run_root}",
        f" Config File: {info.config_file}",
    ]
    return "\n".join(lines) + "\n"


def _run_info(ctx: Context, args: Namespace) -> int:
    with _engine(ctx) as service:
        info = service.info()
    if args.format == "json":
        import json

        ctx.out.write(json.dumps(info.to_json(), separators=(",", ":")) + "\n")
    elif args.format:
        from pallet.cli.templates import Template

        ctx.out.write(Template(args.format).render(info.to_json()) + "\n")
    else:
        ctx.out.write(_info_text(info))
    return 0


def configure_info(parser: FlagParser) -> None:
    parser.add_argument("-f", "--format", help="'json' or a Go template such as '{{.DefaultRuntime}}'")
    parser.set_defaults(run=_run_info)
