"""Events: what happened to containers, images, networks and volumes, in docker's words.

Every process that changes the store — a ``pallet`` command, the API
service, a container's shim — appends docker's event JSON (``Type``,
``Action``, ``Actor{ID, Attributes}``, ``scope``, ``time``, ``timeNano``, and
for containers and images the older ``status``/``id``/``from``) as one line
to ``<root>/events.jsonl``. ``pallet events`` and the API's ``GET /events``
read that file, so each sees what every other process did, as it happens,
without a daemon.

Contracts:

- ``append`` is one ``write(2)`` of one whole line on an ``O_APPEND`` file:
  concurrent writers never interleave inside a line (Linux serialises
  appends to a regular file). It never raises: an event that cannot be
  written is lost, the operation it describes is not undone.
- Retention is bounded: the writer that sees the file past ``ROTATE_BYTES``
  renames it to ``events.jsonl.1`` (replacing the older one) under an
  ``flock`` of ``events.lock``, so at most about twice that is kept.
- Readers use whole lines only (a line without its newline is still being
  written) and follow a rotation: the old file is read to its end first.
- A container's ``die`` (and ``oom`` before it) is appended by its shim when
  it reaps the init, exactly once per exit, whether or not any pallet
  command runs at that moment; the shim imports this module, so it keeps to
  the standard library and ``pallet.oci.jsonfast`` at import time.
- A running container's network ``connect`` and volume ``mount`` events come
  before its ``start``, their ``disconnect`` and ``unmount`` after its
  ``die``, as dockerd records them. The engine writes what they name
  (``Attachments``) to ``events.json`` in the container's run dir when it
  starts it, and again when it renames it or connects it to a network or
  disconnects it while it runs; the shim reads that file at each exit and
  restart, so a ``die`` carries the container's name of the moment.
- A prune records docker's ``prune`` action (Actor without an ID,
  ``reclaimed`` bytes) after the removals it made (``prune_event``).
"""

from __future__ import annotations

import os
import time

from pallet.errors import InvalidArgument
from pallet.oci.jsonfast import dumps, loads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

__all__ = [
    "ATTACHMENTS_FILE",
    "EVENTS_FILE",
    "ROTATE_BYTES",
    "TYPES",
    "Attachments",
    "Event",
    "EventFilters",
    "append",
    "container_attributes",
    "events_path",
    "prune_event",
    "read_attachments",
    "read_events",
    "record_attached",
    "record_detached",
    "write_attachments",
]

EVENTS_FILE = "events.jsonl"
#: in a container's run dir: what its events name while it runs (``Attachments``)
ATTACHMENTS_FILE = "events.json"
_LOCK_FILE = "events.lock"
#: past this size the file is rotated (one older generation is kept)
ROTATE_BYTES = 4 << 20
#: docker's event types that pallet records
TYPES = ("container", "image", "network", "volume")
#: the filter keys docker accepts; those of swarm objects match nothing pallet records
_FILTER_KEYS = frozenset(
    ("container", "image", "event", "label", "type", "network", "volume", "scope", "daemon", "config")
)
_SWARM_KEYS = frozenset(("node", "plugin", "secret", "service"))
#: how often a follower looks for new lines while the file is idle
_POLL_SECONDS = 0.1


def events_path(root: str) -> str:
    """The events file of the pallet root ``root``."""
    return os.path.join(root, EVENTS_FILE)


