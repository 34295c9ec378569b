"""Turning a container's mount requests (``-v``, ``--mount``, image ``VOLUME``s) into OCI mounts.

``resolve_mounts`` takes the parsed requests (E-SPEC's ``MountSpec``: any
object with the fields of ``MountRequest``) and returns a ``MountPlan``: the
``ResolvedMount``s that go into config.json, the docker-shaped ``Mounts`` of
``inspect``, and notes for the user. It follows docker:

- ``bind``: the host path must be absolute; a missing one is created as a
  directory for ``-v`` and is an error for ``--mount`` (``create_host_path``
  tells which). Options ``rbind`` + ``ro``/``rw`` + the propagation
  (default ``rprivate``).
- ``volume``: a named volume is created on first use, an empty source makes
  an anonymous volume; a volume that is still empty is seeded with what the
  image has at the destination (unless ``volume_nocopy``). ``volume_subpath``
  mounts that path of the volume instead of its root (it must exist; it is
  resolved inside the volume, so a symlink cannot lead out of it), and is
  never seeded.
- ``tmpfs``: ``noexec,nosuid,nodev`` plus ``size=``/``mode=`` as given.
- Every ``VOLUME`` of the image not covered by a request becomes an
  anonymous volume, seeded the same way.
- ``z``/``Z`` (SELinux relabeling) is accepted and ignored with a note: this
  host has no SELinux.

Contract: every volume the plan uses is recorded as used by the container
(``VolumeStore.use``) before ``resolve_mounts`` returns, so a crash after it
leaves volumes that ``release(container)`` frees. Duplicate destinations and
relative or root destinations are ``InvalidArgument`` with docker's wording,
found before anything is created.
"""

from __future__ import annotations

import errno
import os
import posixpath

from pallet.engine.volumes import LOCAL, check_driver, check_name
from pallet.errors import InvalidArgument, SystemError_
from pallet.linux.openat2 import open_in_root
from pallet.oci.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Protocol

    from pallet.engine.volumes import VolumeStore

    class MountRequest(Protocol):
        """What ``resolve_mounts`` reads of a mount request (E-SPEC's ``MountSpec``)."""

        @property
        def type(self) -> str: ...  # bind | volume | tmpfs
        @property
        def source(self) -> str | None: ...
        @property
        def target(self) -> str: ...
        @property
        def read_only(self) -> bool: ...
        @property
        def propagation(self) -> str | None: ...
        @property
        def relabel(self) -> str | None: ...
        @property
        def tmpfs_size(self) -> int | None: ...
        @property
        def tmpfs_mode(self) -> int | None: ...
        @property
        def volume_nocopy(self) -> bool: ...
        @property
        def volume_labels(self) -> Mapping[str, str]: ...
        @property
        def volume_driver(self) -> str: ...
        @property
        def volume_options(self) -> Mapping[str, str]: ...
        @property
        def volume_subpath(self) -> str: ...


__all__ = ["MountPlan", "MountPoint", "ResolvedMount", "clean_destination", "resolve_mounts"]

BIND, VOLUME, TMPFS = "bind", "volume", "tmpfs"
PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
_DEFAULT_PROPAGATION = "rprivate"


class ResolvedMount(Record):
    """One OCI mount for config.json: ``mount -t type -o options source destination``."""

    type: str
    source: str
    destination: str
    options: tuple[str, ...] = ()

    def to_oci(self) -> dict[str, object]:
        return {
            "destination": self.destination,
            "type": self.type,
            "source": self.source,
            "options": list(self.options),
        }


class MountPoint(Record):
    """One entry of ``inspect``'s ``Mounts``, as docker shows it."""

    type: str
    name: str = ""
    source: str
    destination: str
    driver: str = ""
    mode: str = ""
    rw: bool = True
    propagation: str = ""

    def to_inspect(self) -> dict[str, object]:
        shown: dict[str, object] = {"Type": self.type}
        if self.name:
            shown["Name"] = self.name
        shown.update({"Source": self.source, "Destination": self.destination})
        if self.driver:
            shown["Driver"] = self.driver
        shown.update({"Mode": self.mode, "RW": self.rw, "Propagation": self.propagation})
        return shown


