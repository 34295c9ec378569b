"""The build's watchdog: when a ``pallet build`` dies (even by SIGKILL), its step containers go at once,
a moment later.

A build starts this small process before its first step container, detached
into its own session (it must outlive a killed build, as a shim outlives a
killed ``pallet run``), and waits for its "ready" byte: by then the watchdog
has opened the engine and the image store and loaded what removal needs. It
then waits on a pidfd of the build. When the build exits it removes the step
containers whose owner is gone
(``containers.remove_abandoned``: a running RUN is killed; its mounts,
snapshot and cgroup go with it) and the build's unpacked stdin context. A
command run in the instant after the kill may still see them (the sweep takes
a few hundred milliseconds); the next one does not. A build that ends normally removed its containers itself and stops
the watchdog (SIGTERM, by the pid it started). An alarm bounds the cleanup;
the next build's own sweep finishes what is left.

Usage (internal): ``python -m pallet.build.watchdog`` with ``PALLET_WATCHDOG`` in its environment:
the JSON list ``[root, run_root, build pid, its start time, ready pipe fd]``.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time

__all__ = ["Watchdog", "main"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.engine.containers.lifecycle import Engine

_CLEANUP_LIMIT = 120  # seconds


class Watchdog:
    """The watchdog process of this build, started on first need."""

    def __init__(self, root: str, run_root: str) -> None:
        self._root = root
        self._run_root = run_root
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it watches (idempotent)."""
        if self._proc is not None:
            return
        from pallet.linux import procstat

        pid = os.getpid()
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "pallet.build.watchdog"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                pass_fds=(ready_w,),
                env={
                    **os.environ,
                    "PALLET_WATCHDOG": json.dumps(
                        [self._root, self._run_root, pid, procstat.start_time(pid), ready_w]
                    ),
                },
            )
            os.close(ready_w)
            ready_w = -1
            os.read(ready_r, 1)  # b"" too if it died: the build goes on without it
        finally:
            if ready_w >= 0:
                os.close(ready_w)
            os.close(ready_r)

    def stop(self) -> None:
        """The build ended by itself: the watchdog has nothing to do."""
        if self._proc is None:
            return
        self._proc.send_signal(signal.SIGTERM)
        self._proc.wait()
        self._proc = None


def main() -> int:
    root, run_root, pid, start, ready = json.loads(os.environ["PALLET_WATCHDOG"])
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the build is not for us
    from pallet.build.containers import remove_abandoned
    from pallet.build.context import remove_abandoned_contexts
    from pallet.engine.containers.lifecycle import Engine
    from pallet.engine.service import Service
    from pallet.linux import procstat

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        fd = -1
    engine = Engine.open(root, run_root, leave_open=True)
    service = Service(engine)
    engine.images  # noqa: B018 - opened now, so the sweep starts at once when the build dies
    with contextlib.suppress(BrokenPipeError):  # the build died while we started: clean up all the same
        os.write(ready, b"1")
    os.close(ready)
    if fd >= 0 and procstat.start_time(pid) == start:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.poll()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the build is gone: finish the cleanup
    signal.alarm(_CLEANUP_LIMIT)
    # Not under the store's write lock: a concurrent ``ps`` reconciling one of these containers
    # holds its lock while it waits for the store, and we would wait for that container's lock.
    # A shim the build launched may still be starting a container it was told to: sweep until no
    # container of a gone build is left (bounded by the alarm).
    while True:
        remove_abandoned(service)
        if not _abandoned_left(engine):
            break
        time.sleep(0.1)
    engine.reconcile_networks()  # what a removal racing a starting shim left of its network namespace
    remove_abandoned_contexts(root)
    # the databases are left to the exit, as the CLI leaves them (Engine.open's leave_open)
    os._exit(0)


def _abandoned_left(engine: Engine) -> bool:
    from pallet.build.containers import OWNER_LABEL
    from pallet.image import owners

    for record in engine.containers.list():
        owner = owners.parse_owner(record.labels.get(OWNER_LABEL, ""))
        if owner is not None and not owners.is_alive(*owner):
            return True
    return False


if __name__ == "__main__":
    sys.exit(main())
