"""``Service.logs``: docker's since/until/tail and the stream choice, once for every front end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pallet.engine.containers.records import ContainerRecord, ContainerStore
from pallet.engine.db import EngineDB
from pallet.engine.layout import Layout
from pallet.engine.service import Service, format_log_entry
from pallet.engine.shim.logfile import LogWriter
from pallet.errors import InvalidArgument

CID = "a" * 64
SECOND = 1_000_000_000
#: 2001-09-09T01:46:40Z and one second apart: out, err, out, err
T0 = 1_000_000_000 * SECOND


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    root, run = tmp_path / "root", tmp_path / "run"
    root.mkdir()
    db = EngineDB(str(root))
    ContainerStore(db).insert(
        ContainerRecord(
            id=CID,
            name="web",
            image_id="sha256:" + "e" * 64,
            image="busybox",
            created=1.0,
            state="exited",
            exit_code=0,
            runtime="runc",
        )
    )
    db.close()
    path = Layout(str(root), str(run)).log_path(CID)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    writer = LogWriter(path)
    for i, stream in enumerate(("stdout", "stderr", "stdout", "stderr")):
        writer.write(stream, f"{stream} {i}\n".encode(), ns=T0 + i * SECOND)
    writer.close()
    with Service.open(root, run) as opened:
        yield opened


def _lines(service: Service, **kwargs: object) -> list[str]:
    return [e.data.decode().rstrip("\n") for e in service.logs("web", **kwargs)]  # type: ignore[arg-type]


def test_logs_are_both_streams_in_order(service: Service) -> None:
    assert _lines(service) == ["stdout 0", "stderr 1", "stdout 2", "stderr 3"]
    assert _lines(service, stderr=False) == ["stdout 0", "stdout 2"]
    assert _lines(service, stdout=False) == ["stderr 1", "stderr 3"]


def test_since_until_and_tail_select_records(service: Service) -> None:
    assert _lines(service, since="1000000001") == ["stderr 1", "stdout 2", "stderr 3"]
    assert _lines(service, until="2001-09-09T01:46:41Z") == ["stdout 0", "stderr 1"]
    assert _lines(service, tail=1) == ["stderr 3"]
    assert _lines(service, tail=-1) == _lines(service)


def test_follow_of_a_stopped_container_ends_after_what_is_written(service: Service) -> None:
    assert _lines(service, follow=True) == ["stdout 0", "stderr 1", "stdout 2", "stderr 3"]


def test_a_bad_time_is_invalid_argument_before_anything_is_read(service: Service) -> None:
    with pytest.raises(InvalidArgument):
        service.logs("web", since="yesterday")


def test_entries_print_with_timestamps_as_docker_does(service: Service) -> None:
    first = next(iter(service.logs("web")))
    assert format_log_entry(first) == b"stdout 0\n"
    assert format_log_entry(first, timestamps=True) == b"2001-09-09T01:46:40.000000000Z stdout 0\n"
