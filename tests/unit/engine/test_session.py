"""Attached sessions without containers: where a front end's output goes, and sig-proxy."""

from __future__ import annotations

import os
import signal
import socket

from pallet.engine.containers import session
from pallet.engine.service import streams
from pallet.engine.shim import attach
from pallet.errors import NotFound


def _connection() -> tuple[attach.AttachConnection, socket.socket]:
    ours, shims = socket.socketpair()
    return attach.AttachConnection(ours, False, b""), shims


def test_output_without_fds_goes_to_the_front_ends_writers_by_stream() -> None:
    conn, shim = _connection()
    shim.sendall(attach.output_frame(attach.STDOUT, b"out\n") + attach.output_frame(attach.STDERR, b"err\n"))
    shim.close()
    out: list[bytes] = []
    err: list[bytes] = []
    front = streams(write_stdout=out.append, write_stderr=err.append)
    assert session._stream(conn, front, interactive=False) is False
    assert (b"".join(out), b"".join(err)) == (b"out\n", b"err\n")
    conn.close()


def test_output_with_fds_is_copied_fd_to_fd_after_a_flush() -> None:
    conn, shim = _connection()
    shim.sendall(attach.output_frame(attach.STDOUT, b"out\n") + attach.output_frame(attach.STDERR, b"err\n"))
    shim.close()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    flushed: list[bool] = []
    front = streams(
        write_stdout=lambda data: None,
        write_stderr=lambda data: None,
        stdout_fd=out_w,
        stderr_fd=err_w,
        flush=lambda: flushed.append(True),
    )
    try:
        assert session._stream(conn, front, interactive=False) is False
        assert (os.read(out_r, 100), os.read(err_r, 100), flushed) == (b"out\n", b"err\n", [True])
    finally:
        conn.close()
        for fd in (out_r, out_w, err_r, err_w):
            os.close(fd)


class _Engine:
    def __init__(self) -> None:
        self.killed: list[tuple[str, str]] = []

    def kill(self, ref: str, sig: str) -> None:
        self.killed.append((ref, sig))
        if sig == str(int(signal.SIGUSR2)):
            raise NotFound("No such container: web")  # it exited meanwhile: no error


def test_sig_proxy_sends_our_signals_to_the_container_until_undone() -> None:
    engine = _Engine()
    before = signal.getsignal(signal.SIGUSR1)
    restore = session.proxy_signals(engine, "web")  # type: ignore[arg-type]
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR2)
    finally:
        restore()
    assert engine.killed == [("web", str(int(signal.SIGUSR1))), ("web", str(int(signal.SIGUSR2)))]
    assert signal.getsignal(signal.SIGUSR1) == before
