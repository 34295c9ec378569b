"""``pallet-runtime``: runc's command line, parsed the way urfave/cli parses it, dispatched lazily.

``--flag value``, ``--flag=value``, ``-flag value`` and the short aliases are
all accepted; global flags come before the command. Only the command that runs
imports its module. Errors go to stderr and the ``--log`` file; exit status 1.
Nothing is printed on success except what the command's output is (``state``,
``list``, ``features``): in ``create`` and ``run`` stdio belongs to the container.
"""

from __future__ import annotations

import sys

from pallet.errors import InvalidArgument, PalletError, errno_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pallet.runtime.logsink import LogSink

VERSION = "0.1.0"
SPEC_VERSION = "1.2.0"
DEFAULT_ROOT = "/run/pallet-runtime"

_STR = "str"
_BOOL = "bool"
#: a flag that may repeat: its values are joined with "\0" (``_list`` splits them)
_LIST = "list"
_MANY = 1 << 30

# flag name -> (kind, canonical name); aliases map to the canonical name
_GLOBAL_FLAGS: dict[str, tuple[str, str]] = {
    "root": (_STR, "root"), "log": (_STR, "log"), "log-format": (_STR, "log-format"),
    "debug": (_BOOL, "debug"), "systemd-cgroup": (_BOOL, "systemd-cgroup"),
    "rootless": (_STR, "rootless"), "criu": (_STR, "criu"),
    "version": (_BOOL, "version"), "v": (_BOOL, "version"), "help": (_BOOL, "help"), "h": (_BOOL, "help"),
}  # fmt: skip

_CREATE_FLAGS: dict[str, tuple[str, str]] = {
    "bundle": (_STR, "bundle"), "b": (_STR, "bundle"), "pid-file": (_STR, "pid-file"),
    "console-socket": (_STR, "console-socket"), "no-pivot": (_BOOL, "no-pivot"),
    "no-new-keyring": (_BOOL, "no-new-keyring"), "preserve-fds": (_STR, "preserve-fds"),
    "pidfd-socket": (_STR, "pidfd-socket"),
}  # fmt: skip

_EXEC_FLAGS: dict[str, tuple[str, str]] = {
    "process": (_STR, "process"),
    "p": (_STR, "process"),
    "tty": (_BOOL, "tty"),
    "t": (_BOOL, "tty"),
    "console-socket": (_STR, "console-socket"),
    "detach": (_BOOL, "detach"),
    "d": (_BOOL, "detach"),
    "pid-file": (_STR, "pid-file"),
    "cwd": (_STR, "cwd"),
    "env": (_LIST, "env"),
    "e": (_LIST, "env"),
    "user": (_STR, "user"),
    "u": (_STR, "user"),
    "cap": (_LIST, "cap"),
    "c": (_LIST, "cap"),
    "additional-gids": (_LIST, "additional-gids"),
    "g": (_LIST, "additional-gids"),
    "no-new-privs": (_BOOL, "no-new-privs"),
    "process-label": (_STR, "process-label"),
    "apparmor": (_STR, "apparmor"),
    "preserve-fds": (_STR, "preserve-fds"),
    "ignore-paused": (_BOOL, "ignore-paused"),
    "no-subreaper": (_BOOL, "no-subreaper"),
    "pidfd-socket": (_STR, "pidfd-socket"),
}  # fmt: skip

_UPDATE_FLAGS: dict[str, tuple[str, str]] = {
    "resources": (_STR, "resources"),
    "r": (_STR, "resources"),
    **{
        name: (_STR, name)
        for name in (
            "memory",
            "memory-swap",
            "memory-reservation",
            "kernel-memory",
            "kernel-memory-tcp",
            "cpu-shares",
            "cpu-quota",
            "cpu-period",
            "cpu-rt-runtime",
            "cpu-rt-period",
            "cpuset-cpus",
            "cpuset-mems",
            "pids-limit",
            "blkio-weight",
            "l3-cache-schema",
            "mem-bw-schema",
        )
    },
}  # fmt: skip

