"""``pallet pull``, ``push``, ``login``, ``logout``: argument parsing only; the work is in ``pallet.registry.client``.

Failures end as one line with the exit code of their kind (see ``pallet.cli.exits``
and ``pallet.registry.client.errors``): unknown image 66, unauthorized 77,
registry unreachable 69, TLS failure 76, digest mismatch 65.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from pallet.cli.context import Context
    from pallet.cli.flags import FlagParser, Namespace
    from pallet.image.store import ImageStore
    from pallet.registry.client.progress import Progress
    from pallet.registry.client.sources import BlobSources
    from pallet.registry.client.transport import Transport

__all__ = ["configure_login", "configure_logout", "configure_pull", "configure_push"]


def _insecure_flag(parser: FlagParser) -> None:
    parser.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="allow plain HTTP or unverified TLS for this registry (repeatable; also registries.json)",
    )


def configure_pull(parser: FlagParser) -> None:
    parser.add_argument(
        "--platform", help="os/arch[/variant] to pull from a multi-platform image (default: this host)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the image name")
    parser.add_argument(
        "-a", "--all-tags", action="store_true", help="pull every tagged image of the repository"
    )
    _insecure_flag(parser)
    parser.add_argument("reference", metavar="NAME[:TAG|@DIGEST]")
    parser.set_defaults(run=run_pull)


def configure_push(parser: FlagParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the pushed name")
    _insecure_flag(parser)
    parser.add_argument("reference", metavar="NAME[:TAG]")
    parser.set_defaults(run=run_push)


def configure_login(parser: FlagParser) -> None:
    parser.add_argument("-u", "--username")
    parser.add_argument("-p", "--password")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    _insecure_flag(parser)
    parser.add_argument("server", nargs="?", default="docker.io", metavar="SERVER")
    parser.set_defaults(run=run_login)


def configure_logout(parser: FlagParser) -> None:
    parser.add_argument("server", nargs="?", default="docker.io", metavar="SERVER")
    parser.set_defaults(run=run_logout)


def _transport(ctx: Context, extra: list[str]) -> Transport:
    from pallet.registry.client import hosts
    from pallet.registry.client.transport import Transport

    return Transport(insecure=hosts.insecure_list(Path(ctx.root), tuple(extra)))


@contextmanager
def _transfer(ctx: Context, args: Namespace) -> Iterator[tuple[ImageStore, Transport, Progress, BlobSources]]:
    """What a pull or push works with, all closed at the end: the store, transport, progress and blob sources."""
    from pallet.image.store import ImageStore
    from pallet.registry.client.progress import open_progress
    from pallet.registry.client.sources import BlobSources

    transport = _transport(ctx, args.insecure_registry)
    progress = open_progress(ctx.out, quiet=args.quiet)
    root = Path(ctx.root)
    try:
        with ImageStore.open(root) as store:
            sources = BlobSources(root)
            try:
                yield store, transport, progress, sources
            finally:
                sources.close()
    finally:
        progress.close()
        transport.close()


def run_pull(ctx: Context, args: Namespace) -> int:
    from pallet.cli.exits import UsageError
    from pallet.engine.service import record_event
    from pallet.oci.reference import parse
    from pallet.registry.client import credentials
    from pallet.registry.client.platforms import parse_platform
    from pallet.registry.client.pull import all_tags, pull

    reference = parse(args.reference, default_tag=not args.all_tags)
    if args.all_tags and (reference.tag or reference.digest):
        raise UsageError("tag can't be used with --all-tags/-a", "pull")
    platform = parse_platform(args.platform) if args.platform else None
    with _transfer(ctx, args) as (store, transport, progress, sources):
        creds = credentials.lookup(reference.domain)
        if args.all_tags:
            refs = [reference.with_tag(t) for t in all_tags(transport, reference, creds)]
        else:
            refs = [reference]
        for ref in refs:
            pull(
                store,
                ref,
                transport=transport,
                credentials=creds,
                progress=progress,
                platform=platform,
                sources=sources,
            )
            record_event(ctx.root, "image", "pull", ref.familiar_string(), {"name": ref.familiar_string()})
    return 0


def run_push(ctx: Context, args: Namespace) -> int:
    from pallet.engine.service import record_event
    from pallet.oci.reference import parse
    from pallet.registry.client import credentials
    from pallet.registry.client.push import push

    target = parse(args.reference)
    with _transfer(ctx, args) as (store, transport, progress, sources):
        push(
            store,
            args.reference,
            target,
            transport=transport,
            credentials=credentials.lookup(target.domain),
            progress=progress,
            sources=sources,
        )
    record_event(ctx.root, "image", "push", target.familiar_string(), {"name": target.familiar_string()})
    return 0


def run_login(ctx: Context, args: Namespace) -> int:
    from pallet.cli.exits import UsageError
    from pallet.registry.client import credentials, hosts
    from pallet.registry.client.repository import Registry

    server = hosts.normalize(args.server)
    username = args.username
    password = args.password
    if args.password_stdin:
        if password:
            raise UsageError("--password and --password-stdin are mutually exclusive", "login")
        if not username:
            raise UsageError("must provide --username with --password-stdin", "login")
        password = ctx.stdin.read().decode().rstrip("\r\n")
    elif password:
        ctx.err.write("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    if not username:
        ctx.out.write("Username: ")
        ctx.out.flush()
        username = ctx.stdin.readline().decode().strip()
    if not password:
        import getpass

        password = getpass.getpass("Password: ")
    if not username or not password:
        raise UsageError("a username and a password are required", "login")
    creds = credentials.Credentials(username=username, password=password)
    transport = _transport(ctx, args.insecure_registry)
    try:
        Registry(transport, server, creds).login_check()
    finally:
        transport.close()
    if credentials.store(server, creds) is None:
        ctx.err.write(
            f"WARNING! Your password will be stored unencrypted in {credentials.config_path()}.\n"
            'Configure a credential helper ("credsStore" in that file) to remove this warning.\n'
        )
    ctx.out.write("Login Succeeded\n")
    return 0


def run_logout(ctx: Context, args: Namespace) -> int:
    from pallet.registry.client import credentials, hosts

    server = hosts.normalize(args.server)
    if credentials.erase(server):
        ctx.out.write(f"Removing login credentials for {hosts.config_key(server)}\n")
    else:
        ctx.out.write(f"Not logged in to {hosts.config_key(server)}\n")
    return 0
