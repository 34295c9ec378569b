"""The engine's one surface: the verbs the CLI, ``pallet.Client`` and the Docker API server call.

podman's shape: a front end parses its input (flags, keyword arguments, an
HTTP request), calls ``Service``, and formats what comes back. Nothing a
second front end would have to copy lives in a front end: the ``ps`` filters
and STATUS text (``containers/listing.py``), the ``logs`` time filters and
follow rule, attach, the ``run`` sequence and sig-proxy
(``containers/session.py``) are here, once. What only a front end knows comes
in as values: ``Streams`` (where output goes, its stdin, its terminal's size)
and ``warn`` callbacks.

Return values are records (``ContainerRecord``, ``Volume``, ``LogEntry``, …)
and plain data (docker's inspect documents as dicts); the types a front end
names are re-exported here, so it imports nothing else of the engine.

``Service.open(root, run_root)`` is the engine of one root, a context manager;
every method works under the container's file lock (``Engine``), so
concurrent processes are safe. ``RunSession`` (``pallet run``) is made before
the service opens: its shim starts while the caller parses options.

Errors are ``pallet.errors`` categories: ``NotFound`` (no such container,
volume, image), ``InvalidArgument`` (a bad filter, time or signal),
``FailedPrecondition`` (a container in the wrong state), ``Conflict``.

This module imports nothing at import time but ``pallet.errors``: it is on
``pallet run``'s path, and each verb pays for its own imports.
"""

from __future__ import annotations

import os

from pallet.errors import InvalidArgument, NotFound, Unsupported

#: where a root engine keeps its store and run dir unless told otherwise
DEFAULT_ROOT = "/var/lib/pallet"
DEFAULT_RUN_ROOT = "/run/pallet"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
    from typing import Any, BinaryIO, Self

    # the types a front end names: re-exported (``__all__``), loaded on first use (``__getattr__``)
    from pallet.engine.audit import Audit
    from pallet.engine.containers.execs import ExecRequest
    from pallet.engine.containers.lifecycle import Engine
    from pallet.engine.containers.listing import ContainerFilters
    from pallet.engine.containers.records import ContainerRecord, DocumentCache
    from pallet.engine.containers.session import RunResult, RunSession, Streams
    from pallet.engine.containers.update import UpdateRequest
    from pallet.engine.events import Event, EventFilters
    from pallet.engine.filesystem.cp import CopyResult, PathInfo
    from pallet.engine.gc.diskusage import DiskUsage, Summary
    from pallet.engine.gc.prune import PruneFilters, PruneReport
    from pallet.engine.info import EngineInfo
    from pallet.engine.networking import PredefinedNetwork
    from pallet.engine.observe.stats import Sample, Usage
    from pallet.engine.observe.top import ProcessList
    from pallet.engine.shim.attach import AttachConnection
    from pallet.engine.shim.logfile import LogEntry
    from pallet.engine.spec.options import RunOptions
    from pallet.engine.volumes import Volume, VolumeFilters
    from pallet.image.store import ImageRecord, ImageStore, LayerRecord
    from pallet.network.store import Endpoint, Network

__all__ = [
    "PREDEFINED_NETWORKS",
    "AttachConnection",
    "Audit",
    "ContainerFilters",
    "ContainerRecord",
    "CopyResult",
    "DiskUsage",
    "DocumentCache",
    "EngineInfo",
    "Event",
    "EventFilters",
    "ExecRequest",
    "LogEntry",
    "Network",
    "PathInfo",
    "ProcessList",
    "PruneFilters",
    "PruneReport",
    "RunOptions",
    "RunResult",
    "RunSession",
    "Sample",
    "Service",
    "Streams",
    "Summary",
    "UpdateRequest",
    "Usage",
    "Volume",
    "VolumeFilters",
    "container_filters",
    "engine_paths",
    "event_filters",
    "events",
    "exec_request",
    "format_log_entry",
    "human_duration",
    "image_size",
    "inspect_image",
    "layer_size",
    "prune_filters",
    "record_event",
    "run_session",
    "status_text",
    "streams",
    "sweep_owned",
    "volume_filters",
]

#: where each re-exported type lives; imported when first asked for, so that importing this
#: module (on ``pallet run``'s path) costs nothing more
_TYPES = {
    "AttachConnection": "pallet.engine.shim.attach",
    "Audit": "pallet.engine.audit",
    "ContainerFilters": "pallet.engine.containers.listing",
    "ContainerRecord": "pallet.engine.containers.records",
    "CopyResult": "pallet.engine.filesystem.cp",
    "PathInfo": "pallet.engine.filesystem.cp",
    "DiskUsage": "pallet.engine.gc.diskusage",
    "DocumentCache": "pallet.engine.containers.records",
    "EngineInfo": "pallet.engine.info",
    "Event": "pallet.engine.events",
    "EventFilters": "pallet.engine.events",
    "ExecRequest": "pallet.engine.containers.execs",
    "LogEntry": "pallet.engine.shim.logfile",
    "Network": "pallet.network.store",
    "ProcessList": "pallet.engine.observe.top",
    "PruneFilters": "pallet.engine.gc.prune",
    "PruneReport": "pallet.engine.gc.prune",
    "RunOptions": "pallet.engine.spec.options",
    "RunResult": "pallet.engine.containers.session",
    "RunSession": "pallet.engine.containers.session",
    "Streams": "pallet.engine.containers.session",
    "Summary": "pallet.engine.gc.diskusage",
    "Sample": "pallet.engine.observe.stats",
    "UpdateRequest": "pallet.engine.containers.update",
    "Usage": "pallet.engine.observe.stats",
    "Volume": "pallet.engine.volumes",
    "VolumeFilters": "pallet.engine.volumes",
}


def __getattr__(name: str) -> object:
    module = _TYPES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


#: the networks docker always has: ``bridge`` (the default network) and the modes ``host`` and ``none``
PREDEFINED_NETWORKS = ("bridge", "host", "none")


# --- what a front end builds before (or without) opening the engine ------------------------------


