"""The namespaces a container joins (``--pid``/``--ipc container:NAME``), pointed at the joined
containers' current inits before each start.

config.json names a joined namespace as ``/proc/PID/ns/KIND``; the joined container's init has
another pid once it restarts, and an old pid may since belong to any process on the host. So the
engine (``pallet start``) and the shim (a restart-policy restart) both point the paths at the
inits the joined containers' shims recorded now (``init.json`` in their run dirs), or refuse the
start in docker's words when one does not run. Standard library only: the shim imports this module.
"""

from __future__ import annotations

import os

from pallet.engine.shim import exitfile
from pallet.errors import FailedPrecondition
from pallet.oci.jsonfast import dumps, loads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["KINDS", "current_paths", "rejoin", "set_namespace_paths"]

#: the namespaces a ``container:NAME`` mode may join, and docker's word for each in errors
KINDS = {"pid": "PID", "ipc": "IPC"}


def not_running(kind: str, target_id: str) -> FailedPrecondition:
    return FailedPrecondition(f"failed to join {KINDS[kind]} namespace: container {target_id} is not running")


def current_paths(runs_dir: str, joins: Mapping[str, str]) -> dict[str, str]:
    """``kind`` -> ``/proc/PID/ns/kind`` of the current init of each joined container (``joins``:
    kind -> container id; ``runs_dir``: the directory of the containers' run dirs)."""
    paths = {}
    for kind, target in joins.items():
        run_dir = os.path.join(runs_dir, target)
        init = exitfile.read_init(run_dir)
        last = exitfile.read_exit(run_dir) if init is not None else None
        if init is None or (last is not None and last.restart_count == init.restart_count):
            raise not_running(kind, target)
        try:
            os.kill(init.pid, 0)
        except ProcessLookupError:
            raise not_running(kind, target) from None
        except PermissionError:
            pass  # it runs, as another user (a remapped container)
        paths[kind] = f"/proc/{init.pid}/ns/{kind}"
    return paths


def set_namespace_paths(config_path: str, paths: Mapping[str, str]) -> None:
    """Point config.json's namespaces of the kinds in ``paths`` at those paths."""
    if not paths:
        return
    with open(config_path) as f:
        config = loads(f.read())
    assert isinstance(config, dict)
    for entry in (config.get("linux") or {}).get("namespaces") or []:
        if entry.get("type") in paths:
            entry["path"] = paths[entry["type"]]
    with open(config_path, "w") as f:
        f.write(dumps(config))


def rejoin(bundle: str, run_dir: str) -> None:
    """Before a restart: the joined namespaces of the container whose document is next to
    ``bundle`` (``PalletJoins``), as they are now; ``FailedPrecondition`` if one does not run."""
    try:
        with open(os.path.join(os.path.dirname(bundle), "container.json")) as f:
            doc = loads(f.read())
    except OSError:
        return
    joins = doc.get("PalletJoins") if isinstance(doc, dict) else None
    if isinstance(joins, dict) and joins:
        paths = current_paths(os.path.dirname(run_dir), {str(k): str(v) for k, v in joins.items()})
        set_namespace_paths(os.path.join(bundle, "config.json"), paths)
