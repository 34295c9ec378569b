"""``pallet run`` / ``create`` end to end with busybox: output, exit codes, options seen from inside, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import PalletEnv

pytestmark = pytest.mark.root


def test_run_rm_prints_output_and_leaves_no_container(pallet_env: PalletEnv) -> None:
    done = pallet_env.pallet("run", "--rm", "busybox", "echo", "hello from pallet")
    assert (done.returncode, done.stdout) == (0, "hello from pallet\n")
    assert pallet_env.container_ids() == []
    assert pallet_env.ok("ps", "-a", "-q") == ""


def test_run_exits_with_the_container_status_and_splits_streams(pallet_env: PalletEnv) -> None:
    done = pallet_env.pallet("run", "--name", "fail", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert done.returncode == 7
    assert done.stdout == "out\n"
    assert "err\n" in done.stderr
    assert pallet_env.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "fail") == "exited 7\n"


@pytest.mark.parametrize("runtime", ["pallet-runtime", "runc", "crun"])
@pytest.mark.usefixtures("crun_ready")
def test_run_works_with_each_oci_runtime(pallet_env: PalletEnv, runtime: str) -> None:
    done = pallet_env.pallet(
        "run", "--rm", "--runtime", runtime, "busybox", "sh", "-c", "echo $((6*7)); exit 3"
    )
    assert (done.returncode, done.stdout) == (3, "42\n"), done.stderr


@pytest.mark.parametrize("runtime", ["pallet-runtime", "runc", "crun"])
@pytest.mark.usefixtures("crun_ready")
def test_a_container_inherits_no_fd_beyond_stdio(pallet_env: PalletEnv, runtime: str) -> None:
    # the shim's report, go and attach fds, and the engine's databases, stay out of the container
    script = "ls /proc/$$/fd; true"  # `; true`: sh must not exec ls in its own place
    done = pallet_env.pallet("run", "--rm", "--runtime", runtime, "busybox", "sh", "-c", script)
    assert (done.returncode, done.stdout.split()) == (0, ["0", "1", "2"]), done.stderr


def test_run_with_a_terminal_starts_with_the_callers_terminal_size(pallet_env: PalletEnv) -> None:
    command = " ".join(pallet_env.argv("run", "--rm", "-it", "busybox", "stty", "size"))
    done = subprocess.run(
        ["script", "-qec", f"stty rows 37 cols 91; {command}", "/dev/null"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout.replace("\r", "").split()[-2:]) == (0, ["37", "91"]), done.stdout


def test_run_options_are_seen_inside_the_container(pallet_env: PalletEnv) -> None:
    out = pallet_env.ok(
        "run",
        "--rm",
        "-e",
        "GREETING=hi there",
        "-w",
        "/tmp",
        "-u",
        "nobody",
        "--hostname",
        "boxy",
        "busybox",
        "sh",
        "-c",
        'echo "$GREETING"; pwd; id -u; hostname',
    )
    assert out.splitlines() == ["hi there", "/tmp", "65534", "boxy"]


def test_read_only_root_refuses_writes(pallet_env: PalletEnv) -> None:
    done = pallet_env.pallet("run", "--rm", "--read-only", "busybox", "touch", "/newfile")
    assert done.returncode != 0
    assert "Read-only file system" in done.stderr


def test_pids_limit_is_the_containers_cgroup_limit(pallet_env: PalletEnv) -> None:
    cid = pallet_env.ok("run", "-d", "--pids-limit", "17", "busybox", "sleep", "30").strip()
    limit = next(p for p in ("/sys/fs/cgroup/pids/pallet", "/sys/fs/cgroup/pallet") if os.path.isdir(p))
    with open(f"{limit}/{cid}/pids.max") as f:
        assert f.read().strip() == "17"


def test_entrypoint_override_drops_the_image_cmd(pallet_env: PalletEnv) -> None:
    out = pallet_env.ok("run", "--rm", "--entrypoint", "echo", "busybox", "a", "b")
    assert out == "a b\n"


def test_detached_run_prints_the_id_and_ps_lists_it(pallet_env: PalletEnv) -> None:
    cid = pallet_env.ok(
        "run", "-d", "--name", "sleeper", "--label", "role=test", "busybox", "sleep", "60"
    ).strip()
    assert len(cid) == 64
    assert all(c in "0123456789abcdef" for c in cid)
    rows = [json.loads(line) for line in pallet_env.ok("ps", "--format", "json").splitlines()]
    assert [(r["ID"], r["Names"], r["State"], r["Labels"]) for r in rows] == [
        (cid[:12], "sleeper", "running", "role=test")
    ]
    assert pallet_env.ok("ps", "-q", "--no-trunc", "--filter", "label=role=test") == cid + "\n"
    assert pallet_env.ok("ps", "-q", "--filter", "label=role=other") == ""


def test_unknown_image_is_one_line_error_and_no_state(pallet_env: PalletEnv) -> None:
    done = pallet_env.pallet("run", "--rm", "busybx", "true")
    assert done.returncode == 125
    assert done.stderr.strip().splitlines() == [
        "pallet: Unable to find image 'busybx:latest' locally; pull it, load it or import it first"
    ]
    assert pallet_env.container_ids() == []
    # the shim started ahead of the container reads EOF and exits: nothing of this run stays
    deadline = time.monotonic() + 30
    while pallet_env.processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pallet_env.processes() == []


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--memory", "lots", 'invalid argument "lots" for "-m, --memory" flag'),
        ("--cpus", "x", 'invalid argument "x" for "--cpus" flag'),
        ("--restart", "sometimes", "sometimes"),
        ("--name", "no way", "Invalid container name (no way)"),
    ],
)
def test_bad_flag_values_exit_125_and_create_nothing(
    pallet_env: PalletEnv, flag: str, value: str, words: str
) -> None:
    done = pallet_env.pallet("run", "-d", flag, value, "busybox", "true")
    assert done.returncode == 125
    assert len(done.stderr.strip().splitlines()) == 1
    assert words in done.stderr
    assert pallet_env.container_ids() == []


def test_name_conflict_is_refused_with_dockers_words(pallet_env: PalletEnv) -> None:
    first = pallet_env.ok("create", "--name", "dup", "busybox", "true").strip()
    done = pallet_env.pallet("run", "-d", "--name", "dup", "busybox", "true")
    assert done.returncode == 125
    assert done.stderr.strip() == (
        f'pallet: the container name "/dup" is already in use by container "{first}". '
        "You have to remove (or rename) that container to be able to reuse that name."
    )
    assert pallet_env.container_ids() == [first]


def test_missing_command_exits_127(pallet_env: PalletEnv) -> None:
    done = pallet_env.pallet("run", "--rm", "busybox", "no-such-command")
    assert done.returncode == 127
    assert pallet_env.container_ids() == []


def test_a_command_that_cannot_be_run_exits_126_and_an_engine_failure_125(pallet_env: PalletEnv) -> None:
    done = pallet_env.pallet("run", "--rm", "busybox", "/etc/passwd")  # a file, not executable
    assert done.returncode == 126, done.stderr
    assert "permission denied" in done.stderr
    done = pallet_env.pallet("run", "--rm", "busybox-missing-image", "true")
    assert done.returncode == 125
    assert pallet_env.container_ids() == []


def test_run_interactive_pipes_stdin_to_the_container(pallet_env: PalletEnv) -> None:
    done = pallet_env.pallet(
        "run", "-i", "--rm", "busybox", "sh", "-c", "tr a-z A-Z; exit 3", input=b"piped in\n"
    )
    assert (done.returncode, done.stdout) == (3, "PIPED IN\n")


def test_detached_rm_container_removes_itself_and_wait_reports_its_status(pallet_env: PalletEnv) -> None:
    cid = pallet_env.ok("run", "-d", "--rm", "busybox", "sh", "-c", "sleep 1; exit 3").strip()
    assert pallet_env.ok("wait", cid) == "3\n"
    deadline = time.monotonic() + 60
    # the shim's exit command (``pallet rm``) removes it once it exited
    while (pallet_env.container_ids() or pallet_env.processes()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pallet_env.container_ids() == []
    assert pallet_env.leftovers([cid]) == {}


def test_run_with_a_terminal_gives_the_container_a_tty(pallet_env: PalletEnv) -> None:
    # script(1) gives pallet a terminal, as a user's shell would
    command = " ".join(
        pallet_env.argv("run", "--rm", "-it", "busybox", "sh", "-c", "'tty; echo in-tty; exit 2'")
    )
    done = subprocess.run(
        ["script", "-qec", command, "/dev/null"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert done.stdout.replace("\r", "").splitlines()[-2:] == ["/dev/pts/0", "in-tty"]


def test_a_generated_name_taken_meanwhile_is_drawn_again(
    pallet_env: PalletEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pallet.engine.containers import names
    from pallet.engine.containers.lifecycle import Engine
    from pallet.engine.spec.options import ProcessOptions, RunOptions

    pallet_env.ok("create", "--name", "taken_name", "busybox", "true")
    drawn = iter(["taken_name", "fresh_name"])
    # as if a concurrent create took the name between the check and the insert
    monkeypatch.setattr(names, "generate_name", lambda taken, **_: next(drawn))
    with Engine.open(pallet_env.root, pallet_env.run_root) as engine:
        record = engine.create("busybox", RunOptions(process=ProcessOptions(cmd=("true",))))
    assert record.name == "fresh_name"
    assert sorted(pallet_env.ok("ps", "-a", "--format", "{{.Names}}").split()) == ["fresh_name", "taken_name"]


def test_ctrl_p_ctrl_q_detaches_a_terminal_run_and_the_container_runs_on(pallet_env: PalletEnv) -> None:
    import pty
    import select

    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        pallet_env.argv("run", "-it", "--name", "detachable", "busybox", "sh", "-c", "echo ready; sleep 300"),
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        start_new_session=True,
    )
    os.close(secondary)
    try:
        seen = b""
        deadline = time.monotonic() + 60
        while b"ready" not in seen and time.monotonic() < deadline:
            if select.select([primary], [], [], 1)[0]:
                seen += os.read(primary, 4096)
        assert b"ready" in seen
        os.write(primary, b"\x10\x11")  # docker's detach keys
        assert proc.wait(timeout=60) == 0
        assert pallet_env.ok("ps", "--format", "{{.Names}}").split() == ["detachable"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)
        pallet_env.pallet("rm", "-f", "detachable")


@pytest.mark.parametrize("runtime", ["pallet-runtime", "runc", "crun"])
@pytest.mark.usefixtures("crun_ready")
def test_the_default_seccomp_profile_refuses_unshare_with_every_runtime(
    pallet_env: PalletEnv, runtime: str
) -> None:
    # crun gets the filter compiled by pallet (run.oci.seccomp_bpf_data): it must refuse the same
    done = pallet_env.pallet(
        "create", "--name", f"sec-{runtime}", "--runtime", runtime, "busybox", "unshare", "-U", "true"
    )
    assert done.returncode == 0, done.stderr
    config = json.loads(
        (pallet_env.root / "containers" / done.stdout.strip() / "bundle" / "config.json").read_text()
    )
    has_bpf = "run.oci.seccomp_bpf_data" in config.get("annotations", {})
    assert has_bpf == (runtime == "crun")
    started = pallet_env.pallet("start", "-a", f"sec-{runtime}")
    assert started.returncode == 1
    assert "Operation not permitted" in started.stderr


def _sigint_when_ready(pallet_env: PalletEnv, *args: str) -> tuple[int, str, str]:
    """Run ``pallet ARGS`` (a container that prints ``ready`` first), SIGINT the command once the
    container is ready; its exit status and the rest of its output."""
    proc = subprocess.Popen(pallet_env.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def test_a_signal_to_a_foreground_run_reaches_the_container(pallet_env: PalletEnv) -> None:
    # docker's --sig-proxy: ctrl-c (SIGINT) of `pallet run` goes to the container, which decides
    script = 'trap "echo got-int; exit 3" INT; echo ready; while :; do sleep 0.1; done'
    code, out, err = _sigint_when_ready(pallet_env, "run", "--rm", "busybox", "sh", "-c", script)
    assert (code, out) == (3, "got-int\n"), err


def test_sig_proxy_false_leaves_the_signal_to_pallet(pallet_env: PalletEnv) -> None:
    try:
        code, _, err = _sigint_when_ready(
            pallet_env,
            "run",
            "--sig-proxy=false",
            "--name",
            "unproxied",
            "busybox",
            "sh",
            "-c",
            "echo ready; sleep 300",
        )
        assert code == 130, err  # the command ends; the container runs on, as with docker
        assert pallet_env.ok("inspect", "-f", "{{.State.Status}}", "unproxied") == "running\n"
    finally:
        pallet_env.pallet("rm", "-f", "unproxied")
