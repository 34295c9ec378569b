"""Exec routes: create an exec instance, start it (hijacked, or detached), resize its tty, inspect it.

An exec instance lives in the service's memory (``Request.shared``) from
create until the service stops, as docker keeps them until the container
goes. Its process runs through ``Service.exec`` with the service's own ends:
pipes without a tty, a pty with one (the runtime keeps its own pty for the
process and follows this one's size; a resize sets it and tells the runtime
with SIGWINCH). As dockerd, the *start* request's ``Tty`` decides the
stream's framing: raw bytes with it, docker's frames without (a tty
process's output is then all stdout frames: docker-py starts that way).
The detach keys (``DetachKeys`` of the create, ctrl-p ctrl-q by default)
end the client's connection; the process runs on.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from pallet.api.framing import DetachMatcher, content_type, frame, parse_detach_keys
from pallet.api.messages import Empty, Hijack, Json, Request, Response
from pallet.api.routing import RouteTable
from pallet.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound, PalletError

if TYPE_CHECKING:
    from pallet.api.hijack import Connection
    from pallet.engine.service import ExecRequest, Service

__all__ = ["ROUTES"]

ROUTES = RouteTable()

_KEY = "exec.instances"
_LOCK = threading.Lock()


class _Exec:
    """One exec instance (docker's ``ExecConfig``)."""

    def __init__(
        self,
        *,
        container_id: str,
        request: ExecRequest,
        stdin: bool,
        stdout: bool,
        stderr: bool,
        detach_keys: bytes,
        privileged: bool,
    ) -> None:
        self.id = secrets.token_hex(32)
        self.container_id = container_id
        self.request = request
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.detach_keys = detach_keys
        self.privileged = privileged
        self.started = False
        self.running = False
        self.exit_code: int | None = None
        self.pid = 0
        self.pty_master = -1
        self.pty_slave_path = ""

    def to_json(self) -> dict[str, Any]:
        cmd = self.request.cmd
        return {
            "ID": self.id,
            "Running": self.running,
            "ExitCode": self.exit_code,
            "ProcessConfig": {
                "tty": self.request.tty,
                "entrypoint": cmd[0] if cmd else "",
                "arguments": list(cmd[1:]),
                "privileged": self.privileged,
                "user": self.request.user,
            },
            "OpenStdin": self.stdin,
            "OpenStderr": self.stderr,
            "OpenStdout": self.stdout,
            "CanRemove": False,
            "ContainerID": self.container_id,
            "DetachKeys": "",
            "Pid": self.pid,
        }


def _instances(shared: MutableMapping[str, Any]) -> dict[str, _Exec]:
    with _LOCK:
        table: dict[str, _Exec] = shared.setdefault(_KEY, {})
        return table


def _instance(request: Request) -> _Exec:
    found = _instances(request.shared).get(request.params["id"])
    if found is None:
        raise NotFound(f"No such exec instance: {request.params['id']}")
    return found


@ROUTES.route("POST", "/containers/{name}/exec")
def create(request: Request) -> Response:
    from pallet.engine.service import exec_request

    body = _fold(request.json_object())
    cmd = body.get("Cmd")
    if isinstance(cmd, str):
        cmd = [cmd]
    if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) for c in cmd):
        raise InvalidArgument("No exec command specified")
    env = body.get("Env") or []
    if not isinstance(env, list) or not all(isinstance(e, str) for e in env):
        raise InvalidArgument("json: cannot unmarshal into Go struct field ExecConfig.Env of type []string")
    for key in ("User", "WorkingDir", "DetachKeys"):
        if not isinstance(body.get(key) or "", str):
            raise InvalidArgument(
                f"json: cannot unmarshal into Go struct field ExecConfig.{key} of type string"
            )
    for key in ("Tty", "AttachStdin", "AttachStdout", "AttachStderr", "Privileged"):
        if not isinstance(body.get(key) or False, bool):
            raise InvalidArgument(
                f"json: cannot unmarshal into Go struct field ExecConfig.{key} of type bool"
            )
    service = request.service
    record = service.get(request.params["name"])
    if record.state == "paused":
        raise Conflict(f"Container {record.id} is paused, unpause the container before exec")
    if record.state != "running":
        raise Conflict(f"Container {record.id} is not running")
    instance = _Exec(
        container_id=record.id,
        request=exec_request(
            cmd=tuple(cmd),
            tty=bool(body.get("Tty")),
            interactive=bool(body.get("AttachStdin")),
            env=tuple(env),
            workdir=body.get("WorkingDir") or "",
            user=body.get("User") or "",
        ),
        stdin=bool(body.get("AttachStdin")),
        stdout=bool(body.get("AttachStdout")),
        stderr=bool(body.get("AttachStderr")),
        detach_keys=parse_detach_keys(body.get("DetachKeys") or ""),
        privileged=bool(body.get("Privileged")),
    )
    _instances(request.shared)[instance.id] = instance
    return Json({"Id": instance.id}, status=201)


