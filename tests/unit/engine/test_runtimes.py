"""The OCI runtime CLI client against a fake runtime: argv as containerd passes it, errors from the JSON log."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pallet.engine.runtimes import (
    Runtime,
    RuntimeFailed,
    create_args,
    error_from_log,
    runtime_root,
    select_runtime,
)
from pallet.errors import (
    CommandNotExecutable,
    CommandNotFound,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
    exit_code_of,
)

# A runc stand-in: records its argv, its stdin for update; fails as runc (level first) or crun (msg first) do.
FAKE = r"""#!/bin/sh
echo "$*" >> "$FAKE_ARGV"
log=""; prev=""; pidfile=""
for a in "$@"; do
  [ "$prev" = "--log" ] && log="$a"
  [ "$prev" = "--pid-file" ] && pidfile="$a"
  prev="$a"
done
for id in "$@"; do :; done
case "$*" in
  *" state "*) echo '{"ociVersion":"1.0.2","id":"'$id'","pid":77,"status":"running"}' ;;
  *" ps "*) echo '[77,78]' ;;
  *" create "*) printf 1234 > "$pidfile"; echo "runtime output goes to the container's stdout" ;;
  *" update "*) cat > "$FAKE_ARGV.stdin" ;;
  *" kill "*gone*) echo '{"level":"error","msg":"container does not exist","time":"2026-01-01T00:00:00Z"}' > "$log"; exit 1 ;;
  *" start "*badexec*)
    echo '{"level":"info","msg":"starting","time":"2026-01-01T00:00:00Z"}' > "$log"
    echo '{"msg":"exec: \"nope\": executable file not found in $PATH","level":"error","time":"2026-01-01T00:00:00Z"}' >> "$log"
    exit 1 ;;
  *" start "*noperm*) echo '{"msg":"exec /etc/passwd: permission denied","level":"error"}' > "$log"; exit 1 ;;
  *" pause "*denied*) echo '{"msg":"open freezer.state: permission denied","level":"error"}' > "$log"; exit 1 ;;
  *" delete "*running*) echo 'cannot delete container running that is not stopped: running' >&2; exit 1 ;;
  *" exec "*--detach*) ;;
  *" exec "*) exit 5 ;;
  *" pause "*) echo "not json" > "$log"; echo "pause: freezer is gone" >&2; exit 1 ;;
