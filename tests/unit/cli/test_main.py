"""The ``pallet`` entry point: help, the lazy command table, errors and exit codes."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from pallet.cli.commands import COMMANDS, GROUPS
from pallet.cli.exits import EXIT_USAGE, UsageError, report
from pallet.cli.main import main
from pallet.errors import Conflict, NotFound


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err, stdin=io.BytesIO(), stdout_binary=io.BytesIO())
    return code, out.getvalue(), err.getvalue()


def test_help_lists_every_command_and_group() -> None:
    code, out, _ = run("--help")
    assert code == 0
    for name in [*COMMANDS, *GROUPS]:
        assert f"  {name} " in out


def test_group_help_lists_its_verbs() -> None:
    code, out, _ = run("image", "--help")
    assert code == 0
    for verb in GROUPS["image"][1]:
        assert f"  {verb} " in out


def test_unknown_command_is_a_usage_error_on_one_line() -> None:
    code, out, err = run("frobnicate")
    assert code == EXIT_USAGE
    assert out == ""
    assert err == "pallet: unknown command \"frobnicate\"; see 'pallet --help'\n"


def test_unknown_group_verb_is_a_usage_error() -> None:
    code, _, err = run("image", "frobnicate")
    assert code == EXIT_USAGE
    assert err.startswith('pallet: unknown command "image frobnicate"')


def test_unknown_flag_of_a_command_is_a_usage_error_naming_the_command(tmp_path: object) -> None:
    code, _, err = run("--root", str(tmp_path), "images", "--bogus")
    assert code == EXIT_USAGE
    assert err.count("\n") == 1
    assert "--bogus" in err
    assert "pallet images --help" in err


def test_command_help_exits_zero_and_shows_flags() -> None:
    code, out, _ = run("images", "--help")
    assert code == 0
    assert "--quiet" in out


def test_help_flag_before_command_shows_command_help() -> None:
    code, out, _ = run("--help", "images")
    assert code == 0
    assert out.startswith("Usage:  pallet images [OPTIONS] [REPOSITORY[:TAG]]\n")


def test_pallet_errors_exit_1_with_their_message() -> None:
    err = io.StringIO()
    assert report(NotFound('image "x" not found'), err, debug=False) == 1
    assert report(Conflict("in use"), err, debug=False) == 1
    assert err.getvalue() == 'pallet: image "x" not found\npallet: in use\n'


def test_unexpected_exception_is_one_line_without_traceback() -> None:
    err = io.StringIO()
    assert report(ValueError("boom\nsecond line"), err, debug=False) == 1
    assert err.getvalue() == (
        "pallet: internal error: ValueError: boom second line (run with --debug for the traceback)\n"
    )


def test_debug_adds_the_traceback() -> None:
    err = io.StringIO()
    try:
        raise NotFound("gone")
    except NotFound as e:
        report(e, err, debug=True)
    assert "Traceback" in err.getvalue()
    assert err.getvalue().endswith("pallet: gone\n")


def test_os_error_names_the_file_in_go_style() -> None:
    err = io.StringIO()
    report(FileNotFoundError(2, "No such file or directory", "/x.tar"), err, debug=False)
    assert err.getvalue() == "pallet: /x.tar: no such file or directory\n"


def test_usage_error_points_to_the_command_help() -> None:
    assert str(UsageError("bad", "image ls")) == "bad; see 'pallet image ls --help'"


def test_help_imports_no_command_module() -> None:
    code = (
        "import sys; from pallet.cli.main import main; main(['--help']);"
        "print(sorted(m for m in sys.modules if m.startswith('pallet.cli.') and m.count('.') == 2))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = done.stdout.strip().splitlines()[-1]
    assert "pallet.cli.images" not in loaded
    assert "pallet.cli.archives" not in loaded


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_top_level_command_has_a_configure_function(name: str) -> None:
    import importlib

    cmd = COMMANDS[name]
    assert callable(getattr(importlib.import_module(cmd.module), cmd.function))


@pytest.mark.parametrize(("group", "verb"), [(g, v) for g, (_, vs) in GROUPS.items() for v in vs])
def test_every_group_verb_has_a_configure_function(group: str, verb: str) -> None:
    import importlib

    cmd = GROUPS[group][1][verb]
    assert callable(getattr(importlib.import_module(cmd.module), cmd.function))
