"""Healthchecks through the Docker API: ``Config.Healthcheck`` in, ``State.Health``, the ``health`` filter,
the ``(healthy)`` STATUS and ``health_status`` events out; the docker CLI's ``--health-*`` flags.

No timing assertions: each test polls for the state it waits for, with a generous deadline.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import ApiService

pytestmark = pytest.mark.root

_SECOND = 1_000_000_000


def _poll(what: str, done: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(0.2)
    raise AssertionError(f"never {what}")


def _health(api: ApiService, cid: str) -> dict[str, Any]:
    state: dict[str, Any] = api.json("GET", f"/containers/{cid}/json")["State"]
    return state.get("Health") or {}


def _create(api: ApiService, healthcheck: dict[str, Any]) -> str:
    body = {"Image": "busybox", "Cmd": ["sleep", "600"], "Healthcheck": healthcheck}
    cid: str = api.json("POST", "/containers/create", body)["Id"]
    return cid


def test_a_failing_check_is_unhealthy_in_inspect_list_filters_and_events(api: ApiService) -> None:
    since = int(time.time()) - 1
    cid = _create(api, {"Test": ["CMD", "sh", "-c", "echo bad; exit 1"], "Interval": _SECOND, "Retries": 1})
    assert api.json("GET", f"/containers/{cid}/json")["Config"]["Healthcheck"]["Test"][0] == "CMD"
    api.json("POST", f"/containers/{cid}/start")
    _poll("unhealthy", lambda: _health(api, cid).get("Status") == "unhealthy")
    last = _health(api, cid)["Log"][-1]
    assert last["ExitCode"] == 1
    assert last["Output"] == "bad\n"
    query = urllib.parse.quote(json.dumps({"health": ["unhealthy"]}))
    listed = api.json("GET", f"/containers/json?filters={query}")
    assert [c["Id"] for c in listed] == [cid]
    assert listed[0]["Status"].endswith("(unhealthy)")
    healthy = urllib.parse.quote(json.dumps({"health": ["healthy"]}))
    assert api.json("GET", f"/containers/json?filters={healthy}") == []
    until = int(time.time()) + 1
    status, _, body = api.request("GET", f"/events?since={since}&until={until}")
    assert status == 200
    actions = [json.loads(line)["Action"] for line in body.splitlines() if line.strip()]
    assert "health_status: unhealthy" in actions


def test_a_shell_check_that_passes_is_healthy_and_none_disables_it(api: ApiService) -> None:
    cid = _create(api, {"Test": ["CMD-SHELL", "test -d /proc"], "Interval": _SECOND, "Timeout": 5 * _SECOND})
    api.json("POST", f"/containers/{cid}/start")
    _poll("healthy", lambda: _health(api, cid).get("Status") == "healthy")
    assert _health(api, cid)["FailingStreak"] == 0
    off = _create(api, {"Test": ["NONE"]})
    api.json("POST", f"/containers/{off}/start")
    assert _health(api, off) == {}
    query = urllib.parse.quote(json.dumps({"health": ["none"]}))
    assert [c["Id"] for c in api.json("GET", f"/containers/json?filters={query}")] == [off]


def test_bad_healthchecks_are_400_in_dockers_words_and_make_nothing(api: ApiService) -> None:
    for healthcheck, words in (
        ({"Test": ["CMD", "true"], "Interval": 5}, "Interval in Healthcheck cannot be less than 1ms"),
        ({"Test": ["CMD", "true"], "Retries": -1}, "Retries in Healthcheck cannot be negative"),
        ({"Test": "true"}, "Go struct field HealthConfig.Test"),
    ):
        body = {"Image": "busybox", "Cmd": ["true"], "Healthcheck": healthcheck}
        status, _, data = api.request("POST", "/containers/create", body)
        assert status == 400, data
        assert words in json.loads(data)["message"]
    assert api.json("GET", "/containers/json?all=1") == []
    status, _, _ = api.request("GET", "/containers/json?filters=" + urllib.parse.quote('{"health":["sick"]}'))
    assert status == 400


def test_docker_cli_health_flags_and_ps(api: ApiService) -> None:
    api.need_docker()
    api.docker_ok(
        "run", "-d", "--name", "hc-web", "--health-cmd", "true", "--health-interval", "1s",
        "--health-retries", "1", "busybox", "sleep", "600",
    )  # fmt: skip
    _poll(
        "healthy",
        lambda: api.docker_ok("inspect", "-f", "{{.State.Health.Status}}", "hc-web").strip() == "healthy",
    )
    rows = api.docker_ok(
        "ps", "--filter", "health=healthy", "--format", "{{.Names}} {{.Status}}"
    ).splitlines()
    assert len(rows) == 1
    assert rows[0].startswith("hc-web Up ")
    assert rows[0].endswith("(healthy)")
    # the daemonless CLI sees the same state
    assert "(healthy)" in api.env.ok("ps", "--filter", "name=hc-web", "--format", "{{.Status}}")
