"""OCI hooks: run on the host (or in the container for createContainer/startContainer), in order,
with the state JSON on stdin and an optional timeout.

A failing hook raises ``FailedPrecondition`` naming the hook, except where the runtime spec says a
failure is only a warning (poststart, poststop: lifecycle steps 9 and 12): the caller then passes
``warn`` and every remaining hook still runs. ``subprocess`` is imported only when there are hooks
to run.
"""

from __future__ import annotations

from pallet.errors import FailedPrecondition

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pallet.oci.runtime_spec import Hook


def run_hooks(
    phase: str, hooks: tuple[Hook, ...], state_json: str, warn: Callable[[str], None] | None = None
) -> None:
    """Run every hook of ``phase`` in order.

    Without ``warn``, stop at the first failure and raise it. With ``warn``, report each failure
    through it and go on with the next hook.
    """
    for index, hook in enumerate(hooks):
        try:
            _run_one(phase, index, hook, state_json)
        except FailedPrecondition as e:
            if warn is None:
                raise
            warn(str(e))


def _run_one(phase: str, index: int, hook: Hook, state_json: str) -> None:
    import subprocess

    args = list(hook.args) if hook.args else [hook.path]
    env = {}
    for item in hook.env:
        key, _, value = item.partition("=")
        env[key] = value
    try:
        proc = subprocess.Popen(
            args,
            executable=hook.path,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            close_fds=True,
        )
    except OSError as e:
        from pallet.errors import errno_text

        raise FailedPrecondition(
            f"error running {phase} hook #{index}: fork/exec {hook.path}: {errno_text(e.errno or 0)}"
        ) from None
    try:
        out, err = proc.communicate(state_json.encode(), timeout=hook.timeout if hook.timeout else None)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise FailedPrecondition(
            f"error running {phase} hook #{index}: timeout after {hook.timeout}s"
        ) from None
    except BrokenPipeError:
        out, err = b"", b""
        proc.wait()
    if proc.returncode != 0:
        how = f"exit status {proc.returncode}" if proc.returncode > 0 else f"signal: {-proc.returncode}"
        raise FailedPrecondition(
            f"error running {phase} hook #{index}: {how}, stdout: {out.decode(errors='replace').strip()}, "
            f"stderr: {err.decode(errors='replace').strip()}"
        )