class MountPlan(Record):
    """What ``resolve_mounts`` decided: mounts in mount order, what inspect shows, notes for the user."""

    mounts: tuple[ResolvedMount, ...] = ()
    points: tuple[MountPoint, ...] = ()
    #: names of the volumes the container uses (recorded with ``VolumeStore.use``)
    volumes: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def clean_destination(target: str) -> str:
    """The container path normalised; docker's errors for relative paths and ``/``."""
    if not target:
        raise InvalidArgument("invalid mount config: mount path must not be empty")
    if not target.startswith("/"):
        raise InvalidArgument(
            f"invalid mount config: invalid mount path: '{target}' mount path must be absolute"
        )
    cleaned = posixpath.normpath(target)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if cleaned == "/":
        raise InvalidArgument("invalid specification: destination can't be '/'")
    return cleaned


def _propagation(request: MountRequest) -> str:
    value = request.propagation or _DEFAULT_PROPAGATION
    if value not in PROPAGATIONS:
        raise InvalidArgument(
            f'invalid propagation mode "{value}" for {request.target}; use one of {", ".join(PROPAGATIONS)}'
        )
    if request.type != BIND and request.propagation:
        raise InvalidArgument(f"invalid mount config: propagation is only for bind mounts ({request.target})")
    return value


def _check(requests: Sequence[MountRequest]) -> list[str]:
    """Validate every request before anything is created; returns the cleaned destinations."""
    seen: set[str] = set()
    out = []
    for request in requests:
        destination = clean_destination(request.target)
        if destination in seen:
            raise InvalidArgument(f"Duplicate mount point: {destination}")
        seen.add(destination)
        if request.type not in (BIND, VOLUME, TMPFS):
            raise InvalidArgument(f'invalid mount type "{request.type}"; use bind, volume or tmpfs')
        if request.type == BIND:
            if not request.source:
                raise InvalidArgument(
                    f'invalid mount config for type "bind": field Source must not be empty ({destination})'
                )
            if not request.source.startswith("/"):
                raise InvalidArgument(
                    f'invalid mount config for type "bind": invalid mount path: "{request.source}" '
                    "mount path must be absolute"
                )
        if request.type == VOLUME:
            if request.source:
                check_name(request.source)
            check_driver(request.volume_driver or LOCAL, request.volume_options)
        if request.type == TMPFS and request.source:
            raise InvalidArgument(
                f'invalid mount config for type "tmpfs": source must not be specified ({destination})'
            )
        if request.type != TMPFS and (request.tmpfs_size is not None or request.tmpfs_mode is not None):
            raise InvalidArgument(
                f"invalid mount config: tmpfs options are only for tmpfs mounts ({destination})"
            )
        _propagation(request)
        out.append(destination)
    return out


def _bind_source(request: MountRequest, create_host_path: bool) -> str:
    assert request.source is not None
    source = posixpath.normpath(request.source)
    if not os.path.lexists(source):
        if not create_host_path:
            raise InvalidArgument(
                f'invalid mount config for type "bind": bind source path does not exist: {source}'
            )
        try:
            os.makedirs(source, 0o755, exist_ok=True)
        except OSError as e:
            raise SystemError_(f"create host directory {source} for the bind mount", e.errno or 0) from None
    return source


def _seed(volumes: VolumeStore, name: str, rootfs: str, destination: str) -> bool:
    """Copy what the image has at ``destination`` (resolved inside ``rootfs``) into an empty volume."""
    try:
        root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise SystemError_(f"open container root {rootfs}", e.errno or 0) from None
    try:
        fd = open_in_root(root_fd, destination, os.O_PATH | os.O_DIRECTORY)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return False  # nothing in the image there: the volume starts empty
        raise SystemError_(f"open {destination} in the container root", e.errno or 0) from None
    finally:
        os.close(root_fd)
    try:
        # another process (cp) reads it: name the fd through our pid, not /proc/self
        return volumes.seed(name, f"/proc/{os.getpid()}/fd/{fd}")
    finally:
        os.close(fd)


