"""``pallet-shim [--report-fd N] SHIM_JSON``: the entry point of the per-container shim.

Started by ``launch`` (in its own session, stdin and stdout on /dev/null),
it forks once and the first process exits at once, so the shim is nobody's
child and the caller reaps only that first process. With ``--wait-fd`` it was
started ahead of its container: it loads what it needs, then waits for ``go``
on that fd before it reads SHIM_JSON; EOF there means "never mind". With
``--client-fd`` that fd is its first attach client. It moves its stderr to ``shim.log`` in the run dir,
becomes a child subreaper (the container's init is reparented to it), writes
``shim.pid`` in the run dir, and supervises the container (``supervisor``).

``pallet-shim --zygote RUN_ROOT`` is the run dir's zygote instead (``zygote``):
it forks shims that then live exactly as an exec'd one does from ``serve`` on.

On the report fd it writes one line, ``started <container pid> <shim pid>`` or
``error <category> <message>`` (the class name of the ``PalletError``, e.g.
``RuntimeFailed`` or ``Unavailable``), then closes it. Errors after that go to its stderr, the
run dir's ``shim.log``. Hot path: standard library and pallet's lower layers only.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pallet.linux.libc import Libc

__all__ = ["main"]

_SIGCHLD = 17
_PR_SET_CHILD_SUBREAPER = 36
_USAGE = "usage: pallet-shim [--report-fd N] [--wait-fd N] [--client-fd N] [--preload-runtime] SHIM_JSON\n"
#: the shim's stderr, in its run dir (launch.SHIM_LOG)
_SHIM_LOG = "shim.log"


def _report(fd: int, line: str) -> None:
    if fd < 0:
        return
    try:
        os.write(fd, line.replace("\n", " ").encode() + b"\n")
    except OSError:
        pass  # the caller is gone (killed): the container is supervised all the same
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    import sys

    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--zygote"]:
        from pallet.engine.shim.zygote import main as zygote_main

        return zygote_main(args[1:])
    fds = {"--report-fd": -1, "--wait-fd": -1, "--client-fd": -1}
    preload = False
    while args and (
        args[0] == "--preload-runtime" or (len(args) >= 2 and args[0] in fds and args[1].isdigit())
    ):
        if args[0] == "--preload-runtime":
            preload, args = True, args[1:]
        else:
            fds[args[0]], args = int(args[1]), args[2:]
    report_fd = fds["--report-fd"]
    for fd in fds.values():
        if fd >= 0:  # ours alone: no runtime (nor container) may inherit them
            os.set_inheritable(fd, False)
    if len(args) != 1 or args[0].startswith("-"):
        os.write(2, _USAGE.encode())
        return 2
    return supervise(
        lambda: _run(args[0], report_fd, fds["--wait-fd"], fds["--client-fd"], preload), report_fd
    )


def supervise(life: Callable[[], int], report_fd: int) -> int:
    """Run the shim's ``life``; an error before the container started is reported on ``report_fd``."""
    from pallet.errors import PalletError, report_line

    try:
        return life()
    except (PalletError, OSError) as e:
        line = report_line(e)
        os.write(2, f"pallet-shim: {line.partition(' ')[2]}\n".encode())
        _report(report_fd, f"error {line}")
        return 1


def _readable(fd: int) -> bool:
    """Whether ``fd`` has something to read now (-1: never)."""
    if fd < 0:
        return False
    import select

    return bool(select.select([fd], [], [], 0)[0])


def _wait_for_go(fd: int) -> bool:
    """Whether the engine said ``go`` on ``fd`` (the container and SHIM_JSON exist); EOF means it gave up."""
    data = b""
    while b"\n" not in data:
        try:
            chunk = os.read(fd, 4096)
        except InterruptedError:
            continue
        if not chunk:
            break
        data += chunk
    os.close(fd)
    return data.startswith(b"go\n")


