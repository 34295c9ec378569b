"""Listing containers as docker does: the ``ps`` filters and the STATUS text.

One rule set for every front end (``pallet ps``, ``pallet.Client.containers.list``
and the Docker API's ``GET /containers/json``), docker's:

- ``--filter key=value``, keys ``id`` (prefix), ``name`` (part of the name, a
  leading ``/`` ignored), ``label`` (``KEY`` or ``KEY=VALUE``), ``exited`` (an
  exit code; exited containers only), ``status`` (created, restarting,
  running, removing, paused, exited, dead), ``ancestor`` (the image as named,
  its id or an id prefix), ``before``/``since`` (a container: created
  before/after it), ``volume`` (a volume's name or a mount's destination),
  ``network`` (the network mode), ``health`` (starting, healthy, unhealthy,
  or none: no healthcheck);
- several values of one key match if any does, except ``label``, where every
  value must match; different keys must all match;
- a ``status`` or ``exited`` filter lists stopped containers without ``--all``.

An unknown key or status is ``InvalidArgument``, before anything is read.
"""

from __future__ import annotations

from pallet.errors import InvalidArgument, NotFound, PalletError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any

    from pallet.engine.containers.lifecycle import Engine
    from pallet.engine.containers.records import ContainerRecord

__all__ = [
    "FILTER_KEYS",
    "STATUSES",
    "ContainerFilters",
    "health_status",
    "human_duration",
    "list_containers",
    "status_text",
]

FILTER_KEYS = (
    "id", "name", "label", "exited", "status", "ancestor", "before", "since", "volume", "network", "health",
)  # fmt: skip
#: the values docker accepts for ``status=``
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def human_duration(seconds: float) -> str:
    """Go-units ``HumanDuration``: ``Less than a second``, ``About an hour``, ``5 weeks``."""
    if seconds < 1:
        return "Less than a second"
    if int(seconds) == 1:
        return "1 second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def _seconds(rfc3339: str | None) -> float | None:
    if not rfc3339 or rfc3339.startswith("0001-"):
        return None
    from pallet.engine.shim.logfile import parse_rfc3339

    try:
        return parse_rfc3339(rfc3339) / 1e9
    except PalletError:
        return None


def status_text(record: ContainerRecord, now: float, health: str = "") -> str:
    """Docker's STATUS: ``Up 5 seconds``, ``Up 3 minutes (Paused)``, ``Exited (0) 2 minutes ago``...;
    ``health`` (the healthcheck's status, "" for none) adds ``(healthy)``, ``(health: starting)``."""
    state = record.state
    if state in ("running", "paused"):
        started = _seconds(record.started_at) or record.created
        text = f"Up {human_duration(now - started)}"
        if state == "paused":
            return text + " (Paused)"
        from pallet.engine.healthcheck import status_suffix

        return text + status_suffix(health)
    if state in ("exited", "restarting"):
        finished = _seconds(record.finished_at)
        ago = f" {human_duration(now - finished)} ago" if finished is not None else ""
        word = "Exited" if state == "exited" else "Restarting"
        return f"{word} ({record.exit_code if record.exit_code is not None else 0}){ago}"
    if state == "removing":
        return "Removal In Progress"
    if state == "dead":
        return "Dead"
    return "Created"


def _state(record: ContainerRecord) -> str:
    return record.state if record.state != "creating" else "created"


