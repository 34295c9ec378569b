"""Container logs in docker's ``json-file`` format: the writer the shim uses, and the reader of ``pallet logs``.

One JSON object per line, as dockerd writes them::

    {"log":"hello\\n","stream":"stdout","time":"2026-11-28T02:01:07.123456789Z"}

``log`` is one line of output with its newline; a line longer than 16 KiB is
cut into pieces, and a last line without newline at EOF is kept without one.
``time`` is Go's RFC3339Nano (UTC, trailing zeros of the fraction trimmed).

Rotation (``--log-opt max-size=…,max-file=N``): when the next record would
take the file past ``max_size``, ``<log>`` becomes ``<log>.1``, ``<log>.1``
becomes ``<log>.2``, … up to ``<log>.<N-1>``; the oldest is dropped. With
``max_file == 1`` the file is truncated instead. The reader reads the rotated
files oldest first, then the live one, and follows the live one across
rotations.

The writer half is on the shim's path: standard library only, no ``json``
module (``pallet.oci.jsonfast``), no ``datetime``.
"""

from __future__ import annotations

import os
import time

from pallet.engine.durations import parse_duration
from pallet.errors import InvalidArgument
from pallet.oci.jsonfast import dumps, loads
from pallet.oci.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "MAX_LINE",
    "LineBuffer",
    "LogEntry",
    "LogWriter",
    "format_entry",
    "log_files",
    "parse_rfc3339",
    "parse_time_filter",
    "read_logs",
    "rfc3339nano",
    "rfc3339nano_fixed",
]

#: docker cuts lines longer than this into several records
MAX_LINE = 16 * 1024

_NS = 1_000_000_000


def rfc3339nano(ns: int) -> str:
    """Go's ``time.RFC3339Nano`` in UTC: ``2026-11-28T02:01:07.1234Z`` (fraction trimmed, dropped if zero)."""
    seconds, fraction = divmod(ns, _NS)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text + "Z"


