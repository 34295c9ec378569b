"""``system prune``: stopped containers, unused networks, unused anonymous volumes, unused images, then garbage.

The order is docker's, and it matters: a container's removal releases its
image and volumes, so they can go in the same run. Last comes the image
store's ``gc``, which waits for every lease to end (a pull, load or commit in
progress holds one from its first blob until its image row exists) and then
deletes every blob and committed snapshot no image references. What is in use
is never touched: a running container keeps its image, its snapshot chain and
its volumes; a pull's blobs and snapshots are covered by its lease.

``PruneFilters`` are docker's prune filters: ``until=`` (a time or a Go
duration: things created before it) and ``label=KEY[=VALUE]`` /
``label!=KEY[=VALUE]``, on container labels, image config labels and volume
labels. Volumes have no creation filter in docker: ``until`` with volumes is
refused before anything is removed.

Each prune records docker's events: what it removes (a container's
``destroy``, an image's ``untag`` and ``delete``, a network's ``destroy``, a
volume's ``destroy``), then the kind's ``prune`` with the bytes reclaimed.
"""

from __future__ import annotations

import time

from pallet.engine import events
from pallet.engine.gc.diskusage import image_layers, layer_size, writable_size
from pallet.engine.layout import snapshot_key
from pallet.errors import Conflict, InvalidArgument, NotFound
from pallet.linux.trees import disk_usage
from pallet.oci.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from pallet.engine.containers.lifecycle import Engine
    from pallet.engine.volumes import VolumeFilters
    from pallet.image.store import ImageRecord
    from pallet.network.store import Network
    from pallet.oci.reference import Reference

__all__ = [
    "PruneFilters",
    "PruneReport",
    "prune_containers",
    "prune_images",
    "prune_networks",
    "system_prune",
]

#: the states of the containers a prune removes (docker: all but running and paused)
_STOPPED = frozenset({"created", "exited", "dead"})


class PruneFilters:
    """``--filter`` of the prune commands: ``until``, ``label``, ``label!`` (docker's keys)."""

    KEYS = ("label", "label!", "until")

    def __init__(self, values: Iterable[str] = (), *, now: float | None = None) -> None:
        self.labels: list[str] = []
        self.not_labels: list[str] = []
        self.until: float | None = None
        now_ns = int((time.time() if now is None else now) * 1e9)
        for value in values:
            key, sep, arg = value.partition("=")
            key = key.strip().lower()
            if not sep:
                raise InvalidArgument(f'bad format of filter "{value}" (expected name=value)')
            if key == "label":
                self.labels.append(arg)
            elif key == "label!":
                self.not_labels.append(arg)
            elif key == "until":
                from pallet.engine.shim.logfile import parse_time_filter

                self.until = parse_time_filter(arg, now_ns, "until") / 1e9
            else:
                raise InvalidArgument(f'invalid filter "{key}"; prune filters are {", ".join(self.KEYS)}')

    def volume_filters(self) -> VolumeFilters:
        """The same filters for ``VolumeStore.prune``; ``InvalidArgument`` for ``until`` (volumes have none)."""
        from pallet.engine.volumes import VolumeFilters

        if self.until is not None:
            raise InvalidArgument(
                'invalid filter "until" with --volumes: volumes have no creation time filter'
            )
        return VolumeFilters([f"label={w}" for w in self.labels] + [f"label!={w}" for w in self.not_labels])

    def __bool__(self) -> bool:
        return bool(self.labels or self.not_labels or self.until is not None)

    def labels_match(self, labels: Mapping[str, str]) -> bool:
        return all(_has(labels, w) for w in self.labels) and not any(_has(labels, w) for w in self.not_labels)

    def created_match(self, created: float | None) -> bool:
        """Created before ``until`` (something whose creation is unknown is kept when ``until`` is set)."""
        return self.until is None or (created is not None and created < self.until)


def _has(labels: Mapping[str, str], want: str) -> bool:
    key, sep, value = want.partition("=")
    return key in labels and (not sep or labels[key] == value)


class PruneReport(Record):
    containers: tuple[str, ...] = ()
    #: the names of the networks removed
    networks: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    untagged: tuple[Reference, ...] = ()
    deleted: tuple[str, ...] = ()
    #: bytes freed: containers' writable layers, volumes' data, blobs and snapshots
    reclaimed: int = 0


def prune_containers(engine: Engine, filters: PruneFilters | None = None) -> tuple[list[str], int]:
    """Remove the containers that do not run (created, exited, dead) that ``filters`` accept.

    Returns their ids and the bytes of their writable layers. One started
    or removed by another command meanwhile is skipped (``remove`` takes its
    lock and refuses a running one).
    """
    filters = filters or PruneFilters()
    removed: list[str] = []
    freed = 0
    for record in engine.list_containers(all=True):
        if record.state not in _STOPPED:
            continue
        if not (filters.labels_match(record.labels) and filters.created_match(record.created)):
            continue
        info = engine.images.snapshots.stat(snapshot_key(record.id))
        size = writable_size(info.location) if info is not None else 0
        try:
            engine.remove(record.id)
        except (NotFound, Conflict):
            continue
        removed.append(record.id)
        freed += size
    events.prune_event(engine.layout.root, "container", freed)
    return removed, freed