class ContainerFilters:
    """Parsed ``ps`` filters (the module's rules); ``matches`` applies them to one container."""

    def __init__(self, values: Iterable[str] | Mapping[str, object] = ()) -> None:
        self.by_key: dict[str, list[str]] = {}
        pairs: list[tuple[str, str]] = []
        if isinstance(values, dict):  # the docker SDK's and API's shape: {"key": value or [values]}
            for key, wants in values.items():
                for want in wants if isinstance(wants, (list, tuple)) else [wants]:
                    pairs.append((str(key), str(want)))
        else:
            for value in values:
                key, sep, want = value.partition("=")
                if not sep:
                    raise InvalidArgument(f'invalid filter "{value}"')
                pairs.append((key, want))
        for key, want in pairs:
            if key not in FILTER_KEYS:
                raise InvalidArgument(f'invalid filter "{key}={want}"')
            if key == "status" and want not in STATUSES:
                raise InvalidArgument(
                    f'invalid filter "status={want}": a status is one of {", ".join(STATUSES)}'
                )
            if key == "health":
                from pallet.engine.healthcheck import HEALTH_STATUSES

                if want not in HEALTH_STATUSES:
                    raise InvalidArgument(f"Unrecognised filter value for health: {want}")
            self.by_key.setdefault(key, []).append(want)

    def __bool__(self) -> bool:
        return bool(self.by_key)

    @property
    def show_stopped(self) -> bool:
        """A ``status`` or ``exited`` filter lists stopped containers too, as docker's does."""
        return "status" in self.by_key or "exited" in self.by_key

    def matches(
        self,
        record: ContainerRecord,
        *,
        lookup: Callable[[str], ContainerRecord | None],
        document: Callable[[ContainerRecord], Mapping[str, Any]],
        health: Callable[[ContainerRecord], str] = lambda _: "",
    ) -> bool:
        """Whether ``record`` passes; ``lookup`` finds a ``before``/``since`` container (None: none),
        ``document`` reads its ``container.json`` (for ``volume`` and ``network``), ``health`` its
        healthcheck's status ("" for none)."""

        def relative(ref: str, before: bool) -> bool:
            other = lookup(ref)
            if other is None:
                return False
            return record.created < other.created if before else record.created > other.created

        def volume(want: str) -> bool:
            mounts = document(record).get("Mounts") or []
            return any(want in (m.get("Name"), m.get("Destination")) for m in mounts if isinstance(m, dict))

        def network(want: str) -> bool:
            mode = (document(record).get("HostConfig") or {}).get("NetworkMode", "default")
            return bool(want == mode)

        checks: dict[str, Callable[[str], bool]] = {
            "id": record.id.startswith,
            "name": lambda w: w.lstrip("/") in record.name,
            "label": lambda w: _label_matches(record.labels, w),
            "status": lambda w: _state(record) == w,
            "exited": lambda w: record.state == "exited" and str(record.exit_code) == w,
            "ancestor": lambda w: (
                w in (record.image, record.image_id)
                or record.image_id.startswith(w if w.startswith("sha256:") else "sha256:" + w)
            ),
            "before": lambda w: relative(w, True),
            "since": lambda w: relative(w, False),
            "volume": volume,
            "network": network,
            "health": lambda w: (health(record) or "none") == w,
        }
        for key, wants in self.by_key.items():
            hits = (checks[key](w) for w in wants)
            if not (all(hits) if key == "label" else any(hits)):
                return False
        return True


def _label_matches(labels: Mapping[str, str], want: str) -> bool:
    key, sep, value = want.partition("=")
    if key not in labels:
        return False
    return not sep or labels[key] == value


def list_containers(
    engine: Engine,
    *,
    all: bool = False,
    filters: ContainerFilters | None = None,
    last: int | None = None,
) -> list[ContainerRecord]:
    """Containers newest first (``all``: stopped ones too), filtered; ``last``: the newest N only."""
    filters = filters or ContainerFilters()
    documents: dict[str, Mapping[str, Any]] = {}

    def lookup(ref: str) -> ContainerRecord | None:
        try:
            return engine.containers.get(ref)
        except NotFound:
            return None

    def document(record: ContainerRecord) -> Mapping[str, Any]:
        if record.id not in documents:
            try:
                documents[record.id] = engine.document(record)
            except (PalletError, OSError):  # removed meanwhile
                documents[record.id] = {}
        return documents[record.id]

    records = [
        r
        for r in engine.list_containers(all=all or filters.show_stopped)
        if filters.matches(r, lookup=lookup, document=document, health=lambda r: health_status(engine, r))
    ]
    return records if last is None or last < 0 else records[:last]


def health_status(engine: Engine, record: ContainerRecord) -> str:
    """The status of the container's healthcheck as its shim last wrote it ("" for none)."""
    from pallet.engine.healthcheck import read_health

    found = read_health(engine.layout.run_dir(record.id)) if record.state != "creating" else None
    return found.status if found is not None else ""
