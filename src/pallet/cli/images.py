"""Image commands: ``images``/``image ls``, ``image inspect``, ``tag``, ``rmi``/``image rm``,
``image history`` and ``image prune``. Thin: parse flags, call the image store, print
what docker prints.
"""

from __future__ import annotations

import re
import time

from pallet.cli.exits import UsageError
from pallet.cli.flags import parse_bool
from pallet.cli.output import inspect_each, print_rows
from pallet.cli.prune import add_prune_flags, confirm, write_report
from pallet.cli.tables import human_duration, human_size
from pallet.errors import PalletError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pallet.cli.context import Context
    from pallet.cli.flags import FlagParser, Namespace
    from pallet.image.store import ImageRecord, ImageStore
    from pallet.oci.reference import Reference

__all__ = [
    "configure_history",
    "configure_inspect",
    "configure_ls",
    "configure_prune",
    "configure_rm",
    "configure_tag",
    "created_since",
]

NONE = "<none>"
_LS_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
_LS_TABLE_DIGESTS = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
_LS_TITLES = {
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "ID": "IMAGE ID",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
}
_HISTORY_TABLE = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
_HISTORY_TITLES = {
    "ID": "IMAGE",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "CreatedBy": "CREATED BY",
    "Size": "SIZE",
    "Comment": "COMMENT",
}
_CREATED_BY_WIDTH = 45


def _handler(run: Callable[[Context, Namespace, ImageStore], int]) -> Callable[..., int]:
    """Wrap a handler so it gets the store, closed whatever happens."""

    def handler(ctx: Context, args: Namespace) -> int:
        with ctx.image_store() as store:
            return run(ctx, args, store)

    return handler


# --- time -----------------------------------------------------------------------------------------


def _parse_time(text: str | None) -> float | None:
    """Seconds since the epoch of an RFC 3339 time as images carry it (nanoseconds allowed)."""
    if not text:
        return None
    from datetime import datetime

    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text.strip())
    if match is None:
        return None
    base, frac, zone = match.groups()
    try:
        stamp = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone)).timestamp()
    except ValueError:
        return None
    return stamp + (float(frac) if frac else 0.0)


def created_since(text: str | None) -> str:
    """``2 weeks ago`` for an image's ``created`` time, ``N/A`` without one."""
    stamp = _parse_time(text)
    if stamp is None:
        return "N/A"
    return human_duration(max(0.0, time.time() - stamp)) + " ago"


def _created_at(text: str | None) -> str:
    stamp = _parse_time(text)
    if stamp is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(stamp))


# --- ls -------------------------------------------------------------------------------------------


