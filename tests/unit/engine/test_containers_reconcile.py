"""Reconciliation of container records with what shims, files and the runtime say (no containers needed).

A fake engine records what reconcile asks of it; "shims" are plain child
processes whose command line names the container, as a real shim's does.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pallet.engine.containers.reconcile import process_start_time, reconcile, settled
from pallet.engine.containers.records import ContainerRecord, ContainerStore
from pallet.engine.db import EngineDB
from pallet.engine.layout import Layout
from pallet.engine.shim import exitfile

CID = "f" * 64


class FakeEngine:
    def __init__(self, tmp: Path) -> None:
        self.layout = Layout(str(tmp / "root"), str(tmp / "run"))
        self.db = EngineDB(str(tmp / "root"))
        self.containers = ContainerStore(self.db)
        self.discarded: list[tuple[str, bool]] = []
        self.cleaned: list[str] = []
        self.known_to_runtime = False
        self.auto = False
        self.volumes_flag = False
        self.networks_reconciled = 0
        self.events: list[tuple[str, str]] = []

    def discard(self, record: ContainerRecord, *, remove_volumes: bool) -> None:
        self.discarded.append((record.id, remove_volumes))
        self.containers.delete(record.id)

    def removing_volumes(self, record: ContainerRecord) -> bool:
        return self.volumes_flag

    def runtime_knows(self, record: ContainerRecord) -> bool:
        return self.known_to_runtime

    def after_exit(self, record: ContainerRecord) -> None:
        self.cleaned.append(record.id)

    def auto_remove(self, record: ContainerRecord) -> bool:
        return self.auto

    def reconcile_networks(self) -> None:
        self.networks_reconciled += 1

    def event(self, record: ContainerRecord, action: str, **extra: str) -> None:
        self.events.append((record.id, action))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[FakeEngine]:
    fake = FakeEngine(tmp_path)
    os.makedirs(fake.layout.run_dir(CID))
    yield fake
    fake.db.close()


@pytest.fixture
def fake_shim() -> Iterator[subprocess.Popen[bytes]]:
    """A process that looks like the container's shim (its command line names the container)."""
    proc = subprocess.Popen(["sh", "-c", "sleep 60", "pallet-shim", f"/x/{CID}/shim.json"])
    yield proc
    proc.kill()
    proc.wait()


def insert(engine: FakeEngine, **fields: object) -> ContainerRecord:
    values: dict[str, object] = {
        "id": CID,
        "name": "web",
        "image_id": "sha256:" + "e" * 64,
        "image": "busybox",
        "created": 1.0,
        "state": "running",
        "runtime": "runc",
    }
    values.update(fields)
    record = ContainerRecord(**values)  # type: ignore[arg-type]
    engine.containers.insert(record)
    return record


def run_dir(engine: FakeEngine) -> str:
    return str(engine.layout.run_dir(CID))


def test_creating_row_of_a_live_creator_is_left_alone(engine: FakeEngine) -> None:
    from pallet.image.owners import owner_tag

    record = insert(engine, state="creating", owner=owner_tag())
    assert reconcile(engine, record) == record  # type: ignore[arg-type]
    assert engine.discarded == []
    assert engine.networks_reconciled == 0


def test_creating_row_of_a_dead_creator_is_discarded_with_its_network_leftovers(engine: FakeEngine) -> None:
    record = insert(engine, state="creating", owner="4194303-1-deadbeef")
    assert reconcile(engine, record) is None  # type: ignore[arg-type]
    assert engine.discarded == [(CID, True)]
    assert engine.networks_reconciled == 1


def test_interrupted_removal_is_finished(engine: FakeEngine) -> None:
    engine.volumes_flag = True
    record = insert(engine, state="removing")
    assert reconcile(engine, record) is None  # type: ignore[arg-type]
    assert engine.discarded == [(CID, True)]


def test_dead_shim_with_exit_file_means_exited_with_its_code(engine: FakeEngine) -> None:
    record = insert(engine, shim_pid=4194303, shim_start=5)
    exitfile.write_exit(
        run_dir(engine), exitfile.ExitStatus(exit_code=3, finished_at="2026-01-01T00:00:00Z", oom_killed=True)
    )
    after = reconcile(engine, record)  # type: ignore[arg-type]
    assert after is not None
    assert (after.state, after.exit_code, after.finished_at, after.oom_killed, after.shim_pid) == (
        "exited",
        3,
        "2026-01-01T00:00:00Z",
        True,
        0,
    )
    assert engine.cleaned == [CID]


def test_dead_shim_without_exit_file_is_exit_255(engine: FakeEngine) -> None:
    record = insert(engine, shim_pid=4194303, shim_start=5, pid=4194302)
    after = reconcile(engine, record)  # type: ignore[arg-type]
    assert after is not None
    assert (after.state, after.exit_code) == ("exited", 255)


def test_container_that_outlived_its_shim_is_still_running(engine: FakeEngine) -> None:
    engine.known_to_runtime = True
    record = insert(engine, shim_pid=4194303, shim_start=5, pid=os.getpid())
    after = reconcile(engine, record)  # type: ignore[arg-type]
    assert after is not None
    assert (after.state, after.shim_pid) == ("running", 0)


def test_exited_auto_remove_container_is_removed(engine: FakeEngine) -> None:
    engine.auto = True
    record = insert(engine, shim_pid=4194303, shim_start=5)
    exitfile.write_exit(run_dir(engine), exitfile.ExitStatus(exit_code=0, finished_at="2026-01-01T00:00:00Z"))
    assert reconcile(engine, record) is None  # type: ignore[arg-type]
    assert engine.discarded == [(CID, True)]
    assert engine.events == [(CID, "destroy")]  # docker's destroy, whoever removed it


