"""Reconciliation: the truth about a container from what its shim, its files and the runtime say.

A ``pallet`` process can be SIGKILLed at any point, so the database row may
lag behind reality. Before a command acts on a container (and for every line
of ``ps``) the row is brought up to date from, in order of authority:

1. ``creating`` rows whose creating process is gone: a crashed ``create``;
   everything it made is removed (``Engine.discard``), and the network
   driver's leftovers of every gone container (``Engine.reconcile_networks``).
2. ``removing`` rows: a crashed ``rm``; the removal is finished (and the
   network's leftovers likewise).
3. The shim (``shim.pid``, checked against its start time, so a reused pid
   is not mistaken for it): alive means the container is running, paused or
   restarting (``init.json``/``exit.json`` tell which); gone means it exited,
   with the code from ``exit.json``.
4. No shim and no exit file, but the runtime still knows the container: the
   shim was killed; the container itself keeps running and is reported so.

A container found exited has its network taken down (``Engine.after_exit``:
namespace, veths, port rules), keeping its addresses and host ports until
it is removed or started again.

The caller holds the container's lock (``locks.container_lock``), except for
read-only listing, which reconciles only containers whose lock is free.
"""

from __future__ import annotations

import os

from pallet.engine.containers.records import ACTIVE_STATES
from pallet.engine.shim import exitfile
from pallet.linux.procstat import running_start_time as process_start_time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    from pallet.engine.containers.records import ContainerRecord, ContainerStore
    from pallet.engine.layout import Layout

    class Engine(Protocol):
        """What reconciling needs of the engine (``lifecycle.Engine`` is one); no import of it, no circle."""

        layout: Layout
        containers: ContainerStore

        def discard(self, record: ContainerRecord, *, remove_volumes: bool) -> None: ...
        def removing_volumes(self, record: ContainerRecord) -> bool: ...
        def runtime_knows(self, record: ContainerRecord) -> bool: ...
        def after_exit(self, record: ContainerRecord) -> None: ...
        def reconcile_networks(self) -> None: ...
        def auto_remove(self, record: ContainerRecord) -> bool: ...
        def event(self, record: ContainerRecord, action: str, **extra: str) -> None: ...


__all__ = ["process_start_time", "reconcile", "settled", "shim_alive"]


def shim_alive(record: ContainerRecord) -> bool:
    """Whether the shim recorded for ``record`` still runs (same pid, same start time)."""
    if record.shim_pid <= 0:
        return False
    return process_start_time(record.shim_pid) == record.shim_start


def reconcile(engine: Engine, record: ContainerRecord) -> ContainerRecord | None:
    """The container's record brought up to date; None if it was (or is now) gone.

    Idempotent. The caller holds the container's lock.
    """
    from pallet.image import owners

    if record.state == "creating":
        owner = owners.parse_owner(record.owner or "")
        if owner is not None and owners.is_alive(*owner):
            return record
        engine.discard(record, remove_volumes=True)
        engine.reconcile_networks()  # what the crashed create made of its network, to the last veth
        return None
    if record.state == "removing":
        engine.discard(record, remove_volumes=engine.removing_volumes(record))
        engine.reconcile_networks()
        return None
    run_dir = engine.layout.run_dir(record.id)
    alive = shim_alive(record)
    if not alive:
        # the CLI may have died between launching the shim and recording it: the pid file tells
        found = exitfile.read_shim_pid(run_dir)
        start = process_start_time(found) if found else None
        if found and start is not None and _is_shim_of(found, record.id):
            record = engine.containers.update(record.id, shim_pid=found, shim_start=start)
            alive = shim_alive(record)
    if alive:
        changes = _observed(record, run_dir)
        return engine.containers.update(record.id, **changes) if changes else record
    if record.state in ACTIVE_STATES:
        return _shim_gone(engine, record, run_dir)
    return record


def _observed(record: ContainerRecord, run_dir: str) -> dict[str, object]:
    """The columns whose values differ from what the files of ``record``'s live shim say (``init.json``:
    the current run; ``exit.json``: its exit, when it belongs to that run)."""
    init = exitfile.read_init(run_dir)
    last = exitfile.read_exit(run_dir) if init is not None else None
    state = record.state
    changes: dict[str, object] = {}
    if init is not None:
        changes.update(pid=init.pid, started_at=init.started_at, restart_count=init.restart_count)
        if last is not None and last.restart_count == init.restart_count:
            changes.update(exit_code=last.exit_code, finished_at=last.finished_at, oom_killed=last.oom_killed)
            state = "restarting" if last.restarting else "exited"
        elif state not in ("running", "paused"):
            state = "running"
    elif state not in ("running", "paused"):
        state = "running"
    changes["state"] = state
    return {k: v for k, v in changes.items() if getattr(record, k) != v}


def settled(record: ContainerRecord, run_dir: str) -> bool:
    """Whether ``reconcile`` would leave ``record`` as it is, told without the lock and without a write:
    a listing's fast path. Stopped: no shim runs for it (nor one whose starter died before recording
    it: ``shim.pid``). Active: its shim runs and its files say what the row says. Anything else
    (``creating``, ``removing``, a shim gone) is False: the caller reconciles under the lock."""
    if record.state in ("created", "exited", "dead"):
        if record.shim_pid > 0 and shim_alive(record):
            return False
        return not os.path.exists(os.path.join(run_dir, exitfile.SHIM_PID_FILE))
    if record.state in ACTIVE_STATES:
        return shim_alive(record) and not _observed(record, run_dir)
    return False


def _is_shim_of(pid: int, container_id: str) -> bool:
    """Whether ``pid`` is a pallet-shim for this container (its command line names the container)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return False
    return b"shim" in cmdline and container_id.encode() in cmdline


def _shim_gone(engine: Engine, record: ContainerRecord, run_dir: str) -> ContainerRecord | None:
    """The shim exited (or was killed): record the exit, or notice a container that outlived its shim."""
    last = exitfile.read_exit(run_dir)
    if last is not None:
        record = engine.containers.update(
            record.id,
            state="exited",
            exit_code=last.exit_code,
            finished_at=last.finished_at,
            oom_killed=last.oom_killed,
            restart_count=last.restart_count,
            shim_pid=0,
            shim_start=0,
        )
    elif record.pid > 0 and process_start_time(record.pid) is not None and engine.runtime_knows(record):
        # the shim was killed but the container runs on (reparented to init): report the truth
        return engine.containers.update(record.id, shim_pid=0, shim_start=0)
    else:
        import time

        from pallet.engine.shim.logfile import rfc3339nano

        # no exit status was recorded (the shim died with its container): docker reports 255
        record = engine.containers.update(
            record.id,
            state="exited",
            exit_code=255 if record.exit_code is None else record.exit_code,
            finished_at=rfc3339nano(time.time_ns()),
            shim_pid=0,
            shim_start=0,
        )
    engine.after_exit(record)
    if engine.auto_remove(record):
        engine.discard(record, remove_volumes=True)
        engine.event(record, "destroy")  # as rm's: whoever removes a --rm container says so
        return None
    return record


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (not a zombie)."""
    return process_start_time(pid) is not None and os.path.exists(f"/proc/{pid}")
