"""``exec``: another process in a running container, through the OCI runtime's ``exec``.

The process is the container's own (``config.json``'s ``process``: its
capabilities, rlimits, no-new-privileges, AppArmor profile) with the
arguments, environment (the container's, then ``-e`` entries overriding by
name), working directory and user asked for; ``-u`` also sets the
capability sets that user gets from ``run -u`` (none effective for non-root). A foreground exec runs the
runtime with the caller's stdio and returns the process's exit status; a
detached one returns once the process started. The container's lock is held
only to check its state: a long exec never blocks other commands, and
SIGKILL of the caller never touches the container.
"""

from __future__ import annotations

import contextlib
import os

from pallet.errors import FailedPrecondition, InvalidArgument
from pallet.oci.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from pallet.engine.containers.lifecycle import Engine
    from pallet.oci.runtime_spec import Capabilities, Process

__all__ = ["ExecRequest", "exec_process", "merge_env"]


class ExecRequest(Record):
    """What ``pallet exec`` asks for."""

    cmd: tuple[str, ...]
    tty: bool = False
    interactive: bool = False
    detach: bool = False
    env: tuple[str, ...] = ()
    workdir: str = ""
    user: str = ""


def merge_env(base: Sequence[str], extra: Sequence[str]) -> tuple[str, ...]:
    """``base`` with ``extra`` entries replacing those of the same name, new ones appended."""
    out: dict[str, str] = {}
    for entry in (*base, *extra):
        out[entry.partition("=")[0]] = entry
    return tuple(out.values())


def _process(engine: Engine, container_id: str, request: ExecRequest) -> Process:
    from pallet.oci.runtime_spec import User, load_spec

    with open(os.path.join(engine.layout.bundle(container_id), "config.json"), "rb") as f:
        spec = load_spec(f.read())
    base = spec.process
    if base is None:
        raise FailedPrecondition(f"container {container_id} has no process in its config.json")
    if request.workdir and not request.workdir.startswith("/"):
        raise InvalidArgument(
            f"the working directory '{request.workdir}' is invalid, it needs to be an absolute path"
        )
    user, capabilities = base.user, base.capabilities
    if request.user:
        from pallet.engine.spec.generate import resolve_user

        uid, gid, groups = resolve_user(engine.layout.rootfs(container_id), request.user)
        user = User(uid=uid, gid=gid, additional_gids=tuple(groups))
        if capabilities is not None:
            capabilities = _user_capabilities(capabilities.bounding or (), uid)
    return base.replace(
        capabilities=capabilities,
        terminal=request.tty,
        console_size=None,
        args=request.cmd,
        env=merge_env(base.env, request.env),
        cwd=request.workdir or base.cwd,
        user=user,
    )


def _user_capabilities(bounding: tuple[str, ...], uid: int) -> Capabilities:
    """The sets ``run -u`` gives the same user (moby's SetCapabilities, podman's exec): root gets
    the container's bounding set as effective and permitted, any other user the bounding set only,
    as execve leaves a non-root process. Copying the init's sets would hand a non-root exec user
    the effective capabilities of a root init (runc sets what config.json says after setuid)."""
    from pallet.oci.runtime_spec import Capabilities

    if uid == 0:
        return Capabilities(bounding=bounding, effective=bounding, permitted=bounding)
    return Capabilities(bounding=bounding)


def exec_process(
    engine: Engine,
    ref: str,
    request: ExecRequest,
    *,
    stdio: tuple[int, int, int] | None = None,
) -> int:
    """Run ``request`` in container ``ref``; its exit status (0 when detached).

    ``stdio`` are the fds the process gets (None: /dev/null). A container that
    is not running is ``FailedPrecondition`` in docker's words, and nothing runs.
    """
    if not request.cmd:
        raise InvalidArgument("exec needs a command to run in the container")
    record = engine.get(ref)
    if record.state == "paused":
        raise FailedPrecondition(f"Container {record.id} is paused, unpause the container before exec")
    if record.state != "running":
        raise FailedPrecondition(f"container {record.id} is not running")
    process = _process(engine, record.id, request)
    runtime = engine.runtime(record.runtime)
    doc = process.to_json()
    if request.detach:
        import os

        pid_file = os.path.join(engine.layout.run_dir(record.id), f"exec-{os.urandom(6).hex()}.pid")
        try:
            runtime.exec_detached(record.id, doc, str(pid_file), stdio=stdio)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(pid_file)
        return 0
    return runtime.exec_wait(record.id, doc, stdio=stdio)
