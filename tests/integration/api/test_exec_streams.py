"""Exec start streams as dockerd sends them: the start request's ``Tty`` decides the framing (raw with it,
docker's frames without, even for a process with a tty), and the detach keys end the connection while the
process runs on. Raw sockets, so each byte the service sends is seen."""

from __future__ import annotations

import json
import socket
import struct
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import ApiService

pytestmark = pytest.mark.root


def _container(api: ApiService) -> str:
    body = {"Image": "busybox", "Cmd": ["cat"], "OpenStdin": True}
    cid: str = api.json("POST", "/containers/create", body)["Id"]
    api.json("POST", f"/containers/{cid}/start")
    return cid


def _exec(api: ApiService, cid: str, **config: Any) -> str:
    exec_id: str = api.json("POST", f"/containers/{cid}/exec", {"AttachStdout": True, **config})["Id"]
    return exec_id


def _start(api: ApiService, exec_id: str, body: dict[str, Any]) -> tuple[socket.socket, bytes, bytes]:
    """A hijacked ``exec start``: the socket, the answer's head, what came right behind it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(60)
    sock.connect(api.socket_path)
    data = json.dumps(body).encode()
    sock.sendall(
        f"POST /v1.47/exec/{exec_id}/start HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
        f"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, f"the service closed before its answer's head: {received!r}"
        received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    return sock, head, rest


def _until_eof(sock: socket.socket, rest: bytes) -> bytes:
    out = rest
    while chunk := sock.recv(65536):
        out += chunk
    return out


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    while data:
        stream, size = struct.unpack(">BxxxI", data[:8])
        out.append((stream, data[8 : 8 + size]))
        data = data[8 + size :]
    return out


def test_a_tty_exec_started_without_tty_comes_as_stdout_frames(api: ApiService) -> None:
    cid = _container(api)
    exec_id = _exec(api, cid, Cmd=["printf", "yay, interactive exec!"], Tty=True)
    sock, head, rest = _start(api, exec_id, {"Tty": False, "Detach": False})
    with sock:
        assert b"101 UPGRADED" in head
        assert b"application/vnd.docker.multiplexed-stream" in head
        frames = _frames(_until_eof(sock, rest))
    assert {stream for stream, _ in frames} == {1}
    assert b"".join(payload for _, payload in frames) == b"yay, interactive exec!"


def test_a_tty_exec_started_with_tty_is_raw_from_its_first_byte(api: ApiService) -> None:
    cid = _container(api)
    exec_id = _exec(
        api, cid, Cmd=["sh", "-c", "echo hello out; echo hello err >&2"], Tty=True, AttachStderr=True
    )
    sock, head, rest = _start(api, exec_id, {"Tty": True})
    with sock:
        assert b"application/vnd.docker.raw-stream" in head
        assert _until_eof(sock, rest) == b"hello out\r\nhello err\r\n"


def test_detach_keys_end_the_connection_and_the_process_runs_on(api: ApiService) -> None:
    cid = _container(api)
    # docker-py sends the key in camel case: Go matches JSON names case-insensitively
    exec_id = _exec(api, cid, Cmd=["cat"], Tty=True, AttachStdin=True, detachKeys="ctrl-x")
    sock, _, rest = _start(api, exec_id, {"Tty": True})
    with sock:
        sock.sendall(b"echo-me\n")
        out = rest
        while b"echo-me" not in out:
            chunk = sock.recv(65536)
            assert chunk, out
            out += chunk
        sock.sendall(b"\x18")
        _until_eof(sock, b"")  # the service ends the connection
    inspected = api.json("GET", f"/exec/{exec_id}/json")
    assert inspected["Running"] is True
    assert inspected["ExitCode"] is None
