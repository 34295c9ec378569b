"""``pallet``: parse the global flags, find the command in the lazy table, run it.

Only the module of the command that runs is imported (see ``commands.py``).
Every error ends in ``exits.report``: one line on stderr, docker's exit codes.
"""

from __future__ import annotations

import os
import sys

from pallet.cli.commands import COMMANDS, GROUPS, lookup
from pallet.cli.context import Context
from pallet.cli.exits import EXIT_PIPE, UsageError, report
from pallet.cli.flags import REMAINDER, FlagParser, HelpRequested
from pallet.errors import PalletError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import BinaryIO, NoReturn, TextIO

__all__ = ["CommandParser", "main", "run"]

DEFAULT_ROOT = "/var/lib/pallet"
DEFAULT_RUN_ROOT = "/run/pallet"


#: the parser of a command: errors raise ``UsageError`` naming the command, help goes to ``out``
CommandParser = FlagParser


def _global_parser() -> FlagParser:
    # global flags come before the command, as docker's; the command ends them
    parser = FlagParser("", add_help=False)
    # defaults: the engine's (engine_paths), which depend on who runs pallet (rootless)
    parser.add_argument("--root", default="")
    parser.add_argument("--run-root", default="")
    parser.add_argument("--debug", "-D", action="store_true")
    parser.add_argument("--help", "-h", action="store_true")
    parser.add_argument("--version", "-v", action="store_true")
    parser.add_argument("command", nargs="?")
    parser.add_argument("args", nargs=REMAINDER)
    return parser


def _usage() -> str:
    lines = [
        "Usage:  pallet [OPTIONS] COMMAND",
        "",
        "A container engine in Python, daemonless, with docker's verbs",
        "",
        "Global Options:",
        f"  --root DIR       where images and containers live (default {DEFAULT_ROOT}, or $PALLET_ROOT;",
        "                   rootless: $XDG_DATA_HOME/pallet)",
        f"  --run-root DIR   runtime state, locks (default {DEFAULT_RUN_ROOT}, or $PALLET_RUN;",
        "                   rootless: $XDG_RUNTIME_DIR/pallet)",
        "  -D, --debug      print tracebacks with errors",
        "  -v, --version    print the version and exit",
        "",
        "Management Commands:",
    ]
    lines += [f"  {name:<10} {summary}" for name, (summary, _) in sorted(GROUPS.items())]
    lines += ["", "Commands:"]
    lines += [f"  {name:<10} {cmd.summary}" for name, cmd in sorted(COMMANDS.items())]
    lines += ["", "Run 'pallet COMMAND --help' for more information on a command."]
    return "\n".join(lines) + "\n"


def _group_usage(group: str) -> str:
    summary, verbs = GROUPS[group]
    lines = [f"Usage:  pallet {group} COMMAND", "", summary, "", "Commands:"]
    lines += [f"  {name:<10} {cmd.summary}" for name, cmd in sorted(verbs.items())]
    lines += ["", f"Run 'pallet {group} COMMAND --help' for more information on a command."]
    return "\n".join(lines) + "\n"


def _run(
    argv: Sequence[str], ctx_streams: tuple[TextIO, TextIO, BinaryIO, BinaryIO], exits_after: bool = False
) -> tuple[int, bool]:
    out, err, stdin, stdout_binary = ctx_streams
    opts = _global_parser().parse_args(argv)
    if opts.version:
        from importlib.metadata import PackageNotFoundError, version

        try:
            out.write(f"pallet version {version('pallet')}\n")
        except PackageNotFoundError:
            out.write("pallet version unknown (not installed)\n")
        return 0, opts.debug
    if opts.command is None:
        out.write(_usage())
        return 0, opts.debug
    args: list[str] = list(opts.args)
    group, verb = "", opts.command
    if verb in GROUPS:
        if not args or args[0] in ("--help", "-h"):
            out.write(_group_usage(verb))
            return 0, opts.debug
        group, verb = verb, args.pop(0)
    command = lookup(group, verb)
    name = f"{group} {verb}".strip()
    if command is None:
        raise UsageError(f'unknown command "{name}"', group)
    parser = FlagParser(name, out, description=command.summary)
    configure = getattr(__import__(command.module, fromlist=[command.function]), command.function)
    configure(parser)
    if opts.help:
        args.insert(0, "--help")
    try:
        ns = parser.parse_args(args)
    except HelpRequested:  # the command's help is printed on `out`
        return 0, opts.debug
    from pallet.engine.service import engine_paths, sweep_owned

    def warn(line: str) -> None:
        err.write(line + "\n")

    root, run_root = engine_paths(opts.root, opts.run_root, warn)
    sweep_owned(root, run_root)  # a killed build's step containers go before this command looks
    ctx = Context(
        root=root,
        run_root=run_root,
        debug=opts.debug,
        out=out,
        err=err,
        stdin=stdin,
        stdout_binary=stdout_binary,
        exits_after=exits_after,
    )
    try:
        code: int = ns.run(ctx, ns)
    except PalletError as error:
        return report(error, err, debug=opts.debug, failure=ctx.failure), opts.debug
    return code, opts.debug


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stdin: BinaryIO | None = None,
    stdout_binary: BinaryIO | None = None,
    exits_after: bool = False,
) -> int:
    """Run ``pallet`` with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    The stream arguments let tests run a command in-process and capture what it
    prints; by default they are the process's own. ``exits_after``: the caller
    ends the process right after (``run``).
    """
    args = sys.argv[1:] if argv is None else list(argv)
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    streams = (
        out,
        err,
        sys.stdin.buffer if stdin is None else stdin,
        sys.stdout.buffer if stdout_binary is None else stdout_binary,
    )
    debug = "--debug" in args or "-D" in args
    try:
        code, debug = _run(args, streams, exits_after)
        out.flush()
    except BrokenPipeError:
        # the reader went away (`pallet images | head -1`): stop quietly, and
        # keep the interpreter from complaining when it flushes stdout at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
        return EXIT_PIPE
    except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001 - the one place every failure becomes one line
        return report(error, err, debug=debug)
    return code


def run() -> NoReturn:
    """The ``pallet`` console script: ``main``, then end the process at once.

    The command is done and its output flushed; what ``sys.exit`` would add is
    the interpreter's teardown (freeing every module) and SQLite's checkpoint
    of each database on close, ~10 ms of every ``pallet run`` for nothing.
    """
    code = main(exits_after=True)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            code = code or EXIT_PIPE
    os._exit(code)
