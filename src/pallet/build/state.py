"""A stage's image as it is being built: config, history and layers, and turning it into a stored image.

Metadata steps (ENV, LABEL, CMD, …) only change ``StageImage``'s config and
history; a filesystem step needs a stored image to make its container from,
so ``materialize`` writes the current state as an image (manifest + config
blobs, one ``add_image``), and a committed step's image becomes the state.
Images keep their base's kind (Docker schema 2 or OCI); ``scratch`` is OCI.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from pallet.oci import mediatypes
from pallet.oci.digest import Digest
from pallet.oci.image_spec import (
    ContainerConfig,
    Descriptor,
    History,
    ImageConfig,
    Manifest,
    RootFS,
    dumps,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.image.store import ImageStore

__all__ = ["DEFAULT_SHELL", "StageImage", "format_time", "from_image", "materialize", "scratch"]

DEFAULT_SHELL = ("/bin/sh", "-c")


def format_time(ns: int | None = None) -> str:
    """RFC 3339 in UTC with nanoseconds, as docker writes ``created``."""
    ns = time.time_ns() if ns is None else ns
    seconds, frac = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return text + (f".{frac:09d}Z" if frac else "Z")


@dataclass(frozen=True, slots=True, kw_only=True)
class StageImage:
    """The state of one stage after some steps; ``image_id`` is set while it equals a stored image."""

    config: ImageConfig
    layers: tuple[Descriptor, ...]
    docker: bool
    image_id: str | None = None

    @property
    def run(self) -> ContainerConfig:
        return self.config.config or ContainerConfig()

    @property
    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.run.env or ():
            key, _, value = item.partition("=")
            out[key] = value
        return out

    @property
    def shell(self) -> tuple[str, ...]:
        return self.run.shell or DEFAULT_SHELL

    def with_run(self, run: ContainerConfig, created_by: str, created: str) -> StageImage:
        """A metadata step: the container config changed, one empty-layer history entry added."""
        entry = History(
            created=created, created_by=created_by, comment="buildkit.dockerfile.v0", empty_layer=True
        )
        config = self.config.replace(config=run, history=(*self.config.history, entry), created=created)
        return replace(self, config=config, image_id=None)

    def with_created(self, created: str) -> StageImage:
        """Every ``created`` set to one time (``SOURCE_DATE_EPOCH``)."""
        history = tuple(h.replace(created=created) for h in self.config.history)
        return replace(self, config=self.config.replace(created=created, history=history), image_id=None)


def scratch() -> StageImage:
    config = ImageConfig(architecture="amd64", os="linux", config=ContainerConfig(), rootfs=RootFS())
    return StageImage(config=config, layers=(), docker=False)


def from_image(images: ImageStore, image_id: str) -> StageImage:
    record = images.get(image_id)
    return StageImage(
        config=images.config(image_id),
        layers=images.manifest(image_id).layers,
        docker=record.manifest_media_type == mediatypes.DOCKER_MANIFEST,
        image_id=str(record.id),
    )


def materialize(images: ImageStore, state: StageImage) -> StageImage:
    """``state`` stored as an image (idempotent: the same state gives the same image id)."""
    if state.image_id is not None:
        return state
    config_type = mediatypes.DOCKER_CONFIG if state.docker else mediatypes.OCI_CONFIG
    manifest_type = mediatypes.DOCKER_MANIFEST if state.docker else mediatypes.OCI_MANIFEST
    doc = state.config.to_json()
    if isinstance(doc, dict):
        doc.pop("container_config", None)
    config_bytes = dumps(doc)
    manifest = Manifest(
        media_type=manifest_type,
        config=Descriptor(
            media_type=config_type, digest=Digest.of_bytes(config_bytes), size=len(config_bytes)
        ),
        layers=state.layers,
    )
    record = images.add_image(dumps(manifest.to_json()), config_bytes, manifest_media_type=manifest_type)
    return replace(state, image_id=str(record.id))
