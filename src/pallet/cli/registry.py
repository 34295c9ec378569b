"""``pallet registry serve``: run pallet's own registry (the OCI distribution spec on a directory);
``pallet registry garbage-collect``: delete what its manifests no longer reference.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.cli.context import Context
    from pallet.cli.flags import FlagParser, Namespace

__all__ = ["configure_garbage_collect", "configure_serve"]


def configure_serve(parser: FlagParser) -> None:
    parser.add_argument(
        "--addr", default="127.0.0.1:5000", help="HOST:PORT to listen on (default 127.0.0.1:5000)"
    )
    parser.add_argument(
        "--storage", required=True, help="directory holding the registry's blobs and manifests"
    )
    parser.add_argument(
        "--auth",
        choices=("none", "htpasswd", "token"),
        default="none",
        help="none; htpasswd (HTTP basic); token (bearer tokens from this server's /token)",
    )
    parser.add_argument(
        "--htpasswd", help="htpasswd file with bcrypt entries (htpasswd -B), for --auth htpasswd|token"
    )
    parser.add_argument(
        "--realm", default="", help="basic-auth realm, or the token endpoint URL for --auth token"
    )
    parser.add_argument("--tls-cert", help="PEM certificate (chain) to serve HTTPS with")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument(
        "--header-timeout",
        type=float,
        metavar="SECONDS",
        help="close a connection whose request line and headers take longer (default 60)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        metavar="N",
        help="serve at most N connections at once; more wait to be accepted (default 256)",
    )
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warn", "error"),
        default="warn",
        help="info logs one line per request (default warn: start and stop only)",
    )
    parser.set_defaults(run=run_serve)


def run_serve(ctx: Context, args: Namespace) -> int:
    from pallet.registry.server.serve import build_server, run
    from pallet.registry.server.server import DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS

    server = build_server(
        addr=args.addr,
        storage_dir=args.storage,
        auth=args.auth,
        htpasswd=args.htpasswd,
        realm=args.realm,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        log_level=args.log_level,
        log_stream=ctx.err,
        header_timeout=DEFAULT_HEADER_TIMEOUT if args.header_timeout is None else args.header_timeout,
        max_connections=DEFAULT_MAX_CONNECTIONS if args.max_connections is None else args.max_connections,
    )
    run(server)
    return 0


def configure_garbage_collect(parser: FlagParser) -> None:
    parser.description = (
        "Delete the blobs no manifest of any repository references (docker-registry's "
        "garbage-collect). It must not run while the registry serves, as with docker-registry: "
        "pallet refuses to while a pallet registry serve holds the storage."
    )
    parser.add_argument(
        "storage",
        metavar="STORAGE-DIR|CONFIG",
        help="the --storage directory of pallet registry serve, or a YAML config whose "
        "storage.filesystem.rootdirectory names it",
    )
    parser.add_argument(
        "-d", "--dry-run", action="store_true", help="print what would be deleted and delete nothing"
    )
    parser.add_argument(
        "-m",
        "--delete-untagged",
        action="store_true",
        help="also delete manifests no tag points at (and no tagged index includes)",
    )
    parser.set_defaults(run=run_garbage_collect)


def run_garbage_collect(ctx: Context, args: Namespace) -> int:
    from pallet.errors import FailedPrecondition
    from pallet.registry.server.gc import collect, storage_dir_of
    from pallet.registry.server.storage import Storage

    storage = Storage(storage_dir_of(args.storage))
    lock = storage.lock()
    if not lock.acquire(blocking=False):
        raise FailedPrecondition(
            f"the registry storage {storage.root} is being served (or collected) by another process; "
            "stop the server first: garbage collection must not run while the registry serves"
        )

    def emit(line: str) -> None:
        ctx.out.write(line + "\n")

    try:
        collect(storage, dry_run=args.dry_run, delete_untagged=args.delete_untagged, emit=emit)
    finally:
        lock.release()
    return 0
