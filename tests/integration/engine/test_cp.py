"""``pallet cp`` end to end: both ways, running and stopped containers, tar streams, volumes, symlink safety."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import PalletEnv

pytestmark = pytest.mark.root


def test_cp_out_of_a_running_container_file_dir_and_stream(pallet_env: PalletEnv, tmp_path: Path) -> None:
    pallet_env.ok(
        "run", "-d", "--name", "src1", "busybox", "sh", "-c",
        "mkdir -p /out/sub && echo one > /out/a && echo two > /out/sub/b && chmod 600 /out/a && touch /ready && sleep 1000",
    )  # fmt: skip
    for _ in range(100):  # the container's command writes the files right after start
        if pallet_env.pallet("cp", "-q", "src1:/ready", str(tmp_path / "ready")).returncode == 0:
            break
    pallet_env.ok("cp", "src1:/out/a", str(tmp_path / "a.txt"))
    assert (tmp_path / "a.txt").read_text() == "one\n"
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o600
    pallet_env.ok("cp", "src1:/out", str(tmp_path / "copy"))
    assert (tmp_path / "copy" / "sub" / "b").read_text() == "two\n"
    (tmp_path / "into").mkdir()
    pallet_env.ok("cp", "src1:/out/.", str(tmp_path / "into"))
    assert sorted(p.name for p in (tmp_path / "into").iterdir()) == ["a", "sub"]
    streamed = subprocess.run(pallet_env.argv("cp", "src1:/out", "-"), capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(streamed.stdout), mode="r:") as tar:
        assert sorted(tar.getnames()) == ["out", "out/a", "out/sub", "out/sub/b"]


def test_cp_into_a_stopped_container_is_seen_when_it_starts(pallet_env: PalletEnv, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("delivered\n")
    pallet_env.ok("create", "--name", "dst1", "busybox", "cat", "/in.txt")
    pallet_env.ok("cp", str(tmp_path / "in.txt"), "dst1:/in.txt")
    assert pallet_env.ok("start", "-a", "dst1") == "delivered\n"


def test_cp_tar_from_stdin_into_a_container_directory(pallet_env: PalletEnv) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"hello\n"))
    pallet_env.ok("create", "--name", "dst2", "busybox", "cat", "/tmp/hello.txt")
    piped = subprocess.run(
        pallet_env.argv("cp", "-", "dst2:/tmp"), input=buf.getvalue(), capture_output=True, check=False
    )
    assert piped.returncode == 0, piped.stderr
    assert pallet_env.ok("start", "-a", "dst2") == "hello\n"


def test_cp_into_a_volume_of_a_stopped_container_lands_in_the_volume(
    pallet_env: PalletEnv, tmp_path: Path
) -> None:
    (tmp_path / "f").write_text("vol\n")
    pallet_env.ok("create", "--name", "dst3", "-v", "cpvol:/data", "busybox", "true")
    pallet_env.ok("cp", str(tmp_path / "f"), "dst3:/data/f")
    data = Path(pallet_env.ok("volume", "inspect", "-f", "{{.Mountpoint}}", "cpvol").strip())
    assert (data / "f").read_text() == "vol\n"


def test_cp_follows_container_symlinks_inside_the_container_only(
    pallet_env: PalletEnv, tmp_path: Path
) -> None:
    marker = "pallet-cp-escape-test"
    (tmp_path / marker).write_text("x")
    pallet_env.ok("run", "--name", "evil1", "busybox", "ln", "-s", "/", "/escape")
    pallet_env.ok("cp", str(tmp_path / marker), "evil1:/escape/etc/")
    assert not Path("/etc", marker).exists()  # the host's /etc is untouched
    assert pallet_env.ok("cp", f"evil1:/etc/{marker}", "-")  # it is in the container's /etc


def test_cp_errors_are_one_line_and_change_nothing(pallet_env: PalletEnv, tmp_path: Path) -> None:
    pallet_env.ok("create", "--name", "err1", "busybox", "true")
    done = pallet_env.pallet("cp", "err1:/nope", str(tmp_path / "x"))
    assert done.returncode == 1
    assert "no such file or directory" in done.stderr
    assert done.stderr.count("\n") == 1
    assert not (tmp_path / "x").exists()
    done = pallet_env.pallet("cp", "ghost:/etc/passwd", str(tmp_path / "x"))
    assert done.returncode == 1
    assert "No such container: ghost" in done.stderr
    done = pallet_env.pallet("cp", str(tmp_path), str(tmp_path / "y"))
    assert done.returncode == 125
