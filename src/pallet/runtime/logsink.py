"""Where ``pallet-runtime`` reports errors and warnings: stderr, and the ``--log`` file.

With ``--log-format json`` each line is ``{"level":..,"msg":..,"time":..}`` in
runc's key order: containerd decodes the file as a JSON stream and shows the
``msg`` of the last ``error`` line, so nothing else may ever be written there.
The file is created as soon as the flags are parsed, even when the command
then fails early (a missing file hides the real error from containerd).
"""

from __future__ import annotations

import os
import time

from pallet.oci.jsonfast import dumps
from pallet.runtime.clock import rfc3339_now

# debug lines carry the milliseconds since this module was imported (about when main() began)
_T0 = time.perf_counter()


class LogSink:
    """Writes messages to stderr and (if configured) appends them to the log file."""

    def __init__(self, path: str | None = None, fmt: str = "text", debug: bool = False) -> None:
        self.path = path
        self.json = fmt == "json"
        self.debug_enabled = debug
        self._fd = -1
        if path:
            try:
                self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError:
                self._fd = -1

    def _write_file(self, level: str, msg: str) -> None:
        if self._fd < 0:
            return
        if self.json:
            line = f'{{"level":{dumps(level)},"msg":{dumps(msg)},"time":{dumps(rfc3339_now())}}}'
        else:
            line = f'time="{rfc3339_now()}" level={level} msg="{msg}"'
        try:  # noqa: SIM105 - contextlib costs ~7 ms at start
            os.write(self._fd, (line + "\n").encode())
        except OSError:
            pass

    def error(self, msg: str) -> None:
        """An error: to stderr and the log file."""
        self._write_file("error", msg)
        try:  # noqa: SIM105 - contextlib costs ~7 ms at start
            os.write(2, (msg + "\n").encode())
        except OSError:
            pass

    def warning(self, msg: str) -> None:
        """A warning: to stderr and the log file; the command still succeeds."""
        self._write_file("warning", msg)
        try:  # noqa: SIM105 - contextlib costs ~7 ms at start
            os.write(2, f"warning: {msg}\n".encode())
        except OSError:
            pass

    def debug(self, msg: str) -> None:
        """A debug line, only with ``--debug``, and only in the log file (stdio belongs to the container)."""
        if self.debug_enabled:
            self._write_file("debug", f"[{(time.perf_counter() - _T0) * 1000:.1f} ms] {msg}")
