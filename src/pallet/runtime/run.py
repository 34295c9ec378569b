"""``run``: create + start; in the foreground, wait for the init and return its exit status.

The foreground ``run`` makes itself a child subreaper before forking, so the
init (whose parent, C1, exits) is reparented to it and can be waited for.
SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2 and SIGWINCH are forwarded to the
init. A signal death becomes 128+n, as a shell reports it.
"""

from __future__ import annotations

from pallet.errors import PalletError
from pallet.runtime.create import create

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.runtime.logsink import LogSink


def _load_next_steps() -> None:
    """Import what ``run`` does after ``create``, while the init builds its rootfs (``create``'s
    ``after_fork``): not before the fork, where every millisecond delays the container."""
    from pallet.runtime import foreground, lifecycle, start  # noqa: F401


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
    preserve_fds: int = 0,
    rootless: bool = False,
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
        preserve_fds=preserve_fds,
        after_fork=_load_next_steps,
        rootless=rootless,
    )
    from pallet.runtime.foreground import forward_signals, reap
    from pallet.runtime.lifecycle import delete
    from pallet.runtime.start import release

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
    forward_signals(created.pid)
    if created.console_master >= 0:
        from pallet.runtime.ttyproxy import relay

        code = relay(created.console_master, created.pid, reap)
    else:
        reaped = reap(created.pid, True)
        code = 255 if reaped is None else reaped  # blocking: None never comes back
    log.debug("run: init exited")
    if not keep:
        try:
            delete(root, container_id, True, log)
        except PalletError as e:
            log.warning(str(e))
    log.debug("run: deleted")
    return code
