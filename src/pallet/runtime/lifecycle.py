"""``state``, ``kill``, ``delete`` and ``list``: the commands that act on an existing container."""

from __future__ import annotations

import os

from pallet.errors import FailedPrecondition, InvalidArgument, NotFound, PalletError
from pallet.linux.signals import parse_signal
from pallet.oci.jsonfast import dumps
from pallet.runtime.containers import ContainerDir, status_of
from pallet.runtime.ocistate import oci_state, state_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.runtime.cgroup_driver import Driver
    from pallet.runtime.logsink import LogSink
    from pallet.runtime.savedstate import SavedState

_SIGKILL = 9


def _cgroups(saved: SavedState) -> Driver | None:
    """The container's cgroup driver, rebuilt from the paths saved at create."""
    from pallet.runtime.cgroup_driver import from_saved

    return from_saved(saved.cgroups)


def state(root: str, container_id: str) -> str:
    """The OCI state JSON (indented like runc's) of one container."""
    cdir = ContainerDir(root, container_id)
    saved = cdir.load()
    return dumps(oci_state(saved, status_of(cdir, saved)), indent=2)


def kill(root: str, container_id: str, signal_text: str, all_processes: bool) -> None:
    number = parse_signal(signal_text)
    if number is None:
        raise InvalidArgument(f"unknown signal {signal_text!r}")
    cdir = ContainerDir(root, container_id)
    saved = cdir.load()
    status = status_of(cdir, saved)
    if status in ("stopped", "creating"):
        raise FailedPrecondition("container not running")
    pids = [saved.pid]
    cgroups = _cgroups(saved) if all_processes or status == "paused" else None
    if all_processes and cgroups is not None:
        from pallet.runtime.cgroups import V1Cgroups

        if number == _SIGKILL and not isinstance(cgroups, V1Cgroups) and cgroups.kill():
            # v2's cgroup.kill: atomic, also for processes forked meanwhile
            return
        pids = [*cgroups.pids(), *pids]
    for pid in dict.fromkeys(pids):
        try:
            os.kill(pid, number)
        except ProcessLookupError:
            if pid == saved.pid:
                raise FailedPrecondition("container not running") from None
    if status == "paused" and number == _SIGKILL and cgroups is not None:
        # frozen tasks die only once thawed (runc thaws for SIGKILL too)
        cgroups.freeze(False)


def pause(root: str, container_id: str) -> None:
    """Freeze every process of a running container; ``state`` then says ``paused``."""
    cdir, saved, cgroups = _locked_for_freezer(root, container_id)
    try:
        status = status_of(cdir, saved)
        if status != "running":
            raise FailedPrecondition(
                f"cannot pause a container that is {status}"
                if status != "paused"
                else "container already paused"
            )
        cgroups.freeze(True)
    finally:
        cdir.unlock()


def resume(root: str, container_id: str) -> None:
    """Thaw a paused container."""
    cdir, saved, cgroups = _locked_for_freezer(root, container_id)
    try:
        if status_of(cdir, saved) != "paused":
            raise FailedPrecondition("container not paused")
        cgroups.freeze(False)
    finally:
        cdir.unlock()


def _locked_for_freezer(root: str, container_id: str) -> tuple[ContainerDir, SavedState, Driver]:
    cdir = ContainerDir(root, container_id)
    cdir.lock()
    try:
        saved = cdir.load()
        cgroups = _cgroups(saved)
        if cgroups is None:
            raise FailedPrecondition(f"container {container_id} has no cgroup to freeze")
    except BaseException:
        cdir.unlock()
        raise
    return cdir, saved, cgroups


def delete(root: str, container_id: str, force: bool, log: LogSink) -> None:
    from pallet.runtime.create import kill_and_wait

    cdir = ContainerDir(root, container_id)
    try:
        cdir.lock()
        saved = cdir.load()
    except NotFound:
        if force:
            return
        raise
    except InvalidArgument as e:
        if not force:
            cdir.unlock()
            raise
        # a state.json that is not one: what it would name (processes, cgroup) cannot be known
        log.warning(f"{e.message.partition('; ')[0]}: removing the container's state only")
        cdir.remove()
        cdir.unlock()
        return
    try:
        status = status_of(cdir, saved)
        if status in ("running", "paused", "creating") and not force:
            raise FailedPrecondition(f"cannot delete container {container_id} that is not stopped: {status}")
        cgroups = _cgroups(saved)
        victims = cgroups.pids() if cgroups is not None else []
        if status != "stopped" and saved.pid > 0:
            victims.append(saved.pid)
        if victims and status == "paused" and cgroups is not None:
            for victim in victims:
                try:  # noqa: SIM105 - contextlib costs ~7 ms at start
                    os.kill(victim, _SIGKILL)
                except OSError:
                    pass
            # frozen tasks die only once thawed
            cgroups.freeze(False)
        if victims:
            kill_and_wait(victims)
        if saved.host_mounts and saved.rootfs:
            from pallet.linux.libc import Libc
            from pallet.runtime.rootfs import unmount_tree

            unmount_tree(saved.rootfs, Libc())
        if cgroups is not None:
            try:
                cgroups.remove()
            except PalletError as e:
                log.warning(str(e))
        if saved.poststop:
            from pallet.runtime.hooks import run_hooks

            # runtime-spec lifecycle step 13: a failure is logged, the rest and the delete go on
            run_hooks("poststop", saved.poststop, state_json(saved, "stopped"), log.warning)
        cdir.remove()
    finally:
        cdir.unlock()


def list_containers(root: str, fmt: str, quiet: bool) -> str:
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        names = []
    rows: list[dict[str, object]] = []
    for name in names:
        if name.startswith("@"):
            continue  # the runtime's own entries (the seccomp cache), never a container id
        try:
            cdir = ContainerDir(root, name)
            saved = cdir.load()
        except PalletError:
            continue
        rows.append(oci_state(saved, status_of(cdir, saved)))
    if quiet:
        return "".join(f"{row['id']}\n" for row in rows)
    if fmt == "json":
        return dumps(rows) + "\n"
    if fmt != "table":
        raise InvalidArgument(f"invalid format option: {fmt}")
    table = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
    table += [
        [str(r["id"]), str(r["pid"]), str(r["status"]), str(r["bundle"]), str(r["created"]), str(r["owner"])]
        for r in rows
    ]
    # runc: tabwriter.NewWriter(out, 12, 1, 3, " ", 0): cells padded by 3, at least 12 wide
    widths = [max(12, max(len(row[i]) for row in table) + 3) for i in range(5)]
    return "".join(
        "".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + row[5] + "\n" for row in table
    )
