"""``launch``: how the engine starts a container's shim and learns whether the container started.

Contract: ``launch(shim_json)`` returns once the shim reports, with the shim's
and the container's pids, or raises ``PalletError`` with the runtime's
message; then the shim has removed what it made (runtime state, sockets) and
exited. The shim runs in its own session with stdio on /dev/null and stderr
appended to ``<run dir>/shim.log``; it is not the caller's child, so the caller
may exit or be SIGKILLed at any point without touching the container.
"""

from __future__ import annotations

import os
import sys

from pallet.engine.runtimes import spawn
from pallet.engine.shim.config import load
from pallet.errors import PalletError, Unavailable
from pallet.oci.record import Record

__all__ = ["SHIM_LOG", "ShimStarted", "launch", "shim_command"]

SHIM_LOG = "shim.log"
_REPORT_FD = 3


class ShimStarted(Record):
    pid: int
    container_pid: int


def shim_command() -> list[str]:
    """The command that runs ``pallet-shim``: its fast launcher next to the interpreter, else the module."""
    launcher = os.path.join(os.path.dirname(sys.executable), "pallet-shim")
    if os.access(launcher, os.X_OK):
        return [launcher]
    # no installed launcher (a plain pip install): an isolated interpreter with pallet's own path
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    code = (
        f"import sys; sys.path.insert(0, {top!r}); from pallet.engine.shim.main import main; sys.exit(main())"
    )
    return [sys.executable, "-I", "-S", "-c", code]


def launch(config_path: str, *, timeout: float = 120.0) -> ShimStarted:
    """Start the shim described by ``config_path`` (a ``shim.json``) and wait for its report."""
    import select

    config = load(config_path)
    os.makedirs(config.run_dir, mode=0o700, exist_ok=True)
    argv = [*shim_command(), "--report-fd", str(_REPORT_FD), config_path]
    report_r, report_w = os.pipe()
    null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    log = os.open(
        os.path.join(config.run_dir, SHIM_LOG), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600
    )
    try:
        try:
            first = spawn(argv[0], argv, (null, null, log, report_w), setsid=True)
        except OSError as e:
            raise Unavailable(
                f"cannot start pallet-shim ({argv[0]}): {(e.strerror or str(e)).lower()}"
            ) from None
    finally:
        for fd in (report_w, null, log):
            os.close(fd)
    try:
        os.waitpid(first, 0)  # the first shim process exits as soon as it has forked the real one
        data = b""
        poller = select.poll()
        poller.register(report_r, select.POLLIN)
        while b"\n" not in data:
            if not poller.poll(int(timeout * 1000)):
                raise Unavailable(
                    f"pallet-shim for {config.id} did not report within {timeout:.0f}s; see {config.run_dir}/{SHIM_LOG}"
                )
            chunk = os.read(report_r, 4096)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(report_r)
    line = data.decode("utf-8", "replace").strip()
    word, _, rest = line.partition(" ")
    if word == "started":
        fields = rest.split()
        if len(fields) == 2 and all(f.isdigit() for f in fields):
            return ShimStarted(pid=int(fields[1]), container_pid=int(fields[0]))
    if word == "error" and rest:
        raise _error_from_report(rest)
    raise Unavailable(
        f"pallet-shim for {config.id} exited without reporting; see {config.run_dir}/{SHIM_LOG}"
    )


def _error_from_report(report: str) -> PalletError:
    """The shim's ``<category> <message>`` as the error it was, category included."""
    from pallet import errors
    from pallet.engine.runtimes import RuntimeFailed

    category, _, message = report.partition(" ")
    if category == "RuntimeFailed" and message.startswith("OCI runtime "):
        verb, _, detail = message[len("OCI runtime ") :].partition(" failed: ")
        return RuntimeFailed(verb, detail)
    kind = getattr(errors, category, None) if category in errors.__all__ else None
    # SpecError and SystemError_ take structured arguments: their message is kept in the base class
    if (
        isinstance(kind, type)
        and issubclass(kind, PalletError)
        and kind not in (errors.SpecError, errors.SystemError_)
    ):
        return kind(message)
    return PalletError(message)
