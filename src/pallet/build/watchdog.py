"""The build's watchdog: when a ``pallet build`` dies (even by SIGKILL), its step containers go at once.

A build that makes its first step container starts this small process,
detached into its own session (it must outlive a killed build, as a shim
outlives a killed ``pallet run``). It waits on a pidfd of the build process;
when the build exits it removes the step containers whose owner is gone
(``containers.remove_abandoned``: a running RUN is killed, its mounts,
snapshot and cgroup go with it) and the build's unpacked stdin context. A
build that ends normally has removed its containers itself and then stops the
watchdog (SIGTERM, by the pid it started); either way the watchdog ends.

Usage (internal): ``python -m pallet.build.watchdog ROOT RUN_ROOT PID START_TIME``.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys

__all__ = ["Watchdog", "main"]


class Watchdog:
    """The watchdog process of this build, started on first need."""

    def __init__(self, root: str, run_root: str) -> None:
        self._root = root
        self._run_root = run_root
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self._proc is not None:
            return
        from pallet.linux import procstat

        pid = os.getpid()
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pallet.build.watchdog",
                self._root,
                self._run_root,
                str(pid),
                str(procstat.start_time(pid)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )

    def stop(self) -> None:
        """The build ended by itself: the watchdog has nothing to do."""
        if self._proc is None:
            return
        self._proc.send_signal(signal.SIGTERM)
        self._proc.wait()
        self._proc = None


def main(argv: list[str]) -> int:
    root, run_root, pid_text, start_text = argv
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the build is not for us
    from pallet.linux import procstat

    pid = int(pid_text)
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        fd = -1
    if fd >= 0 and procstat.start_time(pid) == int(start_text):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.poll()
    from pallet.build.containers import remove_abandoned
    from pallet.build.context import remove_abandoned_contexts
    from pallet.engine.service import Service

    with Service.open(root, run_root) as service:
        remove_abandoned(service)
    remove_abandoned_contexts(root)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