def rfc3339nano_fixed(ns: int) -> str:
    """Nine fraction digits always, as ``docker logs -t`` prints them."""
    seconds, fraction = divmod(ns, _NS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


class LineBuffer:
    """Cuts one stream's output into log records: whole lines, or ``MAX_LINE`` pieces of a long one."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[bytes]:
        data = self._pending + data
        out: list[bytes] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0 or end - start >= MAX_LINE:
                if len(data) - start >= MAX_LINE:
                    out.append(data[start : start + MAX_LINE])
                    start += MAX_LINE
                    continue
                break
            out.append(data[start : end + 1])
            start = end + 1
        self._pending = data[start:]
        return out

    def flush(self) -> bytes:
        """What is left without a newline (at EOF of the stream)."""
        rest, self._pending = self._pending, b""
        return rest


class LogWriter:
    """Appends records to a json-file log, rotating it by size. Not thread-safe: one shim owns it."""

    def __init__(self, path: str, max_size: int = 0, max_file: int = 1) -> None:
        if max_file < 1:
            raise InvalidArgument(f"max-file must be at least 1, not {max_file}")
        self.path = path
        self.max_size = max_size
        self.max_file = max_file
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size

    def write(self, stream: str, data: bytes, ns: int | None = None) -> None:
        """Write one record (``data`` is one line or piece, see ``LineBuffer``)."""
        if not data:
            return
        stamp = rfc3339nano(time.time_ns() if ns is None else ns)
        text = data.decode("utf-8", "replace")
        record = ('{"log":' + dumps(text) + ',"stream":"' + stream + '","time":"' + stamp + '"}\n').encode()
        if self.max_size > 0 and self._size > 0 and self._size + len(record) > self.max_size:
            self._rotate()
        os.write(self._fd, record)
        self._size += len(record)

    def _rotate(self) -> None:
        if self.max_file == 1:
            os.ftruncate(self._fd, 0)
            self._size = 0
            return
        os.close(self._fd)
        for n in range(self.max_file - 1, 0, -1):
            older = f"{self.path}.{n - 1}" if n > 1 else self.path
            try:
                os.rename(older, f"{self.path}.{n}")
            except FileNotFoundError:
                continue  # fewer files than max_file so far
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


# ---- the reader (pallet logs) -------------------------------------------------------------


class LogEntry(Record):
    stream: str
    time_ns: int
    data: bytes


def _days_from_civil(y: int, m: int, d: int) -> int:
    # days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm)
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _digits(text: str, start: int, count: int) -> int:
    part = text[start : start + count]
    if len(part) != count or not part.isdigit():
        raise ValueError(text)
    return int(part)


def parse_rfc3339(text: str, *, local_if_no_zone: bool = False) -> int:
    """``2006-01-02T15:04:05[.frac](Z|±hh:mm)`` (or a bare date) as ns since the epoch; ValueError if not."""
    year, month, day = _digits(text, 0, 4), _digits(text, 5, 2), _digits(text, 8, 2)
    if text[4:5] != "-" or text[7:8] != "-" or not (1 <= month <= 12 and 1 <= day <= 31):
        raise ValueError(text)
    hour = minute = second = fraction = 0
    pos = 10
    if len(text) > 10:
        if text[10] not in "Tt ":
            raise ValueError(text)
        hour, minute, second = _digits(text, 11, 2), _digits(text, 14, 2), _digits(text, 17, 2)
        if text[13:14] != ":" or text[16:17] != ":" or hour > 23 or minute > 59 or second > 60:
            raise ValueError(text)
        pos = 19
        if text[pos : pos + 1] == ".":
            end = pos + 1
            while end < len(text) and text[end].isdigit():
                end += 1
            digits = text[pos + 1 : end]
            if not digits or len(digits) > 9:
                raise ValueError(text)
            fraction = int(digits.ljust(9, "0"))
            pos = end
    zone = text[pos:]
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    if zone in ("Z", "z"):
        offset = 0
    elif zone == "":
        offset = 0
        if local_if_no_zone:
            local = time.mktime((year, month, day, hour, minute, second, 0, 0, -1))
            return int(local) * _NS + fraction
    elif len(zone) == 6 and zone[0] in "+-" and zone[3] == ":":
        offset = (_digits(zone, 1, 2) * 3600 + _digits(zone, 4, 2) * 60) * (1 if zone[0] == "+" else -1)
    else:
        raise ValueError(text)
    return (seconds - offset) * _NS + fraction


def parse_time_filter(value: str, now_ns: int, flag: str = "since") -> int:
    """A ``--since``/``--until`` value as ns since the epoch, as the docker CLI reads it.

    Accepts an RFC 3339 time (with or without zone: local time without), a date
    ``2006-01-02``, a unix time ``1700000000[.123456789]``, or a Go duration
    (``10m``, ``1h30m``) counted back from ``now_ns``.
    """
    text = value.strip()
    if text != "0":  # the docker CLI reads a bare 0 as the unix time, not a duration
        try:
            return now_ns - parse_duration(text)
        except InvalidArgument:
            pass
    seconds, dot, fraction = text.partition(".")
    if seconds.isdigit() and (not dot or (fraction.isdigit() and len(fraction) <= 9)):
        return int(seconds) * _NS + (int(fraction.ljust(9, "0")) if dot else 0)
    try:
        return parse_rfc3339(text, local_if_no_zone=True)
    except (ValueError, IndexError, OverflowError):
        raise InvalidArgument(
            f'invalid value for "{flag}": failed to parse value as time or duration: "{value}"'
        ) from None


def log_files(path: str) -> list[str]:
    """The existing files of a rotated log, oldest first: ``<log>.N`` … ``<log>.1``, ``<log>``."""
    rotated: list[str] = []
    n = 1
    while os.path.exists(f"{path}.{n}"):
        rotated.append(f"{path}.{n}")
        n += 1
    rotated.reverse()
    if os.path.exists(path):
        rotated.append(path)
    return rotated


def _decode(line: bytes) -> LogEntry | None:
    try:
        doc = loads(line)
    except InvalidArgument:
        return None  # a torn last line of a file the shim is still writing
    if not isinstance(doc, dict):
        return None
    log, stream, stamp = doc.get("log"), doc.get("stream"), doc.get("time")
    if not isinstance(log, str) or not isinstance(stream, str) or not isinstance(stamp, str):
        return None
    try:
        ns = parse_rfc3339(stamp)
    except (ValueError, IndexError):
        return None
    return LogEntry(stream=stream, time_ns=ns, data=log.encode())


class _Cursor:
    """An open log file and the bytes read past its last complete line."""

    def __init__(self, path: str) -> None:
        self.file = open(path, "rb")  # noqa: SIM115 - closed by the reader's finally
        self.ino = os.fstat(self.file.fileno()).st_ino
        self.partial = b""

    def entries(self) -> list[LogEntry]:
        data = self.partial + self.file.read()
        lines = data.split(b"\n")
        self.partial = lines.pop()
        return [e for e in map(_decode, lines) if e is not None]


def read_logs(
    path: str,
    *,
    tail: int | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    follow: bool = False,
    stopped: Callable[[], bool] | None = None,
    poll_interval: float = 0.1,
) -> Iterator[LogEntry]:
    """The records of the log at ``path`` (with its rotated files), oldest first.

    ``tail`` keeps the last N records (after ``since``/``until``); ``follow``
    then keeps reading new records as the shim writes them, across rotations,
    until ``stopped()`` is true and nothing more is written (or a record is
    newer than ``until``). A missing log reads as empty.
    """

    def wanted(e: LogEntry) -> bool:
        return (since_ns is None or e.time_ns >= since_ns) and (until_ns is None or e.time_ns <= until_ns)

    files = log_files(path)
    if tail == 0:
        backlog: list[LogEntry] = []
    else:
        backlog = []
        for name in files[:-1] if files and files[-1] == path and follow else files:
            try:
                with open(name, "rb") as f:
                    backlog.extend(
                        e for e in map(_decode, f.read().split(b"\n")) if e is not None and wanted(e)
                    )
            except FileNotFoundError:
                continue  # rotated away while we listed
    cursor: _Cursor | None = None
    if follow:
        while cursor is None:
            try:
                cursor = _Cursor(path)
            except FileNotFoundError:
                if stopped is None or stopped():
                    break
                time.sleep(poll_interval)
        if cursor is not None and tail != 0:
            backlog.extend(e for e in cursor.entries() if wanted(e))
    try:
        yield from backlog if tail is None else backlog[len(backlog) - tail if tail < len(backlog) else 0 :]
        if cursor is None:
            return
        if tail == 0:
            cursor.file.seek(0, os.SEEK_END)
        while True:
            # read stopped() before the file: a record written before the container
            # stopped is then read in this same round
            done = stopped is None or stopped()
            entries = cursor.entries()
            for e in entries:
                if until_ns is not None and e.time_ns > until_ns:
                    return
                if wanted(e):
                    yield e
            try:
                rotated = os.stat(path).st_ino != cursor.ino
            except FileNotFoundError:
                rotated = False
            if rotated:
                for e in cursor.entries():
                    if wanted(e):
                        yield e
                cursor.file.close()
                cursor = _Cursor(path)
                continue
            if entries:
                continue
            if done:
                return
            time.sleep(poll_interval)
    finally:
        if cursor is not None:
            cursor.file.close()


def format_entry(entry: LogEntry, timestamps: bool = False) -> bytes:
    """The bytes ``docker logs`` prints for a record (``-t`` prefixes the time with nine digits)."""
    if timestamps:
        return rfc3339nano_fixed(entry.time_ns).encode() + b" " + entry.data
    return entry.data
