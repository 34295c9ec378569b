"""The json-file log: records as dockerd writes them, rotation by size, and the reader of ``pallet logs``."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from pallet.engine.shim.logfile import (
    MAX_LINE,
    LineBuffer,
    LogWriter,
    format_entry,
    log_files,
    parse_rfc3339,
    parse_time_filter,
    read_logs,
    rfc3339nano,
    rfc3339nano_fixed,
)
from pallet.errors import InvalidArgument

T0 = 1_764_295_267_123_456_789  # 2025-11-28T02:01:07.123456789Z
SECOND = 1_000_000_000


def records(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_records_have_docker_fields_and_go_rfc3339nano_time(tmp_path: Path) -> None:
    log = LogWriter(str(tmp_path / "c-json.log"))
    log.write("stdout", b"hello\n", T0)
    log.write("stderr", b"caf\xc3\xa9 \xff\n", T0 + 100)
    log.close()
    lines = (tmp_path / "c-json.log").read_text().splitlines()
    assert json.loads(lines[0]) == {
        "log": "hello\n",
        "stream": "stdout",
        "time": "2025-11-28T02:01:07.123456789Z",
    }
    assert (
        json.loads(lines[1])["log"] == "café \ufffd\n"
    )  # invalid UTF-8 becomes U+FFFD, as Go's encoder does
    assert json.loads(lines[1])["time"] == "2025-11-28T02:01:07.123456889Z"


def test_rfc3339nano_trims_trailing_zeros_like_go() -> None:
    assert rfc3339nano(T0 - 456_789) == "2025-11-28T02:01:07.123Z"
    assert rfc3339nano(T0 - 123_456_789) == "2025-11-28T02:01:07Z"
    assert rfc3339nano_fixed(T0 - 123_456_789) == "2025-11-28T02:01:07.000000000Z"


def test_line_buffer_keeps_partial_lines_until_their_newline() -> None:
    lines = LineBuffer()
    assert lines.feed(b"one\ntw") == [b"one\n"]
    assert lines.feed(b"o\nthree") == [b"two\n"]
    assert lines.flush() == b"three"
    assert lines.flush() == b""


def test_line_buffer_cuts_long_lines_into_16k_pieces() -> None:
    lines = LineBuffer()
    pieces = lines.feed(b"x" * (MAX_LINE + 10) + b"\n")
    assert pieces == [b"x" * MAX_LINE, b"x" * 10 + b"\n"]


def test_rotation_keeps_max_file_files_newest_in_the_live_one(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    log = LogWriter(str(path), max_size=200, max_file=3)
    for n in range(30):
        log.write("stdout", f"line {n:02d}\n".encode(), T0 + n)
    log.close()
    files = log_files(str(path))
    assert files == [f"{path}.2", f"{path}.1", str(path)]
    assert not Path(f"{path}.3").exists()
    for name in files:
        assert Path(name).stat().st_size <= 200
    read = [e.data for e in read_logs(str(path))]
    assert read[-1] == b"line 29\n"
    assert read == sorted(read)  # oldest file first, in order
    assert b"line 00\n" not in read  # the oldest records were rotated away


def test_max_file_one_truncates_instead_of_rotating(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    log = LogWriter(str(path), max_size=100, max_file=1)
    for n in range(10):
        log.write("stdout", f"line {n}\n".encode(), T0)
    log.close()
    assert log_files(str(path)) == [str(path)]
    assert records(path)[-1]["log"] == "line 9\n"
    assert path.stat().st_size <= 100


def test_writer_rejects_max_file_zero(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="max-file"):
        LogWriter(str(tmp_path / "log"), max_file=0)


def write_lines(path: Path, count: int) -> None:
    log = LogWriter(str(path))
    for n in range(count):
        log.write("stderr" if n % 2 else "stdout", f"{n}\n".encode(), T0 + n * SECOND)
    log.close()


def test_tail_since_and_until_select_records(tmp_path: Path) -> None:
    path = tmp_path / "log"
    write_lines(path, 10)
    assert [e.data for e in read_logs(str(path), tail=3)] == [b"7\n", b"8\n", b"9\n"]
    assert list(read_logs(str(path), tail=0)) == []
    assert [e.data for e in read_logs(str(path), since_ns=T0 + 8 * SECOND)] == [b"8\n", b"9\n"]
    assert [e.data for e in read_logs(str(path), until_ns=T0 + SECOND)] == [b"0\n", b"1\n"]
    assert [e.stream for e in read_logs(str(path), tail=2)] == ["stdout", "stderr"]


def test_missing_log_reads_as_empty(tmp_path: Path) -> None:
    assert list(read_logs(str(tmp_path / "none"))) == []


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "log"
    write_lines(path, 2)
    with open(path, "a") as f:
        f.write('{"log":"half')
    assert [e.data for e in read_logs(str(path))] == [b"0\n", b"1\n"]


def test_follow_reads_new_records_across_a_rotation_until_stopped(tmp_path: Path) -> None:
    path = tmp_path / "log"
    log = LogWriter(str(path), max_size=300, max_file=2)
    log.write("stdout", b"before\n")
    stop = threading.Event()

    def writer() -> None:
        for n in range(20):
            log.write("stdout", f"after {n}\n".encode())
            time.sleep(0.005)
        stop.set()

    got: list[bytes] = []
    thread = threading.Thread(target=writer)
    follow = read_logs(str(path), follow=True, stopped=stop.is_set, poll_interval=0.01)
    got.append(next(follow).data)
    thread.start()
    try:
        got += [e.data for e in follow]
    finally:
        thread.join()
        log.close()
    assert got == [b"before\n"] + [f"after {n}\n".encode() for n in range(20)]
    assert Path(f"{path}.1").exists()  # it did rotate while followed


def test_format_entry_prefixes_nine_digit_time_with_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "log"
    write_lines(path, 1)
    (entry,) = read_logs(str(path))
    assert format_entry(entry) == b"0\n"
    assert format_entry(entry, timestamps=True) == b"2025-11-28T02:01:07.123456789Z 0\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-11-28T02:01:07.123456789Z", T0),
        ("2025-11-28T03:01:07.123456789+01:00", T0),
        ("2025-11-28T02:01:07Z", T0 - 123_456_789),
        ("1764295267.123456789", T0),
        ("1764295267", T0 - 123_456_789),
        ("10m", T0 - 600 * SECOND),
        ("1h30m", T0 - 5400 * SECOND),
        ("1.5s", T0 - 1_500_000_000),
    ],
)
def test_time_filters_read_as_the_docker_cli_reads_them(text: str, expected: int) -> None:
    assert parse_time_filter(text, now_ns=T0) == expected


def test_date_without_zone_is_local_midnight() -> None:
    local = time.mktime((2025, 11, 28, 0, 0, 0, 0, 0, -1))
    assert parse_time_filter("2025-11-28", now_ns=T0) == int(local) * SECOND


@pytest.mark.parametrize("text", ["yesterday", "10x", "2025-13-01", "", "12:00"])
def test_bad_time_filter_is_a_docker_worded_error(text: str) -> None:
    with pytest.raises(
        InvalidArgument, match=r'invalid value for "until": failed to parse value as time or duration'
    ):
        parse_time_filter(text, now_ns=T0, flag="until")


def test_parse_rfc3339_matches_the_epoch() -> None:
    assert parse_rfc3339("1970-01-01T00:00:00Z") == 0
    assert parse_rfc3339("2000-03-01T00:00:00Z") == 951_868_800 * SECOND