def _fold(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with its keys in docker's case: Go's JSON decoder matches field names case-insensitively
    (docker-py sends ``detachKeys``)."""
    names = ("Cmd", "Env", "User", "WorkingDir", "DetachKeys", "Tty", "AttachStdin", "AttachStdout",
             "AttachStderr", "Privileged", "Detach", "ConsoleSize")  # fmt: skip
    canonical = {name.lower(): name for name in names}
    out: dict[str, Any] = {}
    for key, value in body.items():
        name = canonical.get(key.lower(), key)
        if name not in out or key == name:  # an exact match wins, as in Go
            out[name] = value
    return out


@ROUTES.route("GET", "/exec/{id}/json")
def inspect(request: Request) -> Response:
    return Json(_instance(request).to_json())


@ROUTES.route("POST", "/exec/{id}/start")
def start(request: Request) -> Response:
    instance = _instance(request)
    body = _fold(request.json_object(required=False))
    detach = bool(body.get("Detach"))
    size = body.get("ConsoleSize")
    raw = body.get("Tty") is True  # the stream's framing, whatever the process has
    with _LOCK:
        if instance.started:
            raise Conflict(f"Exec command {instance.id} has already run")
        instance.started = True
    service = request.service
    record = service.get(instance.container_id)
    if record.state != "running":
        raise Conflict(f"Container {record.id} is not running")
    if detach:
        threading.Thread(
            target=_run_detached, args=(request.open_service, instance), name="exec", daemon=True
        ).start()
        return Empty(200, headers={"Content-Type": "application/json"})

    def run(client: Connection) -> None:
        if instance.request.tty:
            rows_cols = (size[0], size[1]) if isinstance(size, list) and len(size) == 2 else None
            _run_tty(service, instance, client, rows_cols, raw=raw)
        else:
            _run_pipes(service, instance, client, raw=raw)

    return Hijack(run, content_type(raw, request.version))


def _finish(instance: _Exec, code: int) -> None:
    instance.exit_code = code
    instance.running = False


def _run_detached(open_service: Any, instance: _Exec) -> None:
    instance.running = True
    code = 126
    try:
        with open_service() as service:
            code = service.exec(instance.container_id, instance.request)
    except PalletError:
        code = 126
    finally:
        _finish(instance, code)


def _copy_out(fd: int, client: Connection, stream: int | None) -> None:
    """Copy ``fd`` to the client (framed as ``stream``; raw when None) until EOF/EIO."""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            return  # EIO: the pty's last holder closed it
        if not data:
            return
        if not client.send(data if stream is None else frame(stream, data)):
            return


def _copy_in(client: Connection, fd: int, keys: bytes, *, close_at_eof: bool) -> None:
    """Copy the client's stdin to ``fd`` until its EOF; the detach keys end the connection (docker:
    the client reads EOF, the process runs on)."""
    matcher = DetachMatcher(keys)
    try:
        while data := client.recv():
            send, detached = matcher.feed(data)
            if send:
                os.write(fd, send)
            if detached:
                client.shutdown()
                return
    except OSError:
        return
    finally:
        if close_at_eof:
            os.close(fd)


def _run_pipes(service: Service, instance: _Exec, client: Connection, *, raw: bool) -> None:
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    in_r = in_w = -1
    if instance.stdin:
        in_r, in_w = os.pipe2(os.O_CLOEXEC)
    readers = [
        threading.Thread(target=_copy_out, args=(out_r, client, None if raw else 1), daemon=True),
        threading.Thread(target=_copy_out, args=(err_r, client, None if raw else 2), daemon=True),
    ]
    for thread in readers:
        thread.start()
    if in_w >= 0:
        threading.Thread(
            target=_copy_in,
            args=(client, in_w, instance.detach_keys),
            kwargs={"close_at_eof": True},
            daemon=True,
        ).start()
    instance.running = True
    code = 126
    try:
        code = service.exec(
            instance.container_id,
            instance.request,
            stdio=(
                in_r if in_r >= 0 else null,
                out_w if instance.stdout else null,
                err_w if instance.stderr else null,
            ),
        )
    except PalletError as e:
        text = f"{e.message}\n".encode()
        client.send(text if raw else frame(2, text))
    finally:
        _finish(instance, code)
        for fd in (out_w, err_w, null, in_r):
            if fd >= 0:
                os.close(fd)
        for thread in readers:
            thread.join()
        os.close(out_r)
        os.close(err_r)
        client.close_write()


def _set_size(fd: int, rows: int, cols: int) -> None:
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _run_tty(
    service: Service, instance: _Exec, client: Connection, size: tuple[int, int] | None, *, raw: bool
) -> None:
    master, slave = os.openpty()
    os.set_inheritable(master, False)
    os.set_inheritable(slave, False)
    if size is not None and size[0] > 0 and size[1] > 0:
        _set_size(master, size[0], size[1])
    instance.pty_master = master
    instance.pty_slave_path = os.ttyname(slave)
    reader = threading.Thread(target=_copy_out, args=(master, client, None if raw else 1), daemon=True)
    reader.start()
    dup = os.dup(master)  # the stdin copier's own: closing it never races the reader's
    threading.Thread(
        target=_copy_in, args=(client, dup, instance.detach_keys), kwargs={"close_at_eof": True}, daemon=True
    ).start()
    instance.running = True
    code = 126
    try:
        code = service.exec(instance.container_id, instance.request, stdio=(slave, slave, slave))
    except PalletError as e:
        text = f"{e.message}\r\n".encode()
        client.send(text if raw else frame(1, text))
    finally:
        _finish(instance, code)
        os.close(slave)
        reader.join()
        instance.pty_master = -1
        os.close(master)
        client.close_write()


def _holders(tty_path: str) -> list[int]:
    """Pids of processes whose stdin is the pty ``tty_path`` (the runtime's foreground exec)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/fd/0") == tty_path:
                out.append(int(entry))
        except OSError:
            continue
    return out


@ROUTES.route("POST", "/exec/{id}/resize")
def resize(request: Request) -> Response:
    instance = _instance(request)
    height, width = request.integer("h", 0) or 0, request.integer("w", 0) or 0
    if not instance.request.tty:
        return Empty(200)
    if not instance.running or instance.pty_master < 0:
        raise FailedPrecondition(f"exec {instance.id} is not running")
    if height > 0 and width > 0:
        _set_size(instance.pty_master, height, width)
        import signal

        for pid in _holders(instance.pty_slave_path):
            try:
                os.kill(pid, signal.SIGWINCH)
            except ProcessLookupError:
                continue
    return Empty(200)
