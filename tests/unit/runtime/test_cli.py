"""The runc-style command line parser of pallet-runtime."""

from __future__ import annotations

import pytest

from pallet.errors import InvalidArgument
from pallet.runtime.cli import main, parse


def test_containerd_create_line_is_parsed() -> None:
    p = parse(
        [
            "--root",
            "/r/ns",
            "--log",
            "/b/log.json",
            "--log-format",
            "json",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/b/init.pid",
            "c1",
        ]
    )
    assert p.globals == {"root": "/r/ns", "log": "/b/log.json", "log-format": "json"}
    assert (p.command, p.flags, p.args) == ("create", {"bundle": "/b", "pid-file": "/b/init.pid"}, ["c1"])


def test_equals_single_dash_and_short_aliases_are_accepted() -> None:
    p = parse(
        ["--log-format=json", "-log", "/l", "--systemd-cgroup", "run", "-b=/b", "-d", "--no-pivot=true", "x"]
    )
    assert p.globals == {"log-format": "json", "log": "/l", "systemd-cgroup": True}
    assert p.flags == {"bundle": "/b", "detach": True, "no-pivot": True}
    assert p.args == ["x"]


def test_kill_takes_the_signal_after_the_id() -> None:
    p = parse(["kill", "--all", "c1", "9"])
    assert (p.flags, p.args) == ({"all": True}, ["c1", "9"])


def test_unknown_flags_and_missing_values_are_errors() -> None:
    with pytest.raises(InvalidArgument, match="flag provided but not defined: -bogus"):
        parse(["create", "--bogus", "x"])
    with pytest.raises(InvalidArgument, match="flag needs an argument: -bundle"):
        parse(["create", "x", "--bundle"])
    with pytest.raises(InvalidArgument, match="requires 1 argument"):
        parse(["start"])


def test_version_prints_runc_layout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("pallet-runtime version ")
    assert lines[2] == "spec: 1.2.0"


def test_errors_exit_1_with_the_message_on_stderr_and_in_the_log(
    tmp_path: object, capfd: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    log = Path(str(tmp_path)) / "log.json"
    assert main(["--root", str(tmp_path), "--log", str(log), "--log-format", "json", "state", "nope"]) == 1
    assert 'container "nope" does not exist' in capfd.readouterr().err
    assert '"level":"error","msg":"container \\"nope\\" does not exist"' in log.read_text()


def test_checkpoint_and_restore_are_refused_as_not_supported(capfd: pytest.CaptureFixture[str]) -> None:
    for command in ("checkpoint", "restore"):
        assert main(["--root", "/nonexistent", command, "x"]) == 1
        assert f"{command} is not supported by pallet-runtime" in capfd.readouterr().err


def test_podman_exec_line_keeps_the_program_arguments_unparsed() -> None:
    p = parse(
        ["--log-format=json", "--log", "/l", "exec", "--pid-file", "/p", "--process", "/proc.json", "--detach",
         "--tty", "--console-socket", "/s", "c1"]
    )  # fmt: skip
    assert p.flags == {
        "pid-file": "/p",
        "process": "/proc.json",
        "detach": True,
        "tty": True,
        "console-socket": "/s",
    }
    assert p.args == ["c1"]
    q = parse(
        ["exec", "-e", "A=1", "--env=B=2", "-u", "7:8", "-g", "5", "-g", "6", "c1", "sh", "-c", "echo -n x"]
    )
    assert q.flags == {"env": "A=1\0B=2", "user": "7:8", "additional-gids": "5\x006"}
    assert q.args == ["c1", "sh", "-c", "echo -n x"]


def test_exec_without_a_program_or_process_file_is_refused(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", "/nonexistent", "exec", "c1"]) == 1
    assert "--process file or the program's arguments" in capfd.readouterr().err


def test_ps_arguments_after_the_id_go_to_ps() -> None:
    p = parse(["ps", "--format", "json", "c1", "--", "-o", "pid"])
    assert (p.flags, p.args) == ({"format": "json"}, ["c1", "--", "-o", "pid"])


def test_update_takes_runc_flags_and_a_resources_file() -> None:
    p = parse(["update", "--resources", "-", "--memory", "64m", "--pids-limit=9", "c1"])
    assert p.flags == {"resources": "-", "memory": "64m", "pids-limit": "9"}
    assert p.args == ["c1"]


def test_a_bug_ends_as_one_error_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from pallet.runtime import cli

    def broken(parsed: object, log: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "_dispatch", broken)
    assert main(["state", "x"]) == 1
    err = capfd.readouterr().err
    assert err == "internal error in pallet-runtime: RuntimeError: boom\n"


def test_preload_loads_the_working_set_of_the_container_verbs() -> None:
    # the shim preloads these before a foreground run: a renamed module must fail here, not there
    import subprocess
    import sys

    code = (
        "import sys; from pallet.runtime.cli import _WORKING_SET, preload; preload(); "
        "missing = [m for m in _WORKING_SET if m not in sys.modules]; print(missing)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n"
