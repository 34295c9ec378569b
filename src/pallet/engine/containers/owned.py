"""Containers bound to a process: they go when it does, at the latest during the next command.

``pallet build`` makes a container per step, for its own lifetime only. It
labels each ``OWNER_LABEL=<owner tag>`` (``pallet.image.owners``: pid, start
time from ``/proc/PID/stat`` so a reused pid is not taken for it, random) and,
before its first one, leaves the marker file ``<run root>/owned/<owner tag>``
(``claim``); it removes its containers and then the marker when it ends
(``release``). A build killed by SIGKILL cannot: the next command, before it
does anything else, calls ``sweep`` — one directory listing when nothing is
to do — which removes the containers of every marker whose process is gone as
``rm -f -v`` does (the process killed; mounts, snapshot, cgroup, network
endpoint and namespace, files), then the marker. The marker goes last, so a
sweep that is itself killed is finished by the one after it. Each removal
takes the container's own lock, as every command does; no wider lock is held.
"""

from __future__ import annotations

import os

from pallet.errors import NotFound, PalletError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.engine.containers.lifecycle import Engine

__all__ = ["OWNER_LABEL", "claim", "dead_owners", "release", "sweep"]

#: the label naming the process a container lives for (its owner tag)
OWNER_LABEL = "pallet.build.owner"


def _marker_dir(run_root: str) -> str:
    return os.path.join(run_root, "owned")


def claim(run_root: str, owner: str) -> None:
    """Record that ``owner`` (this process's owner tag) is about to make containers bound to it."""
    folder = _marker_dir(run_root)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    os.close(os.open(os.path.join(folder, owner), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))


def release(run_root: str, owner: str) -> None:
    """``owner`` removed its containers itself: nothing is left for a sweep."""
    try:  # noqa: SIM105 - contextlib costs ~7 ms on every command's start (this runs in each)
        os.unlink(os.path.join(_marker_dir(run_root), owner))
    except FileNotFoundError:
        pass


def dead_owners(run_root: str) -> list[str]:
    """The owner tags with a marker whose process no longer runs."""
    from pallet.image import owners

    try:
        names = os.listdir(_marker_dir(run_root))
    except FileNotFoundError:
        return []
    dead = []
    for name in names:
        owner = owners.parse_owner(name)
        if owner is None or not owners.is_alive(*owner):
            dead.append(name)
    return dead


def sweep(engine: Engine, dead: list[str] | None = None) -> int:
    """Remove the containers of owners that are gone, then their markers; how many containers went.

    A container that cannot be removed now keeps its owner's marker, so a later command tries again.
    """
    gone = dead_owners(engine.layout.run_root) if dead is None else dead
    if not gone:
        return 0
    removed = 0
    for owner in gone:
        left = False
        for record in engine.containers.list():
            if record.labels.get(OWNER_LABEL) != owner:
                continue
            try:
                engine.remove(record.id, force=True, volumes=True)
                removed += 1
            except NotFound:
                pass
            except PalletError:
                left = True
        if not left:
            release(engine.layout.run_root, owner)
    if removed:
        engine.reconcile_networks()  # what a removal racing a shim that was still starting left
    return removed