def engine_paths(root: str | None, run_root: str | None, warn: Callable[[str], None]) -> tuple[str, str]:
    """The root and run dir a front end uses: those given, else the defaults (``$PALLET_ROOT``,
    ``$PALLET_RUN``, then /var/lib/pallet and /run/pallet for root). A user who is not root runs
    rootless (``engine/rootless.py``): their own store and run dir, and this process enters their
    user namespace before it returns (call it while the process has one thread)."""
    root = root or os.environ.get("PALLET_ROOT") or None
    run_root = run_root or os.environ.get("PALLET_RUN") or None
    if os.geteuid() == 0 and os.environ.get("PALLET_ROOTLESS") != "1":  # rootless.is_rootless(), unimported
        return root or DEFAULT_ROOT, run_root or DEFAULT_RUN_ROOT
    from pallet.engine import rootless

    defaults = rootless.default_paths()
    paths = rootless.RootlessPaths(root=root or defaults.root, run_root=run_root or defaults.run_root)
    rootless.enter(paths, warn)
    return paths.root, paths.run_root


def sweep_owned(root: str, run_root: str) -> None:
    """Remove what processes that are gone left bound to themselves (a killed build's step containers:
    ``containers/owned.py``). A front end calls it before each command; when nothing is left over it
    costs one directory listing."""
    from pallet.engine.containers import owned

    dead = owned.dead_owners(run_root)
    if dead:
        from pallet.engine.containers.lifecycle import Engine

        with Engine.open(root, run_root) as engine:
            owned.sweep(engine, dead)


def run_session(
    root: str, run_root: str, *, detach: bool, runtime: str | None = None, leave_open: bool = False
) -> RunSession:
    """``pallet run``'s first step: the shim starts now; ``RunSession.run`` creates and starts the container.

    Call it before parsing the run's options; ``close`` it whatever happens
    (``with``). ``leave_open`` as for ``Service.open``.
    """
    from pallet.engine.containers.session import RunSession

    return RunSession(root, run_root, detach=detach, runtime=runtime, leave_open=leave_open)


def exec_request(**kwargs: Any) -> ExecRequest:
    """An ``exec``'s process: ``cmd``, ``tty``, ``interactive``, ``detach``, ``env``, ``workdir``, ``user``."""
    from pallet.engine.containers.execs import ExecRequest

    return ExecRequest(**kwargs)


def streams(**kwargs: Any) -> Streams:
    """A front end's ``Streams`` (see ``containers/session.py``)."""
    from pallet.engine.containers.session import Streams

    return Streams(**kwargs)


def container_filters(values: Iterable[str] | Mapping[str, str | Sequence[str]] = ()) -> ContainerFilters:
    """``ps`` filters (``key=value`` texts or the API's ``{key: [values]}``); ``InvalidArgument`` if bad."""
    from pallet.engine.containers.listing import ContainerFilters

    return ContainerFilters(values)


def prune_filters(values: Iterable[str] = ()) -> PruneFilters:
    """The prune commands' filters (``until``, ``label``, ``label!``); ``InvalidArgument`` if bad."""
    from pallet.engine.gc.prune import PruneFilters

    return PruneFilters(values)


def volume_filters(values: Iterable[str] = ()) -> VolumeFilters:
    """``volume ls``/``volume prune`` filters; ``InvalidArgument`` if bad."""
    from pallet.engine.volumes import VolumeFilters

    return VolumeFilters(values)


def status_text(record: ContainerRecord, now: float, health: str = "") -> str:
    """Docker's STATUS of ``record`` at ``now``: ``Up 3 minutes (Paused)``, ``Exited (0) 2 seconds ago``…;
    ``health``: its healthcheck's status (``Service.health_status``) for ``Up 3 minutes (healthy)``."""
    from pallet.engine.containers.listing import status_text as text

    return text(record, now, health)


def human_duration(seconds: float) -> str:
    """Go-units ``HumanDuration``, the ages docker prints (``About an hour``)."""
    from pallet.engine.containers.listing import human_duration as text

    return text(seconds)


def format_log_entry(entry: LogEntry, timestamps: bool = False) -> bytes:
    """A log record as ``logs`` prints it (with ``timestamps``: RFC 3339 nano time first)."""
    from pallet.engine.shim.logfile import format_entry

    return format_entry(entry, timestamps)


def event_filters(values: Iterable[str] | Mapping[str, str | Sequence[str]] = ()) -> EventFilters:
    """``events`` filters (``key=value`` texts or the API's ``{key: [values]}``); ``InvalidArgument`` if bad."""
    from pallet.engine.events import EventFilters

    return EventFilters(values)


def events(
    root: str,
    *,
    since: str | None = None,
    until: str | None = None,
    filters: EventFilters | None = None,
    follow: bool = True,
    alive: Callable[[], bool] | None = None,
) -> Iterator[Event | None]:
    """``events``: what any process did to ``root``'s containers, images, networks and volumes.

    ``since``/``until`` are docker's times (RFC 3339, a Unix time, a duration
    before now). As docker: with neither, only events from now on; with
    either, the recorded ones first; with ``follow`` it goes on until
    ``until`` passes (never without it). While nothing happens it yields
    ``None`` about once a second (``events.read_events``). ``InvalidArgument``
    for a bad time, before anything is read.
    """
    import time

    from pallet.engine.events import read_events
    from pallet.engine.shim.logfile import parse_time_filter

    now = time.time_ns()
    since_ns = parse_time_filter(since, now, "since") if since else None
    until_ns = parse_time_filter(until, now, "until") if until else None
    if since_ns is None and until_ns is not None:
        since_ns = 0
    if until_ns is not None and until_ns <= now:
        follow = False
    return read_events(
        root, since_ns=since_ns, until_ns=until_ns, filters=filters, follow=follow, alive=alive
    )


def record_event(
    root: str, type: str, action: str, actor_id: str, attributes: Mapping[str, str] | None = None
) -> None:
    """Record an event a front end witnessed (an image pulled, tagged, loaded…); never raises."""
    from pallet.engine.events import append

    append(root, type, action, actor_id, attributes)


def layer_size(layer: LayerRecord) -> int:
    """A layer's size as docker counts it: uncompressed where known (once unpacked), else as stored."""
    from pallet.engine.gc.diskusage import layer_size as size

    return size(layer)


