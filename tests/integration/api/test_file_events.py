"""docker's container events of ``cp``, ``top`` and ``export`` (``extract-to-dir``, ``archive-path``, ``top``,
``export``), through both front doors."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pallet.testing.host import require_host_path

if TYPE_CHECKING:
    from conftest import ApiService

pytestmark = pytest.mark.root

_ACTIONS = ("extract-to-dir", "archive-path", "top", "export")


def test_cp_top_and_export_record_docker_events_that_pallet_events_and_docker_events_show(
    api: ApiService, tmp_path: Path
) -> None:
    require_host_path("/usr/local/bin/docker", "the docker CLI")
    env = api.env
    since = str(time.time() - 1)
    env.ok("run", "-d", "--name", "fe", "--label", "team=a", "busybox", "sleep", "300")
    (tmp_path / "in.txt").write_text("in\n")
    env.ok("cp", str(tmp_path / "in.txt"), "fe:/tmp/in.txt")
    env.ok("cp", "fe:/tmp/in.txt", str(tmp_path / "back.txt"))
    env.ok("top", "fe")
    env.ok("export", "-o", str(tmp_path / "fe.tar"), "fe")
    assert env.pallet("cp", "fe:/no/such/file", str(tmp_path / "none")).returncode != 0  # no event
    want = list(_ACTIONS)
    api.docker_ok("cp", str(tmp_path / "in.txt"), "fe:/tmp/")
    api.docker_ok("cp", "fe:/tmp/in.txt", str(tmp_path / "back2.txt"))
    api.docker_ok("top", "fe")
    api.docker_ok("export", "-o", str(tmp_path / "fe2.tar"), "fe")
    want += _ACTIONS
    until = str(time.time() + 1)
    window = ("--since", since, "--until", until, "--filter", "container=fe")
    seen = [
        json.loads(line)
        for line in env.ok("events", *window, "--format", "json").splitlines()
        if json.loads(line)["Action"] in _ACTIONS
    ]
    assert [e["Action"] for e in seen] == want
    for event in seen:
        assert event["Type"] == "container"
        assert event["Actor"]["Attributes"] == {"image": "busybox", "name": "fe", "team": "a"}
    through_api = api.docker_ok("events", *window, "--format", "{{.Action}}").split()
    assert [a for a in through_api if a in _ACTIONS] == want
    env.ok("rm", "-f", "fe")
