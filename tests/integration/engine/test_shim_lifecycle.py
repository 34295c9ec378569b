"""``pallet-shim`` with real containers: logs, exit files, restart policies, attach, and callers that die.

Each test launches shims through ``launch`` on a private run dir and runtime
root; the ``shims`` fixture stops and deletes whatever a test started, even on
failure (stopped-by-user flag, ``delete --force`` through the runtime, then the
shim's own pid). Assertions read what the shim leaves: the json-file log,
``exit.json``/``init.json``, attach output.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pallet.engine.runtimes import Runtime
from pallet.engine.shim import attach, exitfile
from pallet.engine.shim.config import ShimConfig, save
from pallet.engine.shim.launch import ShimStarted, launch
from pallet.engine.shim.logfile import log_files, read_logs
from pallet.errors import CommandNotFound, PalletError
from pallet.oci.runtime_spec import default_spec

pytestmark = pytest.mark.root

VENV_BIN = Path(__file__).resolve().parents[3] / ".venv" / "bin"
RUNTIMES = {
    "pallet-runtime": str(VENV_BIN / "pallet-runtime"),
    "runc": shutil.which("runc") or "/usr/sbin/runc",
    "crun": shutil.which("crun") or "/usr/bin/crun",
}


def wait_for(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    """Poll until ``predicate()`` is true (a bounded wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {predicate}")
        time.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def fix_hybrid_cgroups() -> None:
    """crun refuses cgroup v1 hybrid mode while the cgroup2 mount owns a controller (shared/bench/README.md).

    The one-time fix mounts those controllers as v1 hierarchies and leaves them mounted on purpose:
    unmounting while cgroups exist hides the hierarchy.
    """
    controllers = Path("/sys/fs/cgroup/unified/cgroup.controllers")
    if not controllers.exists():
        return
    mounted = Path("/proc/mounts").read_text()
    for name in controllers.read_text().split():
        if f" cgroup rw,{name}" in mounted or f",{name} " in mounted or f",{name}," in mounted:
            continue
        Path(f"/sys/fs/cgroup/{name}").mkdir(exist_ok=True)
        subprocess.run(["mount", "-t", "cgroup", "-o", name, "cgroup", f"/sys/fs/cgroup/{name}"], check=False)


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only busybox rootfs (Debian's busybox-static and its applet links)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if not os.path.exists(RUNTIMES["pallet-runtime"]) or not (VENV_BIN / "pallet-shim").exists():
        pytest.skip("run scripts/install.sh first (launchers missing)")
    root = tmp_path_factory.mktemp("shim-busybox") / "rootfs"
    for d in ("bin", "etc", "dev", "proc", "sys", "tmp", "root"):
        (root / d).mkdir(parents=True)
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    applets = subprocess.run(
        ["/bin/busybox", "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", root / "bin" / applet)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    return root


class Shims:
    """Launches shims in a private root; ``cleanup`` leaves no container, shim or runtime state."""

    def __init__(self, tmp: Path, rootfs: Path) -> None:
        self.tmp = tmp
        self.rootfs = rootfs
        self.started: list[tuple[ShimConfig, int]] = []
        self._n = 0

    def config(
        self,
        args: list[str],
        *,
        runtime: str = "pallet-runtime",
        tty: bool = False,
        memory: int | None = None,
        **options: Any,
    ) -> ShimConfig:
        self._n += 1
        cid = f"shimtest-{os.getpid()}-{self._n}"
        spec = default_spec().to_json()
        spec["ociVersion"] = "1.0.2"  # crun 1.8 rejects newer versions
        spec["root"] = {"path": str(self.rootfs), "readonly": True}
        spec["process"]["terminal"] = tty
        spec["process"]["args"] = args
        if memory is not None:
            spec["linux"].setdefault("resources", {})["memory"] = {"limit": memory, "swap": memory}
        bundle = self.tmp / cid / "bundle"
        bundle.mkdir(parents=True)
        (bundle / "config.json").write_text(json.dumps(spec))
        return ShimConfig(
            id=cid,
            bundle=str(bundle),
            runtime_name=runtime,
            runtime_path=RUNTIMES[runtime],
            runtime_root=str(self.tmp / "run" / "runtimes" / runtime),
            run_dir=str(self.tmp / "run" / "containers" / cid),
            log_path=str(self.tmp / cid / f"{cid}-json.log"),
            tty=tty,
            **options,
        )

    def launch(self, config: ShimConfig) -> ShimStarted:
        path = str(self.tmp / config.id / "shim.json")
        save(config, path)
        started = launch(path)
        self.started.append((config, started.pid))
        return started

    def runtime(self, config: ShimConfig) -> Runtime:
        return Runtime(name=config.runtime_name, path=config.runtime_path, root=config.runtime_root)

    def exited(self, config: ShimConfig) -> exitfile.ExitStatus:
        """The final exit, once the shim is gone."""
        wait_for(
            lambda: exitfile.read_shim_pid(config.run_dir) is None and exitfile.read_exit(config.run_dir)
        )
        for launched, shim_pid in self.started:
            if launched is config:
                wait_for(lambda: not alive(shim_pid))  # noqa: B023 - called within this iteration
        status = exitfile.read_exit(config.run_dir)
        assert status is not None
        return status

    def cleanup(self) -> None:
        for config, shim_pid in self.started:
            if alive(shim_pid):
                os.makedirs(config.run_dir, exist_ok=True)
                exitfile.mark_stopped_by_user(config.run_dir)
            subprocess.run(
                [config.runtime_path, "--root", config.runtime_root, "delete", "--force", config.id],
                capture_output=True,
                check=False,
            )
            deadline = time.monotonic() + 10
            while alive(shim_pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if alive(shim_pid):
                os.kill(shim_pid, signal.SIGKILL)


@pytest.fixture
def shims(tmp_path: Path, rootfs: Path) -> Iterator[Shims]:
    kit = Shims(tmp_path, rootfs)
    try:
        yield kit
    finally:
        kit.cleanup()


def log_text(config: ShimConfig, stream: str | None = None) -> str:
    return "".join(e.data.decode() for e in read_logs(config.log_path) if stream in (None, e.stream))


@pytest.mark.parametrize("runtime", ["pallet-runtime", "runc", "crun"])
def test_output_is_logged_and_exit_code_recorded_then_everything_is_gone(shims: Shims, runtime: str) -> None:
    if not os.access(RUNTIMES[runtime], os.X_OK):
        pytest.skip(f"{runtime} is not installed")
    if runtime == "crun":
        fix_hybrid_cgroups()
    config = shims.config(["sh", "-c", "echo out; echo err >&2; exit 3"], runtime=runtime)
    started = shims.launch(config)
    assert started.container_pid > 0
    status = shims.exited(config)
    assert (status.exit_code, status.restart_count, status.restarting) == (3, 0, False)
    assert log_text(config, "stdout") == "out\n"
    assert log_text(config, "stderr") == "err\n"
    assert not alive(started.pid)
    assert sorted(os.listdir(config.run_dir)) == ["exit.json", "init.json", "shim.log"]
    assert os.listdir(config.runtime_root) == []  # the runtime's state was deleted


def test_killed_container_exits_128_plus_signal(shims: Shims) -> None:
    config = shims.config(["sleep", "1000"])
    started = shims.launch(config)
    shims.runtime(config).kill(config.id, 9)
    status = shims.exited(config)
    assert (status.exit_code, status.oom_killed) == (137, False)
    assert not alive(started.container_pid)


def test_memory_cgroup_kill_is_recorded_as_oom(shims: Shims) -> None:
    config = shims.config(["tail", "/dev/zero"], memory=16 * 1024 * 1024)  # tail buffers the endless line
    shims.launch(config)
    status = shims.exited(config)
    assert (status.exit_code, status.oom_killed) == (137, True)


@pytest.mark.parametrize("kill_at", ["shim-forked", "after-report"])
def test_container_outlives_a_sigkilled_caller(shims: Shims, tmp_path: Path, kill_at: str) -> None:
    config = shims.config(["sh", "-c", "sleep 0.5; echo survived; exit 4"])
    path = tmp_path / config.id / "shim.json"
    save(config, str(path))
    code = (
        "from pallet.engine.shim.launch import launch; import time; print('launching', flush=True);"
        f"print(launch({str(path)!r}), flush=True); time.sleep(60)"
    )
    caller = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert caller.stdout is not None
        assert caller.stdout.readline() == "launching\n"
        if kill_at == "after-report":
            assert "ShimStarted" in caller.stdout.readline()
        else:  # the shim has forked and is creating the container; the caller waits for its report
            wait_for(lambda: exitfile.read_shim_pid(config.run_dir))
        caller.kill()
    finally:
        caller.wait()
    wait_for(lambda: exitfile.read_shim_pid(config.run_dir) or exitfile.read_exit(config.run_dir))
    shim_pid = exitfile.read_shim_pid(config.run_dir)
    if shim_pid:
        shims.started.append((config, shim_pid))
    assert shims.exited(config).exit_code == 4
    assert log_text(config) == "survived\n"


def test_on_failure_restarts_up_to_max_retries(shims: Shims) -> None:
    config = shims.config(["sh", "-c", "echo run; exit 3"], restart_name="on-failure", restart_max_retries=2)
    shims.launch(config)
    status = shims.exited(config)
    assert (status.exit_code, status.restart_count, status.restarting) == (3, 2, False)
    assert log_text(config) == "run\n" * 3
    init = exitfile.read_init(config.run_dir)
    assert init is not None
    assert init.restart_count == 2


def test_on_failure_does_not_restart_a_clean_exit(shims: Shims) -> None:
    config = shims.config(["sh", "-c", "echo run"], restart_name="on-failure")
    shims.launch(config)
    assert shims.exited(config).restart_count == 0
    assert log_text(config) == "run\n"


def test_always_restarts_until_stopped_by_user(shims: Shims) -> None:
    config = shims.config(["sh", "-c", "echo run; sleep 0.3"], restart_name="always")
    started = shims.launch(config)
    wait_for(
        lambda: (
            (exitfile.read_init(config.run_dir) or exitfile.InitStatus(pid=0, started_at="")).restart_count
            >= 1
        )
    )
    exitfile.mark_stopped_by_user(config.run_dir)
    init = exitfile.read_init(config.run_dir)
    assert init is not None
    with contextlib.suppress(PalletError):  # it was between runs: the flag alone ends it
        shims.runtime(config).kill(config.id, 15)
    status = shims.exited(config)
    assert status.restarting is False
    assert not alive(started.pid)
    assert log_text(config).count("run\n") == status.restart_count + 1


def test_attach_feeds_stdin_and_every_client_sees_the_output(shims: Shims) -> None:
    config = shims.config(
        ["sh", "-c", "echo ready; cat; echo done >&2"], open_stdin=True, start_on_attach=True
    )
    shims.launch(config)
    sock = os.path.join(config.run_dir, "attach.sock")
    first = attach.connect(sock, stdin=True, start=True)
    second = attach.connect(sock, stdout=False)  # stderr only
    got: dict[str, list[tuple[int, bytes]]] = {"first": [], "second": []}
    first.send_stdin(b"hello\n")
    first.close_stdin()
    for name, conn in (("first", first), ("second", second)):
        while (pieces := conn.read()) is not None:
            got[name] += pieces
        conn.close()
    assert b"".join(d for s, d in got["first"] if s == attach.STDOUT) == b"ready\nhello\n"
    assert b"".join(d for s, d in got["first"] if s == attach.STDERR) == b"done\n"
    assert [s for s, _ in got["second"]] == [attach.STDERR]
    assert shims.exited(config).exit_code == 0
    assert log_text(config) == "ready\nhello\ndone\n"


def test_tty_output_is_raw_and_resize_reaches_the_terminal(shims: Shims) -> None:
    config = shims.config(
        ["sh", "-c", "read x; echo got:$x; stty size"], tty=True, open_stdin=True, start_on_attach=True
    )
    shims.launch(config)
    conn = attach.connect(os.path.join(config.run_dir, "attach.sock"), stdin=True, start=True)
    assert conn.tty
    conn.resize(33, 77)
    conn.send_stdin(b"abc\n")
    out = b""
    while (pieces := conn.read()) is not None:
        out += b"".join(d for _, d in pieces)
    conn.close()
    assert b"got:abc\r\n33 77\r\n" in out
    assert "33 77\r\n" in log_text(config, "stdout")


def test_failed_start_reports_the_runtimes_error_and_leaves_nothing(shims: Shims) -> None:
    config = shims.config(["/no/such/program"])
    with pytest.raises(CommandNotFound, match=r"no such file or directory|not found"):
        shims.launch(config)
    wait_for(lambda: exitfile.read_shim_pid(config.run_dir) is None)
    assert os.listdir(config.runtime_root) == []
    assert not os.path.exists(os.path.join(config.run_dir, "attach.sock"))


def test_log_rotates_while_the_container_writes(shims: Shims) -> None:
    config = shims.config(["seq", "1", "3000"], log_max_size=4096, log_max_file=3)
    shims.launch(config)
    shims.exited(config)
    files = log_files(config.log_path)
    assert len(files) == 3
    lines = log_text(config).split()
    assert lines[-1] == "3000"
    assert lines == [str(n) for n in range(int(lines[0]), 3001)]  # nothing lost within what is kept


def test_exit_command_runs_once_the_container_is_gone(shims: Shims, tmp_path: Path) -> None:
    marker = tmp_path / "cleaned"
    config = shims.config(["true"])
    config = config.replace(exit_command=("/bin/cp", os.path.join(config.run_dir, "exit.json"), str(marker)))
    shims.launch(config)
    shims.exited(config)
    wait_for(marker.exists)
    wait_for(lambda: json.loads(marker.read_text() or "{}").get("exit_code") == 0)


def test_gated_container_starts_anyway_when_no_client_asks(shims: Shims) -> None:
    config = shims.config(["echo", "unattended"], start_on_attach=True, start_gate_seconds=0.5)
    shims.launch(config)
    assert shims.exited(config).exit_code == 0
    assert log_text(config) == "unattended\n"


def test_container_process_has_no_signal_ignored_or_blocked(shims: Shims) -> None:
    config = shims.config(["grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"])
    shims.launch(config)
    shims.exited(config)
    assert log_text(config).split() == ["SigBlk:", "0000000000000000", "SigIgn:", "0000000000000000"]