class Event:
    """One event: docker's ``events.Message`` (``to_json``) as read back or about to be written."""

    __slots__ = ("action", "actor_id", "attributes", "time_nano", "type")

    def __init__(
        self, type: str, action: str, actor_id: str, attributes: Mapping[str, str], time_nano: int
    ) -> None:
        self.type = type
        self.action = action
        self.actor_id = actor_id
        self.attributes = dict(attributes)
        self.time_nano = time_nano

    def to_json(self) -> dict[str, object]:
        """Docker's JSON of the event, the older ``status``/``id``/``from`` fields included."""
        doc: dict[str, object] = {}
        if self.type in ("container", "image"):
            doc["status"] = self.action
            if self.actor_id:  # docker's omitempty: a prune's Actor has no ID
                doc["id"] = self.actor_id
            if self.type == "container" and "image" in self.attributes:
                doc["from"] = self.attributes["image"]
        doc["Type"] = self.type
        doc["Action"] = self.action
        doc["Actor"] = {"ID": self.actor_id, "Attributes": self.attributes}
        doc["scope"] = "local"
        doc["time"] = self.time_nano // 1_000_000_000
        doc["timeNano"] = self.time_nano
        return doc

    @classmethod
    def from_json(cls, doc: object) -> Event | None:
        """The event of a line's JSON; None for anything that is not one (never written by ``append``)."""
        if not isinstance(doc, dict):
            return None
        actor = doc.get("Actor")
        kind, action, stamp = doc.get("Type"), doc.get("Action"), doc.get("timeNano")
        if not (isinstance(actor, dict) and isinstance(kind, str) and isinstance(action, str)):
            return None
        if not isinstance(stamp, int):
            return None
        attributes = actor.get("Attributes")
        attrs = {str(k): str(v) for k, v in attributes.items()} if isinstance(attributes, dict) else {}
        return cls(kind, action, str(actor.get("ID") or ""), attrs, stamp)

    def __repr__(self) -> str:
        return f"Event({self.type} {self.action} {self.actor_id[:12]} {self.attributes})"


def container_attributes(name: str, image: str, labels: Mapping[str, str]) -> dict[str, str]:
    """A container event's Actor attributes as docker gives them: its labels, ``image`` and ``name``."""
    return {**labels, "image": image, "name": name}


def prune_event(root: str, type: str, reclaimed: int) -> bool:
    """Record docker's ``prune`` of ``type`` objects, after the removals, with the bytes it freed."""
    return append(root, type, "prune", "", {"reclaimed": str(reclaimed)})


class Attachments:
    """What a running container's events name: its Actor attributes (``container_attributes``), the
    networks it is on (id, name, type) and the volumes it mounts (name, destination, driver,
    propagation, read-write)."""

    __slots__ = ("attributes", "networks", "volumes")

    def __init__(
        self,
        attributes: Mapping[str, str],
        networks: Iterable[tuple[str, str, str]] = (),
        volumes: Iterable[tuple[str, str, str, str, bool]] = (),
    ) -> None:
        self.attributes = dict(attributes)
        self.networks = tuple(networks)
        self.volumes = tuple(volumes)

    def to_json(self) -> dict[str, object]:
        return {
            "attributes": self.attributes,
            "networks": [list(n) for n in self.networks],
            "volumes": [list(v) for v in self.volumes],
        }

    @classmethod
    def from_json(cls, doc: object) -> Attachments | None:
        """The attachments of ``write_attachments``'s JSON; None for anything else."""
        if not isinstance(doc, dict) or not isinstance(doc.get("attributes"), dict):
            return None
        networks = [
            (str(n[0]), str(n[1]), str(n[2]))
            for n in doc.get("networks") or ()
            if isinstance(n, list) and len(n) == 3
        ]
        volumes = [
            (str(v[0]), str(v[1]), str(v[2]), str(v[3]), v[4] is True)
            for v in doc.get("volumes") or ()
            if isinstance(v, list) and len(v) == 5
        ]
        return cls({str(k): str(v) for k, v in doc["attributes"].items()}, networks, volumes)


def write_attachments(run_dir: str, attachments: Attachments) -> None:
    """Replace the container's ``events.json`` atomically (not fsynced: it lives as long as the run dir)."""
    from pallet.linux.atomicfile import write_atomic

    write_atomic(
        os.path.join(run_dir, ATTACHMENTS_FILE), dumps(attachments.to_json()).encode(), durable=False
    )


