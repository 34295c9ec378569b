"""The shim's healthcheck: it probes its container, as dockerd's health monitor does, for as long as it runs.

One probe at a time, driven by the supervisor's poll loop (no thread):

1. at its time, a *starter* child of the shim asks the OCI runtime for
   ``exec --detach`` of the probe command (the container's own process: user,
   env, cwd, capabilities), stdout and stderr on one pipe, its pid in a file;
   the exec'd process is then reparented to the shim (the child subreaper);
2. the shim reads the pipe (the first ``MAX_OUTPUT`` bytes are kept) and reaps
   the probe like any child of its own: its exit code is the result;
3. a probe still running at its timeout is killed (SIGKILL, by its host pid)
   and counts as a failure: exit code -1, ``Health check exceeded timeout (…)``;
   a probe the runtime could not start is -1 with the runtime's words;
4. ``healthcheck.record_probe`` gives the new state, written to ``health.json``
   in the run dir; a change of status is a ``health_status: …`` event (and
   each probe is an ``exec_create``/``exec_start``/``exec_die``, as dockerd
   records its probes);
5. the next probe is one interval after this one ended (the start interval
   while starting within the start period).

The first probe runs one interval after the start. ``start`` is called at
each (re)start of the container (status ``starting``, streak 0, the log
kept); ``stop`` at its exit ends probing: a probe in flight is killed and the
status is ``unhealthy``, as dockerd leaves a stopped container's.
Standard library only (the shim's path).
"""

from __future__ import annotations

import os
import time

from pallet.engine.durations import format_duration
from pallet.engine.healthcheck import (
    MAX_OUTPUT,
    STARTING,
    UNHEALTHY,
    Health,
    ProbeResult,
    record_probe,
    write_health,
)
from pallet.engine.shim.logfile import rfc3339nano
from pallet.engine.shim.supervisor import exit_code_of
from pallet.errors import FailedPrecondition, PalletError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal
    from collections.abc import Callable

    from pallet.engine.healthcheck import Settings
    from pallet.engine.runtimes import Runtime
else:
    import _signal

__all__ = ["HealthMonitor"]

_SIGCHLD = 17
_SIGKILL = 9
_POLLIN = 0x001 | 0x002  # POLLIN | POLLPRI


class _Probe:
    """One probe in flight."""

    __slots__ = (
        "deadline", "err_r", "exec_id", "out_r", "output", "pid", "pid_file", "start", "starter", "status",
    )  # fmt: skip

    def __init__(
        self, starter: int, out_r: int, err_r: int, pid_file: str, *, deadline: float, exec_id: str
    ) -> None:
        self.starter = starter  # 0 once reaped
        self.out_r = out_r  # -1 once closed
        self.err_r = err_r  # the starter's error message, if it fails; -1 once closed
        self.pid_file = pid_file
        self.deadline = deadline
        self.start = rfc3339nano(time.time_ns())
        self.pid = 0  # the probe's host pid, once the starter told it
        self.output = b""
        self.status: int | None = None  # the probe's wait status once reaped
        self.exec_id = exec_id


