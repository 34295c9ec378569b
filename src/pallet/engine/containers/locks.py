"""Per-container locks: one ``flock`` file per container under ``<run>/locks/``.

Every command that changes a container (start, stop, kill, rm, exec, rename,
reconcile) holds that container's lock, so two ``pallet`` processes never
work on one container at once. The lock is a property of the open file:
a SIGKILLed holder releases it when the kernel closes its files, so a lock
can never be left behind by a crash. The lock files live on the run dir
(tmpfs): they vanish at reboot with the rest of the runtime state.
"""

from __future__ import annotations

import os

from pallet.image.metadata import FileLock

__all__ = ["container_lock", "remove_lock_file"]


def _lock_path(run_root: str, container_id: str) -> str:
    return os.path.join(run_root, "locks", f"{container_id}.lock")


def container_lock(run_root: str, container_id: str) -> FileLock:
    """The (not yet taken) lock of one container; use ``with lock.held():``."""
    os.makedirs(os.path.join(run_root, "locks"), exist_ok=True)
    return FileLock(_lock_path(run_root, container_id))


def remove_lock_file(run_root: str, container_id: str) -> None:
    """Remove the lock file of a container that is gone; idempotent.

    Called while holding the lock: a process waiting on the old file takes
    it afterwards, then finds the container gone and reports so.
    """
    try:
        os.unlink(_lock_path(run_root, container_id))
    except FileNotFoundError:
        return
