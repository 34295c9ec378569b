"""Container routes: create, list, inspect, the lifecycle verbs, attach, wait, logs, stats, top, files, prune.

Each handler reads docker's request, calls ``pallet.engine.service`` and
answers docker's JSON; the rules (filters, states, time filters, file
copies) are the engine's.
"""

from __future__ import annotations

import base64
import contextlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pallet.api import attachments
from pallet.api.coalesce import Coalescer
from pallet.api.container_config import run_options, update_request
from pallet.api.framing import content_type, frame, parse_detach_keys
from pallet.api.messages import Empty, Hijack, Json, Raw, Request, Response, Stream
from pallet.api.routing import RouteTable
from pallet.engine.service import DocumentCache
from pallet.errors import FailedPrecondition, InvalidArgument, NotFound, PalletError, Unsupported

if TYPE_CHECKING:
    from typing import BinaryIO

    from pallet.api.hijack import Connection
    from pallet.engine.service import ContainerRecord, Sample, Service

__all__ = ["ROUTES"]

ROUTES = RouteTable()

_ACTIVE = ("running", "paused", "restarting")


def _iso(epoch: float | None) -> str:
    if not epoch:
        return "0001-01-01T00:00:00Z"
    seconds = int(epoch)
    nanos = min(round((epoch - seconds) * 1e9), 999_999_999)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


# --- create, list, inspect ------------------------------------------------------------------------


@ROUTES.route("POST", "/containers/create")
def create(request: Request) -> Response:
    body = request.json_object()
    image, options = run_options(body, request.arg("name") or None, request.version)
    warnings: list[str] = []
    try:
        record = request.service.create(image, options, warn=warnings.append)
    except NotFound as e:
        # dockerd makes the container and fails its start on an unknown network, so the docker CLI
        # prints "network X not found"; a 404 from create means a missing image to it, and it would
        # pull one. The same words, as a 400: nothing was made.
        wanted = [options.network.mode.network_name, *(n.network for n in options.network.networks)]
        if str(e) in {f"network {name} not found" for name in wanted if name}:
            raise InvalidArgument(str(e)) from None
        if str(e).startswith("Unable to find image"):  # dockerd's words, which docker-py matches
            from pallet.oci.reference import parse

            raise NotFound(f"No such image: {parse(image).familiar_string()}") from None
        raise
    return Json({"Id": record.id, "Warnings": warnings}, status=201)