def test_shim_found_by_its_pid_file_makes_a_created_row_running(
    engine: FakeEngine, fake_shim: subprocess.Popen[bytes]
) -> None:
    record = insert(engine, state="created")
    with open(os.path.join(run_dir(engine), exitfile.SHIM_PID_FILE), "w") as f:
        f.write(str(fake_shim.pid))
    exitfile.write_init(run_dir(engine), exitfile.InitStatus(pid=1234, started_at="2026-01-01T00:00:00Z"))
    after = reconcile(engine, record)  # type: ignore[arg-type]
    assert after is not None
    assert (after.state, after.shim_pid, after.pid) == ("running", fake_shim.pid, 1234)
    assert after.shim_start == process_start_time(fake_shim.pid)


def test_a_pid_file_naming_another_process_is_not_trusted(engine: FakeEngine) -> None:
    record = insert(engine, state="created")
    with open(os.path.join(run_dir(engine), exitfile.SHIM_PID_FILE), "w") as f:
        f.write(str(os.getpid()))  # alive, but not this container's shim (a reused pid)
    after = reconcile(engine, record)  # type: ignore[arg-type]
    assert after is not None
    assert (after.state, after.shim_pid) == ("created", 0)


def test_live_shim_reporting_a_pending_restart_means_restarting(
    engine: FakeEngine, fake_shim: subprocess.Popen[bytes]
) -> None:
    record = insert(engine, shim_pid=fake_shim.pid, shim_start=process_start_time(fake_shim.pid) or 0)
    exitfile.write_init(
        run_dir(engine), exitfile.InitStatus(pid=99, started_at="2026-01-01T00:00:00Z", restart_count=2)
    )
    exitfile.write_exit(
        run_dir(engine),
        exitfile.ExitStatus(
            exit_code=1, finished_at="2026-01-01T00:00:01Z", restart_count=2, restarting=True
        ),
    )
    after = reconcile(engine, record)  # type: ignore[arg-type]
    assert after is not None
    assert (after.state, after.exit_code, after.restart_count) == ("restarting", 1, 2)


def test_an_exit_of_an_earlier_run_does_not_count(
    engine: FakeEngine, fake_shim: subprocess.Popen[bytes]
) -> None:
    record = insert(engine, shim_pid=fake_shim.pid, shim_start=process_start_time(fake_shim.pid) or 0)
    exitfile.write_init(
        run_dir(engine), exitfile.InitStatus(pid=99, started_at="2026-01-01T00:00:00Z", restart_count=3)
    )
    exitfile.write_exit(run_dir(engine), exitfile.ExitStatus(exit_code=1, finished_at="x", restart_count=2))
    after = reconcile(engine, record)  # type: ignore[arg-type]
    assert after is not None
    assert (after.state, after.pid, after.restart_count) == ("running", 99, 3)


# --- settled: a listing's fast path must agree with reconcile -------------------------------------


def test_a_row_its_live_shim_confirms_is_settled(
    engine: FakeEngine, fake_shim: subprocess.Popen[bytes]
) -> None:
    record = insert(
        engine,
        shim_pid=fake_shim.pid,
        shim_start=process_start_time(fake_shim.pid) or 0,
        pid=99,
        started_at="2026-01-01T00:00:00Z",
    )
    exitfile.write_init(run_dir(engine), exitfile.InitStatus(pid=99, started_at="2026-01-01T00:00:00Z"))
    assert settled(record, run_dir(engine))
    assert reconcile(engine, record) == record  # type: ignore[arg-type]


def test_a_pending_restart_is_not_settled_while_the_row_says_running(
    engine: FakeEngine, fake_shim: subprocess.Popen[bytes]
) -> None:
    record = insert(
        engine,
        shim_pid=fake_shim.pid,
        shim_start=process_start_time(fake_shim.pid) or 0,
        pid=99,
        started_at="2026-01-01T00:00:00Z",
    )
    exitfile.write_init(run_dir(engine), exitfile.InitStatus(pid=99, started_at="2026-01-01T00:00:00Z"))
    exitfile.write_exit(
        run_dir(engine), exitfile.ExitStatus(exit_code=3, finished_at="2026-01-01T00:00:01Z", restarting=True)
    )
    assert not settled(record, run_dir(engine))


def test_a_running_row_whose_shim_died_is_not_settled(engine: FakeEngine) -> None:
    record = insert(engine, shim_pid=4194303, shim_start=5)
    exitfile.write_exit(run_dir(engine), exitfile.ExitStatus(exit_code=7, finished_at="2026-01-01T00:00:00Z"))
    assert not settled(record, run_dir(engine))
    after = reconcile(engine, record)  # type: ignore[arg-type]
    assert after is not None
    assert (after.state, after.exit_code) == ("exited", 7)


def test_an_exited_row_is_settled_unless_a_shim_pid_file_says_a_start_went_unrecorded(
    engine: FakeEngine,
) -> None:
    record = insert(engine, state="exited", exit_code=0)
    assert settled(record, run_dir(engine))
    with open(os.path.join(run_dir(engine), exitfile.SHIM_PID_FILE), "w") as f:
        f.write("4194303")
    assert not settled(record, run_dir(engine))


@pytest.mark.parametrize("state", ["creating", "removing"])
def test_an_unfinished_create_or_removal_is_never_settled(engine: FakeEngine, state: str) -> None:
    assert not settled(insert(engine, state=state), run_dir(engine))