#: what the shim's life needs: loaded before its container is known (an exec'd shim while the
#: engine creates the container; the zygote once, for every shim it forks)
SHIM_MODULES = (
    "_signal",
    "select",
    "pallet.errors",
    "pallet.engine.runtimes",
    "pallet.engine.shim.config",
    "pallet.engine.shim.exitfile",
    "pallet.engine.shim.supervisor",
    "pallet.linux.libc",
)


def load_modules() -> None:
    for name in SHIM_MODULES:
        __import__(name)


def _run(config_path: str, report_fd: int, wait_fd: int, client_fd: int, preload: bool) -> int:
    load_modules()
    if os.fork():
        os._exit(0)  # the launcher reaps this first process; the shim itself is orphaned on purpose
    return serve(config_path, report_fd, wait_fd, client_fd, preload)


def serve(
    config_path: str, report_fd: int, wait_fd: int, client_fd: int, preload: bool, *, libc: Libc | None = None
) -> int:
    """The shim's life, in a process that is already nobody's child in its own session.

    Reached from ``_run`` (an exec'd shim, after its fork) or from a child of
    the zygote (``zygote``), whose modules are loaded already. Never returns
    once the container started (``os._exit``). ``libc``: one made already
    (the zygote's), else one is made here.
    """
    if TYPE_CHECKING:
        import signal as _signal  # the stubs; at run time the C module, without signal's enums
    else:
        import _signal

    from pallet.engine.runtimes import Runtime
    from pallet.engine.shim import exitfile
    from pallet.engine.shim.config import load
    from pallet.engine.shim.supervisor import Supervisor
    from pallet.errors import PalletError
    from pallet.linux.atomicfile import write_atomic

    try:
        if libc is None:
            from pallet.linux.libc import Libc

            libc = Libc()
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1)
    except PalletError as e:
        _report(report_fd, f"error system become a child subreaper: {e.message}")
        return 1
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    _signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    _signal.signal(_SIGCHLD, _on_sigchld)
    if preload:  # pallet-runtime will run in forked children of ours: load its code while we wait,
        # but never make the container wait for it
        from pallet.runtime.cli import preload as preload_runtime

        preload_runtime(stop=lambda: _readable(wait_fd))
    # started ahead of its container (launch.prelaunch): everything above is done meanwhile
    if wait_fd >= 0 and not _wait_for_go(wait_fd):
        return 0  # the engine gave up on this container
    config = load(config_path)
    os.makedirs(config.run_dir, mode=0o700, exist_ok=True)
    os.chdir(config.run_dir)
    log = os.open(_SHIM_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    os.dup2(log, 2)  # the caller's stderr until now: the shim must not hold it any longer
    os.close(log)
    runtime = Runtime(
        name=config.runtime_name,
        path=config.runtime_path,
        root=config.runtime_root,
        args=config.runtime_args,
        in_process=_our_runtime(config.runtime_path),
    )
    # a shim forked by the zygote creates its container in a child of its own: the pages that
    # work writes then go with that child instead of staying private to the shim
    supervisor = Supervisor(config, runtime, wake_r, create_apart=libc is not None)
    write_atomic(exitfile.SHIM_PID_FILE, str(os.getpid()).encode())

    def report(line: str) -> None:
        if line.startswith("started "):
            line += f" {os.getpid()}"
        _report(report_fd, line)

    code = supervisor.run(report, client_fd=client_fd)
    # nothing is buffered (stderr is written with os.write) and nobody waits for us: skip the
    # interpreter's teardown, ~5 ms that a ``run --rm`` would wait for
    os._exit(code)


def _our_runtime(path: str) -> bool:
    """Whether ``path`` is the pallet-runtime launcher of this installation (next to our interpreter):
    then its code is ours, and the shim runs it in forked children."""
    import sys

    ours = os.path.join(os.path.dirname(sys.executable), "pallet-runtime")
    try:
        return os.path.samefile(path, ours)
    except OSError:
        return False


def _on_sigchld(signum: int, frame: object) -> None:
    """Nothing: the wakeup fd wakes the poll loop, which reaps."""


if __name__ == "__main__":
    raise SystemExit(main())