def resolve_mounts(
    requests: Sequence[MountRequest],
    *,
    volumes: VolumeStore,
    container_id: str,
    image_volumes: Iterable[str] = (),
    rootfs: str | None = None,
    create_host_path: bool | Sequence[bool] = True,
) -> MountPlan:
    """Resolve ``requests`` (and the image's ``VOLUME`` paths) for container ``container_id``.

    ``rootfs`` is the container's mounted root filesystem, read to seed new
    volumes (no seeding without it). ``create_host_path`` says, for all
    requests or per request, whether a missing bind source is created
    (``-v``) or an error (``--mount``).
    """
    destinations = _check(requests)
    creates = (
        list(create_host_path)
        if not isinstance(create_host_path, bool)
        else [create_host_path] * len(requests)
    )
    if len(creates) != len(requests):
        raise InvalidArgument("create_host_path: one flag per mount request")
    for request, create in zip(requests, creates, strict=True):
        if request.type == BIND and not create and not os.path.lexists(request.source or ""):
            raise InvalidArgument(
                f'invalid mount config for type "bind": bind source path does not exist: {request.source}'
            )
    extra = [clean_destination(path) for path in image_volumes]
    planned: list[tuple[ResolvedMount, MountPoint]] = []
    used: list[str] = []
    notes: list[str] = []
    for request, destination, create in zip(requests, destinations, creates, strict=True):
        if request.relabel:
            notes.append(
                f"{destination}: SELinux relabeling ('{request.relabel}') is not available on this host; ignored"
            )
        ro = "ro" if request.read_only else "rw"
        if request.type == TMPFS:
            options = ["noexec", "nosuid", "nodev"]
            if request.read_only:
                options.append("ro")
            if request.tmpfs_size is not None:
                options.append(f"size={request.tmpfs_size}")
            if request.tmpfs_mode is not None:
                options.append(f"mode={request.tmpfs_mode:o}")
            planned.append(
                (
                    ResolvedMount(
                        type=TMPFS, source="tmpfs", destination=destination, options=tuple(options)
                    ),
                    MountPoint(type=TMPFS, source="", destination=destination, rw=not request.read_only),
                )
            )
        elif request.type == BIND:
            source = _bind_source(request, create)
            propagation = _propagation(request)
            planned.append(
                (
                    ResolvedMount(
                        type=BIND, source=source, destination=destination, options=("rbind", ro, propagation)
                    ),
                    MountPoint(
                        type=BIND,
                        source=source,
                        destination=destination,
                        mode="ro" if request.read_only else "",
                        rw=not request.read_only,
                        propagation=propagation,
                    ),
                )
            )
        else:
            volume = volumes.create(
                request.source or None,
                driver=request.volume_driver or "local",
                labels=request.volume_labels,
                options=request.volume_options,
            )
            name = _use(volumes, volume.name, container_id, used)
            subpath = request.volume_subpath
            if rootfs is not None and not request.volume_nocopy and not subpath:
                _seed(volumes, name, rootfs, destination)
            source = _subpath_source(volumes.data_path(name), name, subpath) if subpath else ""
            planned.append(_volume_mount(volumes, name, destination, request.read_only, source))
    taken = set(destinations)
    for destination in extra:
        if destination in taken:
            continue
        taken.add(destination)
        name = _use(volumes, volumes.create().name, container_id, used)
        if rootfs is not None:
            _seed(volumes, name, rootfs, destination)
        planned.append(_volume_mount(volumes, name, destination, False))
    # parents before children, as docker sorts them, so a mount is never hidden by a later one
    planned.sort(key=lambda pair: pair[0].destination.rstrip("/").count("/"))
    return MountPlan(
        mounts=tuple(m for m, _ in planned),
        points=tuple(p for _, p in planned),
        volumes=tuple(used),
        notes=tuple(notes),
    )


def _use(volumes: VolumeStore, name: str, container_id: str, used: list[str]) -> str:
    volumes.use(name, container_id)
    used.append(name)
    return name


def _subpath_source(data: str, name: str, subpath: str) -> str:
    """The host path of ``subpath`` in the volume whose data is at ``data``, resolved inside it."""
    root_fd = os.open(data, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = open_in_root(root_fd, subpath, os.O_PATH)
    except OSError as e:
        raise InvalidArgument(
            f'cannot mount subpath "{subpath}" of volume "{name}": {os.strerror(e.errno or 0).lower()}'
        ) from None
    finally:
        os.close(root_fd)
    try:
        resolved = os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
    if resolved != data and not resolved.startswith(data.rstrip("/") + "/"):
        raise InvalidArgument(
            f'cannot mount subpath "{subpath}" of volume "{name}": it leads out of the volume'
        )
    return resolved


def _volume_mount(
    volumes: VolumeStore, name: str, destination: str, read_only: bool, source: str = ""
) -> tuple[ResolvedMount, MountPoint]:
    """A volume's bind mount: its data, or ``source`` (a path inside it, for a subpath)."""
    source = source or volumes.data_path(name)
    return (
        ResolvedMount(
            type=BIND,
            source=source,
            destination=destination,
            options=("rbind", "ro" if read_only else "rw", _DEFAULT_PROPAGATION),
        ),
        MountPoint(
            type=VOLUME,
            name=name,
            source=source,
            destination=destination,
            driver="local",
            mode="",
            rw=not read_only,
            propagation="",
        ),
    )