#: command -> (flags, number of positional arguments: (min, max), usage)
COMMANDS: dict[str, tuple[dict[str, tuple[str, str]], tuple[int, int], str]] = {
    "create": (
        _CREATE_FLAGS,
        (1, 1),
        "create [--bundle DIR] [--pid-file F] [--console-socket S] <container-id>",
    ),
    "run": (
        {
            **_CREATE_FLAGS,
            "detach": (_BOOL, "detach"),
            "d": (_BOOL, "detach"),
            "keep": (_BOOL, "keep"),
            "no-subreaper": (_BOOL, "no-subreaper"),
        },
        (1, 1),
        "run [--bundle DIR] [--detach] [--pid-file F] <container-id>",
    ),
    "start": ({}, (1, 1), "start <container-id>"),
    "state": ({}, (1, 1), "state <container-id>"),
    "kill": ({"all": (_BOOL, "all"), "a": (_BOOL, "all")}, (1, 2), "kill [--all] <container-id> [signal]"),
    "delete": ({"force": (_BOOL, "force"), "f": (_BOOL, "force")}, (1, 1), "delete [--force] <container-id>"),
    "list": (
        {"format": (_STR, "format"), "f": (_STR, "format"), "quiet": (_BOOL, "quiet"), "q": (_BOOL, "quiet")},
        (0, 0),
        "list [--format table|json] [--quiet]",
    ),
    "spec": (
        {"bundle": (_STR, "bundle"), "b": (_STR, "bundle"), "rootless": (_BOOL, "rootless")},
        (0, 0),
        "spec [--bundle DIR] [--rootless]",
    ),
    "features": ({}, (0, 0), "features"),
    "exec": (
        _EXEC_FLAGS,
        (1, _MANY),
        "exec [--process FILE | ...flags] [--detach --pid-file F] [--tty --console-socket S] <container-id> [ARGS...]",
    ),
    "pause": ({}, (1, 1), "pause <container-id>"),
    "resume": ({}, (1, 1), "resume <container-id>"),
    "update": (
        _UPDATE_FLAGS,
        (1, 1),
        "update [-r FILE|-] [--memory N --cpu-shares N --pids-limit N ...] <container-id>",
    ),
    "ps": (
        {"format": (_STR, "format"), "f": (_STR, "format")},
        (1, _MANY),
        "ps [--format table|json] <container-id> [-- ps options]",
    ),
    "events": (
        {"stats": (_BOOL, "stats"), "interval": (_STR, "interval")},
        (1, 1),
        "events [--stats] [--interval 5s] <container-id>",
    ),
    "checkpoint": ({}, (0, _MANY), "checkpoint <container-id> (not supported)"),
    "restore": ({}, (0, _MANY), "restore <container-id> (not supported)"),
}

#: commands whose arguments after the container id belong to the program, not to us
_PROGRAM_ARGS = frozenset(("exec", "ps"))

_ALIASES = {"ls": "list", "rm": "delete"}


class Parsed:
    """The result of parsing: global flags, the command, its flags and positional arguments."""

    def __init__(self) -> None:
        self.globals: dict[str, str | bool] = {}
        self.command = ""
        self.flags: dict[str, str | bool] = {}
        self.args: list[str] = []


def _parse_flags(
    argv: list[str], table: dict[str, tuple[str, str]], out: dict[str, str | bool], stop_at_positional: bool
) -> list[str]:
    """Consume flags of ``table`` from ``argv`` into ``out``; returns the positional arguments."""
    positional: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            positional += argv[i:]
            break
        if len(arg) < 2 or not arg.startswith("-"):
            positional.append(arg)
            if stop_at_positional:
                positional += argv[i:]
                break
            continue
        name, has_value, value = arg.lstrip("-").partition("=")
        entry = table.get(name)
        if entry is None:
            raise InvalidArgument(f"flag provided but not defined: -{name}")
        kind, canonical = entry
        if kind == _LIST and canonical in out:
            if not has_value:
                if i >= len(argv):
                    raise InvalidArgument(f"flag needs an argument: -{name}")
                value = argv[i]
                i += 1
            out[canonical] = f"{out[canonical]}\0{value}"
            continue
        if kind == _BOOL:
            if has_value and value not in ("true", "false", "1", "0"):
                raise InvalidArgument(f'invalid boolean value "{value}" for -{name}')
            out[canonical] = not has_value or value in ("true", "1")
        else:
            if not has_value:
                if i >= len(argv):
                    raise InvalidArgument(f"flag needs an argument: -{name}")
                value = argv[i]
                i += 1
            out[canonical] = value
    return positional


def parse(argv: list[str]) -> Parsed:
    """Parse ``pallet-runtime`` arguments (without the program name)."""
    parsed = Parsed()
    rest = _parse_flags(argv, _GLOBAL_FLAGS, parsed.globals, stop_at_positional=True)
    if not rest:
        return parsed
    command = _ALIASES.get(rest[0], rest[0])
    parsed.command = command
    if command not in COMMANDS:
        raise InvalidArgument(f"No help topic for '{command}'")
    flags, (low, high), usage = COMMANDS[command]
    parsed.args = _parse_flags(rest[1:], flags, parsed.flags, stop_at_positional=command in _PROGRAM_ARGS)
    if not low <= len(parsed.args) <= high:
        wanted = f"{low}" if low == high else f"at least {low}" if high == _MANY else f"{low} to {high}"
        raise InvalidArgument(f'"{command}" requires {wanted} argument(s); usage: pallet-runtime {usage}')
    return parsed


