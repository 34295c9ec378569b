"""The docker 28 CLI drives containers through ``pallet system service``: run, logs, exec, ps, inspect,
stop/kill/wait/rm, cp, top, stats, rename, pause. Each test asserts what the user sees."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import ApiService

pytestmark = pytest.mark.root


@pytest.fixture
def api(api: ApiService) -> ApiService:
    """The conftest's service, for tests that need the docker CLI."""
    api.need_docker()
    return api


def _wait_for(predicate, what: str, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_run_rm_prints_the_output_exits_with_the_status_and_leaves_nothing(api: ApiService) -> None:
    done = api.docker("run", "--rm", "busybox", "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3")
    assert done.returncode == 3
    assert done.stdout == "to-stdout\n"
    assert done.stderr == "to-stderr\n"
    assert api.docker_ok("ps", "-aq") == ""
    assert api.env.container_ids() == []


def test_run_with_stdin_pipes_it_through(api: ApiService) -> None:
    done = api.docker("run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done >&2", input=b"a\nb\n")
    assert (done.returncode, done.stdout, done.stderr) == (0, "a\nb\n", "done\n")


def test_run_of_a_missing_command_is_127_and_nothing_is_left(api: ApiService) -> None:
    done = api.docker("run", "--rm", "busybox", "no-such-command")
    assert done.returncode == 127
    assert "no-such-command" in done.stderr
    assert api.docker_ok("ps", "-aq") == ""


def test_run_detached_shows_in_ps_with_filters_and_format_and_in_pallet_ps(api: ApiService) -> None:
    cid = api.docker_ok(
        "run", "-d", "--name", "web", "--label", "tier=front", "busybox", "sleep", "300"
    ).strip()
    api.docker_ok("create", "--name", "idle", "busybox", "true")
    assert api.docker_ok("ps", "--format", "{{.Names}} {{.Image}}") == "web busybox\n"
    assert api.docker_ok("ps", "-a", "--filter", "status=created", "--format", "{{.Names}}") == "idle\n"
    assert api.docker_ok("ps", "--filter", "label=tier=front", "-q", "--no-trunc") == f"{cid}\n"
    assert api.docker_ok("ps", "-a", "--filter", "name=nothing", "-q") == ""
    # one store, two front doors
    assert "web" in api.env.ok("ps", "--format", "{{.Names}}")
    api.env.ok("run", "-d", "--name", "from-cli", "busybox", "sleep", "300")
    assert "from-cli" in api.docker_ok("ps", "--format", "{{.Names}}").split()


def test_inspect_gives_dockers_document(api: ApiService) -> None:
    api.docker_ok("run", "-d", "--name", "web", "-e", "A=1", "busybox", "sleep", "300")
    doc = json.loads(api.docker_ok("inspect", "web"))[0]
    assert doc["Name"] == "/web"
    assert doc["State"]["Running"] is True
    assert "A=1" in doc["Config"]["Env"]
    assert api.docker_ok("inspect", "-f", "{{.State.Status}}", "web") == "running\n"
    missing = api.docker("inspect", "nothing-here")
    assert missing.returncode == 1
    assert "No such" in missing.stderr


def test_logs_and_logs_follow(api: ApiService) -> None:
    api.docker_ok(
        "run", "-d", "--name", "ticker", "busybox", "sh", "-c", "echo one; echo two >&2; sleep 2; echo three"
    )
    follow = subprocess.run(
        ["/usr/local/bin/docker", "logs", "-f", "ticker"],
        capture_output=True,
        text=True,
        timeout=60,
        env=api.docker_env(),
        check=False,
    )
    assert follow.returncode == 0
    assert follow.stdout == "one\nthree\n"
    assert follow.stderr == "two\n"
    assert api.docker_ok("logs", "--tail", "1", "ticker") == "three\n"
    stamped = api.docker_ok("logs", "-t", "ticker").splitlines()
    assert stamped[0].endswith(" one")
    assert stamped[0][:4].isdigit()


def test_exec_runs_in_the_container_with_stdin_and_status(api: ApiService) -> None:
    api.docker_ok("run", "-d", "--name", "box", "busybox", "sleep", "300")
    assert api.docker_ok("exec", "box", "sh", "-c", "echo $((6*7))") == "42\n"
    piped = api.docker("exec", "-i", "box", "cat", input=b"piped-stdin\n")
    assert (piped.returncode, piped.stdout) == (0, "piped-stdin\n")
    failed = api.docker("exec", "box", "sh", "-c", "echo err >&2; exit 7")
    assert (failed.returncode, failed.stderr) == (7, "err\n")
    api.docker_ok("exec", "-d", "box", "sh", "-c", "echo made > /tmp/flag")
    _wait_for(lambda: api.docker("exec", "box", "cat", "/tmp/flag").stdout == "made\n", "the detached exec")
    api.docker_ok("stop", "-t", "1", "box")
    stopped = api.docker("exec", "box", "true")
    assert stopped.returncode != 0
    assert "is not running" in stopped.stderr


def test_stop_kill_wait_rm(api: ApiService) -> None:
    api.docker_ok("run", "-d", "--name", "sa", "busybox", "sleep", "300")
    api.docker_ok("run", "-d", "--name", "sb", "busybox", "sh", "-c", "trap 'exit 0' TERM; sleep 300 & wait")
    api.docker_ok("run", "-d", "--name", "sc", "busybox", "sh", "-c", "exit 3")
    assert api.docker_ok("wait", "sc") == "3\n"
    api.docker_ok("kill", "sa")
    assert api.docker_ok("wait", "sa") == "137\n"
    assert api.docker_ok("stop", "sb") == "sb\n"
    assert api.docker_ok("inspect", "-f", "{{.State.ExitCode}}", "sb") == "0\n"
    assert api.docker_ok("stop", "sb") == "sb\n"  # already stopped: docker's 304, still success
    api.docker_ok("start", "sa")
    busy = api.docker("rm", "sa")
    assert busy.returncode != 0
    assert "container is running" in busy.stderr
    api.docker_ok("rm", "-f", "sa")
    api.docker_ok("rm", "sb", "sc")
    assert api.docker_ok("ps", "-aq") == ""


def test_cp_both_ways(api: ApiService, tmp_path: Path) -> None:
    api.docker_ok("create", "--name", "cpbox", "busybox", "cat", "/tmp/hostfile.txt")
    source = tmp_path / "hostfile.txt"
    source.write_text("from-host\n")
    api.docker_ok("cp", str(source), "cpbox:/tmp/hostfile.txt")
    assert api.docker_ok("start", "-a", "cpbox") == "from-host\n"
    out = tmp_path / "out"
    out.mkdir()
    api.docker_ok("cp", "cpbox:/etc/passwd", str(out))
    assert (out / "passwd").read_text().startswith("root:")
    api.docker_ok("cp", "cpbox:/etc", str(out / "etc"))
    assert (out / "etc" / "group").exists()
    missing = api.docker("cp", "cpbox:/no/such/file", str(out))
    assert missing.returncode != 0
    assert "no such file" in missing.stderr.lower() or "could not find" in missing.stderr.lower()


def test_top_stats_rename_pause_unpause_diff(api: ApiService) -> None:
    api.docker_ok("run", "-d", "--name", "web", "busybox", "sh", "-c", "touch /made; sleep 300")
    top = api.docker_ok("top", "web")
    assert "PID" in top.splitlines()[0]
    assert "sleep 300" in top
    stats = api.docker_ok("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "web")
    assert stats.split()[0] == "web"
    assert int(stats.split()[1]) >= 1
    api.docker_ok("rename", "web", "web2")
    assert api.docker_ok("ps", "--format", "{{.Names}}") == "web2\n"
    api.docker_ok("pause", "web2")
    assert api.docker_ok("inspect", "-f", "{{.State.Status}}", "web2") == "paused\n"
    assert "(Paused)" in api.docker_ok("ps", "--format", "{{.Status}}")
    api.docker_ok("unpause", "web2")
    assert api.docker_ok("inspect", "-f", "{{.State.Status}}", "web2") == "running\n"
    _wait_for(lambda: "A /made" in api.docker_ok("diff", "web2"), "the new file in diff")


def test_restart_and_prune(api: ApiService) -> None:
    api.docker_ok("run", "-d", "--name", "rr", "busybox", "sleep", "300")
    pid = api.docker_ok("inspect", "-f", "{{.State.Pid}}", "rr")
    api.docker_ok("restart", "-t", "1", "rr")
    assert api.docker_ok("inspect", "-f", "{{.State.Pid}}", "rr") != pid
    api.docker_ok("run", "--name", "done", "busybox", "true")
    pruned = api.docker_ok("container", "prune", "-f")
    assert "Deleted Containers" in pruned
    assert api.docker_ok("ps", "-a", "--format", "{{.Names}}") == "rr\n"


def test_export_is_the_containers_root_filesystem(api: ApiService, tmp_path: Path) -> None:
    api.docker_ok("create", "--name", "xx", "busybox", "true")
    archive = tmp_path / "x.tar"
    api.docker_ok("export", "-o", str(archive), "xx")
    names = subprocess.run(["tar", "tf", str(archive)], capture_output=True, text=True, check=True).stdout
    assert "bin/busybox" in names.split()


def test_a_tty_containers_logs_are_raw_and_start_a_streams_and_returns_the_status(api: ApiService) -> None:
    api.docker_ok(
        "run", "-d", "-t", "--name", "tt", "busybox", "sh", "-c", "echo out; echo err >&2; sleep 300"
    )
    _wait_for(lambda: "err" in api.docker_ok("logs", "tt"), "the tty's output")
    # one raw stream (frame headers would show as bytes here), the terminal's line ends
    assert api.docker_ok("logs", "tt").splitlines() == ["out", "err"]
    assert api.docker_ok("logs", "--since", "2100-01-01T00:00:00Z", "tt") == ""
    api.docker_ok("create", "--name", "sa1", "busybox", "sh", "-c", "echo started-attached; exit 2")
    done = api.docker("start", "-a", "sa1")
    assert (done.returncode, done.stdout) == (2, "started-attached\n")


def test_stats_documents_carry_precpu_and_one_shot_does_not(api: ApiService) -> None:
    cid = api.docker_ok("run", "-d", "busybox", "sh", "-c", "while true; do :; done").strip()
    doc = api.json("GET", f"/containers/{cid}/stats?stream=0")
    assert doc["id"] == cid
    assert doc["cpu_stats"]["cpu_usage"]["total_usage"] > doc["precpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert doc["cpu_stats"]["system_cpu_usage"] > doc["precpu_stats"]["system_cpu_usage"]
    assert doc["memory_stats"]["usage"] > 0
    assert doc["pids_stats"]["current"] >= 1
    one = api.json("GET", f"/containers/{cid}/stats?stream=0&one-shot=1")
    assert one["precpu_stats"]["cpu_usage"]["total_usage"] == 0
    assert one["cpu_stats"]["cpu_usage"]["total_usage"] > 0


def test_archive_head_states_the_path_and_exec_inspect_reports_the_exit(api: ApiService) -> None:
    import base64

    cid = api.docker_ok(
        "run", "-d", "busybox", "sh", "-c", "touch -d '2001-02-03 04:05:06' /tmp/t; sleep 300"
    )
    cid = cid.strip()
    status, headers, _ = api.request("HEAD", f"/containers/{cid}/archive?path=/etc")
    assert status == 200
    stat = json.loads(base64.b64decode(headers["X-Docker-Container-Path-Stat"]))
    assert stat["name"] == "etc"
    assert stat["mode"] & (1 << 31)  # Go's os.ModeDir
    deadline = time.monotonic() + 30
    while True:  # the file's time, as docker's PathStat gives it
        status, headers, _ = api.request("HEAD", f"/containers/{cid}/archive?path=/tmp/t")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    stat = json.loads(base64.b64decode(headers["X-Docker-Container-Path-Stat"]))
    assert stat["mtime"].startswith("2001-02-03T04:05:06")
    assert api.request("HEAD", f"/containers/{cid}/archive?path=/nothing")[0] == 404
    exec_id = api.json(
        "POST", f"/containers/{cid}/exec", {"Cmd": ["sh", "-c", "exit 9"], "AttachStdout": True}
    )["Id"]
    assert api.request("POST", f"/exec/{exec_id}/start", {"Detach": True})[0] == 200
    _wait_for(lambda: api.json("GET", f"/exec/{exec_id}/json")["ExitCode"] == 9, "the exec's exit")
    assert api.json("GET", f"/exec/{exec_id}/json")["Running"] is False
    assert api.request("POST", f"/exec/{exec_id}/start", {"Detach": True})[0] == 409
    assert api.request("GET", "/exec/nothing/json")[0] == 404


def test_network_fields_of_create_reach_the_container(api: ApiService) -> None:
    out = api.docker_ok(
        "run", "--rm", "--dns", "127.0.0.9", "--add-host", "foo:127.0.0.7", "busybox",
        "sh", "-c", "grep nameserver /etc/resolv.conf; grep foo /etc/hosts",
    )  # fmt: skip
    assert out.split() == ["nameserver", "127.0.0.9", "127.0.0.7", "foo"]
    none = api.docker_ok("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in none.splitlines()] == ["lo"]
