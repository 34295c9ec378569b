"""``system df``: what images, containers and volumes take on disk, and what a prune would give back.

The figures, each read from the store (a test recomputes them from the
store's files and rows):

- an image's size is the sum of its layers, a layer counted uncompressed once
  unpacked and as its stored blob before (what ``pallet images`` shows); its
  *shared* size is that of its layers another image also has, its *unique*
  size the rest. The images' total counts every layer once; an image is
  active while a container (in any state) uses it, and what is reclaimable is
  the layers no active image has (what ``image prune -a`` would remove).
- a container's size is its writable snapshot on disk (``du``: allocated
  blocks); running and paused ones are active; the others are reclaimable.
- a volume's size is its ``_data`` on disk; one no container mounts is
  reclaimable; ``links`` counts the containers that mount it.
- there is no build cache yet: always zero.
"""

from __future__ import annotations

import os

from pallet.engine.layout import snapshot_key
from pallet.linux.trees import disk_usage
from pallet.oci.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.engine.containers.lifecycle import Engine
    from pallet.engine.containers.records import ContainerRecord
    from pallet.engine.volumes import Volume
    from pallet.image.store import ImageRecord, ImageStore, LayerRecord

__all__ = [
    "ContainerUsage",
    "DiskUsage",
    "ImageUsage",
    "Summary",
    "VolumeUsage",
    "disk_usage_of",
    "image_layers",
    "layer_size",
    "writable_size",
]

#: container states that count as active (docker: running or paused)
_ACTIVE = frozenset({"running", "paused", "restarting"})


def layer_size(layer: LayerRecord) -> int:
    """A layer's size as images show it: uncompressed once unpacked, else as stored."""
    return layer.uncompressed_size if layer.uncompressed_size is not None else layer.blob.size


class ImageUsage(Record):
    image: ImageRecord
    size: int
    shared_size: int
    containers: int

    @property
    def unique_size(self) -> int:
        return self.size - self.shared_size


class ContainerUsage(Record):
    container: ContainerRecord
    #: bytes of its writable snapshot on disk
    size: int

    @property
    def active(self) -> bool:
        return self.container.state in _ACTIVE


class VolumeUsage(Record):
    volume: Volume
    size: int

    @property
    def links(self) -> int:
        return len(self.volume.users)


class Summary(Record):
    """One line of ``system df``."""

    type: str
    total: int
    active: int
    size: int
    reclaimable: int


class DiskUsage(Record):
    images: tuple[ImageUsage, ...]
    containers: tuple[ContainerUsage, ...]
    volumes: tuple[VolumeUsage, ...]
    #: every layer once
    layers_size: int
    #: layers no active image has
    layers_reclaimable: int

    def summary(self) -> list[Summary]:
        """Docker's four lines: Images, Containers, Local Volumes, Build Cache."""
        return [
            Summary(
                type="Images",
                total=len(self.images),
                active=sum(1 for i in self.images if i.containers),
                size=self.layers_size,
                reclaimable=self.layers_reclaimable,
            ),
            Summary(
                type="Containers",
                total=len(self.containers),
                active=sum(1 for c in self.containers if c.active),
                size=sum(c.size for c in self.containers),
                reclaimable=sum(c.size for c in self.containers if not c.active),
            ),
            Summary(
                type="Local Volumes",
                total=len(self.volumes),
                active=sum(1 for v in self.volumes if v.links),
                size=sum(v.size for v in self.volumes),
                reclaimable=sum(v.size for v in self.volumes if not v.links),
            ),
            Summary(type="Build Cache", total=0, active=0, size=0, reclaimable=0),
        ]


def image_layers(store: ImageStore) -> dict[str, list[LayerRecord]]:
    """Every image's layers by image id; an image removed by another command meanwhile is left out."""
    from pallet.errors import NotFound

    found: dict[str, list[LayerRecord]] = {}
    for record in store.list_images():
        try:
            found[str(record.id)] = store.layers(str(record.id))
        except NotFound:
            continue
    return found


def disk_usage_of(engine: Engine) -> DiskUsage:
    """Measure the engine's root now (a snapshot in time: other commands may change it meanwhile)."""
    store = engine.images
    layers_of = image_layers(store)
    records = [record for record in store.list_images() if str(record.id) in layers_of]
    users = {str(r.id): len(store.users(str(r.id))) for r in records}
    holders: dict[str, int] = {}  # chain id -> how many images have it
    sizes: dict[str, int] = {}
    for layers in layers_of.values():
        for layer in {str(lay.chain_id): lay for lay in layers}.values():
            holders[str(layer.chain_id)] = holders.get(str(layer.chain_id), 0) + 1
            sizes[str(layer.chain_id)] = layer_size(layer)
    images = tuple(
        ImageUsage(
            image=record,
            size=sum(layer_size(lay) for lay in layers_of[str(record.id)]),
            shared_size=sum(
                layer_size(lay) for lay in layers_of[str(record.id)] if holders[str(lay.chain_id)] > 1
            ),
            containers=users[str(record.id)],
        )
        for record in records
    )
    in_use = {str(lay.chain_id) for r in records if users[str(r.id)] for lay in layers_of[str(r.id)]}
    layers_size = sum(sizes.values())
    reclaimable = sum(size for chain, size in sizes.items() if chain not in in_use)

    containers = []
    for container in engine.list_containers(all=True):
        info = store.snapshots.stat(snapshot_key(container.id))
        containers.append(
            ContainerUsage(container=container, size=writable_size(info.location) if info else 0)
        )
    volumes = tuple(
        VolumeUsage(volume=v, size=disk_usage(v.mountpoint)) for v in engine.volumes.list_volumes()
    )
    return DiskUsage(
        images=images,
        containers=tuple(containers),
        volumes=volumes,
        layers_size=layers_size,
        layers_reclaimable=reclaimable,
    )


def writable_size(location: str) -> int:
    """The writable part of a container's snapshot: overlay's ``upper``, or the copy driver's ``fs``."""
    upper = os.path.join(location, "upper")
    return disk_usage(upper if os.path.isdir(upper) else os.path.join(location, "fs"))
