"""The events file: docker's JSON, filters, rotation, whole lines only, follow (no root, no containers)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from pallet.engine import events
from pallet.engine.events import Event, EventFilters, append, read_events
from pallet.errors import InvalidArgument


def recorded(root: Path, **kwargs: object) -> list[Event]:
    return [e for e in read_events(str(root), **kwargs) if e is not None]  # type: ignore[arg-type]


def test_an_appended_event_reads_back_as_docker_json(tmp_path: Path) -> None:
    attrs = events.container_attributes("web", "busybox", {"tier": "front"})
    assert append(str(tmp_path), "container", "start", "a" * 64, attrs, time_nano=1_700_000_000_123_456_789)
    line = (tmp_path / events.EVENTS_FILE).read_text()
    assert line.endswith("\n")
    assert line.count("\n") == 1
    assert json.loads(line) == {
        "status": "start",
        "id": "a" * 64,
        "from": "busybox",
        "Type": "container",
        "Action": "start",
        "Actor": {"ID": "a" * 64, "Attributes": {"tier": "front", "image": "busybox", "name": "web"}},
        "scope": "local",
        "time": 1_700_000_000,
        "timeNano": 1_700_000_000_123_456_789,
    }
    [event] = recorded(tmp_path)
    assert (event.type, event.action, event.attributes["name"]) == ("container", "start", "web")


def test_volume_and_network_events_carry_no_legacy_fields(tmp_path: Path) -> None:
    append(str(tmp_path), "volume", "create", "data", {"driver": "local"})
    doc = json.loads((tmp_path / events.EVENTS_FILE).read_text())
    assert "status" not in doc
    assert "from" not in doc
    assert doc["Actor"] == {"ID": "data", "Attributes": {"driver": "local"}}


def test_append_to_a_missing_root_reports_failure_without_raising(tmp_path: Path) -> None:
    assert append(str(tmp_path / "gone"), "volume", "create", "x") is False


def test_since_and_until_bound_the_events_read(tmp_path: Path) -> None:
    for n in range(1, 6):
        append(str(tmp_path), "volume", "create", f"v{n}", time_nano=n * 1000)
    assert [e.actor_id for e in recorded(tmp_path, since_ns=2000, until_ns=4000)] == ["v2", "v3", "v4"]


def test_a_line_still_being_written_is_not_read(tmp_path: Path) -> None:
    append(str(tmp_path), "volume", "create", "whole")
    with open(tmp_path / events.EVENTS_FILE, "ab") as f:
        f.write(b'{"Type": "volume", "Action": "create", "Actor": {"ID": "tor')
    assert [e.actor_id for e in recorded(tmp_path)] == ["whole"]


def test_a_full_file_is_rotated_and_both_generations_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "ROTATE_BYTES", 1000)
    for n in range(30):
        append(str(tmp_path), "volume", "create", f"v{n:02}")
    assert (tmp_path / (events.EVENTS_FILE + ".1")).exists()
    assert (tmp_path / events.EVENTS_FILE).stat().st_size <= 1000 + 300
    names = [e.actor_id for e in recorded(tmp_path)]
    assert names == sorted(names)
    assert names[-1] == "v29"
    assert len(names) < 30  # bounded: the oldest generation went


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["type=volume"], ["data"]),
        (["container=web"], ["c1"]),
        (["container=c1"], ["c1"]),
        (["event=exec_start"], ["c2"]),
        (["image=busybox"], ["c1", "busybox:latest"]),
        (["image=busybox:latest"], ["c1", "busybox:latest"]),
        (["label=tier"], ["c1"]),
        (["label=tier=back"], []),
        (["type=container", "event=start", "event=exec_start"], ["c1", "c2"]),
        (["volume=data"], ["data"]),
        (["network=web"], []),
    ],
)
def test_filters_match_as_docker_does(tmp_path: Path, filters: list[str], expected: list[str]) -> None:
    root = str(tmp_path)
    append(root, "container", "start", "c1", events.container_attributes("web", "busybox", {"tier": "front"}))
    append(root, "container", "exec_start: sh -c true", "c2", {"name": "other", "image": "alpine"})
    append(root, "image", "pull", "busybox:latest", {"name": "busybox:latest"})
    append(root, "volume", "create", "data", {"driver": "local"})
    assert [e.actor_id for e in recorded(tmp_path, filters=EventFilters(filters))] == expected


def test_api_style_filters_are_accepted() -> None:
    assert EventFilters({"type": ["container"], "event": ["die"]}).values == {
        "type": ["container"],
        "event": ["die"],
    }


@pytest.mark.parametrize("bad", [["colour=red"], ["type"], ["type=spaceship"]])
def test_a_bad_filter_is_refused_naming_it(bad: list[str]) -> None:
    with pytest.raises(InvalidArgument, match="filter"):
        EventFilters(bad)


def test_follow_starts_at_the_end_and_sees_what_is_appended(tmp_path: Path) -> None:
    root = str(tmp_path)
    append(root, "volume", "create", "before")
    stop = threading.Event()
    stream = read_events(root, follow=True, alive=lambda: not stop.is_set())
    writer = threading.Timer(0.3, lambda: append(root, "volume", "create", "after"))
    writer.start()
    try:
        first = next(e for e in stream if e is not None)
    finally:
        stop.set()
        writer.join()
    assert first.actor_id == "after"
    assert list(stream) in ([], [None])  # alive() turned false: the stream ends


def test_a_prune_event_has_no_id_as_dockers_omitempty() -> None:
    doc = Event("container", "prune", "", {"reclaimed": "42"}, 1).to_json()
    assert "id" not in doc
    assert "from" not in doc
    assert doc["status"] == "prune"
    assert doc["Actor"] == {"ID": "", "Attributes": {"reclaimed": "42"}}


def test_attachments_round_trip_through_the_run_dir_file(tmp_path: Path) -> None:
    attached = events.Attachments(
        {"name": "web", "image": "busybox"},
        [("n" * 64, "front", "bridge")],
        [("data", "/data", "local", "", False), ("a" * 64, "/anon", "local", "", True)],
    )
    events.write_attachments(str(tmp_path), attached)
    back = events.read_attachments(str(tmp_path))
    assert back is not None
    assert (back.attributes, back.networks, back.volumes) == (
        attached.attributes,
        attached.networks,
        attached.volumes,
    )


def test_a_missing_or_foreign_attachments_file_reads_as_none(tmp_path: Path) -> None:
    assert events.read_attachments(str(tmp_path)) is None
    (tmp_path / events.ATTACHMENTS_FILE).write_text("[1, 2]")
    assert events.read_attachments(str(tmp_path)) is None
    (tmp_path / events.ATTACHMENTS_FILE).write_text("not json")
    assert events.read_attachments(str(tmp_path)) is None


def test_attach_and_detach_events_are_dockers_in_its_order(tmp_path: Path) -> None:
    cid = "c" * 64
    attached = events.Attachments(
        {}, [("n" * 64, "front", "bridge")], [("data", "/data", "local", "", False)]
    )
    events.record_attached(str(tmp_path), cid, attached)
    events.record_detached(str(tmp_path), cid, attached)
    found = [(e.type, e.action, e.actor_id, e.attributes) for e in recorded(tmp_path, since_ns=0)]
    network = {"container": cid, "name": "front", "type": "bridge"}
    assert found == [
        ("network", "connect", "n" * 64, network),
        (
            "volume",
            "mount",
            "data",
            {
                "container": cid,
                "destination": "/data",
                "driver": "local",
                "propagation": "",
                "read/write": "false",
            },
        ),
        ("network", "disconnect", "n" * 64, network),
        ("volume", "unmount", "data", {"container": cid, "driver": "local"}),
    ]
