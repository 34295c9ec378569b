"""``pallet system service``: serve the Docker Engine API (``pallet.api``) until SIGTERM.

Thin: parse dockerd's flags (``--host``, ``--tlsverify``/``--tlscacert``/
``--tlscert``/``--tlskey``, ``--log-level``), start the server, wait for a
signal. The default socket is ``docker.sock`` in the engine's run dir
(``/run/pallet/docker.sock``). SIGTERM or SIGINT stops the service: the
sockets are removed, containers run on (each has its own shim).
"""

from __future__ import annotations

from pallet.cli.exits import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.cli.context import Context
    from pallet.cli.flags import FlagParser, Namespace

__all__ = ["configure_service"]

_LEVELS = {"debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40, "fatal": 50}


def configure_service(parser: FlagParser) -> None:
    parser.add_argument("-H", "--host", action="append", default=[], help="unix:///PATH or tcp://HOST:PORT")
    parser.add_argument("--tlsverify", action="store_true", help="require TLS with client certificates")
    parser.add_argument("--tlscacert", default="", help="CA that signs the client certificates")
    parser.add_argument("--tlscert", default="", help="the server's certificate")
    parser.add_argument("--tlskey", default="", help="the server's key")
    parser.add_argument("-l", "--log-level", default="info", help="debug, info, warn, error, fatal")
    parser.set_defaults(run=_run_service)


def _run_service(ctx: Context, args: Namespace) -> int:
    import logging
    import signal
    import threading

    from pallet.api.routes import table
    from pallet.api.server import ApiServer, Tls, default_host
    from pallet.engine.service import Service

    level = _LEVELS.get(args.log_level.lower())
    if level is None:
        raise UsageError(
            f"invalid log level {args.log_level!r}: use debug, info, warn, error or fatal", "service"
        )
    tls = None
    if args.tlsverify or args.tlscacert or args.tlscert or args.tlskey:
        if not (args.tlsverify and args.tlscacert and args.tlscert and args.tlskey):
            raise UsageError("TLS needs all of --tlsverify, --tlscacert, --tlscert and --tlskey", "service")
        tls = Tls(ca=args.tlscacert, cert=args.tlscert, key=args.tlskey)
    logging.basicConfig(stream=ctx.err, level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("pallet.api")
    # open the engine once first: its databases are created or migrated before any request
    Service.open(ctx.root, ctx.run_root).close()
    server = ApiServer(root=ctx.root, run_root=ctx.run_root, routes=table())
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    try:
        server.listen(args.host or [default_host(ctx.run_root)], tls)
        server.start()
        log.info("API listening on %s", ", ".join(server.addresses()))
        while not stop.wait(3600):
            pass
        log.info("stopping: containers run on")
    finally:
        server.stop()
    return 0
