"""The pure parts of update, ps and events: sizes, durations, ps tables, the exec process built from flags."""

from __future__ import annotations

import pytest

from pallet.errors import InvalidArgument
from pallet.oci.runtime_spec import default_spec
from pallet.runtime.events import parse_interval
from pallet.runtime.exec import ExecOptions, build_process
from pallet.runtime.ps import filter_table
from pallet.runtime.update import parse_bytes, requested


def test_sizes_take_binary_units_and_minus_one() -> None:
    assert parse_bytes("512m", "memory") == 512 << 20
    assert parse_bytes("1G", "memory") == 1 << 30
    assert parse_bytes("64kb", "memory") == 64 << 10
    assert parse_bytes("100", "memory") == 100
    assert parse_bytes("-1", "memory-swap") == -1
    with pytest.raises(InvalidArgument, match="--memory"):
        parse_bytes("lots", "memory")


def test_flags_override_the_same_field_of_the_resources_file(tmp_path: object) -> None:
    import pathlib

    path = pathlib.Path(str(tmp_path)) / "r.json"
    path.write_text('{"memory": {"limit": 1, "reservation": 2}, "cpu": {"cpus": "0"}}')
    doc = requested(str(path), {"memory": "4m", "cpu-shares": "512", "cpuset-cpus": "0-1"})
    assert doc == {"memory": {"limit": 4 << 20, "reservation": 2}, "cpu": {"cpus": "0-1", "shares": 512}}


def test_intervals_are_go_durations() -> None:
    assert parse_interval("5s") == 5.0
    assert parse_interval("250ms") == 0.25
    assert parse_interval("1m") == 60.0
    for bad in ("5", "0s", "-1s", "xs"):
        with pytest.raises(InvalidArgument):
            parse_interval(bad)


def test_ps_table_keeps_the_header_and_the_containers_lines() -> None:
    table = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sleep 5\nroot 420 1 other\n"
    assert filter_table(table, [42]) == "UID PID PPID CMD\nroot 42 1 sleep 5\n"
    with pytest.raises(InvalidArgument, match="PID column"):
        filter_table("UID CMD\nroot x\n", [1])


def test_exec_flags_build_on_the_containers_process() -> None:
    spec = default_spec()
    options = ExecOptions(
        args=["sh"],
        env=["TERM=dumb", "NEW=1"],
        user="5:6",
        additional_gids=["7"],
        cwd="/srv",
        caps=["CAP_SYS_ADMIN"],
    )
    process = build_process(spec, options)
    assert spec.process is not None
    assert process.args == ("sh",)
    assert process.env[: len(spec.process.env)] == tuple(
        "TERM=dumb" if e.startswith("TERM=") else e for e in spec.process.env
    )
    assert process.env[-1] == "NEW=1"
    assert (process.user.uid, process.user.gid, process.user.additional_gids, process.cwd) == (
        5,
        6,
        (7,),
        "/srv",
    )
    assert process.capabilities is not None
    assert process.capabilities.bounding is not None
    assert "CAP_SYS_ADMIN" in process.capabilities.bounding
    with pytest.raises(InvalidArgument, match="unknown capability"):
        build_process(spec, ExecOptions(args=["sh"], caps=["CAP_NOPE"]))
    with pytest.raises(InvalidArgument, match="invalid user"):
        build_process(spec, ExecOptions(args=["sh"], user="root"))
