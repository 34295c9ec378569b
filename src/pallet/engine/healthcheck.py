"""Container healthchecks as docker has them: the configuration, its rules, and the health state.

Configuration: docker's ``Healthcheck`` (``pallet.oci.image_spec.Healthcheck``;
``Test`` is ``["NONE"]``, ``["CMD", arg…]`` or ``["CMD-SHELL", "command"]``,
durations in nanoseconds, ``None`` or 0 meaning "not set").

- ``check``: docker's validation, in docker's words (a duration is 0 or at
  least 1ms, retries are not negative, a test starts with NONE/CMD/CMD-SHELL);
- ``merge``: the container's settings over the image's, field by field, as
  dockerd merges them at create (``Test`` empty: the image's);
- ``settings``: what the shim runs, defaults filled in (interval 30s,
  timeout 30s, start period 0, start interval 5s, retries 3); ``None`` when
  there is nothing to run (no test, or ``NONE``).

State: the shim writes ``health.json`` in the container's run dir after each
probe (atomically), in docker's ``State.Health`` shape: ``Status``
(``starting | healthy | unhealthy``), ``FailingStreak``, ``Log`` (the last 5
probes: ``Start``, ``End``, ``ExitCode``, ``Output``). ``record_probe`` is
docker's rule for one probe's result; any process reads the file with
``read_health``. Standard library only: the shim imports this module.
"""

from __future__ import annotations

import os

from pallet.engine.durations import format_duration
from pallet.errors import InvalidArgument, PalletError
from pallet.linux.atomicfile import write_atomic
from pallet.oci.jsonfast import dumps, loads
from pallet.oci.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.oci.image_spec import Healthcheck

__all__ = [
    "HEALTH_FILE",
    "HEALTH_STATUSES",
    "MAX_LOG_ENTRIES",
    "MAX_OUTPUT",
    "Health",
    "ProbeResult",
    "Settings",
    "check",
    "merge",
    "read_health",
    "record_probe",
    "settings",
    "status_suffix",
    "write_health",
]

HEALTH_FILE = "health.json"
STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
#: the values of ``ps --filter health=`` (``none``: no healthcheck)
HEALTH_STATUSES = (STARTING, HEALTHY, UNHEALTHY, "none")
#: docker keeps the last 5 probes and the first 4096 bytes of each one's output
MAX_LOG_ENTRIES = 5
MAX_OUTPUT = 4096

_SECOND = 1_000_000_000
_MIN_DURATION = 1_000_000  # 1ms
DEFAULT_INTERVAL = 30 * _SECOND
DEFAULT_TIMEOUT = 30 * _SECOND
DEFAULT_START_INTERVAL = 5 * _SECOND
DEFAULT_RETRIES = 3

# --- configuration ------------------------------------------------------------------------------


class Settings(Record):
    """A healthcheck as the shim runs it: the argv to exec and every duration set (nanoseconds)."""

    argv: tuple[str, ...]
    interval: int = DEFAULT_INTERVAL
    timeout: int = DEFAULT_TIMEOUT
    start_period: int = 0
    start_interval: int = DEFAULT_START_INTERVAL
    retries: int = DEFAULT_RETRIES


def check(hc: Healthcheck) -> None:
    """Docker's validation of a container's healthcheck (``InvalidArgument`` in its words)."""
    for name, value in (
        ("Interval", hc.interval),
        ("Timeout", hc.timeout),
        ("StartPeriod", hc.start_period),
        ("StartInterval", hc.start_interval),
    ):
        if value and value < _MIN_DURATION:
            raise InvalidArgument(
                f"{name} in Healthcheck cannot be less than {format_duration(_MIN_DURATION)}"
            )
    if hc.retries is not None and hc.retries < 0:
        raise InvalidArgument("Retries in Healthcheck cannot be negative")
    if hc.test and hc.test[0] not in ("NONE", "CMD", "CMD-SHELL"):
        raise InvalidArgument(f'unknown healthcheck type "{hc.test[0]}" (want NONE, CMD or CMD-SHELL)')
    if hc.test and hc.test[0] in ("CMD", "CMD-SHELL") and len(hc.test) < 2:
        raise InvalidArgument(f"healthcheck {hc.test[0]} needs a command")


