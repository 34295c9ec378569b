"""The server itself, by raw HTTP: versions, the headers every answer carries, errors, bad input, SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import ApiService

DOCKER = "/usr/local/bin/docker"

_HEADERS = ("Api-Version", "Ostype", "Docker-Experimental", "Builder-Version", "Server")


def test_ping_answers_ok_with_the_docker_headers(api: ApiService) -> None:
    status, headers, body = api.request("GET", "/_ping")
    assert (status, body) == (200, b"OK")
    for name in _HEADERS:
        assert name in headers, name
    assert headers["Api-Version"] == "1.47"
    assert headers["Ostype"] == "linux"
    status, headers, body = api.request("HEAD", "/_ping")
    assert (status, body, headers["Content-Length"]) == (200, b"", "0")


def test_versioned_paths_in_range_are_served_and_out_of_range_refused_in_dockers_words(
    api: ApiService,
) -> None:
    for version in ("1.41", "1.44", "1.47"):
        status, headers, body = api.request("GET", f"/v{version}/version")
        assert status == 200
        assert headers["Api-Version"] == version
        assert json.loads(body)["ApiVersion"] == "1.47"
    status, headers, body = api.request("GET", "/v1.40/version")
    assert status == 400
    assert json.loads(body) == {
        "message": "client version 1.40 is too old. Minimum supported API version is 1.41, "
        "please upgrade your client to a newer version"
    }
    status, _, body = api.request("GET", "/v1.48/containers/json")
    assert status == 400
    assert json.loads(body) == {
        "message": "client version 1.48 is too new. Maximum supported API version is 1.47"
    }


def test_unknown_paths_are_404_page_not_found_with_the_headers(api: ApiService) -> None:
    for method, path in (
        ("GET", "/nothing"),
        ("POST", "/v1.47/containers/x/frobnicate"),
        ("PATCH", "/_ping"),
    ):
        status, headers, body = api.request(method, path)
        assert status in (404, 501), (method, path, status)
        assert "message" in json.loads(body)
        for name in _HEADERS:
            assert name in headers


def test_malformed_json_and_wrong_types_are_400(api: ApiService) -> None:
    status, _, body = api.request(
        "POST", "/containers/create", b"{not json", {"Content-Type": "application/json"}
    )
    assert status == 400
    assert json.loads(body)["message"].startswith("Invalid JSON")
    status, _, body = api.request(
        "POST", "/containers/create", b"[1, 2]", {"Content-Type": "application/json"}
    )
    assert status == 400
    status, _, body = api.request("POST", "/containers/create", {"Image": 5})
    assert status == 400


def test_a_body_over_the_limit_is_413_and_the_service_serves_on(api: ApiService) -> None:
    big = b"{" + b" " * (5 << 20) + b"}"
    status, _, body = api.request("POST", "/containers/create", big, {"Content-Type": "application/json"})
    assert status == 413
    assert "limit" in json.loads(body)["message"]
    assert api.request("GET", "/_ping")[0] == 200


def test_garbage_request_lines_get_a_json_error_and_the_service_serves_on(api: ApiService) -> None:
    answer = api.raw(b"\x00\x01garbage\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b'{"message"' in answer
    answer = api.raw(b"GET /_ping HTTP/1.1\r\nContent-Length: -5\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert api.request("GET", "/_ping")[0] == 200


def test_keep_alive_serves_several_requests_on_one_connection(api: ApiService) -> None:
    request = b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = api.raw(request * 3)
    assert answer.count(b"HTTP/1.1 200 OK") == 3


def test_the_socket_is_root_only_or_group_pallet(api: ApiService) -> None:
    import grp

    mode = os.stat(api.socket_path).st_mode & 0o777
    try:
        gid = grp.getgrnam("pallet").gr_gid
    except KeyError:
        assert mode == 0o600
    else:
        assert mode == 0o660
        assert os.stat(api.socket_path).st_gid == gid


def test_sigterm_stops_the_service_and_removes_its_socket(api: ApiService) -> None:
    assert api.stop() == 0
    assert not os.path.exists(api.socket_path)


def test_a_second_service_on_a_served_socket_is_refused(api: ApiService) -> None:
    done = api.env.pallet("system", "service", "--host", api.host, timeout=60)
    assert done.returncode != 0
    assert "another service is listening" in done.stderr
    assert api.request("GET", "/_ping")[0] == 200


def test_tcp_without_tls_is_refused(api: ApiService) -> None:
    done = api.env.pallet("system", "service", "--host", "tcp://127.0.0.1:0", timeout=60)
    assert done.returncode != 0
    assert "--tlsverify" in done.stderr


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def test_attach_before_start_takes_stdin_sent_early_and_half_close_and_frames_the_output(
    api: ApiService,
) -> None:
    created = api.json(
        "POST",
        "/v1.47/containers/create",
        {"Image": "busybox", "Cmd": ["sh", "-c", "cat; echo err >&2"], "OpenStdin": True, "StdinOnce": True},
    )
    cid = created["Id"]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(60)
    sock.connect(api.socket_path)
    try:
        sock.sendall(
            f"POST /v1.47/containers/{cid}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\n"
            "Host: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n".encode()
        )
        head, rest = _read_head(sock)
        assert head.startswith(b"HTTP/1.1 101 UPGRADED")
        assert b"Content-Type: application/vnd.docker.multiplexed-stream" in head
        assert b"Api-Version: 1.47" in head
        sock.sendall(b"hello\n")  # stdin before the start
        sock.shutdown(socket.SHUT_WR)  # and no more: the container's stdin closes (StdinOnce)
        assert api.request("POST", f"/v1.47/containers/{cid}/start")[0] == 204
        out = rest
        while chunk := sock.recv(65536):
            out += chunk
    finally:
        sock.close()
    assert out == b"\x01\x00\x00\x00\x00\x00\x00\x06hello\n" + b"\x02\x00\x00\x00\x00\x00\x00\x04err\n"
    waited = api.json("POST", f"/v1.47/containers/{cid}/wait")
    assert waited == {"Error": None, "StatusCode": 0}
    status = api.request("POST", f"/v1.47/containers/{cid}/start")[0]
    assert status == 204  # an exited container starts again


def test_a_running_container_starts_as_not_modified_and_a_missing_one_is_404(api: ApiService) -> None:
    cid = api.json("POST", "/containers/create", {"Image": "busybox", "Cmd": ["sleep", "300"]})["Id"]
    assert api.request("POST", f"/containers/{cid}/start")[0] == 204
    assert api.request("POST", f"/containers/{cid}/start")[0] == 304
    status, _, body = api.request("POST", "/containers/nothing-here/start")
    assert status == 404
    assert "No such container" in json.loads(body)["message"]
    status, _, body = api.request(
        "POST", "/containers/create", {"Image": "busybox", "HostConfig": {"Memory": "x"}}
    )
    assert status == 400
    assert "HostConfig.Memory" in json.loads(body)["message"]
    assert api.request("DELETE", f"/containers/{cid}?force=1")[0] == 204


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _certificates(d: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
             "-keyout", str(d / "ca-key.pem"), "-out", str(d / "ca.pem"))  # fmt: skip
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):  # fmt: skip
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", str(d / f"{name}-key.pem"), "-out", str(d / f"{name}.csr"))  # fmt: skip
        _openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"),
                 "-CAkey", str(d / "ca-key.pem"), "-CAcreateserial", "-days", "1",
                 "-extfile", str(d / f"{name}.ext"), "-out", str(d / f"{name}.pem"))  # fmt: skip


def test_tcp_with_tls_needs_a_client_certificate_signed_by_the_ca(api: ApiService, tmp_path: Path) -> None:
    api.need_docker()
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    _certificates(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    service = subprocess.Popen(
        api.env.argv(
            "system",
            "service",
            "--host",
            f"tcp://127.0.0.1:{port}",
            "--tlsverify",
            "--tlscacert",
            str(tmp_path / "ca.pem"),
            "--tlscert",
            str(tmp_path / "server.pem"),
            "--tlskey",
            str(tmp_path / "server-key.pem"),
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    env = {**api.docker_env(), "DOCKER_HOST": f"tcp://127.0.0.1:{port}"}
    tls = ["--tlsverify", "--tlscacert", str(tmp_path / "ca.pem")]
    client = ["--tlscert", str(tmp_path / "client.pem"), "--tlskey", str(tmp_path / "client-key.pem")]
    try:
        deadline = time.monotonic() + 30
        while True:
            done = subprocess.run(
                [DOCKER, *tls, *client, "version", "--format", "{{.Server.APIVersion}}"],
                capture_output=True, text=True, env=env, timeout=60, check=False,
            )  # fmt: skip
            if done.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert (done.returncode, done.stdout) == (0, "1.47\n"), done.stderr
        refused = subprocess.run(
            [DOCKER, *tls, "version"], capture_output=True, text=True, env=env, timeout=60, check=False
        )
        assert refused.returncode != 0
    finally:
        service.terminate()
        service.wait(timeout=30)
