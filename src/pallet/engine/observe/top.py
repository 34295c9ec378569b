"""``pallet top``: the processes of a container, as the host's ``ps`` shows them (docker's way).

The container's processes are the members of its cgroup (``stats.cgroup_pids``:
every process the runtime or ``exec`` put there, whatever the runtime). ``ps``
runs on the host with the user's options (default ``-ef``); its header must
have a ``PID`` column, and only the lines whose PID is one of the
container's are kept. The last column (the command) keeps its spaces.
"""

from __future__ import annotations

import os
import subprocess

from pallet.engine.observe.stats import cgroup_pids
from pallet.errors import FailedPrecondition, InvalidArgument, SystemError_
from pallet.oci.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

__all__ = ["ProcessList", "filter_ps", "top"]

DEFAULT_PS_ARGS = ("-ef",)


class ProcessList(Record):
    """docker's ``ContainerTopOKBody``: column titles and one row per process."""

    titles: tuple[str, ...]
    processes: tuple[tuple[str, ...], ...] = ()


def filter_ps(output: str, pids: Collection[int]) -> ProcessList:
    """Keep the lines of ``ps`` output whose PID column is in ``pids``."""
    lines = [line for line in output.splitlines() if line.strip()]
    if not lines:
        raise InvalidArgument("ps printed nothing; check the ps options")
    titles = tuple(lines[0].split())
    if "PID" not in titles:
        raise InvalidArgument(f"couldn't find PID field in ps output (titles: {' '.join(titles)})")
    index = titles.index("PID")
    rows = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) <= index:
            continue
        try:
            pid = int(fields[index])
        except ValueError:
            raise InvalidArgument(f"unexpected pid {fields[index]!r} in ps output") from None
        if pid in pids:
            head = fields[: len(titles) - 1]
            rows.append((*head, " ".join(fields[len(titles) - 1 :])))
    return ProcessList(titles=titles, processes=tuple(rows))


def top(init_pid: int, ps_args: Sequence[str] = ()) -> ProcessList:
    """The processes of the container whose init is ``init_pid``; ``FailedPrecondition`` if it is gone."""
    pids = cgroup_pids(init_pid) if init_pid > 0 else []
    if not pids:
        raise FailedPrecondition("the container is not running")
    args = list(ps_args) or list(DEFAULT_PS_ARGS)
    # without COLUMNS (a terminal's width, inherited) ps does not cut the command column
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    try:
        done = subprocess.run(["ps", *args], capture_output=True, text=True, check=False, env=env)
    except OSError as e:
        raise SystemError_("run ps", e.errno or 0) from None
    if done.returncode != 0:
        raise InvalidArgument(f"ps {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return filter_ps(done.stdout, set(pids))