def merge(container: Healthcheck | None, image: Healthcheck | None) -> Healthcheck | None:
    """The healthcheck in force: the container's fields, each unset one (None, 0, empty) from the image's."""
    if container is None or image is None:
        return container if container is not None else image
    return container.replace(
        test=container.test or image.test,
        interval=container.interval or image.interval,
        timeout=container.timeout or image.timeout,
        start_period=container.start_period or image.start_period,
        start_interval=container.start_interval or image.start_interval,
        retries=container.retries or image.retries,
    )


def settings(hc: Healthcheck | None, shell: tuple[str, ...] = ("/bin/sh", "-c")) -> Settings | None:
    """What the shim runs for ``hc`` (defaults filled in); None: no healthcheck (none, or ``NONE``)."""
    if hc is None or not hc.test or hc.test[0] not in ("CMD", "CMD-SHELL") or len(hc.test) < 2:
        return None
    argv = hc.test[1:] if hc.test[0] == "CMD" else (*shell, hc.test[1])
    return Settings(
        argv=tuple(argv),
        interval=hc.interval or DEFAULT_INTERVAL,
        timeout=hc.timeout or DEFAULT_TIMEOUT,
        start_period=hc.start_period or 0,
        start_interval=hc.start_interval or DEFAULT_START_INTERVAL,
        retries=hc.retries if hc.retries and hc.retries > 0 else DEFAULT_RETRIES,
    )


# --- state --------------------------------------------------------------------------------------


class ProbeResult(Record):
    """One probe: when it started and ended (RFC 3339 nano), its exit code (-1: it did not run to its
    end), the start of its output."""

    start: str
    end: str
    exit_code: int
    output: str


class Health(Record):
    status: str = STARTING
    failing_streak: int = 0
    log: tuple[ProbeResult, ...] = ()

    def to_docker(self) -> dict[str, object]:
        """docker's ``State.Health``."""
        return {
            "Status": self.status,
            "FailingStreak": self.failing_streak,
            "Log": [
                {"Start": r.start, "End": r.end, "ExitCode": r.exit_code, "Output": r.output}
                for r in self.log
            ],
        }


def record_probe(health: Health, result: ProbeResult, *, retries: int, in_start_period: bool) -> Health:
    """docker's rule: a success is healthy and ends the streak; a failure adds to the streak (not
    while still starting within the start period) and ``retries`` of them in a row are unhealthy."""
    log = (*health.log, result)[-MAX_LOG_ENTRIES:]
    if result.exit_code == 0:
        return Health(status=HEALTHY, failing_streak=0, log=log)
    if health.status == STARTING and in_start_period:
        return health.replace(log=log)
    streak = health.failing_streak + 1
    return Health(status=UNHEALTHY if streak >= retries else health.status, failing_streak=streak, log=log)


def write_health(run_dir: str, health: Health) -> None:
    """Replace the run dir's ``health.json`` (atomic; not fsynced: the run dir does not outlive a boot)."""
    write_atomic(os.path.join(run_dir, HEALTH_FILE), dumps(health.to_docker()).encode(), durable=False)


def read_health(run_dir: str) -> Health | None:
    """The health the shim last wrote; None if there is none (no healthcheck, or not started yet)."""
    try:
        with open(os.path.join(run_dir, HEALTH_FILE), "rb") as f:
            doc = loads(f.read())
    except (OSError, PalletError):
        return None
    if not isinstance(doc, dict) or doc.get("Status") not in (STARTING, HEALTHY, UNHEALTHY):
        return None
    streak = doc.get("FailingStreak")
    log: list[ProbeResult] = []
    for entry in doc.get("Log") or []:
        if isinstance(entry, dict):
            code = entry.get("ExitCode")
            log.append(
                ProbeResult(
                    start=str(entry.get("Start", "")),
                    end=str(entry.get("End", "")),
                    exit_code=code if isinstance(code, int) else -1,
                    output=str(entry.get("Output", "")),
                )
            )
    return Health(
        status=str(doc["Status"]), failing_streak=streak if isinstance(streak, int) else 0, log=tuple(log)
    )


def status_suffix(status: str) -> str:
    """What ``ps`` adds to ``Up 3 seconds`` for a health status ("" for none)."""
    if not status:
        return ""
    return " (health: starting)" if status == STARTING else f" ({status})"
