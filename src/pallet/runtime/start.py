"""``start``: release an init blocked on ``exec.fifo``, then run the poststart hooks."""

from __future__ import annotations

import os
import select
import time

from pallet.errors import FailedPrecondition
from pallet.linux import procstat
from pallet.runtime.containers import ContainerDir, status_of
from pallet.runtime.ocistate import state_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.runtime.logsink import LogSink
    from pallet.runtime.savedstate import SavedState

#: how long a wait for the init's byte lasts before it checks that the init still lives
_ALIVE_CHECK_MS = 10


def start(root: str, container_id: str, log: LogSink) -> None:
    cdir = ContainerDir(root, container_id)
    cdir.lock()
    try:
        saved = cdir.load()
        release(cdir, saved, log)
    finally:
        cdir.unlock()


def release(cdir: ContainerDir, saved: SavedState, log: LogSink) -> None:
    """Open the FIFO for reading (the init's blocked open returns) and take its byte.

    Caller holds the container lock. A failing poststart hook is only a
    warning, and the later ones still run: the program already runs
    (runtime-spec 1.0-1.2 lifecycle step 9: "log a warning", which the
    runtime-tools suite checks; 1.3.0 makes it an error that stops the
    container, as runc 1.1 already does).
    """
    status = status_of(cdir, saved)
    if status == "stopped":
        raise FailedPrecondition("cannot start a container that has stopped")
    if status != "created":
        raise FailedPrecondition(
            f"cannot start an already {status} container"
            if status == "running"
            else f"cannot start a container in the {status} state"
        )
    pid = saved.pid
    started = saved.init_start
    # non-blocking open: never hang on an init that died before opening its end
    fd = os.open(cdir.fifo_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        # poll wakes us as soon as the byte is written; until then, a dead init ends the wait
        # (a FIFO's reader gets no POLLHUP from a writer that never opened)
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            try:
                data = os.read(fd, 1)
            except BlockingIOError:
                data = None
            if data:
                break
            if not procstat.is_alive(pid, started):
                raise FailedPrecondition("cannot start a container that has stopped")
            if data is None:
                poller.poll(_ALIVE_CHECK_MS)
            else:
                time.sleep(0.0005)  # end of file: the init closed its end without writing, and exits
    finally:
        os.close(fd)
    os.unlink(cdir.fifo_path)
    if saved.poststart:
        from pallet.runtime.hooks import run_hooks

        run_hooks("poststart", saved.poststart, state_json(saved, "running"), log.warning)
