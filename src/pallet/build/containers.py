"""The build's containers: every RUN, and every COPY/ADD's writable root, is a container of the engine.

A step container is made from the stage's current image through the engine
(``Service.create``: the same snapshots, spec generation, shim and runtime
as ``pallet run``), run attached for RUN, committed with the engine's commit
(``engine.filesystem.commit``: the writable layer as one gzip'd layer), and
removed. Each carries the label ``pallet.build.owner=<pid-start-random>``
and the build leaves its marker before the first (``engine.containers.owned``):
a build killed (even by SIGKILL) leaves containers whose owner is gone, which
the next command removes before it does anything else.

Mount stubs: the runtime makes the targets of the container's mounts
(``/etc/hosts``, ``/run/secrets/x``, a cache mount's directory, …) in the
writable layer when the image lacks them. Those that were not there before
and are still empty afterwards are removed before the commit, as BuildKit
does, so a secret's mount point never lands in a layer.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat

from pallet.engine.containers import owned
from pallet.engine.containers.owned import OWNER_LABEL
from pallet.errors import NotFound, PalletError
from pallet.image import owners
from pallet.linux.openat2 import open_in_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from pallet.engine.containers.lifecycle import Engine
    from pallet.engine.containers.records import ContainerRecord
    from pallet.engine.service import Service
    from pallet.engine.spec.options import RunOptions
    from pallet.image.store import ImageRecord
    from pallet.oci.image_spec import ContainerConfig

__all__ = ["OWNER_LABEL", "StepContainers"]


class StepContainers:
    """Makes, runs, commits and removes this build's step containers."""

    def __init__(self, engine: Engine, service: Service) -> None:
        self.engine = engine
        self.service = service
        self.owner = owners.owner_tag()
        self._live: list[str] = []
        self._claimed = False

    def create(self, image_id: str, options: RunOptions) -> ContainerRecord:
        if not self._claimed:  # from the first container on, a killed build's are swept by the next command
            owned.claim(self.engine.layout.run_root, self.owner)
            self._claimed = True
        labels = {**options.labels, OWNER_LABEL: self.owner}
        record = self.service.create(image_id, options.replace(labels=labels))
        self._live.append(record.id)
        return record

    @contextlib.contextmanager
    def root(self, record: ContainerRecord) -> Iterator[int]:
        """The root directory fd of a stopped step container (its writable root filesystem)."""
        from pallet.engine.filesystem.cp import container_root

        with container_root(self.engine, self.engine.get(record.id), "/") as (fd, _):
            yield fd

    def mount_targets(self, record: ContainerRecord) -> list[str]:
        try:
            with open(os.path.join(self.engine.layout.bundle(record.id), "config.json")) as f:
                mounts = json.load(f).get("mounts") or []
        except (OSError, ValueError):
            return []
        return [
            m["destination"] for m in mounts if isinstance(m, dict) and isinstance(m.get("destination"), str)
        ]

    def run(self, record: ContainerRecord, write: Callable[[bytes], None]) -> int:
        """Run a created step container to its end, its output to ``write``; its exit status."""
        from pallet.engine.service import streams

        targets = self.mount_targets(record)
        with self.root(record) as fd:
            missing = _missing_paths(fd, targets)
        code = self.service.start_attached(record.id, streams(write_stdout=write, write_stderr=write))
        with self.root(record) as fd:
            _remove_stubs(fd, missing)
        return code

    def commit(
        self, record: ContainerRecord, image_id: str, run_config: ContainerConfig, created_by: str
    ) -> ImageRecord:
        from pallet.engine.filesystem.commit import commit_snapshot
        from pallet.engine.layout import snapshot_key

        return commit_snapshot(
            self.engine.images,
            snapshot_key(record.id),
            image=image_id,
            run_config=run_config,
            created_by=created_by,
            message="buildkit.dockerfile.v0",
        )

    def remove(self, record: ContainerRecord) -> None:
        with contextlib.suppress(NotFound):
            self.service.remove(record.id, force=True, volumes=True)
        if record.id in self._live:
            self._live.remove(record.id)

    def close(self) -> None:
        """Remove every step container still here (a failed or interrupted step's)."""
        for container_id in list(self._live):
            with contextlib.suppress(PalletError):
                self.service.remove(container_id, force=True, volumes=True)
            self._live.remove(container_id)
        if self._claimed and not self._live:
            owned.release(self.engine.layout.run_root, self.owner)
            self._claimed = False


def _missing_paths(root_fd: int, targets: list[str]) -> list[str]:
    """Mount targets, and their parents, that the root does not have yet (deepest first)."""
    missing: set[str] = set()
    for target in targets:
        path = os.path.normpath("/" + target.lstrip("/"))
        while path != "/":
            try:
                fd = open_in_root(root_fd, path.lstrip("/"), os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                missing.add(path)
            else:
                os.close(fd)
            path = os.path.dirname(path)
    return sorted(missing, key=lambda p: p.count("/"), reverse=True)


def _remove_stubs(root_fd: int, paths: list[str]) -> None:
    for path in paths:
        parent, name = os.path.split(path)
        try:
            pfd = open_in_root(
                root_fd, parent.lstrip("/") or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
            )
        except OSError:
            continue
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                with contextlib.suppress(OSError):
                    os.rmdir(name, dir_fd=pfd)  # only when empty
            elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
                os.unlink(name, dir_fd=pfd)
        except OSError:
            pass
        finally:
            os.close(pfd)


def options_for(
    *,
    cmd: tuple[str, ...] | None,
    env: Mapping[str, str],
    workdir: str,
    user: str,
    network: str,
    binds: list[tuple[str, str, bool]] = (),  # type: ignore[assignment]
    tmpfs: Mapping[str, str] | None = None,
    hostname: str = "",
) -> RunOptions:
    """The run options of a step container (docker's RUN: the stage's env, workdir, user; no entrypoint)."""
    from pallet.engine.service import RunOptions
    from pallet.engine.spec.options import MountOptions, NetworkOptions, ProcessOptions
    from pallet.engine.spec.syntax import MountSpec, parse_network

    mode = parse_network("bridge" if network in ("", "default") else network)
    return RunOptions(
        process=ProcessOptions(
            cmd=cmd,
            entrypoint=("",),
            env=tuple(f"{k}={v}" for k, v in env.items()),
            workdir=workdir,
            user=user,
        ),
        network=NetworkOptions(mode=mode, hostname=hostname),
        mounts=MountOptions(
            specs=tuple(
                MountSpec(type="bind", source=src, target=dst, read_only=ro) for src, dst, ro in binds
            ),
            tmpfs=dict(tmpfs or {}),
        ),
    )
