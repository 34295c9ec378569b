"""``save -o FILE``'s output: unnamed (O_TMPFILE) until complete, so a killed save leaves nothing; without
O_TMPFILE a named temp, removed by the next save when its writer was killed."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pallet.cli import outfile
from pallet.cli.outfile import atomic_output, sweep, temp_name
from pallet.image.store import ImageStore
from pallet.testing.cli import run_pallet
from pallet.testing.images import add_to_store, random_image

#: writes part of an archive through atomic_output, says so, then waits to be killed; with
#: "named" as its second argument, as on a file system without O_TMPFILE
_WRITER = """
import sys
from pallet.cli import outfile
from pallet.cli.outfile import atomic_output
if sys.argv[2:] == ["named"]:
    outfile._unnamed = lambda directory: None
with atomic_output(sys.argv[1]) as out:
    out.write(b"half an archive")
    out.flush()
    print("writing", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    with ImageStore.open(tmp_path / "root", snapshot_driver="copy") as store:
        add_to_store(store, random_image(seed=7, layers=1), "app:v1")
    return tmp_path / "root"


def _o_tmpfile(directory: Path) -> bool:
    try:
        os.close(os.open(directory, os.O_TMPFILE | os.O_WRONLY))
    except OSError:
        return False
    return True


def test_a_writer_killed_mid_way_leaves_nothing_at_all(tmp_path: Path) -> None:
    if not _o_tmpfile(tmp_path):
        pytest.skip(f"the file system of {tmp_path} has no O_TMPFILE")
    target = tmp_path / "out.tar"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(target)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"writing\n"
        assert list(tmp_path.iterdir()) == []  # the bytes written so far have no name
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert list(tmp_path.iterdir()) == []
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def killed_writer(tmp_path: Path) -> Iterator[Path]:
    """The temp file a writer left when it was SIGKILLed in the middle of ``out.tar`` (no O_TMPFILE)."""
    target = tmp_path / "out" / "out.tar"
    target.parent.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(target), "named"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"writing\n"
        temp = Path(temp_name(str(target), proc.pid))
        assert temp.exists()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert temp.exists()  # SIGKILL: nothing of the writer ran to remove it
        assert not target.exists()
        yield temp
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


def test_next_save_removes_the_temp_file_of_a_save_killed_mid_way(root: Path, killed_writer: Path) -> None:
    target = killed_writer.parent / "other.tar"
    result = run_pallet(root, "save", "-q", "-o", str(target), "app:v1")
    assert result.code == 0, result.err
    assert target.stat().st_size > 0
    assert sorted(p.name for p in killed_writer.parent.iterdir()) == ["other.tar"]


def test_save_writes_the_file_and_leaves_no_temp_file(root: Path, tmp_path: Path) -> None:
    target = tmp_path / "app.tar"
    assert run_pallet(root, "save", "-q", "-o", str(target), "app:v1").code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.tar", "root"]


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_sweep_keeps_the_temp_file_of_a_writer_at_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outfile, "_unnamed", lambda directory: None)  # a file system without O_TMPFILE
    target = tmp_path / "busy.tar"
    with atomic_output(str(target)) as out:
        out.write(b"in progress")
        assert sweep(str(tmp_path)) == []  # locked, and this process is alive
        assert Path(temp_name(str(target))).exists()
    assert target.read_bytes() == b"in progress"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy.tar"]


def test_sweep_keeps_a_locked_temp_file_even_when_its_pid_is_not_running_here(tmp_path: Path) -> None:
    # a writer in another pid namespace holds its lock while its pid means nothing here
    temp = Path(temp_name(str(tmp_path / "elsewhere.tar"), _dead_pid()))
    temp.write_bytes(b"x")
    with temp.open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert sweep(str(tmp_path)) == []
    assert temp.exists()
    assert sweep(str(tmp_path)) == [str(temp)]
    assert not temp.exists()


def test_sweep_keeps_an_unlocked_temp_file_whose_pid_is_running(tmp_path: Path) -> None:
    # the instant between a writer's create and its lock; or a reused pid: kept either way
    temp = Path(temp_name(str(tmp_path / "young.tar"), os.getpid()))
    temp.write_bytes(b"x")
    assert sweep(str(tmp_path)) == []
    assert temp.exists()


def test_failed_save_removes_its_temp_file(tmp_path: Path) -> None:
    def failing_save() -> None:
        with atomic_output(str(tmp_path / "broken.tar")) as out:
            out.write(b"part")
            raise RuntimeError("the save failed")

    with pytest.raises(RuntimeError):
        failing_save()
    assert list(tmp_path.iterdir()) == []
