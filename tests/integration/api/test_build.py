"""``POST /build`` (docker's legacy builder protocol) through the service: the docker CLI and raw requests."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import ApiService

pytestmark = pytest.mark.root

DOCKER = "/usr/local/bin/docker"  # need_docker() skips where it is absent


def _context(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _messages(body: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def test_docker_build_with_the_legacy_builder(api: ApiService, tmp_path: Path) -> None:
    api.need_docker()
    context = tmp_path / "context"  # not tmp_path itself: the service's root and run dir live there
    context.mkdir()
    (context / "Dockerfile").write_text(
        'FROM busybox\nCOPY note.txt /note.txt\nRUN echo made-by-run\nCMD ["cat", "/note.txt"]\n'
    )
    (context / "note.txt").write_text("from the context\n")
    env_args = ("build", "-t", "clibuilt:v1", "-t", "clibuilt:v2", str(context))
    env = {**api.docker_env(), "DOCKER_BUILDKIT": "0"}  # docker's legacy builder protocol, not BuildKit's
    run = subprocess.run(
        [DOCKER, *env_args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, f"{run.stderr}\n{api.log()}"
    assert "Step 1/4 : FROM busybox" in run.stdout
    assert "Step 3/4 : RUN echo made-by-run" in run.stdout
    assert "made-by-run" in run.stdout
    assert "Successfully tagged clibuilt:v2" in run.stdout
    assert api.docker_ok("run", "--rm", "clibuilt:v1") == "from the context\n"
    again = subprocess.run(
        [DOCKER, *env_args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert " ---> Using cache" in again.stdout
    quiet = subprocess.run(
        [DOCKER, "build", "-q", str(context)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.startswith("sha256:")
    failed = subprocess.run(
        [DOCKER, "build", "-"], input="FROM busybox\nRUN exit 3\n", env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert failed.returncode != 0
    assert "exit code: 3" in failed.stderr or "non-zero code: 3" in failed.stderr


def test_build_stream_aux_id_parameters_and_errors(api: ApiService) -> None:
    context = _context(
        {"build.Dockerfile": "FROM busybox\nARG WHO=nobody\nLABEL who=$WHO\nRUN echo hi-$WHO\n"}
    )
    query = (
        "/build?t=rawbuilt:v1&dockerfile=build.Dockerfile&rm=1&forcerm=1"
        "&buildargs=%7B%22WHO%22%3A%22raw%22%7D&labels=%7B%22extra%22%3A%22yes%22%7D"
    )
    status, _, body = api.request(
        "POST", query, gzip.compress(context), {"Content-Type": "application/x-tar"}
    )
    assert status == 200, body
    messages = _messages(body)
    stream = "".join(str(m.get("stream", "")) for m in messages)
    assert "Step 1/4 : FROM busybox" in stream
    assert "hi-raw\n" in stream
    image_id = next(m["aux"]["ID"] for m in messages if "aux" in m)  # type: ignore[index]
    doc = api.json("GET", "/images/rawbuilt:v1/json")
    assert doc["Id"] == image_id
    assert doc["Config"]["Labels"] == {"who": "raw", "extra": "yes"}

    # a failing step: 200 and docker's errorDetail as the last message
    status, _, body = api.request(
        "POST", "/build?t=broken", _context({"Dockerfile": "FROM busybox\nRUN exit 7\n"})
    )
    assert status == 200
    last = _messages(body)[-1]
    assert set(last) == {"errorDetail", "error"}
    assert last["error"] == "The command '/bin/sh -c exit 7' returned a non-zero code: 7"  # docker's words
    assert last["errorDetail"] == {"code": 7, "message": last["error"]}
    assert api.request("GET", "/images/broken/json")[0] == 404

    # failures before the first step: the error's status
    status, _, body = api.request("POST", "/build", _context({"other": "x"}))
    assert status == 404
    assert "Dockerfile" in json.loads(body)["message"]
    status, _, body = api.request("POST", "/build?remote=https://example.invalid/repo.git", b"")
    assert status == 400
    assert "remote" in json.loads(body)["message"]
    status, _, body = api.request(
        "POST", "/build?buildargs=notjson", _context({"Dockerfile": "FROM busybox\n"})
    )
    assert status == 400
    assert "buildargs" in json.loads(body)["message"]

    pruned = api.json("POST", "/build/prune?all=1")
    assert set(pruned) == {"CachesDeleted", "SpaceReclaimed"}
