"""``POST /build`` as dockerd's legacy builder answers what docker-py's build tests send: a RUN's stderr
in red, ``Using cache`` for every cached step (ENV too) with ``cachefrom`` trusting only those images,
``extrahosts`` in a RUN's /etc/hosts, and docker's refusals of ``squash`` and an unreadable platform."""

from __future__ import annotations

import base64
import io
import json
import tarfile
import urllib.parse
from typing import TYPE_CHECKING

import pytest

from pallet.testing.host import require_host_path
from pallet.testing.registry import FakeRegistry

if TYPE_CHECKING:
    from conftest import ApiService

pytestmark = pytest.mark.root


def _dockerfile(text: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(text.encode())
        tar.addfile(info, io.BytesIO(text.encode()))
    return buffer.getvalue()


def _build(
    api: ApiService, dockerfile: str, **params: str | list[str]
) -> tuple[int, list[dict[str, object]]]:
    query = urllib.parse.urlencode(params, doseq=True)
    status, _, body = api.request(
        "POST",
        f"/v1.47/build?{query}",
        _dockerfile(dockerfile),
        {"Content-Type": "application/x-tar"},
        timeout=300,
    )
    messages = [json.loads(line) for line in body.splitlines() if line.strip()]
    return status, messages


def _cached(messages: list[dict[str, object]]) -> int:
    return sum(1 for m in messages if "Using cache" in str(m.get("stream", "")))


def test_stderr_of_a_run_comes_in_red_as_written(api: ApiService) -> None:
    status, messages = _build(
        api, "FROM busybox\nRUN sh -c '>&2 echo to-stderr; echo to-stdout'\n", nocache="1"
    )
    assert status == 200
    streams = [m.get("stream") for m in messages]
    assert "\x1b[91mto-stderr\n\x1b[0m" in streams
    assert "to-stdout\n" in streams
    assert "errorDetail" not in messages[-1]


def test_every_cached_step_says_using_cache_and_cache_from_trusts_only_its_images(api: ApiService) -> None:
    dockerfile = "FROM busybox\nENV FOO=bar\nRUN touch baz\nRUN touch bax\n"
    status, first = _build(api, dockerfile, t="legacy1")
    assert status == 200
    assert _cached(first) == 0
    _, again = _build(api, dockerfile, t="legacy2")
    assert _cached(again) == 3  # ENV, RUN, RUN: the legacy builder's count
    _, sourced = _build(api, dockerfile, t="legacy3", cachefrom=json.dumps(["legacy1"]))
    assert _cached(sourced) == 3
    _, unsourced = _build(api, dockerfile, t="legacy4", cachefrom=json.dumps(["nosuchtag"]))
    assert _cached(unsourced) == 0  # the local cache does not count beside cache_from
    assert all("errorDetail" not in m for m in unsourced)


def test_extra_hosts_are_in_a_runs_etc_hosts(api: ApiService) -> None:
    status, messages = _build(
        api,
        "FROM busybox\nRUN cat /etc/hosts\n",
        t="hosts",
        nocache="1",
        extrahosts=["extrahost.local.test:127.0.0.1", "hello.world.test:127.0.0.2"],
    )
    assert status == 200
    text = "".join(str(m.get("stream", "")) for m in messages)
    assert "127.0.0.1\textrahost.local.test" in text
    assert "127.0.0.2\thello.world.test" in text
    status, _, body = api.request(
        "POST", "/v1.47/build?extrahosts=nonsense", _dockerfile("FROM busybox\nRUN true\n"), timeout=300
    )
    assert status != 200 or b"errorDetail" in body
    assert b"nonsense" in body


def test_squash_and_an_unreadable_platform_are_dockerds_errors(api: ApiService) -> None:
    status, _, body = api.request("POST", "/v1.47/build?squash=1", _dockerfile("FROM busybox\n"))
    assert status == 400
    assert json.loads(body)["message"] == "squash is only supported with experimental mode"
    status, _, body = api.request("POST", "/v1.47/build?platform=foobar", _dockerfile("FROM busybox\n"))
    assert status == 400
    assert "unknown operating system or architecture" in json.loads(body)["message"]
    # docker-py sends its credentials per registry in X-Registry-Config: accepted, as dockerd does
    config = base64.urlsafe_b64encode(
        json.dumps({"127.0.0.1:5000": {"username": "u", "password": "p"}}).encode()
    )
    status, _, body = api.request(
        "POST",
        "/v1.47/build?t=withconfig",
        _dockerfile("FROM busybox\n"),
        {"X-Registry-Config": config.decode()},
    )
    assert status == 200
    assert "Successfully tagged withconfig:latest" in str(json.loads(body.splitlines()[-1])["stream"])
    info = api.json("GET", "/v1.47/info")
    assert (
        info["ExperimentalBuild"] is False
    )  # so docker-py's experimental-only build tests skip, as on dockerd


def test_a_base_image_is_pulled_with_the_credentials_of_x_registry_config(api: ApiService) -> None:
    """docker-py's build sends its logins in X-Registry-Config: a FROM on a registry that wants them
    pulls with them; without them the pull is refused and the build says so."""
    require_host_path("/usr/local/bin/docker", "the docker CLI")
    with FakeRegistry(auth="basic", users={"alice": "s3cret"}) as registry:
        target = f"{registry.host}/team/base:v1"
        api.docker_ok("login", "-u", "alice", "-p", "s3cret", registry.host)
        api.docker_ok("tag", "busybox", target)
        api.docker_ok("push", target)
        api.docker_ok("logout", registry.host)
        api.docker_ok("rmi", target)
        dockerfile = _dockerfile(f"FROM {target}\nRUN true\n")
        status, _, body = api.request("POST", "/v1.47/build?t=fromauth", dockerfile, timeout=300)
        assert status != 200 or b"errorDetail" in body
        assert b"authentication required" in body
        config = {f"http://{registry.host}": {"username": "alice", "password": "s3cret"}}
        header = base64.urlsafe_b64encode(json.dumps(config).encode()).decode()
        status, _, body = api.request(
            "POST", "/v1.47/build?t=fromauth", dockerfile, {"X-Registry-Config": header}, timeout=300
        )
        assert status == 200
        assert b"errorDetail" not in body, body
        assert "Successfully tagged fromauth:latest" in body.decode()
