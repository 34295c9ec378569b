"""``pallet build`` and ``pallet builder prune``: docker's flags, parsed here, the work in ``pallet.build``."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.cli.context import Context
    from pallet.cli.flags import FlagParser, Namespace

__all__ = ["configure_build", "configure_prune"]


def configure_build(parser: FlagParser) -> None:
    add = parser.add_argument
    add("context", metavar="PATH | URL | -")
    add("-t", "--tag", action="append", default=[], help="name and optionally a tag (name:tag); repeatable")
    add("-f", "--file", help="name of the Dockerfile (default: PATH/Dockerfile; - reads it from stdin)")
    add("--target", help="set the target build stage to build")
    add("--build-arg", action="append", default=[], help="set build-time variables (NAME=VALUE or NAME)")
    add("--label", action="append", default=[], help="set metadata for an image (KEY=VALUE)")
    add("--platform", help="set the target platform (only linux/amd64)")
    add("--iidfile", help="write the image ID to the file")
    add(
        "-q",
        "--quiet",
        action="store_true",
        help="suppress the build output and print the image ID on success",
    )
    add(
        "--progress",
        default="auto",
        choices=("auto", "plain", "tty", "quiet"),
        help="type of progress output",
    )
    add(
        "-o",
        "--output",
        action="append",
        default=[],
        help="output destination (type=local,dest=DIR or type=tar,dest=FILE)",
    )
    add("--network", default="default", help="networking mode for the RUN instructions (default, none, host)")
    add("--pull", action="store_true", help="always attempt to pull all referenced images")
    add("--no-cache", action="store_true", help="do not use cache when building the image")
    add("--cache-from", action="append", default=[], help="images to consider as cache sources")
    add("--secret", action="append", default=[], help="secret to expose to the build (id=ID,src=FILE)")
    parser.set_defaults(run=run_build)


def _pairs(values: list[str], flag: str, *, environ: bool) -> dict[str, str]:
    from pallet.cli.exits import UsageError

    out: dict[str, str] = {}
    for value in values:
        key, has_value, val = value.partition("=")
        if not key:
            raise UsageError(f'invalid argument "{value}" for "{flag}" flag: a name is required', "build")
        if not has_value:
            if not environ:
                raise UsageError(f'invalid argument "{value}" for "{flag}" flag: use KEY=VALUE', "build")
            if key not in os.environ:
                continue  # docker: NAME alone takes the environment's value, or nothing
            val = os.environ[key]
        out[key] = val
    return out


def _secrets(values: list[str]) -> dict[str, str]:
    from pallet.cli.exits import UsageError

    out: dict[str, str] = {}
    for value in values:
        fields = dict(part.partition("=")[::2] for part in value.split(","))
        ident = fields.get("id", "")
        source = fields.get("src") or fields.get("source") or ""
        env = fields.get("env", "")
        if not ident:
            raise UsageError(f'invalid secret "{value}": id= is required', "build")
        if not source and env:
            if env not in os.environ:
                raise UsageError(f'invalid secret "{value}": environment variable {env} is not set', "build")
            source = f"env:{env}"
        if not source:
            source = ident if os.path.exists(ident) else ""
        if not source:
            raise UsageError(f'invalid secret "{value}": src=FILE is required', "build")
        if not source.startswith("env:") and not os.path.isfile(source):
            raise UsageError(f'invalid secret "{value}": {source} is not a file', "build")
        out[ident] = source
    return out


def run_build(ctx: Context, args: Namespace) -> int:
    import tempfile

    from pallet.build.builder import build
    from pallet.build.request import BuildRequest, parse_output

    secrets = _secrets(args.secret)
    temps: list[str] = []
    try:
        for ident, source in list(secrets.items()):
            if source.startswith("env:"):
                # a secret from the environment: a private file for the build's life
                fd, path = tempfile.mkstemp(prefix="pallet-secret-")
                with os.fdopen(fd, "w") as f:
                    f.write(os.environ[source[4:]])
                temps.append(path)
                secrets[ident] = path
        request = BuildRequest(
            context=args.context,
            dockerfile=args.file,
            tags=tuple(args.tag),
            target=args.target,
            build_args=_pairs(args.build_arg, "--build-arg", environ=True),
            labels=_pairs(args.label, "--label", environ=False),
            platform=args.platform,
            quiet=args.quiet,
            progress=args.progress,
            outputs=tuple(parse_output(o) for o in args.output),
            network=args.network,
            pull=args.pull,
            no_cache=args.no_cache,
            cache_from=tuple(args.cache_from),
            secrets=secrets,
        )
        quiet = args.quiet or args.progress == "quiet"
        # BuildKit writes its progress to stderr; the image id (-q) alone goes to stdout
        result = build(
            request, root=ctx.root, run_root=ctx.run_root, out=None if quiet else ctx.err, stdin=ctx.stdin
        )
    finally:
        for path in temps:
            os.unlink(path)
    if args.iidfile:
        from pallet.linux.atomicfile import write_atomic

        write_atomic(args.iidfile, result.image_id.encode())
    if args.quiet:
        ctx.out.write(result.image_id + "\n")
    return 0


def configure_prune(parser: FlagParser) -> None:
    from pallet.cli.prune import add_prune_flags

    parser.add_argument(
        "-a", "--all", action="store_true", help="remove all unused build cache, not just dangling ones"
    )
    add_prune_flags(parser)
    parser.set_defaults(run=run_prune)


def run_prune(ctx: Context, args: Namespace) -> int:
    from pallet.build.prune import prune_cache
    from pallet.cli.prune import confirm
    from pallet.cli.tables import human_size
    from pallet.engine.service import prune_filters

    filters = prune_filters(args.filter)
    if not args.force:
        what = "all build cache" if args.all else "all dangling build cache"
        if not confirm(ctx, f"This will remove {what}."):
            return 0
    report = prune_cache(ctx.root, ctx.run_root, all=args.all, older_than=filters.until)
    if report.images:
        ctx.out.write("Deleted build cache objects:\n" + "".join(f"{i}\n" for i in report.images) + "\n")
    ctx.out.write(f"Total:\t{human_size(report.bytes)}\n")
    return 0
