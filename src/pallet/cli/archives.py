"""Archive commands: ``save``, ``load`` and ``import`` (also as ``image save|load|import``).

``save`` writes to ``-o FILE`` atomically (``outfile``: a temp file renamed
into place, and temps of killed saves removed by the next save into that
directory) or streams to stdout when stdout is not a terminal; ``load`` reads ``-i FILE`` or
stdin. Progress lines go to stderr (``-q`` silences them); the result lines
docker scripts parse (``Loaded image: busybox:latest``, the imported id) go
to stdout.
"""

from __future__ import annotations

import os

from pallet.cli.exits import UsageError
from pallet.cli.tables import human_size
from pallet.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.cli.context import Context
    from pallet.cli.flags import FlagParser, Namespace
    from pallet.image.archive import Progress
    from pallet.oci.digest import Digest

__all__ = ["configure_import", "configure_load", "configure_save"]


def _progress(ctx: Context, verb: str, quiet: bool) -> Progress | None:
    if quiet:
        return None

    def report(what: str, digest: Digest, size: int) -> None:
        ctx.err.write(f"{verb} {what} {digest.short}: {human_size(size)}\n")
        ctx.err.flush()

    return report


# --- save -----------------------------------------------------------------------------------------


def _run_save(ctx: Context, args: Namespace) -> int:
    from pallet.engine.service import record_event

    code = _save(ctx, args)
    with ctx.image_store() as store:
        ids = {str(store.resolve(name).id) for name in args.images}
    for image_id in sorted(ids):
        record_event(ctx.root, "image", "save", image_id, {"name": image_id})
    return code


def _save(ctx: Context, args: Namespace) -> int:
    from pallet.image.archive import save

    with ctx.image_store() as store:
        progress = _progress(ctx, "Saved", args.quiet)
        if args.output is None or args.output == "-":
            if _isatty(ctx.stdout_binary):
                raise InvalidArgument(
                    "cowardly refusing to save to a terminal; use the -o flag or redirect stdout"
                )
            save(store, args.images, ctx.stdout_binary, progress=progress)
            ctx.stdout_binary.flush()
            return 0
        target = os.path.abspath(args.output)
        if os.path.isdir(target):
            raise InvalidArgument(f"{args.output} is a directory; give a file name to -o")
        from pallet.cli.outfile import atomic_output

        with atomic_output(target) as out:
            save(store, args.images, out, progress=progress)
    return 0


def configure_save(parser: FlagParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("-o", "--output", help="write to a file instead of STDOUT")
    parser.add_argument("-q", "--quiet", action="store_true", help="print no progress")
    parser.set_defaults(run=_run_save)


# --- load -----------------------------------------------------------------------------------------


def _run_load(ctx: Context, args: Namespace) -> int:
    from pallet.image.archive import load

    if args.input is None or args.input == "-":
        stream = ctx.stdin
        if _isatty(stream):
            raise InvalidArgument(
                "requested load from stdin, but stdin is a terminal; use -i FILE or redirect stdin"
            )
        source = None
    else:
        source = open(args.input, "rb")  # noqa: SIM115 - closed below
        stream = source
    try:
        with ctx.image_store() as store:
            loaded = load(store, stream, progress=_progress(ctx, "Loading", args.quiet))
    finally:
        if source is not None:
            source.close()
    from pallet.engine.service import record_event

    for item in loaded:
        for loaded_name in item.names or (item.image.id,):
            shown = str(loaded_name) if isinstance(loaded_name, str) else loaded_name.familiar_string()
            record_event(ctx.root, "image", "load", shown, {"name": shown})
        for name, old in item.replaced:
            ctx.out.write(
                f"The image {name.familiar_string()} already exists, renaming the old one with ID {old} to empty string\n"
            )
        if item.names:
            for name in item.names:
                ctx.out.write(f"Loaded image: {name.familiar_string()}\n")
        else:
            ctx.out.write(f"Loaded image ID: {item.image.id}\n")
    return 0


def _isatty(stream: object) -> bool:
    try:
        return os.isatty(stream.fileno())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False


def configure_load(parser: FlagParser) -> None:
    parser.add_argument("-i", "--input", help="read from a tar archive file instead of STDIN")
    parser.add_argument("-q", "--quiet", action="store_true", help="suppress the load output")
    parser.set_defaults(run=_run_load)


# --- import ---------------------------------------------------------------------------------------


def _run_import(ctx: Context, args: Namespace) -> int:
    from pallet.image.importer import import_tarball
    from pallet.image.platforms import parse_platform
    from pallet.oci.reference import parse

    ref = parse(args.reference) if args.reference else None  # a bad name fails before reading anything
    if ref is not None and ref.digest is not None:
        raise UsageError(f'"{args.reference}": an imported image is named by a tag, not a digest', "import")
    platform = parse_platform(args.platform) if args.platform else None
    if args.file == "-":
        if _isatty(ctx.stdin):
            raise InvalidArgument("import from stdin, but stdin is a terminal; give a file or redirect stdin")
        stream, source, close = ctx.stdin, "-", False
    else:
        stream, source, close = open(args.file, "rb"), args.file, True  # noqa: SIM115 - closed below
    try:
        with ctx.image_store() as store:
            record = import_tarball(
                store,
                stream,
                source=source,
                ref=ref,
                changes=args.change,
                message=args.message,
                platform=platform,
            )
    finally:
        if close:
            stream.close()
    from pallet.engine.service import record_event

    record_event(ctx.root, "image", "import", str(record.id), {"name": str(record.id)})
    ctx.out.write(f"{record.id}\n")
    return 0


def configure_import(parser: FlagParser) -> None:
    parser.add_argument("file", metavar="file|-", help="a root filesystem tarball, or - for STDIN")
    parser.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")
    parser.add_argument(
        "-c", "--change", action="append", default=[], help="apply a Dockerfile instruction (CMD, ENV, ...)"
    )
    parser.add_argument("-m", "--message", help="set the commit message of the imported image")
    parser.add_argument("--platform", help="set the platform, e.g. linux/amd64")
    parser.set_defaults(run=_run_import)