def _usage() -> str:
    lines = ["usage: pallet-runtime [global flags] COMMAND [flags] ARGS", "", "commands:"]
    lines += [f"  {usage}" for _, _, usage in COMMANDS.values()]
    lines += [
        "",
        "global flags: --root DIR, --log FILE, --log-format text|json, --debug, --systemd-cgroup, --version",
    ]
    return "\n".join(lines) + "\n"


def _str(flags: dict[str, str | bool], name: str, default: str = "") -> str:
    value = flags.get(name, default)
    return value if isinstance(value, str) else default


def _list(flags: dict[str, str | bool], name: str) -> list[str]:
    value = flags.get(name)
    return value.split("\0") if isinstance(value, str) else []


#: what ``run``, ``create``, ``start`` and ``delete`` import on their way (``preload``)
_WORKING_SET = (
    "pallet.runtime.run",
    "pallet.runtime.create",
    "pallet.runtime.start",
    "pallet.runtime.lifecycle",
    "pallet.runtime.foreground",
    "pallet.runtime.containerinit",
    "pallet.runtime.rootfs",
    "pallet.runtime.mountopts",
    "pallet.runtime.cgroup_driver",
    "pallet.runtime.cgroup_limits",
    "pallet.runtime.cgroup_devices",
    "pallet.runtime.cgroup_v2",
    "pallet.runtime.seccomp",
    "pallet.runtime.finalize",
    "pallet.runtime.credentials",
    "pallet.runtime.executable",
    "pallet.runtime.hooks",
    "pallet.runtime.ocistate",
    "pallet.linux.procstat",
    "pallet.runtime.logsink",
    "pallet.runtime.clock",
    "pallet.linux.capabilities",
    "pallet.linux.loopback",
    "pallet.oci.runtime_spec",
)


def preload(stop: Callable[[], bool] | None = None) -> None:
    """Import what the container verbs need, for a process that will run ``main`` in forked
    children (the engine's shim, ``engine.runtimes.run_in_child``): each child then starts with
    them loaded (~11 ms less per call, ~1 MiB more in the process that preloads).

    ``stop`` is asked before each module: once it says so, the rest is left to the children.
    """
    import importlib

    for name in _WORKING_SET:
        if stop is not None and stop():
            return
        importlib.import_module(name)


def main(argv: list[str] | None = None) -> int:
    """The ``pallet-runtime`` entry point; ``argv`` given (tests) means return instead of exiting.

    As a program it ends with ``os._exit`` once stdout and stderr are flushed:
    the interpreter's teardown (module and object cleanup) has nothing to
    release for a process that ends here, and costs milliseconds on every call.
    """
    if argv is None:
        import gc

        # a short-lived process with few cycles: collection passes only cost time
        gc.disable()
    code = _main(sys.argv[1:] if argv is None else argv)
    if argv is None:
        import os

        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:
            code = code or 1
        os._exit(code)
    return code


def _main(args: list[str]) -> int:
    from pallet.runtime.logsink import LogSink

    log = LogSink()
    try:
        parsed = parse(args)
        g = parsed.globals
        log = LogSink(_str(g, "log") or None, _str(g, "log-format", "text"), bool(g.get("debug")))
        if g.get("version"):
            sys.stdout.write(f"pallet-runtime version {VERSION}\ncommit: none\nspec: {SPEC_VERSION}\n")
            return 0
        if g.get("help") or not parsed.command:
            sys.stdout.write(_usage())
            return 0 if g.get("help") else 1
        return _dispatch(parsed, log)
    except PalletError as e:
        log.error(e.message)
        return 1
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        log.error(f"{where}{errno_text(e.errno or 0)}")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - a bug must still end as one error line, never a traceback
        log.error(f"internal error in pallet-runtime: {type(e).__name__}: {e}")
        return 1


def _rootless(value: str) -> bool:
    """runc's ``--rootless true|false|auto``: auto is rootless when not root in the host's user namespace."""
    if value == "auto":
        import os

        from pallet.linux.userns import in_user_namespace

        return os.geteuid() != 0 or in_user_namespace()
    if value in ("true", "false"):
        return value == "true"
    raise InvalidArgument(f'invalid --rootless value "{value}": want true, false or auto')