class HealthMonitor:
    def __init__(
        self,
        settings: Settings,
        runtime: Runtime,
        *,
        container_id: str,
        bundle: str,
        run_dir: str,
        event: Callable[..., None],
        close_in_child: Callable[[], None],
    ) -> None:
        """``event`` records a container event (its action, extra attributes as keywords);
        ``close_in_child`` closes, in a forked starter, the shim's fds that must not be held a
        moment longer (attach clients, stdin)."""
        self.settings = settings
        self.runtime = runtime
        self.container_id = container_id
        self.bundle = bundle
        self.run_dir = run_dir
        self.event = event
        self.close_in_child = close_in_child
        self.health = Health()
        self.started_at = 0.0
        self.next_at: float | None = None
        self.probe: _Probe | None = None
        #: exits of children reaped while a starter had not told its probe's pid yet
        self.early: dict[int, int] = {}
        #: starters killed at a timeout before they told the pid: their probe is killed once they do
        self.abandoned: dict[int, str] = {}
        self.count = 0

    # -- driven by the supervisor ----------------------------------------------------------------

    def start(self) -> None:
        """The container (re)started: starting anew, first probe one interval from now."""
        self._end_probe()
        self.started_at = time.monotonic()
        self.health = Health(status=STARTING, log=self.health.log)
        self._write()
        self.next_at = self.started_at + self._interval() / 1e9

    def stop(self) -> None:
        """The container exited: no more probes; a probe in flight is killed; the status is unhealthy."""
        if self.next_at is None and self.probe is None:
            return
        self._end_probe()
        self.next_at = None
        self.health = self.health.replace(status=UNHEALTHY)
        self._write()

    def deadline(self) -> float | None:
        """When ``on_time`` has work next (None: nothing timed)."""
        return self.probe.deadline if self.probe is not None else self.next_at

    def on_time(self, now: float) -> None:
        if self.probe is not None:
            if now >= self.probe.deadline:
                self._timed_out()
        elif self.next_at is not None and now >= self.next_at:
            self.next_at = None
            self._launch()

    def handlers(self) -> dict[int, tuple[int, Callable[[int], None]]]:
        probe = self.probe
        if probe is None or probe.out_r < 0:
            return {}
        return {probe.out_r: (_POLLIN, lambda _: self._read_output(probe))}

    def reaped(self, pid: int, status: int) -> None:
        """A child of the shim that is not the container's init exited with wait ``status``."""
        if pid in self.abandoned:
            self._kill_from_file(self.abandoned.pop(pid))
            return
        probe = self.probe
        if probe is None:
            return
        if pid == probe.starter:
            probe.starter = 0
            if os.waitstatus_to_exitcode(status) != 0:  # the runtime refused: its words are the output
                self._finish(probe, -1, _read_all(probe.err_r))
                return
            probe.pid = _read_pid(probe.pid_file)
            if probe.pid in self.early:
                probe.status = self.early.pop(probe.pid)
            elif probe.pid <= 0:
                self._finish(probe, -1, b"the OCI runtime did not tell the probe's pid")
                return
        elif pid == probe.pid:
            probe.status = status
        elif probe.pid == 0:
            self.early[pid] = status
        if probe.status is not None:
            self._finish(probe, exit_code_of(probe.status))

    # -- a probe -------------------------------------------------------------------------------

    def _interval(self) -> int:
        s = self.settings
        if time.monotonic() - self.started_at < s.start_period / 1e9 and self.health.status == STARTING:
            return s.start_interval
        return s.interval

    def _launch(self) -> None:
        self.count += 1
        pid_file = os.path.join(self.run_dir, f"health-{os.getpid()}-{self.count}.pid")
        fds: list[int] = []
        try:
            fds += os.pipe()
            fds += os.pipe()
            starter = os.fork()
        except OSError as e:  # out of fds or processes: a failed probe, and the next one in its time
            for fd in fds:
                os.close(fd)
            self._record(rfc3339nano(time.time_ns()), -1, f"start the health probe: {e.strerror}")
            return
        out_r, out_w, err_r, err_w = fds
        if starter == 0:  # pragma: no cover - the child, covered by every healthcheck test
            os.close(err_r)
            self._start_in_child(out_r, out_w, err_w, pid_file)
        os.close(out_w)
        os.close(err_w)
        os.set_blocking(out_r, False)
        self.early = {}
        exec_id = os.urandom(32).hex()
        deadline = time.monotonic() + self.settings.timeout / 1e9
        self.probe = _Probe(starter, out_r, err_r, pid_file, deadline=deadline, exec_id=exec_id)
        command = " ".join(self.settings.argv)
        self._emit(f"exec_create: {command}", execID=exec_id)
        self._emit(f"exec_start: {command}", execID=exec_id)

    def _start_in_child(self, out_r: int, out_w: int, err_w: int, pid_file: str) -> None:
        """In the starter: ``exec --detach`` of the probe; exit 0 once it runs, else 1 (why on ``err_w``)."""
        code = 1
        try:
            os.close(out_r)
            _signal.set_wakeup_fd(-1)
            _signal.signal(_SIGCHLD, _signal.SIG_DFL)
            self.close_in_child()
            null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
            self.runtime.exec_detached(
                self.container_id, self._process(), pid_file, stdio=(null, out_w, out_w)
            )
            code = 0
        except PalletError as e:
            os.write(err_w, e.message.encode("utf-8", "replace"))
        except BaseException as e:  # noqa: BLE001 - the child must end here, whatever happened
            os.write(err_w, f"{type(e).__name__}: {e}".encode("utf-8", "replace"))
        finally:
            os._exit(code)

    def _process(self) -> dict[str, object]:
        """The container's process (its config.json) running the probe's command, without a terminal."""
        from pallet.oci.jsonfast import loads

        with open(os.path.join(self.bundle, "config.json"), "rb") as f:
            spec = loads(f.read())
        process = spec.get("process") if isinstance(spec, dict) else None
        if not isinstance(process, dict):
            raise FailedPrecondition("the container's config.json has no process")
        process = dict(process)
        process["args"] = list(self.settings.argv)
        process["terminal"] = False
        process.pop("consoleSize", None)
        return process

    def _read_output(self, probe: _Probe) -> None:
        while probe.out_r >= 0:
            try:
                data = os.read(probe.out_r, 65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                os.close(probe.out_r)
                probe.out_r = -1
                return
            if len(probe.output) < MAX_OUTPUT:
                probe.output += data[: MAX_OUTPUT - len(probe.output)]

    def _timed_out(self) -> None:
        probe = self.probe
        assert probe is not None
        self._finish(
            probe, -1, f"Health check exceeded timeout ({format_duration(self.settings.timeout)})".encode()
        )

    def _finish(self, probe: _Probe, code: int, output: bytes | None = None) -> None:
        self._read_output(probe)
        self._end_probe()
        if probe.status is not None:
            self._emit("exec_die", execID=probe.exec_id, exitCode=str(code))
        text = (probe.output if output is None else output).decode("utf-8", "replace")
        self._record(probe.start, code, text)

    def _record(self, start: str, code: int, output: str) -> None:
        s = self.settings
        before = self.health.status
        result = ProbeResult(start=start, end=rfc3339nano(time.time_ns()), exit_code=code, output=output)
        in_start_period = time.monotonic() - self.started_at < s.start_period / 1e9
        self.health = record_probe(self.health, result, retries=s.retries, in_start_period=in_start_period)
        self.next_at = time.monotonic() + self._interval() / 1e9
        self._write()
        if self.health.status != before:
            self._emit(f"health_status: {self.health.status}")

    def _end_probe(self) -> None:
        """Forget the probe in flight: kill what of it still runs, close its pipe."""
        probe, self.probe = self.probe, None
        if probe is None:
            return
        for fd in (probe.out_r, probe.err_r):
            if fd >= 0:
                os.close(fd)
        probe.out_r = probe.err_r = -1
        if probe.status is None and probe.pid > 0:
            _kill(probe.pid)
        if probe.starter:
            _kill(probe.starter)
            self.abandoned[probe.starter] = probe.pid_file
        else:
            _unlink(probe.pid_file)
        self.early = {}

    def _kill_from_file(self, pid_file: str) -> None:
        pid = _read_pid(pid_file)
        if pid > 0:
            _kill(pid)
        _unlink(pid_file)

    def _emit(self, action: str, **extra: str) -> None:
        """Record an event; a failure to (a full disk) costs the event, never the probing."""
        try:
            self.event(action, **extra)
        except OSError as e:
            os.write(2, f"pallet-shim {self.container_id}: event {action}: {e.strerror}\n".encode())

    def _write(self) -> None:
        try:
            write_health(self.run_dir, self.health)
        except OSError as e:  # the run dir is gone (the container removed): nobody will read it
            os.write(2, f"pallet-shim {self.container_id}: health: {e.strerror}\n".encode())


def _read_all(fd: int) -> bytes:
    """What a pipe holds up to its EOF (its writer is gone)."""
    data = b""
    try:
        while chunk := os.read(fd, 65536):
            data += chunk
    except OSError:
        pass
    return data


def _read_pid(path: str) -> int:
    try:
        with open(path, "rb") as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _kill(pid: int) -> None:
    try:
        os.kill(pid, _SIGKILL)
    except OSError:
        return  # gone already


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