def read_attachments(run_dir: str) -> Attachments | None:
    """The container's ``events.json``; None if there is none (a container started before it was written)."""
    try:  # no file object: the shim reads it (as ``shim.config.load``)
        fd = os.open(os.path.join(run_dir, ATTACHMENTS_FILE), os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.read(fd, 1 << 20)
        finally:
            os.close(fd)
        return Attachments.from_json(loads(data))
    except (OSError, InvalidArgument):
        return None


def record_attached(root: str, container_id: str, attachments: Attachments) -> None:
    """Before a container's ``start``: ``connect`` of each network, then ``mount`` of each volume."""
    for network_id, name, kind in attachments.networks:
        append(
            root, "network", "connect", network_id, {"container": container_id, "name": name, "type": kind}
        )
    for name, destination, driver, propagation, rw in attachments.volumes:
        attributes = {
            "container": container_id,
            "destination": destination,
            "driver": driver,
            "propagation": propagation,
            "read/write": "true" if rw else "false",
        }
        append(root, "volume", "mount", name, attributes)


def record_detached(root: str, container_id: str, attachments: Attachments) -> None:
    """After a container's ``die``: ``disconnect`` of each network, then ``unmount`` of each volume."""
    for network_id, name, kind in attachments.networks:
        attributes = {"container": container_id, "name": name, "type": kind}
        append(root, "network", "disconnect", network_id, attributes)
    for name, _, driver, _, _ in attachments.volumes:
        append(root, "volume", "unmount", name, {"container": container_id, "driver": driver})


def append(
    root: str,
    type: str,
    action: str,
    actor_id: str,
    attributes: Mapping[str, str] | None = None,
    *,
    time_nano: int | None = None,
) -> bool:
    """Record one event in ``root``'s events file; whether it was written. Never raises."""
    event = Event(type, action, actor_id, attributes or {}, time_nano or time.time_ns())
    line = (dumps(event.to_json()) + "\n").encode()
    path = events_path(root)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return False  # the root is gone or read-only: the event is lost, nothing else
    try:
        os.write(fd, line)
        size = os.fstat(fd).st_size
    except OSError:
        return False
    finally:
        os.close(fd)
    if size > ROTATE_BYTES:
        _rotate(root)
    return True


def _rotate(root: str) -> None:
    """Move a full events file aside (one older generation kept); under the lock, so only one writer does."""
    import fcntl

    path = events_path(root)
    try:
        lock = os.open(os.path.join(root, _LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # another writer may have rotated while we waited for the lock
        if os.stat(path).st_size > ROTATE_BYTES:
            os.rename(path, path + ".1")
    except OSError:
        return
    finally:
        os.close(lock)


# --- reading ------------------------------------------------------------------------------------


def _image_names(name: str) -> set[str]:
    """``name`` as a filter may spell it: with and without ``:latest`` and ``docker.io/library/``."""
    names = {name}
    for prefix in ("docker.io/library/", "docker.io/"):
        if name.startswith(prefix):
            names.add(name[len(prefix) :])
    for each in list(names):
        if "@" in each:
            continue
        last = each.rsplit("/", 1)[-1]
        if ":" in last:
            if each.endswith(":latest"):
                names.add(each[: -len(":latest")])
        else:
            names.add(each + ":latest")
    return names


class EventFilters:
    """Docker's ``events --filter`` set: every key given must match, any of a key's values.

    ``container``, ``network``, ``volume``: the actor's id (or an id prefix)
    or name; ``image``: an image event's image, or a container event's
    image; ``event``: the action (``exec_start`` matches
    ``exec_start: sh -c …``); ``label``: ``key`` or ``key=value`` among the
    actor's attributes; ``type``; ``scope`` (``local``). The swarm keys
    docker knows match nothing here. Unknown keys: ``InvalidArgument``.
    """

    def __init__(self, values: Iterable[str] | Mapping[str, str | Sequence[str]] = ()) -> None:
        self.values: dict[str, list[str]] = {}
        if isinstance(values, dict):
            items = [(k, v) for k, vs in values.items() for v in ([vs] if isinstance(vs, str) else vs)]
        else:
            items = []
            for text in values:
                key, sep, value = text.partition("=")
                if not sep:
                    raise InvalidArgument(f"bad format of filter (expected name=value): {text}")
                items.append((key.strip().lower(), value))
        for key, value in items:
            if key not in _FILTER_KEYS and key not in _SWARM_KEYS:
                raise InvalidArgument(f"invalid filter '{key}'")
            if not isinstance(value, str):
                raise InvalidArgument(f"invalid filter '{key}': values must be strings")
            if key == "type" and value not in (*TYPES, "builder", "config", "daemon", "node", "plugin"):
                raise InvalidArgument(f"invalid filter 'type={value}'")
            self.values.setdefault(key, []).append(value)

    def __bool__(self) -> bool:
        return bool(self.values)

    def matches(self, event: Event) -> bool:
        for key, wanted in self.values.items():
            if not any(self._match(key, value, event) for value in wanted):
                return False
        return True

    @staticmethod
    def _match(key: str, value: str, event: Event) -> bool:
        attrs = event.attributes
        if key == "type":
            return event.type == value
        if key == "event":
            return event.action == value or event.action.split(":", 1)[0] == value
        if key == "scope":
            return value == "local"
        if key == "label":
            name, sep, label_value = value.partition("=")
            return name in attrs and (not sep or attrs[name] == label_value)
        if key in ("container", "network", "volume"):
            if event.type != key:
                return False
            return (bool(value) and event.actor_id.startswith(value)) or attrs.get("name") == value
        if key == "image":
            wanted = _image_names(value)
            if event.type == "image":
                names = {event.actor_id, attrs.get("name", "")}
            elif event.type == "container":
                names = {attrs.get("image", "")}
            else:
                return False
            return any(n in wanted or (value.startswith("sha256:") and n == value) for n in names if n)
        return False  # the swarm keys: nothing pallet records has them


def _lines(data: bytes) -> tuple[list[bytes], int]:
    """The complete lines of ``data`` and how many bytes they take (the rest is still being written)."""
    end = data.rfind(b"\n") + 1
    return data[:end].splitlines(), end


def _decode(lines: Iterable[bytes]) -> Iterator[Event]:
    for line in lines:
        try:
            event = Event.from_json(loads(line))
        except InvalidArgument:
            continue  # not an event line (a file written over by hand): skipped as docker skips bad records
        if event is not None:
            yield event


def read_events(
    root: str,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    filters: EventFilters | None = None,
    follow: bool = False,
    alive: Callable[[], bool] | None = None,
) -> Iterator[Event | None]:
    """The events of ``root`` in the order written, those in [``since_ns``, ``until_ns``] that match.

    Without ``since_ns`` and with ``follow``, only events written from now on
    (``docker events``). With ``follow`` it goes on reading new events until
    ``until_ns`` passes (never, without it) or ``alive()`` turns false; while
    nothing comes it yields ``None`` about once a second, so that a caller
    serving a client can see it went away.
    """
    path = events_path(root)
    start_at_end = follow and since_ns is None
    fd = -1
    offset = 0
    pending_old: list[bytes] = []
    if not start_at_end:
        try:
            with open(path + ".1", "rb") as f:
                pending_old, _ = _lines(f.read())
        except OSError:
            pending_old = []

    def wanted(event: Event) -> bool:
        if since_ns is not None and event.time_nano < since_ns:
            return False
        if until_ns is not None and event.time_nano > until_ns:
            return False
        return filters is None or filters.matches(event)

    def open_current() -> int:
        try:
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return -1

    try:
        yield from (e for e in _decode(pending_old) if wanted(e))
        fd = open_current()
        if fd >= 0 and start_at_end:
            offset = os.fstat(fd).st_size
        idle_since = time.monotonic()
        while True:
            if fd >= 0:
                data = os.pread(fd, 1 << 20, offset)
                lines, used = _lines(data)
                offset += used
                if lines:
                    idle_since = time.monotonic()
                    yield from (e for e in _decode(lines) if wanted(e))
                    continue
                if len(data) == 1 << 20:
                    offset += len(data)  # a "line" longer than any event: not one of ours, skipped
                    continue
            if not follow:
                return
            if until_ns is not None and time.time_ns() > until_ns:
                return
            if alive is not None and not alive():
                return
            # rotated (or created) since we opened it: the old file was read to its end above
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            if current is not None and (fd < 0 or os.fstat(fd).st_ino != current.st_ino):
                if fd >= 0:
                    os.close(fd)
                fd, offset = open_current(), 0
                continue
            if time.monotonic() - idle_since >= 1.0:
                idle_since = time.monotonic()
                yield None
            time.sleep(_POLL_SECONDS)
    finally:
        if fd >= 0:
            os.close(fd)