def _dispatch(parsed: Parsed, log: LogSink) -> int:
    g = parsed.globals
    flags = parsed.flags
    root = _str(g, "root", DEFAULT_ROOT)
    command = parsed.command
    if command in ("create", "run"):
        preserve = _str(flags, "preserve-fds", "0")
        if not preserve.isdigit():
            raise InvalidArgument(f'invalid value "{preserve}" for flag -preserve-fds: a number is required')
        options = {
            "root": root,
            "container_id": parsed.args[0],
            "bundle": _str(flags, "bundle", "."),
            "pid_file": _str(flags, "pid-file") or None,
            "console_socket": _str(flags, "console-socket") or None,
            "no_pivot": bool(flags.get("no-pivot")),
            "systemd_cgroup": bool(g.get("systemd-cgroup")),
            "preserve_fds": int(preserve),
            "log": log,
            "rootless": _rootless(_str(g, "rootless", "auto")),
        }
        if command == "create":
            from pallet.runtime.create import create

            create(**options)  # type: ignore[arg-type]
            return 0
        from pallet.runtime.run import run

        return run(**options, detach=bool(flags.get("detach")), keep=bool(flags.get("keep")))  # type: ignore[arg-type]
    if command == "start":
        from pallet.runtime.start import start

        start(root, parsed.args[0], log)
        return 0
    if command == "state":
        from pallet.runtime.lifecycle import state

        sys.stdout.write(state(root, parsed.args[0]) + "\n")
        return 0
    if command == "kill":
        from pallet.runtime.lifecycle import kill

        kill(
            root,
            parsed.args[0],
            parsed.args[1] if len(parsed.args) > 1 else "SIGTERM",
            bool(flags.get("all")),
        )
        return 0
    if command == "delete":
        from pallet.runtime.lifecycle import delete

        delete(root, parsed.args[0], bool(flags.get("force")), log)
        return 0
    if command == "list":
        from pallet.runtime.lifecycle import list_containers

        sys.stdout.write(list_containers(root, _str(flags, "format", "table"), bool(flags.get("quiet"))))
        return 0
    if command == "spec":
        from pallet.runtime.specfile import write_default_spec

        write_default_spec(_str(flags, "bundle", "."), bool(flags.get("rootless")))
        return 0
    if command == "features":
        from pallet.runtime.specfile import features_json

        sys.stdout.write(features_json() + "\n")
        return 0
    if command == "exec":
        return _exec(root, parsed, log)
    if command in ("pause", "resume"):
        from pallet.runtime import lifecycle

        (lifecycle.pause if command == "pause" else lifecycle.resume)(root, parsed.args[0])
        return 0
    if command == "update":
        from pallet.runtime.update import update

        update(
            root,
            parsed.args[0],
            _str(flags, "resources"),
            {k: v for k, v in flags.items() if isinstance(v, str)},
        )
        return 0
    if command == "ps":
        from pallet.runtime.ps import ps

        sys.stdout.write(ps(root, parsed.args[0], _str(flags, "format", "table"), parsed.args[1:]))
        return 0
    if command == "events":
        from pallet.runtime.events import events

        return events(root, parsed.args[0], bool(flags.get("stats")), _str(flags, "interval", "5s"))
    if command in ("checkpoint", "restore"):
        from pallet.errors import Unsupported

        raise Unsupported(f"{command} is not supported by pallet-runtime (no CRIU integration)")
    raise InvalidArgument(f"unknown command {command}")


def _exec(root: str, parsed: Parsed, log: LogSink) -> int:
    from pallet.runtime.exec import ExecOptions, exec_process

    flags = parsed.flags
    preserve = _str(flags, "preserve-fds", "0")
    if not preserve.isdigit():
        raise InvalidArgument(f'invalid value "{preserve}" for flag -preserve-fds: a number is required')
    options = ExecOptions(
        process_file=_str(flags, "process"),
        args=parsed.args[1:],
        tty=bool(flags.get("tty")),
        console_socket=_str(flags, "console-socket"),
        detach=bool(flags.get("detach")),
        pid_file=_str(flags, "pid-file"),
        cwd=_str(flags, "cwd"),
        env=_list(flags, "env"),
        user=_str(flags, "user"),
        caps=_list(flags, "cap"),
        additional_gids=_list(flags, "additional-gids"),
        no_new_privs=bool(flags.get("no-new-privs")),
        preserve_fds=int(preserve),
    )
    if not options.process_file and not options.args:
        raise InvalidArgument(
            "exec: a --process file or the program's arguments after the container id are required"
        )
    return exec_process(root, parsed.args[0], options, log)


if __name__ == "__main__":
    sys.exit(main())
