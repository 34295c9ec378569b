"""What a container's options give away, said out loud: the warnings ``pallet run``/``create`` print.

``warnings_for(options, mounts)`` returns one line per finding of
``spec/findings.py`` (the table ``pallet audit`` reads too): the setting,
its severity and the escape it opens — ``--privileged``, dangerous added
capabilities, the seccomp filter or system paths turned off, the host
network, host devices, and bind mounts of the host's control surfaces (the
engine sockets and state, /proc, /sys, cgroups, /, /etc, /dev, ...). The
options still work; the user decides. The CLI prefixes ``WARNING: ``.

Pure: it looks only at its arguments (``engine_paths`` names pallet's own
root and run directories, which are control surfaces too).
"""

from __future__ import annotations

from pallet.engine.spec.findings import findings_for

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from pallet.engine.spec.options import MountOptions, RunOptions
    from pallet.engine.spec.syntax import MountSpec

__all__ = ["warnings_for"]


def warnings_for(
    options: RunOptions,
    mounts: Iterable[MountSpec] | MountOptions | None = None,
    *,
    engine_paths: Iterable[str] = (),
    private_cgroupns: bool = True,
) -> list[str]:
    """One line per isolation the options give away, most severe first (empty for the defaults).

    ``mounts`` defaults to ``options.mounts.specs``; ``engine_paths`` adds
    this engine's root and run directories when they are not the defaults; ``private_cgroupns``
    whether a default container has a cgroup namespace of its own here.
    """
    found = findings_for(options, mounts, engine_paths=engine_paths, private_cgroupns=private_cgroupns)
    return [f.warning() for f in found]
