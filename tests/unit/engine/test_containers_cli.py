"""The container verbs' parsing and output, in-process, without containers (no root needed)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from pallet.cli.containers import ps_row
from pallet.cli.main import main
from pallet.testing.records import container_record


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


def test_ps_on_an_empty_root_prints_only_the_header(tmp_path: Path) -> None:
    code, out, _ = run_cli(tmp_path, "ps", "-a")
    assert code == 0
    assert out.split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]


def test_unknown_container_is_one_line_and_exit_1(tmp_path: Path) -> None:
    assert run_cli(tmp_path, "container", "inspect", "nosuch") == (
        1,
        "[]\n",
        "pallet: No such container: nosuch\n",
    )
    assert run_cli(tmp_path, "inspect", "nosuch") == (1, "[]\n", "Error: No such object: nosuch\n")
    assert run_cli(tmp_path, "rm", "nosuch") == (1, "", "pallet: No such container: nosuch\n")


def test_exec_without_a_command_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = run_cli(tmp_path, "exec", "web")
    assert code == 125
    assert '"exec" requires at least 2 arguments' in err


def test_ps_row_quotes_and_truncates_the_command() -> None:
    doc = {"Path": "sh", "Args": ["-c", "echo a long command line"]}
    row = ps_row(container_record(), doc, now=1005.0, no_trunc=False)
    assert row["Command"] == '"sh -c echo a long c…"'
    assert row["ID"] == "a" * 12
    full = ps_row(container_record(), doc, now=1005.0, no_trunc=True)
    assert full["Command"] == '"sh -c echo a long command line"'
    assert full["ID"] == "a" * 64


def test_importing_pallet_loads_no_engine_until_client_is_used() -> None:
    code = (
        "import sys, pallet; assert 'pallet.engine.client' not in sys.modules; "
        "c = pallet.Client; assert c.__module__ == 'pallet.engine.client'; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout) == (0, "ok\n"), done.stderr
