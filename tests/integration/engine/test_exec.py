"""``pallet exec`` end to end: output, exit status, -e/-w/-u, detached processes, and refusals."""

from __future__ import annotations

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import PalletEnv

pytestmark = pytest.mark.root

RUNTIME = "pallet-runtime"


@pytest.fixture(params=["pallet-runtime", "runc"])
def box(pallet_env: PalletEnv, request: pytest.FixtureRequest) -> str:
    """A running container named ``box``, under each runtime in turn."""
    runtime: str = request.param
    pallet_env.ok(
        "run", "-d", "--runtime", runtime, "--name", "box", "-e", "BASE=1", "busybox", "sleep", "300"
    )
    return "box"


def test_exec_prints_output_and_returns_the_status(pallet_env: PalletEnv, box: str) -> None:
    done = pallet_env.pallet("exec", box, "sh", "-c", "echo in; echo err >&2; exit 6")
    assert (done.returncode, done.stdout) == (6, "in\n")
    assert "err\n" in done.stderr


def test_exec_env_workdir_and_user_apply(pallet_env: PalletEnv, box: str) -> None:
    out = pallet_env.ok(
        "exec", "-e", "EXTRA=2", "-w", "/tmp", "-u", "nobody", box, "sh", "-c", "echo $BASE$EXTRA; pwd; id -u"
    )
    assert out.splitlines() == ["12", "/tmp", "65534"]


def test_exec_interactive_reads_stdin(pallet_env: PalletEnv, box: str) -> None:
    done = pallet_env.pallet("exec", "-i", box, "cat", input=b"through exec\n")
    assert (done.returncode, done.stdout) == (0, "through exec\n")


def test_exec_detached_leaves_the_process_running(pallet_env: PalletEnv, box: str) -> None:
    assert pallet_env.ok("exec", "-d", box, "sh", "-c", "echo marker > /tmp/done; sleep 300") == ""
    assert pallet_env.ok("exec", box, "cat", "/tmp/done") == "marker\n"


def test_exec_of_a_missing_command_exits_127(pallet_env: PalletEnv, box: str) -> None:
    assert pallet_env.pallet("exec", box, "no-such-command").returncode == 127


def test_exec_into_a_stopped_container_is_refused(pallet_env: PalletEnv) -> None:
    cid = pallet_env.ok("create", "--runtime", RUNTIME, "--name", "off", "busybox", "true").strip()
    done = pallet_env.pallet("exec", "off", "true")
    assert done.returncode == 125
    assert done.stderr.strip() == f"pallet: container {cid} is not running"
    assert pallet_env.ok("inspect", "-f", "{{.State.Status}}", "off") == "created\n"


def test_exec_into_a_paused_container_is_refused(pallet_env: PalletEnv, box: str) -> None:
    pallet_env.ok("pause", box)
    done = pallet_env.pallet("exec", box, "true")
    assert done.returncode == 125
    assert "is paused, unpause the container before exec" in done.stderr


def test_exec_as_a_non_root_user_gets_no_effective_capabilities(pallet_env: PalletEnv, box: str) -> None:
    def caps(*user: str) -> dict[str, str]:
        out = pallet_env.ok("exec", *user, box, "grep", "^Cap", "/proc/self/status")
        return dict(line.split(":\t") for line in out.splitlines())

    nobody, root = caps("-u", "nobody"), caps("-u", "0")
    assert nobody["CapEff"] == nobody["CapPrm"] == "0000000000000000"
    assert nobody["CapBnd"] == root["CapBnd"] == root["CapEff"] == root["CapPrm"] == caps()["CapEff"]


def test_exec_as_root_into_a_non_root_container_gets_the_bounding_set(pallet_env: PalletEnv) -> None:
    # docker 28 measured the same: run -u nobody, then exec -u root has CapEff = CapPrm = CapBnd
    pallet_env.ok("run", "-d", "-u", "nobody", "--name", "lowly", "busybox", "sleep", "300")
    out = pallet_env.ok("exec", "-u", "root", "lowly", "grep", "^Cap", "/proc/self/status")
    caps = dict(line.split(":\t") for line in out.splitlines())
    assert caps["CapEff"] == caps["CapPrm"] == caps["CapBnd"] != "0000000000000000"
    init = pallet_env.ok("exec", "lowly", "grep", "^CapEff", "/proc/self/status")
    assert init == "CapEff:\t0000000000000000\n"


@pytest.mark.parametrize("runtime", ["pallet-runtime", "runc", "crun"])
def test_a_process_as_another_user_never_gets_the_hosts_dev_null(
    pallet_env: PalletEnv, runtime: str, request: pytest.FixtureRequest
) -> None:
    """crun 1.8 hands a process's stdio to its user (fchown); the host's /dev/null must never be
    among them: run, exec, exec -d and a healthcheck probe as nobody leave it root's."""
    import os
    import shutil
    import time

    if shutil.which(runtime) is None and runtime != "pallet-runtime":
        pytest.skip(f"{runtime} is not installed")
    if runtime == "crun":
        request.getfixturevalue("crun_ready")
    before = os.stat("/dev/null")
    try:
        pallet_env.ok("run", "--rm", "--runtime", runtime, "-u", "65534", "busybox", "true")
        pallet_env.ok(
            "run", "-d", "--runtime", runtime, "--name", "nul", "-u", "65534", "--health-cmd", "true",
            "--health-interval", "1s", "busybox", "sleep", "300",
        )  # fmt: skip
        assert pallet_env.ok("exec", "nul", "sh", "-c", "cat; echo read") == "read\n"
        pallet_env.ok("exec", "-d", "nul", "true")
        deadline = time.monotonic() + 60
        while "(healthy)" not in pallet_env.ok("ps", "--format", "{{.Status}}"):
            assert time.monotonic() < deadline, "no probe ran"
            time.sleep(0.2)
        after = os.stat("/dev/null")
        assert (after.st_uid, after.st_gid, after.st_mode) == (before.st_uid, before.st_gid, before.st_mode)
    finally:
        os.chown("/dev/null", before.st_uid, before.st_gid)
        os.chmod("/dev/null", before.st_mode & 0o7777)
