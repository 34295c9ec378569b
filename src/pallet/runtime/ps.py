"""``ps``: the processes of a container, as ``runc ps``.

``--format json`` prints the host pids in the container's cgroup as a JSON
array (what containerd's ``task ps`` and ``docker top`` read). The table form
runs the host's ``ps`` (``-ef`` unless other options are given) and keeps its
header and the lines whose PID column is one of the container's.
"""

from __future__ import annotations

from pallet.errors import FailedPrecondition, InvalidArgument, SystemError_
from pallet.oci.jsonfast import dumps
from pallet.runtime.containers import ContainerDir


def container_pids(root: str, container_id: str) -> list[int]:
    from pallet.runtime.cgroup_driver import from_saved

    saved = ContainerDir(root, container_id).load()
    cgroups = from_saved(saved.cgroups)
    if cgroups is None:
        raise FailedPrecondition(f"container {container_id} has no cgroup to list processes from")
    return cgroups.pids()


def ps(root: str, container_id: str, fmt: str, ps_args: list[str]) -> str:
    if fmt not in ("table", "json"):
        raise InvalidArgument(f"invalid format option: {fmt}")
    pids = container_pids(root, container_id)
    if fmt == "json":
        return dumps(pids) + "\n"
    if ps_args[:1] == ["--"]:
        ps_args = ps_args[1:]  # runc's separator between its flags and ps's
    return filter_table(_run_ps(ps_args or ["-ef"]), pids)


def _run_ps(args: list[str]) -> str:
    import subprocess

    try:
        done = subprocess.run(["ps", *args], capture_output=True, text=True, check=False)
    except OSError as e:
        raise SystemError_("run ps", e.errno or 0) from None
    if done.returncode != 0:
        raise FailedPrecondition(
            f"ps {' '.join(args)}: {done.stderr.strip() or f'exit status {done.returncode}'}"
        )
    return done.stdout


def filter_table(output: str, pids: list[int]) -> str:
    """The header of ``ps`` output and the lines of ``pids`` (found by the header's PID column)."""
    lines = output.splitlines()
    if not lines:
        return ""
    header = lines[0].split()
    if "PID" not in header:
        raise InvalidArgument("ps: the output has no PID column; the options must keep it")
    column = header.index("PID")
    wanted = {str(pid) for pid in pids}
    kept = [lines[0]]
    for line in lines[1:]:
        fields = line.split(None, column + 1)
        if len(fields) > column and fields[column] in wanted:
            kept.append(line)
    return "\n".join(kept) + "\n"
