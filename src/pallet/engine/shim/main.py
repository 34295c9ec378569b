"""``pallet-shim [--report-fd N] SHIM_JSON``: the entry point of the per-container shim.

Started by ``launch`` (in its own session, stdio on /dev/null and ``shim.log``),
it forks once and the first process exits at once, so the shim is nobody's
child and the caller reaps only that first process. The second process
becomes a child subreaper (the container's init is reparented to it), writes
``shim.pid`` in the run dir, and supervises the container (``supervisor``).

On the report fd it writes one line, ``started <container pid> <shim pid>`` or
``error <category> <message>`` (the class name of the ``PalletError``, e.g.
``RuntimeFailed`` or ``Unavailable``), then closes it. Errors after that go to its stderr, the
run dir's ``shim.log``. Hot path: standard library and pallet's lower layers only.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False

__all__ = ["main"]

_SIGCHLD = 17
_PR_SET_CHILD_SUBREAPER = 36
_USAGE = "usage: pallet-shim [--report-fd N] SHIM_JSON\n"


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
    report_fd = -1
    if len(args) == 3 and args[0] == "--report-fd" and args[1].isdigit():
        report_fd, args = int(args[1]), args[2:]
    if len(args) != 1 or args[0].startswith("-"):
        os.write(2, _USAGE.encode())
        return 2
    from pallet.errors import PalletError

    try:
        return _run(args[0], report_fd)
    except PalletError as e:
        os.write(2, f"pallet-shim: {e.message}\n".encode())
        _report(report_fd, f"error {type(e).__name__} {e.message}")
        return 1
    except OSError as e:
        text = f"{e.filename or 'pallet-shim'}: {(e.strerror or str(e)).lower()}"
        os.write(2, f"pallet-shim: {text}\n".encode())
        _report(report_fd, f"error SystemError_ {text}")
        return 1


def _run(config_path: str, report_fd: int) -> int:
    if TYPE_CHECKING:
        import signal as _signal  # the stubs; at run time the C module, without signal's enums
    else:
        import _signal

    from pallet.engine.runtimes import Runtime
    from pallet.engine.shim import exitfile
    from pallet.engine.shim.config import load
    from pallet.engine.shim.supervisor import Supervisor
    from pallet.errors import PalletError

    config = load(config_path)
    if os.fork():
        os._exit(0)  # the launcher reaps this first process; the shim itself is orphaned on purpose
    os.makedirs(config.run_dir, mode=0o700, exist_ok=True)
    os.chdir(config.run_dir)
    try:
        from pallet.linux.libc import Libc

        Libc().prctl(_PR_SET_CHILD_SUBREAPER, 1)
    except PalletError as e:
        _report(report_fd, f"error SystemError_ become a child subreaper: {e.message}")
        return 1
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    _signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    _signal.signal(_SIGCHLD, _on_sigchld)
    runtime = Runtime(
        name=config.runtime_name, path=config.runtime_path, root=config.runtime_root, args=config.runtime_args
    )
    supervisor = Supervisor(config, runtime, wake_r)
    exitfile.write_atomic(exitfile.SHIM_PID_FILE, str(os.getpid()).encode())

    def report(line: str) -> None:
        if line.startswith("started "):
            line += f" {os.getpid()}"
        _report(report_fd, line)

    return supervisor.run(report)


def _on_sigchld(signum: int, frame: object) -> None:
    """Nothing: the wakeup fd wakes the poll loop, which reaps."""


if __name__ == "__main__":
    raise SystemExit(main())