def image_size(store: ImageStore, record: ImageRecord) -> int:
    """The size docker shows of an image: its layers uncompressed where known (once unpacked), else as stored."""
    return sum(layer_size(layer) for layer in store.layers(record.id))


#: the keys docker's image inspect shows in ``Config``, with their empty values, in docker's order
_IMAGE_CONFIG_DEFAULTS: tuple[tuple[str, object], ...] = (
    ("Hostname", ""),
    ("Domainname", ""),
    ("User", ""),
    ("AttachStdin", False),
    ("AttachStdout", False),
    ("AttachStderr", False),
    ("Tty", False),
    ("OpenStdin", False),
    ("StdinOnce", False),
    ("Env", None),
    ("Cmd", None),
    ("Image", ""),
    ("Volumes", None),
    ("WorkingDir", ""),
    ("Entrypoint", None),
    ("OnBuild", None),
    ("Labels", None),
)


def inspect_image(store: ImageStore, name: str) -> dict[str, object]:
    """``docker image inspect``'s object for image ``name``; ``NotFound`` if the store has no such image."""
    record = store.resolve(name)
    config = store.config(record.id)
    run = config.config.to_json() if config.config is not None else {}
    shown: dict[str, object] = {key: run.pop(key, default) for key, default in _IMAGE_CONFIG_DEFAULTS}
    shown.update(run)
    out: dict[str, object] = {
        "Id": str(record.id),
        "RepoTags": [r.familiar_string() for r in record.references if r.tag is not None],
        "RepoDigests": [r.familiar_string() for r in record.references if r.digest is not None],
        "Parent": str(record.parent) if record.parent is not None else "",
        "Comment": config.extra.get("comment", "") or "",
        "Created": config.created or "",
        "DockerVersion": config.extra.get("docker_version", "") or "",
        "Author": config.author or "",
        "Config": shown,
        "Architecture": config.architecture,
    }
    if config.variant:
        out["Variant"] = config.variant
    out.update(
        {
            "Os": config.os,
            "Size": image_size(store, record),
            "GraphDriver": {"Data": None, "Name": store.snapshots.driver},
            "RootFS": {"Type": config.rootfs.type, "Layers": [str(d) for d in config.rootfs.diff_ids]},
            "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
            "Descriptor": {
                "mediaType": record.manifest_media_type,
                "digest": str(record.manifest_digest),
                "size": store.content.size(record.manifest_digest),
            },
        }
    )
    return out


# --- the service ----------------------------------------------------------------------------------


