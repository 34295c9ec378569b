"""``pallet run``/``create`` flags into ``RunOptions``: docker's flag words on errors the parsers
and checks raise in their own (field and syntax) words; nothing is made before they pass."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pallet.cli.main import CommandParser, main
from pallet.cli.run_flags import options_from_args
from pallet.engine.spec.options import RunOptions
from pallet.engine.spec.syntax import NetworkMode
from pallet.errors import InvalidArgument


def run_cli(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["--root", str(tmp_path / "root"), "--run-root", str(tmp_path / "run"), *args],
        out=out,
        err=err,
        stdin=io.BytesIO(),
        stdout_binary=io.BytesIO(),
    )
    return code, out.getvalue(), err.getvalue()


def parse_run(*args: str) -> RunOptions:
    from pallet.cli.containers import configure_run

    parser = CommandParser("run")
    configure_run(parser)
    return options_from_args(parser.parse_args(list(args)))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--memory", "lots"], 'invalid argument "lots" for "-m, --memory" flag: invalid size: "lots"'),
        (["--stop-timeout", "soon"], 'invalid argument "soon" for "--stop-timeout" flag'),
        (["--rm", "--restart", "always"], "Conflicting options: --restart and --rm"),
        (["-v", "data:path"], "mount path must be absolute"),
        (["-p", "80000:80"], 'invalid argument "80000:80" for "-p, --publish" flag: invalid host port'),
        (["--dns", "resolver"], 'invalid argument "resolver" for "--dns" flag: invalid IP address'),
        (["--add-host", "web"], 'invalid argument "web" for "--add-host" flag'),
        (["--ip", "10.1.1.300"], 'invalid argument "10.1.1.300" for "--ip" flag'),
        (["--network-alias", "a", "busybox2"], "only supported for user-defined networks"),
    ],
)
def test_bad_run_flags_exit_125_before_any_state_is_made(tmp_path: Path, args: list[str], words: str) -> None:
    code, out, err = run_cli(tmp_path, "run", *args, "busybox", "true")
    assert code == 125
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert words in err
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--cpus", "x"], 'invalid argument "x" for "--cpus" flag: failed to parse x as a rational number'),
        (["--memory-swap", "1q"], 'invalid argument "1q" for "--memory-swap" flag: invalid size'),
        (["--shm-size", "big"], 'invalid argument "big" for "--shm-size" flag: invalid size'),
        (["--ulimit", "nofile"], 'invalid argument "nofile" for "--ulimit" flag: invalid ulimit argument'),
        (["--cap-add", "fly"], 'invalid argument "fly" for "--cap-add" flag: unknown capability'),
        (["--cap-drop", "fly"], 'invalid argument "fly" for "--cap-drop" flag: unknown capability'),
        (["--device", "dev/x"], 'invalid argument "dev/x" for "--device" flag: bad format for path'),
        (
            ["--sysctl", "kernel.hostname=x"],
            'for "--sysctl" flag: sysctl "kernel.hostname" is not namespaced',
        ),
        (["--restart", "sometimes"], 'invalid argument "sometimes" for "--restart" flag'),
        (["--log-opt", "max-file=0"], 'for "--log-opt" flag: max-file cannot be less than 1'),
        (["-c", "lots"], 'invalid argument "lots" for "-c, --cpu-shares" flag'),
        (["--stop-signal", "SIGFOO"], 'invalid argument "SIGFOO" for "--stop-signal" flag: invalid signal'),
    ],
)
def test_a_bad_flag_value_is_named_as_dockers_cli_names_it(args: list[str], words: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_run(*args, "busybox")
    assert words in caught.value.message


def test_a_check_across_groups_speaks_of_fields_the_cli_says_flags() -> None:
    from pallet.engine.spec.options import OptionConflict
    from pallet.engine.spec.syntax import RestartPolicy

    with pytest.raises(OptionConflict) as caught:
        RunOptions(auto_remove=True, restart=RestartPolicy(name="always"))
    assert caught.value.message.startswith("Conflicting options: restart and auto_remove")
    with pytest.raises(InvalidArgument, match=r"^Conflicting options: --restart and --rm "):
        parse_run("--rm", "--restart", "on-failure", "busybox")


def test_run_flags_become_grouped_run_options() -> None:
    options = parse_run(
        "--name", "web", "-e", "A=1", "-w", "/srv", "-u", "nobody", "--restart", "on-failure:2",
        "-m", "64m", "--cpus", "0.5", "--label", "x=y", "-v", "data:/data:ro", "--read-only",
        "--security-opt", "no-new-privileges", "--cap-add", "sys_admin", "--network", "host",
        "--hostname", "box", "--tmpfs", "/run:size=1m", "-t", "-i", "busybox", "sh", "-c", "true",
    )  # fmt: skip
    assert options.name == "web"
    assert (options.restart.name, options.restart.max_retries) == ("on-failure", 2)
    assert dict(options.labels) == {"x": "y"}
    process = options.process
    assert process.env == ("A=1",)
    assert (process.workdir, process.user) == ("/srv", "nobody")
    assert process.cmd == ("sh", "-c", "true")
    assert (process.tty, process.interactive) == (True, True)
    assert (options.resources.memory, options.resources.cpus) == (64 * 1024 * 1024, 500_000_000)
    security = options.security
    assert (security.read_only, security.no_new_privileges, security.cap_add) == (
        True,
        True,
        ("CAP_SYS_ADMIN",),
    )
    assert options.network.mode == NetworkMode(kind="host")
    assert options.network.hostname == "box"
    (mount,) = options.mounts.specs
    assert (mount.type, mount.source, mount.target, mount.read_only) == ("volume", "data", "/data", True)
    assert dict(options.mounts.tmpfs) == {"/run": "size=1m"}


def test_flags_after_the_image_belong_to_the_command() -> None:
    options = parse_run("busybox", "ls", "-l", "--name", "x")
    assert options.process.cmd == ("ls", "-l", "--name", "x")
    assert options.name is None


def test_sharing_flags_make_their_options() -> None:
    options = parse_run(
        "--pid", "container:db", "--ipc", "shareable", "--uts", "host", "--cgroupns", "private",
        "--volumes-from", "data:ro", "--volumes-from", "logs", "--link", "db:alias", "--link", "/cache",
        "--device-cgroup-rule", "c 7:128 rwm", "--memory-swappiness", "30", "--isolation", "default",
        "--log-driver", "json-file", "busybox",
    )  # fmt: skip
    ns = options.namespaces
    assert (ns.pid, ns.ipc, ns.uts, ns.cgroupns) == ("container:db", "shareable", "host", "private")
    assert options.mounts.volumes_from == ("data:ro", "logs")
    assert options.network.links == ("db:alias", "cache:cache")
    assert options.resources.device_cgroup_rules == ("c 7:128 rwm",)
    assert options.resources.memory_swappiness == 30
    assert parse_run("--memory-swappiness", "-1", "busybox").resources.memory_swappiness is None
    assert (options.isolation, options.log_driver) == ("default", "json-file")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--pid", "private"], 'invalid argument "private" for "--pid" flag: invalid PID mode: private'),
        (["--ipc", "container:"], 'invalid argument "container:" for "--ipc" flag: invalid IPC mode'),
        (["--uts", "mine"], 'invalid argument "mine" for "--uts" flag: invalid UTS mode: mine'),
        (["--link", "a:b:c"], 'invalid argument "a:b:c" for "--link" flag: bad format for links: a:b:c'),
        (["--log-driver", "asdf"], "logger: no log driver named 'asdf' is registered"),
        (["--uts", "host", "--hostname", "box"], "conflicting options: hostname and the UTS mode"),
        (["--memory-swappiness", "101"], "valid memory swappiness range is 0-100"),
    ],
)
def test_bad_sharing_flags_are_usage_errors(tmp_path: Path, args: list[str], words: str) -> None:
    code, _, err = run_cli(tmp_path, "create", *args, "busybox")
    assert code == 125
    assert words in err
    assert not (tmp_path / "root").exists()
