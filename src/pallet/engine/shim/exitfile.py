"""The files a shim leaves in the container's run dir for the engine to read.

- ``init.json``: the current run of the container, written atomically at each
  (re)start: ``{"pid": N, "started_at": "RFC3339Nano", "restart_count": K}``.
- ``exit.json``: the last exit, written atomically when the init is reaped:
  ``{"exit_code": N, "finished_at": "RFC3339Nano", "oom_killed": bool,
  "restart_count": K, "restarting": bool}``. An exit belongs to the current
  run iff its ``restart_count`` equals ``init.json``'s; ``restarting`` says
  the shim will start the container again.
- ``stopped-by-user``: a flag the engine creates before it stops a container on
  purpose; the shim then never restarts it (docker's "manually stopped").
- ``shim.pid``: the shim's pid, written once it serves; removed when it exits.
- ``restart-policy.json``: ``{"name": "always", "max_retries": 0}``, written by
  ``update`` while the shim runs; the shim's next exit decision uses it in
  place of the policy it was started with.

Readers never see a partial file (temp file, fsync, rename); a missing or
unreadable file reads as ``None``. Standard library only: the shim imports this.
"""

from __future__ import annotations

import os

from pallet.errors import InvalidArgument
from pallet.linux.atomicfile import write_atomic
from pallet.oci.jsonfast import dumps, loads
from pallet.oci.record import Record

__all__ = [
    "EXIT_FILE",
    "INIT_FILE",
    "RESTART_POLICY_FILE",
    "SHIM_PID_FILE",
    "STOPPED_BY_USER",
    "ExitStatus",
    "InitStatus",
    "clear_stopped_by_user",
    "mark_stopped_by_user",
    "read_exit",
    "read_init",
    "read_restart_policy",
    "read_shim_pid",
    "stopped_by_user",
    "write_exit",
    "write_init",
    "write_restart_policy",
]

EXIT_FILE = "exit.json"
INIT_FILE = "init.json"
SHIM_PID_FILE = "shim.pid"
STOPPED_BY_USER = "stopped-by-user"
RESTART_POLICY_FILE = "restart-policy.json"


class ExitStatus(Record):
    exit_code: int
    finished_at: str
    oom_killed: bool = False
    restart_count: int = 0
    restarting: bool = False


class InitStatus(Record):
    pid: int
    started_at: str
    restart_count: int = 0


def _read_json(path: str) -> dict[str, object] | None:
    try:
        with open(path, "rb") as f:
            doc = loads(f.read())
    except (OSError, InvalidArgument):  # missing, or not JSON: not written by a shim
        return None
    return doc if isinstance(doc, dict) else None


def write_exit(run_dir: str, status: ExitStatus) -> None:
    doc = {
        "exit_code": status.exit_code,
        "finished_at": status.finished_at,
        "oom_killed": status.oom_killed,
        "restart_count": status.restart_count,
        "restarting": status.restarting,
    }
    write_atomic(os.path.join(run_dir, EXIT_FILE), dumps(doc).encode())


def read_exit(run_dir: str) -> ExitStatus | None:
    doc = _read_json(os.path.join(run_dir, EXIT_FILE))
    if doc is None:
        return None
    code, finished = doc.get("exit_code"), doc.get("finished_at")
    if not isinstance(code, int) or not isinstance(finished, str):
        return None
    count = doc.get("restart_count", 0)
    return ExitStatus(
        exit_code=code,
        finished_at=finished,
        oom_killed=doc.get("oom_killed") is True,
        restart_count=count if isinstance(count, int) else 0,
        restarting=doc.get("restarting") is True,
    )


def write_init(run_dir: str, status: InitStatus) -> None:
    doc = {"pid": status.pid, "started_at": status.started_at, "restart_count": status.restart_count}
    write_atomic(os.path.join(run_dir, INIT_FILE), dumps(doc).encode())


def read_init(run_dir: str) -> InitStatus | None:
    doc = _read_json(os.path.join(run_dir, INIT_FILE))
    if doc is None:
        return None
    pid, started, count = doc.get("pid"), doc.get("started_at"), doc.get("restart_count", 0)
    if not isinstance(pid, int) or not isinstance(started, str):
        return None
    return InitStatus(pid=pid, started_at=started, restart_count=count if isinstance(count, int) else 0)


def read_shim_pid(run_dir: str) -> int | None:
    """The pid the shim recorded, or None (no shim started, or it exited and removed the file)."""
    try:
        with open(os.path.join(run_dir, SHIM_PID_FILE), "rb") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def mark_stopped_by_user(run_dir: str) -> None:
    """Idempotent: tell the shim that the next exit is on purpose (no restart)."""
    os.close(os.open(os.path.join(run_dir, STOPPED_BY_USER), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


def clear_stopped_by_user(run_dir: str) -> None:
    """Idempotent: the user started the container again; the restart policy applies anew."""
    try:
        os.unlink(os.path.join(run_dir, STOPPED_BY_USER))
    except FileNotFoundError:
        return


def stopped_by_user(run_dir: str) -> bool:
    return os.path.exists(os.path.join(run_dir, STOPPED_BY_USER))


def write_restart_policy(run_dir: str, name: str, max_retries: int) -> None:
    """Tell a running shim its container's new restart policy (``update --restart``)."""
    doc = {"name": name, "max_retries": max_retries}
    write_atomic(os.path.join(run_dir, RESTART_POLICY_FILE), dumps(doc).encode())


def read_restart_policy(run_dir: str) -> tuple[str, int] | None:
    """The policy ``write_restart_policy`` left, as (name, max retries); None if none."""
    doc = _read_json(os.path.join(run_dir, RESTART_POLICY_FILE))
    if doc is None:
        return None
    name, retries = doc.get("name"), doc.get("max_retries", 0)
    if not isinstance(name, str) or not isinstance(retries, int):
        return None
    return name, retries
