"""``pallet commit``: a new image from a container's changes, as docker makes it.

The new image is the container's image plus one layer: the container's
writable layer written as a gzip'd tar (``pallet.image.layerdiff``),
streamed straight into the content store (no temp copy of the layer). Its
config is the image's config with:

- ``config``: the container's run config (docker takes the container's
  ``Config``: its Cmd, Env, ... as run), then the ``--change`` lines;
- ``rootfs.diff_ids`` + the new layer, ``history`` + an entry with the
  container's command as ``created_by``, ``--author`` and ``--message``;
- ``created`` now, ``author`` and docker's top-level ``comment``.

The manifest keeps the image's kind (OCI or Docker schema 2) and media
types. Blobs are written under a store lease, so a concurrent ``image
prune``/gc cannot take them before the image row references them.
"""

from __future__ import annotations

import os
import threading
import time

from pallet.engine.filesystem.diff import diff_dirs
from pallet.errors import InvalidArgument
from pallet.image import layerdiff
from pallet.image.changes import apply_changes
from pallet.image.compression import GZIP
from pallet.oci import mediatypes
from pallet.oci.digest import Digest
from pallet.oci.image_spec import ContainerConfig, Descriptor, History, Manifest, RootFS, dumps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from pallet.image.layerdiff import LayerResult
    from pallet.image.store import ImageRecord, ImageStore

__all__ = ["commit_snapshot"]

_CHUNK = 1 << 20


def _now() -> str:
    ns = time.time_ns()
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


def _write_layer(
    images: ImageStore,
    key: str,
    media_type: str,
    skip: Collection[str] = (),
    clamp_mtime_ns: int | None = None,
) -> tuple[Descriptor, LayerResult]:
    """Stream the snapshot's diff as a gzip'd layer into the content store (caller holds a lease).

    A thread writes the layer into a pipe that ``ingest`` reads; only the
    writer touches the files, only this thread the store's database.
    """
    outcome: list[LayerResult | BaseException] = []
    with diff_dirs(images, key) as (upper, lower, kind):
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)

        def produce() -> None:
            try:
                with open(write_fd, "wb") as out:
                    outcome.append(
                        layerdiff.write_layer(
                            out,
                            upper,
                            lower=lower,
                            upper_kind=kind,
                            compression=GZIP,
                            skip=skip,
                            clamp_mtime_ns=clamp_mtime_ns,
                        )
                    )
            except BrokenPipeError:
                pass  # the ingest side failed first; its error is the one reported
            except BaseException as e:  # noqa: BLE001 - handed to the calling thread
                outcome.append(e)

        writer = threading.Thread(target=produce, name="commit-layer", daemon=True)
        writer.start()
        try:
            with open(read_fd, "rb") as stream:
                descriptor = images.content.ingest(stream, media_type=media_type)
        finally:
            writer.join()
    if not outcome:
        raise InvalidArgument("the layer writer stopped without a result")
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    if str(descriptor.digest) != result.digest:
        raise InvalidArgument(
            f"the layer changed while it was stored ({descriptor.digest} != {result.digest})"
        )
    return descriptor, result


def commit_snapshot(
    images: ImageStore,
    key: str,
    *,
    image: str,
    run_config: ContainerConfig | None = None,
    changes: Sequence[str] = (),
    message: str = "",
    author: str = "",
    created_by: str = "",
    ref: str | None = None,
    exclude: Collection[str] = (),
    clamp_mtime_ns: int | None = None,
) -> ImageRecord:
    """Make an image of ``image`` (the container's image) plus snapshot ``key``'s changes; tag it ``ref``.

    ``run_config`` is the container's run config (None: the image's). The
    ``--change`` lines are checked before any blob is written. ``exclude``:
    absolute paths left out of the layer (the mount points of the container's
    /etc/hosts, /etc/resolv.conf and /etc/hostname, which docker keeps in an
    init layer that is never committed). ``clamp_mtime_ns``: the layer's mtimes are no later
    (``layerdiff.write_layer``).
    """
    parent = images.resolve(image)
    parent_config = images.config(parent.id)
    base = run_config if run_config is not None else (parent_config.config or ContainerConfig())
    config_run = apply_changes(base, changes)
    parent_manifest = images.manifest(parent.id)
    docker = parent.manifest_media_type == mediatypes.DOCKER_MANIFEST
    layer_type = mediatypes.DOCKER_LAYER if docker else mediatypes.OCI_LAYER_GZIP
    config_type = mediatypes.DOCKER_CONFIG if docker else mediatypes.OCI_CONFIG
    manifest_type = mediatypes.DOCKER_MANIFEST if docker else mediatypes.OCI_MANIFEST
    with images.lease():
        layer, result = _write_layer(
            images, key, layer_type, {p.lstrip("/") for p in exclude}, clamp_mtime_ns
        )
        created = _now()
        extra = dict(parent_config.extra)
        extra.pop("container_config", None)  # described the parent's build container, not ours
        extra["comment"] = message
        config = parent_config.replace(
            created=created,
            author=author or None,
            config=config_run,
            rootfs=RootFS(diff_ids=(*parent_config.rootfs.diff_ids, Digest(result.diff_id))),
            history=(
                *parent_config.history,
                History(
                    created=created,
                    created_by=created_by or None,
                    author=author or None,
                    comment=message or None,
                ),
            ),
            extra=extra,
        )
        config_bytes = dumps(config.to_json())
        manifest = Manifest(
            media_type=manifest_type,
            config=Descriptor(
                media_type=config_type, digest=Digest.of_bytes(config_bytes), size=len(config_bytes)
            ),
            layers=(*parent_manifest.layers, layer),
        )
        return images.add_image(
            dumps(manifest.to_json()), config_bytes, manifest_media_type=manifest_type, ref=ref
        )
