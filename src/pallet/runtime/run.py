"""``run``: create + start; in the foreground, wait for the init and return its exit status.

The foreground ``run`` makes itself a child subreaper before forking, so the
init (whose parent, C1, exits) is reparented to it and can be waited for.
SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2 and SIGWINCH are forwarded to the
init. A signal death becomes 128+n, as a shell reports it.
"""

from __future__ import annotations

import os

from pallet.errors import PalletError
from pallet.runtime.create import create
from pallet.runtime.lifecycle import delete
from pallet.runtime.start import release

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.runtime.logsink import LogSink

_FORWARDED = (1, 2, 3, 10, 12, 15, 28)


def run(
    *,
    root: str,
    container_id: str,
    bundle: str,
    pid_file: str | None,
    console_socket: str | None,
    no_pivot: bool,
    systemd_cgroup: bool,
    detach: bool,
    keep: bool,
    log: LogSink,
) -> int:
    created = create(
        root=root,
        container_id=container_id,
        bundle=bundle,
        pid_file=pid_file,
        console_socket=console_socket,
        no_pivot=no_pivot,
        systemd_cgroup=systemd_cgroup,
        log=log,
        subreaper=not detach,
        own_console=not detach,
    )
    try:
        created.cdir.lock()
        try:
            release(created.cdir, created.saved, log)
        finally:
            created.cdir.unlock()
    except BaseException:
        delete(root, container_id, True, log)
        raise
    if detach:
        return 0
    log.debug("run: started")
    _forward_signals(created.pid)
    if created.console_master >= 0:
        from pallet.runtime.ttyproxy import relay

        code = relay(created.console_master, created.pid, _reap)
    else:
        reaped = _reap(created.pid, True)
        code = 255 if reaped is None else reaped  # blocking: None never comes back
    log.debug("run: init exited")
    if not keep:
        try:
            delete(root, container_id, True, log)
        except PalletError as e:
            log.warning(str(e))
    log.debug("run: deleted")
    return code


def _forward_signals(init_pid: int) -> None:
    if TYPE_CHECKING:
        import signal as _signal  # the stubs; at run time the C module, without signal's enums
    else:
        import _signal

    def forward(signum: int, frame: object) -> None:
        try:  # noqa: SIM105 - contextlib costs ~7 ms at start
            os.kill(init_pid, signum)
        except OSError:
            pass

    for number in _FORWARDED:
        _signal.signal(number, forward)


def _reap(init_pid: int, block: bool) -> int | None:
    """Reap children (orphans reparented to us too); the init's exit code once it is reaped."""
    while True:
        try:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return 255
        if pid == 0:
            return None
        if pid == init_pid:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code
