"""The engine surface's listing rules: docker's ``ps`` filters and STATUS text, once for every front end."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from pallet.engine.containers.records import ContainerRecord
from pallet.engine.service import Service, container_filters, status_text
from pallet.errors import InvalidArgument
from pallet.testing.records import container_record


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"state": "created"}, "Created"),
        ({"state": "creating"}, "Created"),
        ({"state": "running", "started_at": "1970-01-01T00:16:40Z"}, "Up 5 seconds"),
        ({"state": "running", "started_at": "1970-01-01T00:13:45Z"}, "Up 3 minutes"),
        ({"state": "paused", "started_at": "1970-01-01T00:16:40Z"}, "Up 5 seconds (Paused)"),
        (
            {"state": "exited", "exit_code": 3, "finished_at": "1970-01-01T00:16:40Z"},
            "Exited (3) 5 seconds ago",
        ),
        (
            {"state": "exited", "exit_code": 0, "finished_at": "1970-01-01T00:16:43Z"},
            "Exited (0) 2 seconds ago",
        ),
        (
            {"state": "restarting", "exit_code": 1, "finished_at": "1970-01-01T00:16:44Z"},
            "Restarting (1) 1 second ago",
        ),
        ({"state": "removing"}, "Removal In Progress"),
        ({"state": "dead"}, "Dead"),
    ],
)
def test_status_reads_like_dockers(fields: dict[str, object], text: str) -> None:
    assert status_text(container_record(**fields), now=1005.0) == text


_OLD = container_record(id="b" * 64, name="old", created=500.0, state="exited", exit_code=0)
_NEW = container_record(id="c" * 64, name="new", created=2000.0)
_DOCUMENTS: dict[str, Mapping[str, Any]] = {
    "a" * 64: {
        "Mounts": [{"Type": "volume", "Name": "data", "Destination": "/data"}],
        "HostConfig": {"NetworkMode": "host"},
    },
}


def _matches(values: list[str] | dict[str, Any], record: ContainerRecord) -> bool:
    by_name = {r.name: r for r in (_OLD, _NEW)}
    return container_filters(values).matches(
        record, lookup=by_name.get, document=lambda r: _DOCUMENTS.get(r.id, {})
    )


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["id=aaaa"], True),
        (["id=bbbb"], False),
        (["name=we"], True),
        (["name=/web"], True),
        (["name=db"], False),
        (["name=db", "name=web"], True),  # one key's values: any
        (["status=running"], True),
        (["status=exited"], False),
        (["ancestor=busybox"], True),
        (["ancestor=eeee"], True),
        (["ancestor=sha256:" + "e" * 64], True),
        (["ancestor=alpine"], False),
        (["before=new"], True),
        (["before=old"], False),
        (["since=old"], True),
        (["since=nosuch"], False),
        (["volume=data"], True),
        (["volume=/data"], True),
        (["volume=other"], False),
        (["network=host"], True),
        (["network=bridge"], False),
        (["status=running", "name=db"], False),  # different keys: all
    ],
)
def test_filters_follow_dockers_rules(values: list[str], expected: bool) -> None:
    assert _matches(values, container_record()) is expected


def test_every_label_filter_must_match_as_dockers_do() -> None:
    record = container_record(labels={"tier": "web", "team": "a"})
    assert _matches(["label=tier"], record)
    assert _matches(["label=tier=web", "label=team=a"], record)
    assert not _matches(["label=tier=web", "label=team=b"], record)
    assert not _matches(["label=missing"], record)


def test_exited_matches_the_exit_code_of_exited_containers_only() -> None:
    assert _matches(["exited=0"], _OLD)
    assert not _matches(["exited=1"], _OLD)
    assert not _matches(["exited=0"], container_record())
    assert container_filters(["exited=0"]).show_stopped
    assert container_filters(["status=created"]).show_stopped
    assert not container_filters(["name=web"]).show_stopped


def test_the_sdk_shape_of_filters_follows_the_same_rules() -> None:
    assert _matches({"name": "web", "label": ["tier"]}, container_record(labels={"tier": "x"}))
    assert not _matches({"status": ["exited", "paused"]}, container_record())


@pytest.mark.parametrize("value", ["colour=red", "status", "status=sleeping", "is-task=true"])
def test_a_bad_filter_is_invalid_argument(value: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid filter"):
        container_filters([value])


def test_ps_of_an_empty_root_is_empty_and_bad_filters_fail(tmp_path: Path) -> None:
    with Service.open(tmp_path / "root", tmp_path / "run") as service:
        assert service.ps(all=True) == []
        assert service.ps(filters=["status=exited"]) == []
        with pytest.raises(InvalidArgument):
            service.ps(filters=["colour=red"])