class Service:
    """The engine of one root and run dir, as verbs. Open with ``Service.open``; a context manager."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @classmethod
    def open(
        cls, root: str | os.PathLike[str], run_root: str | os.PathLike[str], *, leave_open: bool = False
    ) -> Self:
        """The engine of ``root`` and ``run_root``; ``leave_open`` as for ``Engine.open`` (the process
        ends with ``os._exit`` right after, so the databases are left to the exit)."""
        from pallet.engine.containers.lifecycle import Engine

        return cls(Engine.open(root, run_root, leave_open=leave_open))

    def close(self) -> None:
        self._engine.close()

    @property
    def root(self) -> str:
        """The pallet root this engine works on."""
        return self._engine.layout.root

    @property
    def run_root(self) -> str:
        """The run dir of this engine (its containers' runtime state, the build's step containers)."""
        return self._engine.layout.run_root

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- containers: looking up ---------------------------------------------------------------

    def get(self, ref: str) -> ContainerRecord:
        """The container ``ref`` names (id, name, unique id prefix), reconciled; ``NotFound`` if none."""
        return self._engine.get(ref)

    def document(self, record: ContainerRecord) -> dict[str, Any]:
        """What was decided at create (docker's inspect shape: ``Path``, ``Args``, ``Config``, ``Mounts``…)."""
        return self._engine.document(record)

    def cached_document(self, record: ContainerRecord, cache: DocumentCache) -> Mapping[str, Any]:
        """``document`` through ``cache`` (kept by a long-lived front end): read only, shared."""
        return cache.read(self._engine.layout.document(record.id))

    def inspect(self, ref: str | ContainerRecord) -> dict[str, Any]:
        """``docker inspect`` of container ``ref`` (or of a record just read)."""
        from pallet.engine.containers.inspection import inspect_container

        engine = self._engine
        record = engine.get(ref) if isinstance(ref, str) else ref
        networks = engine.networks if engine.db.version("network") else None
        document = engine.document(record)
        mode = str((document.get("HostConfig") or {}).get("NetworkMode") or "")
        return inspect_container(
            record,
            document,
            bundle=engine.layout.bundle(record.id),
            run_dir=engine.layout.run_dir(record.id),
            # dockerd gives a host or none container its NetworkID at its first start
            networks=networks.settings(record.id, mode if record.started_at else "")
            if networks is not None
            else None,
            ports=[
                (f"{p.container_port}/{p.protocol}", p.host_ip, p.host_port)
                for p in networks.ports(record.id)
            ]
            if networks is not None
            else (),
        )

    def ps(
        self,
        *,
        all: bool = False,
        filters: ContainerFilters | Iterable[str] | Mapping[str, str | Sequence[str]] = (),
        last: int | None = None,
    ) -> list[ContainerRecord]:
        """``ps``: containers newest first, running ones only unless ``all`` (or a status/exited filter),
        with docker's filters (``containers/listing.py``); ``last``: the newest N only."""
        from pallet.engine.containers.listing import ContainerFilters, list_containers

        parsed = filters if isinstance(filters, ContainerFilters) else ContainerFilters(filters)
        return list_containers(self._engine, all=all, filters=parsed, last=last)

    def health_status(self, record: ContainerRecord) -> str:
        """The status of the container's healthcheck (starting, healthy, unhealthy; "" for none)."""
        from pallet.engine.containers.listing import health_status

        return health_status(self._engine, record)

    # --- containers: lifecycle ----------------------------------------------------------------

    def create(
        self, image: str, options: RunOptions, *, warn: Callable[[str], None] | None = None
    ) -> ContainerRecord:
        """Create (not start) a container from ``image``; the options' foot-gun warnings go to ``warn``."""
        from pallet.engine.containers.session import create

        return create(self._engine, image, options, warn=warn)

    def start(self, ref: str) -> ContainerRecord:
        return self._engine.start(ref)

    def start_with_attach(
        self, ref: str, *, stdin: bool = False, size: tuple[int, int] | None = None
    ) -> AttachConnection:
        """``start`` with the caller as the container's first attach client (docker's attach, then start):
        no output is missed. The connection's output ends when the container exits; ``size`` (rows,
        columns) is a tty's first size."""
        from pallet.engine.shim import attach as shim_attach
        from pallet.engine.shim.launch import prelaunch

        engine = self._engine
        record = engine.containers.get(ref)
        shim = prelaunch(engine.layout.shim_config(record.id), client=True, run_root=engine.layout.run_root)
        try:
            shim.greet(stdin=stdin, size=size)
            engine.start(record.id, exit_command=True, shim=shim)
            if shim.started:
                return shim.attach()
            return shim_attach.connect(engine.layout.attach_socket(record.id), stdin=stdin)
        finally:
            shim.cancel()

    def attach_stream(
        self, ref: str, *, stdin: bool = False, stdout: bool = True, stderr: bool = True
    ) -> AttachConnection:
        """A connection to running container ``ref``'s streams (docker's multiplexed frames without a
        tty); ``FailedPrecondition`` if it is not running."""
        from pallet.engine.shim import attach as shim_attach
        from pallet.errors import FailedPrecondition

        record = self._engine.get(ref)
        if not record.running:
            raise FailedPrecondition("You cannot attach to a stopped container, start it first")
        return shim_attach.connect(
            self._engine.layout.attach_socket(record.id), stdin=stdin, stdout=stdout, stderr=stderr
        )

    def start_attached(self, ref: str, streams: Streams, *, interactive: bool = False) -> int:
        """``start -a [-i]``: start ``ref`` and stream it until it exits; its exit status (0: detached)."""
        from pallet.engine.containers.session import start_attached

        self._engine.event(self._engine.get(ref), "attach")
        return start_attached(self._engine, ref, streams, interactive=interactive)

    def stop(self, ref: str, *, timeout: int | None = None, signal: str | None = None) -> ContainerRecord:
        return self._engine.stop(ref, timeout=timeout, signal=signal)

    def restart(self, ref: str, *, timeout: int | None = None) -> ContainerRecord:
        return self._engine.restart(ref, timeout=timeout)

    def kill(self, ref: str, signal: str | int | None = None) -> ContainerRecord:
        return self._engine.kill(ref, None if signal is None else str(signal))

    def pause(self, ref: str) -> ContainerRecord:
        return self._engine.pause(ref)

    def unpause(self, ref: str) -> ContainerRecord:
        return self._engine.unpause(ref)

    def rename(self, ref: str, new_name: str) -> ContainerRecord:
        return self._engine.rename(ref, new_name)

    def update(self, ref: str, request: UpdateRequest) -> ContainerRecord:
        """``update``: new resource limits (applied at once to a running container) and restart policy;
        docker's checks and words (``containers/update.py``)."""
        from pallet.engine.containers.update import update

        return update(self._engine, ref, request)

    def remove(self, ref: str, *, force: bool = False, volumes: bool = False, link: bool = False) -> str:
        """Remove container ``ref``; its id. With ``link`` (docker's ``rm --link``) ``ref`` is a legacy
        link, ``PARENT/ALIAS``: only the link goes, both containers stay (``ref`` is returned)."""
        if link:
            from pallet.engine.containers.sharing import remove_link

            remove_link(self._engine, ref)
            return ref
        return self._engine.remove(ref, force=force, volumes=volumes)

    def wait(self, ref: str, *, timeout: float | None = None) -> int:
        """Block until ``ref`` stops; its exit status."""
        return self._engine.wait(ref, timeout=timeout)

    # --- containers: streams ------------------------------------------------------------------

    def logs(
        self,
        ref: str,
        *,
        follow: bool = False,
        since: str | None = None,
        until: str | None = None,
        tail: int | None = None,
        stdout: bool = True,
        stderr: bool = True,
        cancelled: Callable[[], bool] | None = None,
    ) -> Iterator[LogEntry]:
        """The container's log records, oldest first (docker's ``logs``).

        ``since``/``until`` are docker's times (RFC 3339, a Unix time, or a
        duration before now such as ``10m``); ``tail`` keeps the last N
        records (None: all). ``follow`` goes on reading what the container
        writes until it stops (is no longer running, paused or restarting),
        or until ``until`` passes even when nothing more is written, as
        docker does. ``InvalidArgument`` for a bad time, before anything is read.
        ``cancelled`` ends a follow too (a front end's client went away).
        """
        import time

        from pallet.engine.shim.logfile import parse_time_filter, read_logs

        engine = self._engine
        record = engine.get(ref)
        if (engine.document(record).get("HostConfig") or {}).get("LogConfig", {}).get("Type") == "none":
            raise Unsupported("configured logging driver does not support reading")
        now = time.time_ns()
        since_ns = parse_time_filter(since, now, "since") if since else None
        until_ns = parse_time_filter(until, now, "until") if until else None
        container_id = record.id
        wanted = {s for s, on in (("stdout", stdout), ("stderr", stderr)) if on}

        def stopped() -> bool:
            if until_ns is not None and time.time_ns() > until_ns:
                return True
            if cancelled is not None and cancelled():
                return True
            try:
                return engine.get(container_id).state not in ("running", "paused", "restarting")
            except NotFound:
                return True

        entries = read_logs(
            engine.layout.log_path(record.id),
            tail=None if tail is None or tail < 0 else tail,
            since_ns=since_ns,
            until_ns=until_ns,
            follow=follow,
            stopped=stopped,
        )
        return entries if len(wanted) == 2 else (e for e in entries if e.stream in wanted)

    def attach(self, ref: str, streams: Streams, *, stdin: bool = True, sig_proxy: bool = True) -> int:
        """``attach``: stream a running container until it exits; its exit status (0: detached)."""
        from pallet.engine.containers.session import attach

        self._engine.event(self._engine.get(ref), "attach")
        return attach(self._engine, ref, streams, stdin=stdin, sig_proxy=sig_proxy)

    def exec(self, ref: str, request: ExecRequest, *, stdio: tuple[int, int, int] | None = None) -> int:
        """Run ``request`` in running container ``ref`` with ``stdio`` (None: /dev/null); its exit status
        (0 when detached)."""
        from pallet.engine.containers.execs import exec_process

        engine = self._engine
        record = engine.get(ref)
        exec_id = os.urandom(32).hex()
        command = " ".join(request.cmd)
        engine.event(record, f"exec_create: {command}", execID=exec_id)
        engine.event(record, f"exec_start: {command}", execID=exec_id)
        code = exec_process(engine, ref, request, stdio=stdio)
        if not request.detach:
            engine.event(record, "exec_die", execID=exec_id, exitCode=str(code))
        return code

    def exec_attached(self, ref: str, request: ExecRequest, streams: Streams) -> int:
        """A foreground exec with ``streams``' fds (temp files stand in for streams without fds)."""
        import tempfile

        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            source = streams.stdin_fd if request.interactive and streams.stdin_fd is not None else null
            if streams.stdout_fd is not None and streams.stderr_fd is not None:
                streams.flush()
                return self.exec(ref, request, stdio=(source, streams.stdout_fd, streams.stderr_fd))
            with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
                code = self.exec(ref, request, stdio=(source, out.fileno(), err.fileno()))
                out.seek(0)
                streams.write_stdout(out.read())
                err.seek(0)
                streams.write_stderr(err.read())
                return code
        finally:
            os.close(null)

    def exec_output(
        self, ref: str, request: ExecRequest, *, stdout: bool = True, stderr: bool = True
    ) -> tuple[int, bytes]:
        """Run ``request`` with no stdin; its exit status and output (the streams wanted, interleaved)."""
        import tempfile

        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            with tempfile.TemporaryFile() as out:
                fd = out.fileno()
                code = self.exec(ref, request, stdio=(null, fd if stdout else null, fd if stderr else null))
                out.seek(0)
                return code, out.read()
        finally:
            os.close(null)

    # --- containers: observation --------------------------------------------------------------

    def top(self, ref: str, ps_args: Sequence[str] = ()) -> ProcessList:
        """``top``: the container's processes as ``ps`` shows them; ``FailedPrecondition`` if not running."""
        from pallet.engine.observe.top import top
        from pallet.errors import FailedPrecondition

        record = self._engine.get(ref)
        if not record.running:
            raise FailedPrecondition(f"container {record.id} is not running")
        listing = top(record.pid, ps_args)
        self._engine.event(record, "top")
        return listing

    def stats_sample(self, record: ContainerRecord) -> Sample:
        """One reading of the container's counters (CPU time, the host's, memory, I/O, pids); zeros if
        it is not running. Two readings give docker's ``stats`` document (``precpu``)."""
        from pallet.engine.observe.stats import Sample, sample

        return sample(record.pid) if record.running and record.pid > 0 else Sample()

    def stats(self, records: Sequence[ContainerRecord], interval: float = 1.0) -> list[Usage]:
        """One ``stats`` sample of each of ``records`` over ``interval`` seconds (zeros if not running)."""
        from pallet.engine.observe.stats import Usage, measure

        usage = measure([r.pid for r in records if r.running and r.pid > 0], interval)
        return [usage.get(r.pid, Usage()) if r.running else Usage() for r in records]

    def port(self, ref: str, port: str | None = None) -> list[str]:
        """``port``: the container's published ports as docker prints them (``80/tcp -> 0.0.0.0:8080``)."""
        from pallet.engine.observe.ports import port_lines

        record = self._engine.get(ref)
        return port_lines(self.ports_of(record.id), record.name, port)

    # --- containers: files --------------------------------------------------------------------

    def copy_from(
        self,
        ref: str,
        path: str,
        *,
        to_path: str | None = None,
        to_stream: BinaryIO | None = None,
        follow_link: bool = False,
        owner: tuple[int, int] | None = None,
    ) -> CopyResult:
        """``cp CONTAINER:PATH DEST``: to host path ``to_path`` (files get ``owner``; None: as in the
        container), or a tar stream to ``to_stream``. Records docker's ``archive-path`` event."""
        from pallet.engine.filesystem.cp import archive, container_root, copy

        record = self._engine.get(ref)
        with container_root(self._engine, record, path, unshifted=True) as (root_fd, inner):
            if to_stream is not None:
                result = archive(root_fd, inner, to_stream, follow_link=follow_link)
            else:
                assert to_path is not None
                host = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    result = copy(root_fd, inner, host, to_path, follow_link=follow_link, owner=owner)
                finally:
                    os.close(host)
        self._engine.event(record, "archive-path")
        return result

    def path_stat(self, ref: str, path: str, *, follow_link: bool = False) -> PathInfo:
        """What ``path`` is in container ``ref`` (docker's archive ``HEAD``); ``NotFound`` if nothing is there."""
        from pallet.engine.filesystem.cp import container_root, split_source, stat_path

        record = self._engine.get(ref)
        with container_root(self._engine, record, path) as (root_fd, inner):
            return stat_path(root_fd, split_source(inner)[0], follow_link=follow_link)

    def copy_into(
        self,
        ref: str,
        path: str,
        *,
        from_path: str | None = None,
        from_stream: BinaryIO | None = None,
        follow_link: bool = False,
        owner: tuple[int, int] | None = None,
    ) -> CopyResult:
        """``cp SRC CONTAINER:PATH``: host path ``from_path``, or a tar stream ``from_stream`` unpacked into
        directory ``path`` (``InvalidArgument`` if it is not one). Files get ``owner`` (None: as they are).
        Records docker's ``extract-to-dir`` event."""
        from pallet.engine.filesystem.cp import container_root, copy, extract, stat_path
        from pallet.engine.userns import as_remapped_root

        record = self._engine.get(ref)
        with (
            as_remapped_root(self._engine.layout.bundle(record.id), owner) as files_owner,
            container_root(self._engine, record, path) as (root_fd, inner),
        ):
            if from_stream is not None:
                if not stat_path(root_fd, inner, follow_link=True).is_dir:
                    raise InvalidArgument(f'destination "{ref}:{path}" must be a directory')
                from pallet.linux.openat2 import open_in_root

                into = open_in_root(root_fd, inner.lstrip("/") or ".", os.O_PATH | os.O_DIRECTORY)
                try:
                    result = extract(into, from_stream, owner=files_owner)
                finally:
                    os.close(into)
            else:
                assert from_path is not None
                host = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    result = copy(host, from_path, root_fd, inner, follow_link=follow_link, owner=files_owner)
                finally:
                    os.close(host)
        self._engine.event(record, "extract-to-dir")
        return result

    def diff(self, ref: str) -> list[str]:
        """``diff``: the container's changes to its image's files, as docker prints them (``C /etc``)."""
        from pallet.engine.filesystem.diff import container_changes
        from pallet.engine.layout import snapshot_key

        record = self._engine.get(ref)
        changes = container_changes(
            self._engine.images, snapshot_key(record.id), mount_points=self._mount_points(record)
        )
        return [str(change) for change in changes]

    def _mount_points(self, record: ContainerRecord) -> list[str]:
        """Destinations of every mount of the container's config.json: the runtime makes them."""
        import json

        try:
            with open(os.path.join(self._engine.layout.bundle(record.id), "config.json")) as f:
                mounts = json.load(f).get("mounts") or []
        except (OSError, ValueError):
            mounts = []
        found = [
            m["destination"] for m in mounts if isinstance(m, dict) and isinstance(m.get("destination"), str)
        ]
        found += [m.get("Destination", "") for m in self._engine.document(record).get("Mounts") or []]
        return [p for p in found if p]

    def commit(
        self,
        ref: str,
        repository: str | None = None,
        *,
        changes: Sequence[str] = (),
        message: str = "",
        author: str = "",
        pause: bool = True,
    ) -> ImageRecord:
        """``commit``: an image of the container's files and run config, tagged ``repository``; a running
        container is paused meanwhile (``pause``), for a consistent snapshot, as docker does."""
        from pallet.engine.filesystem.commit import commit_snapshot
        from pallet.engine.layout import snapshot_key

        engine = self._engine
        record = engine.get(ref)
        document = engine.document(record)
        command = [document.get("Path", ""), *(document.get("Args") or [])]
        paused = False
        if pause and record.state == "running":
            engine.pause(record.id)
            paused = True
        engine.event(record, "commit", comment=message, author=author)
        try:
            committed = commit_snapshot(
                engine.images,
                snapshot_key(record.id),
                image=record.image_id,
                run_config=_run_config(document),
                changes=changes,
                message=message,
                author=author,
                created_by=" ".join(c for c in command if c),
                ref=repository,
                exclude=[
                    p
                    for p, key in (
                        ("/etc/hosts", "HostsPath"),
                        ("/etc/resolv.conf", "ResolvConfPath"),
                        ("/etc/hostname", "HostnamePath"),
                    )
                    if document.get(key)
                ],
            )
        finally:
            if paused:
                engine.unpause(record.id)
        engine.images.set_parent(str(committed.id), record.image_id)  # docker's Parent of a commit
        return engine.images.get(committed.id)

    def export(self, ref: str, out: BinaryIO) -> None:
        """``export``: the container's root filesystem as a tar stream to ``out``; records docker's ``export`` event."""
        from pallet.engine.filesystem.export import export_rootfs, mounted_rootfs
        from pallet.engine.layout import snapshot_key
        from pallet.engine.userns import remap_of_bundle

        engine = self._engine
        record = engine.get(ref)
        unshifted = remap_of_bundle(engine.layout.bundle(record.id)) is not None
        rootfs = engine.layout.rootfs(record.id)
        with mounted_rootfs(engine.images, snapshot_key(record.id), rootfs, unshifted=unshifted) as tree:
            export_rootfs(tree, out)
        engine.event(record, "export")

    # --- cleaning up --------------------------------------------------------------------------

    def prune_containers(self, filters: PruneFilters | None = None) -> tuple[list[str], int]:
        """``container prune``: stopped containers removed (ids), and the bytes freed."""
        from pallet.engine.gc.prune import prune_containers

        return prune_containers(self._engine, filters)

    def prune_images(self, *, all: bool = False, filters: PruneFilters | None = None) -> PruneReport:
        """``image prune [-a]``."""
        from pallet.engine.gc.prune import prune_images

        return prune_images(self._engine, all=all, filters=filters)

    def prune(
        self, *, all: bool = False, volumes: bool = False, filters: PruneFilters | None = None
    ) -> PruneReport:
        """``system prune [-a] [--volumes]``."""
        from pallet.engine.gc.prune import system_prune

        return system_prune(self._engine, all=all, volumes=volumes, filters=filters)

    def audit(self, refs: Sequence[str] = (), *, all: bool = False) -> list[Audit]:
        """``audit``: the findings of containers ``refs`` (none named: the running ones, every one
        with ``all``, newest first), in the order asked for; ``NotFound`` before anything is judged."""
        from pallet.engine.audit import audit_container

        engine = self._engine
        records = [engine.get(ref) for ref in refs] if refs else self.ps(all=all)
        return [audit_container(engine, record) for record in records]

    def audit_image(self, ref: str) -> Audit:
        """``audit --image``: the findings of image ``ref`` (root user, setuid files, secrets)."""
        from pallet.engine.audit import audit_image

        return audit_image(self._engine.images, ref)

    def info(self) -> EngineInfo:
        """``info``: the configuration in force (runtimes, userns-remap, …) and what the root holds."""
        from pallet.engine.info import engine_info

        return engine_info(self._engine)

    # --- events -------------------------------------------------------------------------------

    def events(
        self,
        *,
        since: str | None = None,
        until: str | None = None,
        filters: EventFilters | None = None,
        follow: bool = True,
        alive: Callable[[], bool] | None = None,
    ) -> Iterator[Event | None]:
        """The events of this engine's root (the module's ``events``)."""
        return events(
            self._engine.layout.root, since=since, until=until, filters=filters, follow=follow, alive=alive
        )

    def record_event(
        self, type: str, action: str, actor_id: str, attributes: Mapping[str, str] | None = None
    ) -> None:
        """Record an event of this engine's root (the module's ``record_event``); never raises."""
        record_event(self._engine.layout.root, type, action, actor_id, attributes)

    def disk_usage(self) -> DiskUsage:
        """``system df``: images, containers and volumes with their sizes."""
        from pallet.engine.gc.diskusage import disk_usage_of

        return disk_usage_of(self._engine)

    # --- volumes ------------------------------------------------------------------------------

    def create_volume(
        self,
        name: str | None = None,
        *,
        driver: str = "local",
        labels: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
    ) -> Volume:
        return self._engine.volumes.create(
            name, driver=driver, labels=dict(labels or {}), options=dict(options or {})
        )

    def volume(self, name: str) -> Volume:
        """The volume ``name``; ``NotFound`` if there is none (a root without volumes is not changed)."""
        if not os.path.isdir(os.path.join(self._engine.layout.root, "volumes")):
            raise NotFound(f"no such volume: {name}")
        return self._engine.volumes.get(name)

    def volumes(self, filters: VolumeFilters | None = None) -> list[Volume]:
        return self._engine.volumes.list_volumes(filters)

    def remove_volume(self, name: str, *, force: bool = False) -> None:
        self._engine.volumes.remove(name, force=force)

    def prune_volumes(
        self, *, all: bool = False, filters: VolumeFilters | None = None
    ) -> tuple[list[str], int]:
        """``volume prune [-a]``: unused (anonymous, unless ``all``) volumes removed, and the bytes freed."""
        return self._engine.volumes.prune(all=all, filters=filters)

    # --- networks -----------------------------------------------------------------------------
    # ``Network`` records (``pallet.network.store``): ``id``, ``name``, ``bridge``, ``subnet``,
    # ``gateway``, ``ip_range``, ``internal``, ``dns``, ``mtu``, ``created`` (RFC 3339), ``labels``,
    # ``options``, ``subnet6``, ``gateway6``. The root's default network ``bridge`` is made on first
    # use. docker also lists ``host`` and ``none``, modes shown as networks (``PredefinedNetwork``:
    # ``id``, ``name``, ``driver``, ``created``); ``PREDEFINED_NETWORKS`` names the three, which cannot
    # be created or removed.

    def network_create(
        self,
        name: str,
        *,
        driver: str = "bridge",
        subnet: str = "",
        gateway: str = "",
        ip_range: str = "",
        internal: bool = False,
        labels: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
        ipv6: bool = False,
        subnet6: str = "",
        gateway6: str = "",
        ip_range6: str = "",
        ipam_options: Mapping[str, str] | None = None,
        aux_addresses: Mapping[str, str] | None = None,
    ) -> Network:
        """``network create``: a bridge network and its bridge (``options``: docker's ``-o``, e.g.
        ``com.docker.network.bridge.name``). ``AlreadyExists`` for a taken name, ``Conflict`` for a
        predefined one, ``InvalidArgument`` for a bad CIDR, a subnet overlapping another network or
        a host route, a gateway outside the subnet; ``NotFound`` for another driver. Nothing is made
        on error. ``ipam_options``: None shows as docker's null (an API request without them)."""
        network = self._engine.networks.create(
            name, driver=driver, subnet=subnet, gateway=gateway, ip_range=ip_range, internal=internal,
            labels=labels, options=options, ipv6=ipv6, subnet6=subnet6, gateway6=gateway6,
            ip_range6=ip_range6, ipam_options=ipam_options, aux_addresses=aux_addresses,
        )  # fmt: skip
        self.record_event("network", "create", network.id, {"name": network.name, "type": driver})
        return network

    def network_list(self) -> list[Network | PredefinedNetwork]:
        """``network ls``: every bridge network of the root, oldest first, then ``host`` and ``none``."""
        return self._engine.networks.networks()

    def network_get(self, ref: str) -> Network:
        """The network ``ref`` names (name, id or unique id prefix); ``NotFound`` if none."""
        return self._engine.networks.find(ref)

    def network_inspect(self, ref: str) -> dict[str, Any]:
        """``network inspect``: docker's document (``Name``, ``Id``, ``IPAM``, ``Containers``, ...)."""
        engine = self._engine

        def members(mode: str) -> list[tuple[str, str]]:  # the running containers in mode host or none
            return [
                (r.id, r.name)
                for r in engine.list_containers(all=False)
                if (engine.document(r).get("HostConfig") or {}).get("NetworkMode") == mode
            ]

        return engine.networks.inspect(ref, members)

    def network_remove(self, ref: str) -> Network:
        """``network rm``: ``FailedPrecondition`` while containers are attached (docker's words: "has
        active endpoints"), ``Conflict`` for a predefined network, ``NotFound`` if none; the network removed."""
        network = self._engine.networks.remove(ref)
        self.record_event("network", "destroy", network.id, {"name": network.name, "type": "bridge"})
        return network

    def network_prune(self, filters: PruneFilters | None = None) -> list[Network]:
        """``network prune``: user networks without containers removed (``until``/``label`` filters);
        the networks removed."""
        from pallet.engine.gc.prune import prune_networks

        return prune_networks(self._engine, filters)

    def network_connect(
        self,
        network: str,
        container: str,
        *,
        aliases: Sequence[str] = (),
        ip: str = "",
        ip6: str = "",
        mac: str = "",
        link_local_ips: Sequence[str] = (),
        links: Sequence[str] = (),
        driver_opts: Mapping[str, str] | None = None,
    ) -> None:
        """``network connect [--alias] [--ip] [--ip6] [--link] [--link-local-ip] [--driver-opt] NET CTR``
        (and the API's ``MacAddress``): a running container gets the interface now, a stopped one at
        its next start; its ``/etc/hosts`` names it by its new address at once, as dockerd's. ``Conflict``
        if connected already; ``InvalidArgument`` for a container on the host network, ``none`` or
        another container's network, or a connect to ``host`` or ``none`` (dockerd's refusals)."""
        from pallet.engine.containers.attachments import check_connectable, recorded_ports
        from pallet.engine.networking import Attachment

        request = Attachment(
            network, aliases=aliases, ip=ip, ip6=ip6, mac=mac, link_local_ips=link_local_ips, links=links,
            driver_opts=driver_opts,
        )  # fmt: skip

        engine = self._engine
        record = engine.get(container)
        running = record.state in ("running", "paused", "restarting")
        with engine.lock(record.id).held():
            document = engine.document(record)
            mode = str((document.get("HostConfig") or {}).get("NetworkMode") or "default")
            if not engine.networks.check_connect(
                mode, record.name, engine.networks.lookup(network), running=running
            ):
                return
            check_connectable(document, record.name)
            held = engine.networks.endpoints(record.id)
            engine.networks.connect(
                network, record.id, name=record.name, request=request, running=running,
                ports=lambda held: recorded_ports(document, held),
                dns=[str(a) for a in (document.get("HostConfig") or {}).get("Dns") or ()],
            )  # fmt: skip
            engine.refresh_attachments(record)  # its disconnect follows its die
            _etc_files(engine, record, document, held, engine.networks.endpoints(record.id))
        if running:  # as dockerd: a stopped container's connect is recorded when it starts
            found = engine.networks.find(network)
            self.record_event(
                "network", "connect", found.id, {"container": record.id, "name": found.name, "type": "bridge"}
            )

    def network_disconnect(self, network: str, container: str, *, force: bool = False) -> None:
        """``network disconnect [-f] NET CTR``: ``FailedPrecondition`` if the container is not
        connected to it, ``force`` or not, as dockerd (``force``: an unknown container or network is
        no error)."""
        engine = self._engine
        try:
            record = engine.get(container)
        except NotFound:
            if force:
                return
            raise
        with engine.lock(record.id).held():
            document = engine.document(record)
            mode = str((document.get("HostConfig") or {}).get("NetworkMode") or "default")
            try:
                engine.networks.check_disconnect(mode, record.name, engine.networks.lookup(network))
            except NotFound:
                if not force:
                    raise
            held = engine.networks.endpoints(record.id)
            engine.networks.disconnect(network, record.id, name=record.name, force=force)
            engine.refresh_attachments(record)
            _etc_files(engine, record, document, held, engine.networks.endpoints(record.id))
        try:
            found = engine.networks.find(network)
        except NotFound:
            return  # forced, for a network that is gone
        self.record_event(
            "network", "disconnect", found.id, {"container": record.id, "name": found.name, "type": "bridge"}
        )

    def ports_of(self, ref: str | ContainerRecord) -> list[tuple[str, str, int]]:
        """The published ports of a running container as allocated: (``80/tcp``, host address, host
        port), in the order asked (a port chosen by pallet for ``-p 80`` or ``-P`` filled in); none
        for a stopped one, as docker shows them (it keeps them until it is removed)."""
        record = self._engine.get(ref) if isinstance(ref, str) else ref
        if record.state not in ("running", "paused", "restarting") or not self._engine.db.version("network"):
            return []
        return [
            (f"{p.container_port}/{p.protocol}", p.host_ip, p.host_port)
            for p in self._engine.networks.ports(record.id)
        ]


def _etc_files(
    engine: Engine,
    record: ContainerRecord,
    document: Mapping[str, Any],
    before: Sequence[Endpoint],
    after: Sequence[Endpoint],
) -> None:
    """A container's ``/etc/hosts`` and ``/etc/resolv.conf`` after a connect or disconnect took its
    endpoints from ``before`` to ``after``: the line naming it by each address of an endpoint added
    or removed, as dockerd edits a running one's (a stopped one keeps its addresses: its files are
    right at its next start, as dockerd's rebuilt ones); the name server, the resolver of its first
    user network, when that changed (docker's 127.0.0.11 is in every container; pallet's resolver
    is reached at a network's gateway). Files the container has changed are left alone."""
    from pallet.engine.spec.hostsfiles import (
        container_lines,
        resolv_conf_content,
        update_hosts,
        update_resolv_conf,
    )
    from pallet.engine.spec.syntax import parse_network

    config = document.get("Config") or {}
    host = document.get("HostConfig") or {}

    def lines(endpoints: Sequence[Endpoint], others: Sequence[Endpoint]) -> list[str]:
        gone = [e for e in endpoints if all(o.id != e.id for o in others)]
        addresses = [a for e in gone for a in (e.ip, e.ip6) if a]
        return container_lines(
            addresses,
            hostname=str(config.get("Hostname") or ""),
            domainname=str(config.get("Domainname") or ""),
        )

    directory = engine.layout.container_dir(record.id)
    update_hosts(os.path.join(directory, "hosts"), add=lines(after, before), remove=lines(before, after))

    def resolver(endpoints: Sequence[Endpoint]) -> str:
        for endpoint in endpoints:
            network = engine.networks.find(endpoint.network_id)
            if network.dns:
                return network.gateway
        return ""

    was, now = resolver(before), resolver(after)
    if was == now:
        return
    try:
        with open("/etc/resolv.conf", encoding="utf-8", errors="replace") as f:
            host_resolv = f.read()
    except OSError:
        host_resolv = ""
    mode = parse_network(str(host.get("NetworkMode") or ""))
    options = {
        "dns": [str(a) for a in host.get("Dns") or ()],
        "dns_search": [str(a) for a in host.get("DnsSearch") or ()],
        "dns_options": [str(a) for a in host.get("DnsOptions") or ()],
    }
    update_resolv_conf(
        os.path.join(directory, "resolv.conf"),
        was=resolv_conf_content(mode, host_resolv, resolver=was, **options),
        now=resolv_conf_content(mode, host_resolv, resolver=now, **options),
    )


def _run_config(document: Mapping[str, Any]) -> Any:
    """The container's run config (docker's ``Config``) as an image's ``config``; None if unknown."""
    from pallet.oci.image_spec import ContainerConfig

    config = document.get("Config")
    if not isinstance(config, dict) or not config:
        return None
    run = ContainerConfig.from_json(config)
    # what describes this container only (Hostname, Image, Tty, ...) stays out of the image
    hostname = f"HOSTNAME={config.get('Hostname') or ''}"
    env = tuple(e for e in run.env or () if e != hostname) if run.env is not None else None
    return run.replace(env=env, extra={})