def _ports(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    bindings = (document.get("HostConfig") or {}).get("PortBindings") or {}
    for port, hosts in bindings.items():
        number, _, proto = str(port).partition("/")
        if not number.isdigit():
            continue
        for host in hosts or [{}]:
            entry: dict[str, Any] = {"PrivatePort": int(number), "Type": proto or "tcp"}
            host_port = str((host or {}).get("HostPort") or "")
            if host_port.isdigit():
                entry.update(IP=(host or {}).get("HostIp") or "0.0.0.0", PublicPort=int(host_port))
            out.append(entry)
    return out


def _summary(service: Service, record: ContainerRecord, now: float) -> dict[str, Any]:
    """One container as ``GET /containers/json`` lists it."""
    from pallet.engine.service import status_text

    document = service.cached_document(record, _DOCUMENTS)
    command = " ".join([document.get("Path", ""), *(document.get("Args") or [])]).strip()
    network = (document.get("HostConfig") or {}).get("NetworkMode") or "default"
    networks = (document.get("NetworkSettings") or {}).get("Networks") or {}
    return {
        "Id": record.id,
        "Names": [f"/{record.name}"],
        "Image": record.image,
        "ImageID": record.image_id,
        "Command": command,
        "Created": int(record.created),
        "Ports": _ports(document),
        "Labels": dict(record.labels),
        "State": "created" if record.state == "creating" else record.state,
        "Status": status_text(record, now, service.health_status(record)),
        "HostConfig": {"NetworkMode": network},
        "NetworkSettings": {"Networks": networks},
        "Mounts": [
            {
                "Type": m.get("Type", ""),
                "Name": m.get("Name", ""),
                "Source": m.get("Source", ""),
                "Destination": m.get("Destination", ""),
                "Driver": m.get("Driver", ""),
                "Mode": m.get("Mode", ""),
                "RW": m.get("RW", True),
                "Propagation": m.get("Propagation", ""),
            }
            for m in document.get("Mounts") or []
        ],
    }


#: concurrent identical lists share one reading of the engine (``coalesce.py``)
_LISTS: Coalescer[bytes] = Coalescer()
#: each container's container.json read once while it is unchanged (lists come often)
_DOCUMENTS = DocumentCache()


@ROUTES.route("GET", "/containers/json")
def list_containers(request: Request) -> Response:
    limit = request.integer("limit")
    last = limit if limit and limit > 0 else None
    every, filters = request.flag("all"), request.filters()

    def compute() -> bytes:  # the answer's body, serialised once for the whole batch
        service = request.service  # opened by the batch's leader only
        records = service.ps(all=every, filters=filters, last=last)
        now = time.time()
        return json.dumps([_summary(service, r, now) for r in records]).encode() + b"\n"

    key = (every, last, json.dumps(filters, sort_keys=True))
    return Raw(_LISTS.run(key, compute), "application/json")


@ROUTES.route("GET", "/containers/{name}/json")
def inspect(request: Request) -> Response:
    doc = request.service.inspect(request.params["name"])
    if request.flag("size"):
        doc.setdefault("SizeRw", 0)
        doc.setdefault("SizeRootFs", 0)
    return Json(doc)


# --- lifecycle ------------------------------------------------------------------------------------


@ROUTES.route("POST", "/containers/{name}/start")
def start(request: Request) -> Response:
    service = request.service
    record = service.get(request.params["name"])
    if record.state in _ACTIVE:
        return Empty(304)
    waiting = attachments.take_waiting(request.shared, record.id)
    try:
        if not waiting:
            service.start(record.id)
            return Empty(204)
        conn = service.start_with_attach(record.id, stdin=waiting[0].stdin, size=waiting[0].size)
    except PalletError as e:
        for w in waiting:
            w.fail(e.message)
        if (service.document(record).get("HostConfig") or {}).get("AutoRemove"):
            # as dockerd: an auto-remove container that cannot start is removed (the client waits for it)
            with contextlib.suppress(PalletError):
                service.remove(record.id, force=True, volumes=True)
        raise
    first, rest = waiting[0], waiting[1:]
    first.deliver(conn)
    for w in rest:
        try:
            w.deliver(service.attach_stream(record.id, stdin=w.stdin))
        except PalletError as e:
            w.fail(e.message)
    return Empty(204)


def _timeout(request: Request) -> int | None:
    return request.integer("t") if request.has("t") else None


@ROUTES.route("POST", "/containers/{name}/stop")
def stop(request: Request) -> Response:
    service = request.service
    record = service.get(request.params["name"])
    if record.state not in _ACTIVE:
        return Empty(304)
    service.stop(record.id, timeout=_timeout(request), signal=request.arg("signal") or None)
    return Empty(204)


@ROUTES.route("POST", "/containers/{name}/restart")
def restart(request: Request) -> Response:
    request.service.restart(request.params["name"], timeout=_timeout(request))
    return Empty(204)


@ROUTES.route("POST", "/containers/{name}/kill")
def kill(request: Request) -> Response:
    request.service.kill(request.params["name"], request.arg("signal") or None)
    return Empty(204)


@ROUTES.route("POST", "/containers/{name}/pause")
def pause(request: Request) -> Response:
    request.service.pause(request.params["name"])
    return Empty(204)


@ROUTES.route("POST", "/containers/{name}/unpause")
def unpause(request: Request) -> Response:
    request.service.unpause(request.params["name"])
    return Empty(204)


@ROUTES.route("POST", "/containers/{name}/rename")
def rename(request: Request) -> Response:
    new_name = request.arg("name")
    if not new_name:
        raise InvalidArgument("Neither old nor new names may be empty")
    request.service.rename(request.params["name"], new_name)
    return Empty(204)


@ROUTES.route("POST", "/containers/{name}/update")
def update(request: Request) -> Response:
    changes = update_request(request.json_object(required=False))
    request.service.update(request.params["name"], changes)
    return Json({"Warnings": []})


@ROUTES.route("DELETE", "/containers/{name*}")  # a legacy link's name is PARENT/ALIAS
def remove(request: Request) -> Response:
    request.service.remove(
        request.params["name"],
        force=request.flag("force"),
        volumes=request.flag("v"),
        link=request.flag("link"),
    )
    return Empty(204)


@ROUTES.route("POST", "/containers/prune")
def prune(request: Request) -> Response:
    from pallet.engine.service import prune_filters

    texts = [f"{key}={value}" for key, values in request.filters().items() for value in values]
    removed, freed = request.service.prune_containers(prune_filters(texts))
    return Json({"ContainersDeleted": removed, "SpaceReclaimed": freed})


# --- wait -----------------------------------------------------------------------------------------


@ROUTES.route("POST", "/containers/{name}/wait")
def wait(request: Request) -> Response:
    """Block until the container is not running (``not-running``), exits after this call
    (``next-exit``: docker's CLI asks before it starts the container) or is removed (``removed``)."""
    condition = request.arg("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise InvalidArgument(f"invalid condition: {condition!r}")
    service = request.service
    record = service.get(request.params["name"])
    container_id = record.id

    def result() -> Iterator[bytes]:
        code = _wait(service, container_id, condition, record.state, request.client_gone)
        yield json.dumps({"Error": None, "StatusCode": code}).encode() + b"\n"

    return Stream(result())


def _wait(service: Service, container_id: str, condition: str, state: str, gone: Callable[[], bool]) -> int:
    """The exit status once ``condition`` holds; -1 if the client went away first (nobody reads it)."""
    if condition != "not-running" and state in ("created", "creating"):
        # not started yet: wait for the start (or removal) docker's client is about to ask for
        while True:
            try:
                state = service.get(container_id).state
            except NotFound:
                return 0
            if state not in ("created", "creating"):
                break
            if gone():
                return -1
            time.sleep(0.05)
    try:
        # no timeout: a --rm container's status is read the moment its shim leaves, before the
        # removal takes it; a client gone meanwhile costs this thread until the container stops
        code = service.wait(container_id)
    except NotFound:
        return 0  # removed meanwhile (--rm): its status went with it
    if condition == "removed":
        while True:
            try:
                service.get(container_id)
            except NotFound:
                break
            if gone():
                return -1
            time.sleep(0.05)
    return code


# --- attach ---------------------------------------------------------------------------------------


@ROUTES.route("POST", "/containers/{name}/attach")
def attach(request: Request) -> Response:
    service = request.service
    record = service.get(request.params["name"])
    config = service.document(record).get("Config") or {}
    tty = bool(config.get("Tty"))
    open_stdin = bool(config.get("OpenStdin"))
    want_stdin = request.flag("stdin") and open_stdin
    want_stdout, want_stderr = request.flag("stdout"), request.flag("stderr")
    stream, logs = request.flag("stream"), request.flag("logs")
    keys = parse_detach_keys(request.arg("detachKeys"))
    close_stdin = bool(config.get("StdinOnce"))
    waiting = None
    if stream and record.state in ("created", "creating"):
        waiting = attachments.Waiting(record.id, stdin=want_stdin, size=None)
        attachments.wait_for_start(request.shared, waiting)
    elif stream and record.state not in _ACTIVE:
        raise FailedPrecondition("You cannot attach to a stopped container, start it first")

    def run(client: Connection) -> None:
        if logs:
            from pallet.engine.service import format_log_entry

            for entry in service.logs(record.id, stdout=want_stdout, stderr=want_stderr):
                data = format_log_entry(entry)
                client.send(data if tty else frame(2 if entry.stream == "stderr" else 1, data))
        if not stream:
            client.close_write()
            return
        if waiting is not None:
            shim = _wait_for_start(service, waiting, request.shared)
            if shim is None:
                client.close_write()
                return
        else:
            try:
                shim = service.attach_stream(record.id, stdin=want_stdin)
            except PalletError:
                client.close_write()  # it stopped meanwhile
                return
        attachments.pump(
            client,
            shim,
            stdin=want_stdin,
            stdout=want_stdout,
            stderr=want_stderr,
            close_stdin=close_stdin,
            detach_keys=keys,
        )

    return Hijack(run, content_type(tty, request.version))


def _wait_for_start(service: Service, waiting: attachments.Waiting, shared: Any) -> Any:
    """The shim connection once the container starts; None if it is removed or fails to start first."""
    while not waiting.wait(1.0):
        try:
            state = service.get(waiting.container_id).state
        except NotFound:
            attachments.forget(shared, waiting)
            return None
        if state in _ACTIVE:  # started by someone else (pallet start): join it
            attachments.forget(shared, waiting)
            try:
                return service.attach_stream(waiting.container_id, stdin=waiting.stdin)
            except PalletError:
                return None
    return waiting.conn


@ROUTES.route("GET", "/containers/{name}/attach/ws")
def attach_websocket(request: Request) -> Response:
    request.service.get(request.params["name"])
    raise Unsupported("attach over a websocket is not supported: use POST /containers/{id}/attach")


@ROUTES.route("POST", "/containers/{name}/resize")
def resize(request: Request) -> Response:
    height, width = request.integer("h", 0) or 0, request.integer("w", 0) or 0
    service = request.service
    record = service.get(request.params["name"])
    if record.state not in _ACTIVE:
        raise FailedPrecondition(f"Container {record.id} is not running")
    if height > 0 and width > 0:
        conn = service.attach_stream(record.id, stdout=False, stderr=False)
        try:
            conn.resize(height, width)
        finally:
            conn.close()
    return Empty(200)


# --- logs -----------------------------------------------------------------------------------------


def _time_param(request: Request, name: str) -> str | None:
    value = request.arg(name)
    return None if value in ("", "0") else value


@ROUTES.route("GET", "/containers/{name}/logs")
def logs(request: Request) -> Response:
    from pallet.engine.service import format_log_entry

    stdout, stderr = request.flag("stdout"), request.flag("stderr")
    if not stdout and not stderr:
        raise InvalidArgument("Bad parameters: you must choose at least one stream")
    tail_text = request.arg("tail", "all")
    if tail_text in ("", "all"):
        tail = None
    else:
        try:
            tail = int(tail_text)
        except ValueError:
            raise InvalidArgument(f"invalid value for tail: {tail_text!r}") from None
    service = request.service
    record = service.get(request.params["name"])
    tty = bool((service.document(record).get("Config") or {}).get("Tty"))
    timestamps = request.flag("timestamps")
    entries = service.logs(
        record.id,
        follow=request.flag("follow"),
        since=_time_param(request, "since"),
        until=_time_param(request, "until"),
        tail=tail,
        stdout=stdout,
        stderr=stderr,
        cancelled=request.client_gone,
    )

    def chunks() -> Iterator[bytes]:
        try:
            for entry in entries:
                data = format_log_entry(entry, timestamps)
                yield data if tty else frame(2 if entry.stream == "stderr" else 1, data)
        finally:
            close = getattr(entries, "close", None)
            if close is not None:
                close()

    return Stream(chunks(), content_type(tty, request.version))


# --- observation ----------------------------------------------------------------------------------


@ROUTES.route("GET", "/containers/{name}/top")
def top(request: Request) -> Response:
    import shlex

    listing = request.service.top(request.params["name"], shlex.split(request.arg("ps_args")))
    return Json({"Titles": list(listing.titles), "Processes": [list(p) for p in listing.processes]})


@ROUTES.route("GET", "/containers/{name}/changes")
def changes(request: Request) -> Response:
    kinds = {"C": 0, "A": 1, "D": 2}
    out = []
    for line in request.service.diff(request.params["name"]):
        kind, _, path = line.partition(" ")
        out.append({"Path": path, "Kind": kinds.get(kind, 0)})
    return Json(out)


def _cpu(sample: Sample) -> dict[str, Any]:
    return {
        "cpu_usage": {"total_usage": sample.cpu_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "system_cpu_usage": sample.system_ns,
        "online_cpus": sample.online_cpus,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    }


def _stats_document(
    record: ContainerRecord, before: Sample | None, after: Sample, read: float, preread: float | None
) -> dict[str, Any]:
    """docker's stats document; ``before`` (None: one-shot) gives ``precpu_stats``."""
    empty_cpu = {
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    }
    io = [
        {"major": 0, "minor": 0, "op": "read", "value": after.block_read},
        {"major": 0, "minor": 0, "op": "write", "value": after.block_write},
    ]
    return {
        "name": f"/{record.name}",
        "id": record.id,
        "read": _iso(read),
        "preread": _iso(preread),
        "pids_stats": {"current": after.pids},
        "blkio_stats": {"io_service_bytes_recursive": io},
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": _cpu(after),
        "precpu_stats": _cpu(before) if before is not None else empty_cpu,
        "memory_stats": {"usage": after.memory, "limit": after.memory_limit, "stats": {}}
        if record.running
        else {},
        "networks": {
            "eth0": {
                "rx_bytes": after.net_rx,
                "rx_packets": 0,
                "rx_errors": 0,
                "rx_dropped": 0,
                "tx_bytes": after.net_tx,
                "tx_packets": 0,
                "tx_errors": 0,
                "tx_dropped": 0,
            }
        },
    }


@ROUTES.route("GET", "/containers/{name}/stats")
def stats(request: Request) -> Response:
    service = request.service
    record = service.get(request.params["name"])
    stream = request.flag("stream", default=True)
    one_shot = request.flag("one-shot")
    if one_shot and stream:
        raise InvalidArgument("cannot have stream=true and one-shot=true")
    if one_shot:
        return Json(_stats_document(record, None, service.stats_sample(record), time.time(), None))

    def documents() -> Iterator[bytes]:
        current = record
        before, before_at = service.stats_sample(current), time.time()
        while True:
            time.sleep(1.0)
            try:
                current = service.get(current.id)
            except NotFound:
                return
            after, after_at = service.stats_sample(current), time.time()
            yield json.dumps(_stats_document(current, before, after, after_at, before_at)).encode() + b"\n"
            if not stream or not current.running:
                return
            before, before_at = after, after_at

    if not stream:
        data = b"".join(documents())
        return Json(json.loads(data) if data else {})
    return Stream(documents())


# --- files ----------------------------------------------------------------------------------------


def _spooled(write: Any) -> Iterator[bytes]:
    """Run ``write(file)`` into a temp file first (its errors answer with a status), then stream it."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - the stream's generator closes it
    try:
        write(spool)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise

    def chunks() -> Iterator[bytes]:
        with spool:
            while data := spool.read(1 << 16):
                yield data

    return chunks()


def _stat_header(request: Request, path: str) -> dict[str, str]:
    info = request.service.path_stat(request.params["name"], path)
    mode = info.mode & 0o777
    import stat as stat_module

    # docker's PathStat.Mode is a Go os.FileMode: type bits on top of the permissions
    if stat_module.S_ISDIR(info.mode):
        mode |= 1 << 31
    elif stat_module.S_ISLNK(info.mode):
        mode |= 1 << 27
    doc = {
        "name": info.name,
        "size": info.size,
        "mode": mode,
        "mtime": _iso(info.mtime_ns / 1e9),
        "linkTarget": info.link_target,
    }
    return {"X-Docker-Container-Path-Stat": base64.b64encode(json.dumps(doc).encode()).decode()}


def _archive_path(request: Request) -> str:
    path = request.arg("path")
    if not path:
        raise InvalidArgument("path is required")
    return path


@ROUTES.route("HEAD", "/containers/{name}/archive")
def archive_stat(request: Request) -> Response:
    return Empty(200, headers=_stat_header(request, _archive_path(request)))


@ROUTES.route("GET", "/containers/{name}/archive")
def archive_get(request: Request) -> Response:
    path = _archive_path(request)
    headers = _stat_header(request, path)
    name = request.params["name"]
    service = request.service
    chunks = _spooled(lambda out: service.copy_from(name, path, to_stream=out))
    return Stream(chunks, "application/x-tar", headers=headers)


class _BodyReader:
    """The request body as the tar reader's stream."""

    def __init__(self, request: Request) -> None:
        self._body = request.body

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self._body.read_all(1 << 62)
        out = b""
        while len(out) < size:
            data = self._body.read(size - len(out))
            if not data:
                break
            out += data
        return out


@ROUTES.route("PUT", "/containers/{name}/archive")
def archive_put(request: Request) -> Response:
    path = _archive_path(request)
    reader: BinaryIO = _BodyReader(request)  # type: ignore[assignment]
    request.service.copy_into(request.params["name"], path, from_stream=reader)
    return Empty(200)


@ROUTES.route("GET", "/containers/{name}/export")
def export(request: Request) -> Response:
    name = request.params["name"]
    service = request.service
    return Stream(_spooled(lambda out: service.export(name, out)), "application/x-tar")