def _image_created(record: ImageRecord) -> float | None:
    if not record.created:
        return None
    from pallet.engine.shim.logfile import parse_rfc3339

    try:
        return parse_rfc3339(record.created) / 1e9
    except (ValueError, IndexError, OverflowError):
        return None


def prune_images(engine: Engine, *, all: bool, filters: PruneFilters | None = None) -> PruneReport:
    """``image prune [-a]``: unused images, then every blob and snapshot nothing references.

    Waits for leases (pulls, loads, commits in progress) before the sweep, so
    it never takes their blobs and always takes the garbage.
    """
    store = engine.images
    only = None
    if filters:
        chosen = filters

        def only(record: ImageRecord) -> bool:
            try:
                config = store.config(str(record.id)).config
            except NotFound:  # removed by another command meanwhile
                return False
            labels = dict(config.labels) if config is not None else {}
            return chosen.labels_match(labels) and chosen.created_match(_image_created(record))

    before = _Footprint.measure(engine)
    report = store.prune(all=all, only=only)
    store.gc()
    root = engine.layout.root
    for ref in report.untagged:
        events.append(root, "image", "untag", ref.familiar_string(), {"name": ref.familiar_string()})
    for digest in report.deleted:
        events.append(root, "image", "delete", str(digest), {"name": str(digest)})
    reclaimed = before.freed(engine)
    events.prune_event(root, "image", reclaimed)
    return PruneReport(
        untagged=report.untagged,
        deleted=tuple(str(d) for d in report.deleted),
        reclaimed=reclaimed,
    )


class _Footprint:
    """The store's blobs and committed snapshots with their sizes, to tell what a prune freed.

    A snapshot's size is its layer's (uncompressed, as ``system df`` counts
    it); one no layer row knows (a leftover gc will take) is measured on disk.
    """

    def __init__(self, blobs: dict[str, int], snapshots: dict[str, int]) -> None:
        self.blobs = blobs
        self.snapshots = snapshots

    @classmethod
    def measure(cls, engine: Engine) -> _Footprint:
        store = engine.images
        sizes = {
            str(lay.chain_id): layer_size(lay) for layers in image_layers(store).values() for lay in layers
        }
        snapshots = {
            info.key: sizes[info.key] if info.key in sizes else disk_usage(info.location)
            for info in store.snapshots.list_snapshots()
            if info.kind == "committed"
        }
        return cls({str(d): size for d, size in store.content.walk()}, snapshots)

    def freed(self, engine: Engine) -> int:
        """Bytes of the blobs and snapshots measured before that are gone now."""
        store = engine.images
        blobs = {str(d) for d, _ in store.content.walk()}
        snapshots = {info.key for info in store.snapshots.list_snapshots()}
        return sum(size for d, size in self.blobs.items() if d not in blobs) + sum(
            size for key, size in self.snapshots.items() if key not in snapshots
        )


def prune_networks(engine: Engine, filters: PruneFilters | None = None) -> list[Network]:
    """``network prune``: the user networks without containers that ``filters`` accept (labels, and
    ``until`` on their creation time) removed; those removed. The predefined ones stay."""
    if not engine.db.version("network"):
        events.prune_event(engine.layout.root, "network", 0)
        return []  # no network was ever made on this root
    import calendar

    chosen = filters or PruneFilters()

    def keep(network: Network) -> bool:
        created = calendar.timegm(time.strptime(network.created, "%Y-%m-%dT%H:%M:%SZ"))
        return not (chosen.labels_match(network.labels) and chosen.created_match(created))

    removed = engine.networks.prune(keep)
    for network in removed:
        events.append(
            engine.layout.root, "network", "destroy", network.id, {"name": network.name, "type": "bridge"}
        )
    events.prune_event(engine.layout.root, "network", 0)  # docker's: a bridge frees no bytes
    return removed


def system_prune(
    engine: Engine, *, all: bool = False, volumes: bool = False, filters: PruneFilters | None = None
) -> PruneReport:
    """Docker's ``system prune``: see the module docstring. Checks its arguments before removing anything."""
    filters = filters or PruneFilters()
    volume_filters = filters.volume_filters() if volumes else None
    containers, containers_freed = prune_containers(engine, filters)
    networks = prune_networks(engine, filters)
    removed_volumes: list[str] = []
    volumes_freed = 0
    if volume_filters is not None:
        removed_volumes, volumes_freed = engine.volumes.prune(all=False, filters=volume_filters)
    images = prune_images(engine, all=all, filters=filters)
    return images.replace(
        containers=tuple(containers),
        networks=tuple(n.name for n in networks),
        volumes=tuple(removed_volumes),
        reclaimed=images.reclaimed + containers_freed + volumes_freed,
    )
