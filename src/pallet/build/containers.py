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
does, so a secret's mount point never lands in a layer; a directory the image
had (``/etc``) that overlayfs copied up only to hold them, and that is empty in
the upper dir now, is dropped from it (docker keeps those in an init layer).

Snapshots: on the overlay driver the layer is written from exactly the files
of the container's upper dir, so that dir becomes the layer's committed
snapshot (``_adopt``) instead of being deleted while the next step's
container unpacks the same layer again. Not where overlayfs may write
redirect or metacopy xattrs (the upper dir would not stand alone), nor when
``SOURCE_DATE_EPOCH`` clamps the layer's mtimes (it would not match).
"""

from __future__ import annotations

import contextlib
import errno
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

    def run(
        self,
        record: ContainerRecord,
        write: Callable[[bytes], None],
        write_stderr: Callable[[bytes], None] | None = None,
    ) -> int:
        """Run a created step container to its end, its output to ``write`` (its stderr to
        ``write_stderr`` when given); its exit status."""
        from pallet.engine.service import streams

        targets = self.mount_targets(record)
        with self.root(record) as fd:
            missing = _missing_paths(fd, targets)
        code = self.service.start_attached(
            record.id, streams(write_stdout=write, write_stderr=write_stderr or write)
        )
        with self.root(record) as fd:
            _remove_stubs(fd, missing)
        # a parent the image had (/etc) was copied up only to hold mount points: not a change
        kept = {os.path.dirname(os.path.normpath("/" + t.lstrip("/"))) for t in targets} - set(missing)
        upper = self._upper(record)
        if upper is not None:
            _drop_untouched_dirs(upper, sorted(kept - {"/"}, key=lambda p: p.count("/"), reverse=True))
        return code

    def _upper(self, record: ContainerRecord) -> str | None:
        """The overlay upper dir of a stopped step container, its root unmounted; None on another driver."""
        from pallet.engine.layout import snapshot_key
        from pallet.image import snapshots

        snaps = self.engine.images.snapshots
        info = snaps.stat(snapshot_key(record.id))
        if snaps.driver != snapshots.OVERLAY or info is None or info.kind != "active":
            return None
        with self.engine.lock(record.id).held():
            snapshots.unmount(self.engine.layout.rootfs(record.id))
        return os.path.join(info.location, "upper")

    def commit(
        self,
        record: ContainerRecord,
        image_id: str,
        run_config: ContainerConfig,
        created_by: str,
        *,
        clamp_mtime_ns: int | None = None,
    ) -> ImageRecord:
        from pallet.engine.filesystem.commit import commit_snapshot
        from pallet.engine.layout import snapshot_key

        committed = commit_snapshot(
            self.engine.images,
            snapshot_key(record.id),
            image=image_id,
            run_config=run_config,
            created_by=created_by,
            message="buildkit.dockerfile.v0",
            clamp_mtime_ns=clamp_mtime_ns,
        )
        # a clamped layer's mtimes are not the files': its snapshot is unpacked from it instead
        if clamp_mtime_ns is None and self._upper(record) is not None and _plain_overlay():
            self._adopt(record, committed)
        return committed

    def _adopt(self, record: ContainerRecord, committed: ImageRecord) -> None:
        """Make the step container's writable layer the new layer's snapshot (the layer was written
        from exactly these files), so the next step's container does not unpack the layer again."""
        from pallet.engine.layout import snapshot_key
        from pallet.errors import AlreadyExists
        from pallet.image.unpack import record_layer

        images = self.engine.images
        layers = images.layers(str(committed.id))
        top = layers[-1]
        parent = layers[-2].chain_id if len(layers) > 1 else None
        if images.snapshots.stat(str(top.chain_id)) is not None:
            return  # unpacked before (the same layer made by an earlier build)
        with self.engine.lock(record.id).held():
            try:
                images.snapshots.commit(
                    str(top.chain_id), snapshot_key(record.id), onto=str(parent) if parent else None
                )
            except (AlreadyExists, NotFound):
                return
        record_layer(images.db, top.chain_id, top.diff_id, parent, size=top.uncompressed_size)

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


def _plain_overlay() -> bool:
    """Whether overlayfs writes an upper dir as a layer's tar would unpack (no redirect or metacopy
    xattrs standing for data kept in the lower layers)."""
    for name in ("redirect_dir", "metacopy"):
        try:
            with open(f"/sys/module/overlay/parameters/{name}") as f:
                if f.read().strip() not in ("N", "off"):
                    return False
        except OSError:
            return False
    return True


def _drop_untouched_dirs(upper: str, paths: list[str]) -> None:
    """Remove from an overlay upper dir the given dirs where they are only copied up and empty now
    (not opaque: an opaque one hides the lower dir's entries, a change)."""
    for path in paths:
        full = os.path.join(upper, path.lstrip("/"))
        try:
            if not stat.S_ISDIR(os.lstat(full).st_mode) or os.listdir(full):
                continue
            if os.getxattr(full, "trusted.overlay.opaque", follow_symlinks=False) == b"y":
                continue
        except OSError as e:
            if getattr(e, "errno", None) != errno.ENODATA:
                continue
        with contextlib.suppress(OSError):
            os.rmdir(full)


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
    extra_hosts: tuple[str, ...] = (),
) -> RunOptions:
    """The run options of a step container (docker's RUN: the stage's env, workdir, user; no entrypoint;
    ``extra_hosts``: docker's ``--add-host NAME:IP`` lines of its /etc/hosts)."""
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
        network=NetworkOptions(mode=mode, hostname=hostname, extra_hosts=extra_hosts),
        mounts=MountOptions(
            specs=tuple(
                MountSpec(type="bind", source=src, target=dst, read_only=ro) for src, dst, ro in binds
            ),
            tmpfs=dict(tmpfs or {}),
        ),
    )