esac
exit 0
"""


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    path = tmp_path / "fakerunc"
    path.write_text(FAKE)
    path.chmod(0o755)
    monkeypatch.setenv("FAKE_ARGV", str(tmp_path / "argv"))
    return Runtime(name="fakerunc", path=str(path), root=str(tmp_path / "state"), args=("--debug",))


def argv_lines(tmp_path: Path) -> list[list[str]]:
    return [line.split() for line in (tmp_path / "argv").read_text().splitlines()]


def test_global_flags_come_first_and_the_id_last(fake: Runtime, tmp_path: Path) -> None:
    fake.start("c1")
    fake.kill("c1", 9, all_processes=True)
    fake.delete("c1", force=True)
    calls = argv_lines(tmp_path)
    for call in calls:
        assert call[:3] == ["--debug", "--root", str(tmp_path / "state")]
        assert call[3] == "--log"
        assert call[5:7] == ["--log-format", "json"]
    assert [c[7:] for c in calls] == [
        ["start", "c1"],
        ["kill", "--all", "c1", "9"],
        ["delete", "--force", "c1"],
    ]


def test_per_call_log_files_are_removed(fake: Runtime, tmp_path: Path) -> None:
    fake.start("c1")
    with pytest.raises(NotFound):
        fake.kill("gone", 15)
    # what stays is the null device stdio gets in place of the host's /dev/null
    assert [name for name in os.listdir(tmp_path / "state.log") if name != "null"] == []


def test_create_passes_stdio_and_returns_the_pid_file(fake: Runtime, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with open(out, "wb") as f:
        pid = fake.create("c1", "/b", str(tmp_path / "init.pid"), stdio=(0, f.fileno(), f.fileno()))
    assert pid == 1234
    assert out.read_text() == "runtime output goes to the container's stdout\n"
    assert argv_lines(tmp_path)[0][7:] == [
        "create",
        "--bundle",
        "/b",
        "--pid-file",
        str(tmp_path / "init.pid"),
        "c1",
    ]


def test_console_socket_is_passed_to_create(fake: Runtime, tmp_path: Path) -> None:
    fake.create("c1", "/b", str(tmp_path / "init.pid"), console_socket="/run/x/console.sock")
    assert "--console-socket /run/x/console.sock c1" in " ".join(argv_lines(tmp_path)[0])


def test_state_and_ps_parse_the_runtimes_json(fake: Runtime) -> None:
    assert fake.state("c1")["status"] == "running"
    assert fake.ps("c1") == [77, 78]


def test_update_sends_resources_on_stdin(fake: Runtime, tmp_path: Path) -> None:
    fake.update("c1", {"pids": {"limit": 10}})
    assert json.loads((tmp_path / "argv.stdin").read_text()) == {"pids": {"limit": 10}}
    assert argv_lines(tmp_path)[0][7:] == ["update", "--resources", "-", "c1"]


def test_error_is_the_last_error_line_of_the_json_log_in_the_runtimes_words(fake: Runtime) -> None:
    # the runtime's words are all an engine gets: a program not found at start is docker's 127
    with pytest.raises(CommandNotFound) as failed:
        fake.start("badexec")
    assert str(failed.value) == 'OCI runtime start failed: exec: "nope": executable file not found in $PATH'
    assert exit_code_of(failed.value, 125) == 127


def test_a_program_that_cannot_be_run_is_126_only_when_something_starts(fake: Runtime) -> None:
    with pytest.raises(CommandNotExecutable) as failed:
        fake.start("noperm")
    assert exit_code_of(failed.value, 125) == 126
    with pytest.raises(RuntimeFailed, match=r"freezer\.state: permission denied"):
        fake.pause("denied")


def test_missing_container_is_not_found(fake: Runtime) -> None:
    with pytest.raises(NotFound, match="container does not exist"):
        fake.kill("gone", 15)


def test_stderr_is_the_error_when_the_log_has_none(fake: Runtime) -> None:
    with pytest.raises(FailedPrecondition, match="that is not stopped: running"):
        fake.delete("running")
    with pytest.raises(RuntimeFailed, match="freezer is gone"):
        fake.pause("c1")


def test_error_from_log_skips_lines_that_are_not_json(tmp_path: Path) -> None:
    log = tmp_path / "log.json"
    log.write_text(
        '{"level":"error","msg":"first"}\ngarbage\n{"level":"warning","msg":"w"}\n{"msg":"last","level":"error"}\n'
    )
    assert error_from_log(str(log)) == "last"
    assert error_from_log(str(tmp_path / "missing")) == ""


def test_exec_detached_writes_the_process_file_and_removes_it(fake: Runtime, tmp_path: Path) -> None:
    pid_file = tmp_path / "exec.pid"
    pid_file.write_text("99")
    assert fake.exec_detached("c1", {"args": ["sh"], "cwd": "/", "terminal": True}, str(pid_file)) == 99
    call = argv_lines(tmp_path)[0][7:]
    assert call[0:2] == ["exec", "--process"]
    assert call[3:] == ["--tty", "--detach", "--pid-file", str(pid_file), "c1"]
    assert not Path(call[2]).exists()


def test_unstartable_runtime_is_unavailable(tmp_path: Path) -> None:
    runtime = Runtime(name="ghost", path=str(tmp_path / "ghost"), root=str(tmp_path / "r"))
    with pytest.raises(Unavailable, match='OCI runtime "ghost" cannot be started'):
        runtime.start("c1")


def test_default_runtime_is_pallet_runtime_under_the_run_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("pallet-runtime", "crun"):
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr("sys.executable", str(tmp_path / "nowhere" / "python"))
    chosen = select_runtime(None, root=str(tmp_path), run_root="/run/p")
    assert (chosen.name, chosen.path, chosen.root) == (
        "pallet-runtime",
        str(bin_dir / "pallet-runtime"),
        "/run/p/runtimes/pallet-runtime",
    )
    assert select_runtime("crun", root=str(tmp_path), run_root="/run/p").path == str(bin_dir / "crun")
    assert runtime_root("/run/p", "crun") == "/run/p/runtimes/crun"


def test_config_file_adds_runtimes_and_sets_the_default(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        'default-runtime = "mine"\n[runtimes.mine]\npath = "/bin/true"\nruntimeArgs = ["--x"]\n'
    )
    chosen = select_runtime(None, root=str(tmp_path), run_root="/run/p")
    assert (chosen.name, chosen.path, chosen.args) == ("mine", "/bin/true", ("--x",))
    assert select_runtime("mine", root=str(tmp_path), run_root="/run/p").root == "/run/p/runtimes/mine"


def test_unknown_runtime_name_is_dockers_error_listing_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[runtimes.mine]\npath = "/bin/true"\n')
    with pytest.raises(InvalidArgument) as caught:
        select_runtime("kata", root=str(tmp_path), run_root="/run/p")
    assert caught.value.message == (
        "unknown or invalid runtime name: kata (known runtimes: crun, mine, pallet-runtime, runc, runsc; "
        f"register others under [runtimes] in {tmp_path}/config.toml)"
    )


def test_known_runtime_that_is_not_installed_says_how_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))
    with pytest.raises(Unavailable) as caught:
        select_runtime("runsc", root=str(tmp_path), run_root="/run/p")
    assert caught.value.message == (
        'OCI runtime "runsc" is not installed: runsc not found; apt-get install runsc '
        f"or set its path in {tmp_path}/config.toml"
    )


@pytest.mark.parametrize(
    ("namespace", "added"),
    [
        ({"type": "network"}, ("--network=none",)),
        ({"type": "network", "path": "/run/netns/x"}, ()),
        (None, ("--network=host",)),
    ],
)
def test_runsc_gets_the_network_mode_of_the_bundles_namespace(
    tmp_path: Path, namespace: dict[str, str] | None, added: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pallet.engine.runtimes._runsc_releases", {"/usr/bin/runsc": 20250101})
    namespaces = [{"type": "pid"}, *([namespace] if namespace else [])]
    (tmp_path / "config.json").write_text(json.dumps({"linux": {"namespaces": namespaces}}))
    runsc = Runtime(name="runsc", path="/usr/bin/runsc", root="/r", args=("--debug",))
    assert create_args(runsc, str(tmp_path)) == ("--debug", *added)
    runc = Runtime(name="runc", path="/usr/bin/runc", root="/r", args=("--debug",))
    assert create_args(runc, str(tmp_path)) == ("--debug",)
    chosen = Runtime(name="g", path="/usr/bin/runsc", root="/r", args=("--network=host",))
    assert create_args(chosen, str(tmp_path)) == ("--network=host",)


def test_an_old_runsc_uses_its_host_mode_inside_a_namespace_given_by_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "runsc"
    script.write_text("#!/bin/sh\necho 'runsc version 0.0~20221219.0'\n")
    script.chmod(0o755)
    monkeypatch.setattr("pallet.engine.runtimes._runsc_releases", {})
    (tmp_path / "config.json").write_text(
        json.dumps({"linux": {"namespaces": [{"type": "network", "path": "/run/netns/x"}]}})
    )
    runsc = Runtime(name="runsc", path=str(script), root="/r")
    assert create_args(runsc, str(tmp_path)) == ("--network=host",)


def test_foreground_exec_returns_the_process_status(fake: Runtime, tmp_path: Path) -> None:
    assert fake.exec_wait("c1", {"args": ["false"], "cwd": "/"}) == 5
    assert argv_lines(tmp_path)[0][7:9] == ["exec", "--process"]