def _glob(pattern: str) -> re.Pattern[str]:
    """Go's ``path.Match`` as a regex: ``*`` and ``?`` stop at ``/``; ``[...]`` classes kept."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise UsageError(f'invalid reference filter "{pattern}": unterminated [', "images")
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


class _Filters:
    """``--filter`` of ``images``: ``dangling=true|false``, ``reference=PATTERN`` (repeatable: any matches)."""

    def __init__(self, values: list[str], positional: str | None) -> None:
        self.dangling: bool | None = None
        self.references: list[re.Pattern[str]] = []
        for value in values:
            key, sep, arg = value.partition("=")
            key = key.strip().lower()
            if not sep:
                raise UsageError(f'bad format of filter "{value}" (expected name=value)', "images")
            if key == "dangling":
                if arg.lower() not in ("true", "false", "1", "0"):
                    raise UsageError(f'invalid filter "dangling={arg}": use true or false', "images")
                self.dangling = arg.lower() in ("true", "1")
            elif key == "reference":
                self.references.append(_glob(arg))
            else:
                raise UsageError(
                    f'invalid filter "{key}"; images filters are dangling and reference', "images"
                )
        if positional:
            self.references.append(_glob(positional))

    def image_ok(self, record: ImageRecord) -> bool:
        return self.dangling is None or record.dangling == self.dangling

    def ref_ok(self, ref: Reference | None) -> bool:
        if not self.references:
            return True
        if ref is None:
            return False
        names = (ref.familiar_name(), ref.familiar_string())
        return any(p.fullmatch(n) for p in self.references for n in names)


def _digest_of(record: ImageRecord, repository: str) -> str:
    for ref in record.references:
        if ref.digest is not None and ref.name == repository:
            return str(ref.digest)
    return NONE


def _ls_rows(
    store: ImageStore, records: list[ImageRecord], filters: _Filters, no_trunc: bool
) -> list[dict[str, object]]:
    from pallet.engine.service import image_size

    rows: list[dict[str, object]] = []
    for record in records:
        if not filters.image_ok(record):
            continue
        size = human_size(image_size(store, record))
        base = {
            "Containers": "N/A",
            "CreatedAt": _created_at(record.created),
            "CreatedSince": created_since(record.created),
            "ID": str(record.id) if no_trunc else record.short_id,
            "SharedSize": "N/A",
            "Size": size,
            "UniqueSize": "N/A",
            "VirtualSize": size,
        }
        tagged = [r for r in record.references if r.tag is not None]
        digested = [r for r in record.references if r.tag is None and r.digest is not None]
        if not record.references:
            if filters.ref_ok(None):
                rows.append({**base, "Repository": NONE, "Tag": NONE, "Digest": NONE})
            continue
        for ref in tagged:
            if filters.ref_ok(ref):
                rows.append(
                    {
                        **base,
                        "Repository": ref.familiar_name(),
                        "Tag": ref.tag,
                        "Digest": _digest_of(record, ref.name),
                    }
                )
        for ref in digested:
            if not any(t.name == ref.name for t in tagged) and filters.ref_ok(ref):
                rows.append(
                    {**base, "Repository": ref.familiar_name(), "Tag": NONE, "Digest": str(ref.digest)}
                )
    return rows


def _run_ls(ctx: Context, args: Namespace, store: ImageStore) -> int:
    filters = _Filters(args.filter, args.repository)
    records = sorted(
        store.list_images(), key=lambda r: (_parse_time(r.created) or 0.0, r.added), reverse=True
    )
    if not args.all:  # docker: a build's intermediate images only with -a
        hidden = store.intermediate_ids()
        records = [r for r in records if str(r.id) not in hidden]
    rows = _ls_rows(store, records, filters, args.no_trunc)
    fmt = "{{.ID}}" if args.quiet else args.format
    print_rows(
        ctx.out, rows, fmt, default=_LS_TABLE_DIGESTS if args.digests else _LS_TABLE, titles=_LS_TITLES
    )
    return 0


def configure_ls(parser: FlagParser) -> None:
    parser.add_argument(
        "repository", nargs="?", metavar="REPOSITORY[:TAG]", help="only images of this repository"
    )
    parser.add_argument(
        "-a", "--all", action="store_true", help="show all images (default hides intermediate images)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
    parser.add_argument("--digests", action="store_true", help="show digests")
    parser.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    parser.add_argument(
        "-f",
        "--filter",
        action="append",
        default=[],
        help="filter output: dangling=true|false, reference=PATTERN",
    )
    parser.add_argument(
        "--format", help="'table', 'json', 'table TEMPLATE' or a Go template such as '{{.ID}}'"
    )
    parser.set_defaults(run=_handler(_run_ls))


# --- inspect --------------------------------------------------------------------------------------


def _run_inspect(ctx: Context, args: Namespace, store: ImageStore) -> int:
    from pallet.engine.service import inspect_image

    return inspect_each(ctx, args.images, lambda name: inspect_image(store, name), args.format)


def configure_inspect(parser: FlagParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("-f", "--format", help="a Go template such as '{{.Id}}', or 'json'")
    parser.set_defaults(run=_handler(_run_inspect))


# --- tag ------------------------------------------------------------------------------------------


def _run_tag(ctx: Context, args: Namespace, store: ImageStore) -> int:
    from pallet.engine.service import record_event

    name = store.tag(args.source, args.target).familiar_string()
    record_event(ctx.root, "image", "tag", str(store.resolve(name).id), {"name": name})
    return 0


def configure_tag(parser: FlagParser) -> None:
    parser.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    parser.add_argument("target", metavar="TARGET_IMAGE[:TAG]")
    parser.set_defaults(run=_handler(_run_tag))


# --- rmi ------------------------------------------------------------------------------------------


def _run_rm(ctx: Context, args: Namespace, store: ImageStore) -> int:
    from pallet.engine.service import record_event

    failed = 0
    for name in args.images:
        try:
            report = store.remove_image(name, force=args.force)
        except PalletError as e:
            failed += 1
            ctx.err.write(f"pallet: {e}\n")
            continue
        for ref in report.untagged:
            ctx.out.write(f"Untagged: {ref.familiar_string()}\n")
            record_event(ctx.root, "image", "untag", ref.familiar_string(), {"name": ref.familiar_string()})
        for digest in report.deleted:
            ctx.out.write(f"Deleted: {digest}\n")
            ctx.out.writelines(f"Deleted: {layer}\n" for layer in report.layers_of(digest))
            record_event(ctx.root, "image", "delete", str(digest), {"name": str(digest)})
    return 1 if failed else 0


def configure_rm(parser: FlagParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("-f", "--force", action="store_true", help="force removal of the image")
    parser.add_argument("--no-prune", action="store_true", help="accepted for docker compatibility")
    parser.set_defaults(run=_handler(_run_rm))


# --- history --------------------------------------------------------------------------------------


def _run_history(ctx: Context, args: Namespace, store: ImageStore) -> int:
    rows = []
    for entry in store.history(args.image):
        created_by = entry.created_by or ""
        if not args.no_trunc and len(created_by) > _CREATED_BY_WIDTH:
            created_by = created_by[: _CREATED_BY_WIDTH - 1] + "…"
        image_id = "<missing>"
        if entry.image_id is not None:
            image_id = str(entry.image_id) if args.no_trunc else entry.image_id.short
        rows.append(
            {
                "ID": image_id,
                "CreatedSince": created_since(entry.created),
                "CreatedAt": entry.created or "",
                "CreatedBy": created_by,
                "Size": human_size(entry.size) if args.human else str(entry.size),
                "Comment": entry.comment or "",
            }
        )
    fmt = "{{.ID}}" if args.quiet else args.format
    print_rows(ctx.out, rows, fmt, default=_HISTORY_TABLE, titles=_HISTORY_TITLES)
    return 0


def configure_history(parser: FlagParser) -> None:
    parser.add_argument("image", metavar="IMAGE")
    parser.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    parser.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
    parser.add_argument(
        "-H",
        "--human",
        type=parse_bool,
        nargs="?",
        const=True,
        default=True,
        help="sizes and dates for humans",
    )
    parser.add_argument("--format", help="'table', 'json', or a Go template")
    parser.set_defaults(run=_handler(_run_history))


# --- prune ----------------------------------------------------------------------------------------


def _run_prune(ctx: Context, args: Namespace) -> int:
    from pallet.engine.service import Service, prune_filters

    filters = prune_filters(args.filter)  # bad filters fail before the question
    if not args.force:
        what = (
            "all images without at least one container associated to them"
            if args.all
            else "all dangling images"
        )
        if not confirm(ctx, f"This will remove {what}."):
            return 0
    with Service.open(ctx.root, ctx.run_root, leave_open=ctx.exits_after) as service:
        report = service.prune_images(all=args.all, filters=filters)
    lines = [f"untagged: {ref.familiar_string()}" for ref in report.untagged]
    lines += [f"deleted: {digest}" for digest in report.deleted]
    write_report(ctx.out, "Deleted Images", lines, human_size(report.reclaimed, precision=4))
    return 0


def configure_prune(parser: FlagParser) -> None:
    parser.add_argument(
        "-a",
        "--all",
        action="store_true",
        help="remove all images without a container, not just dangling ones",
    )
    add_prune_flags(parser)
    parser.set_defaults(run=_run_prune)
