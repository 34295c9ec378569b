"""The attach protocol: frames both ways, docker's multiplexed output, and a client against a fake shim."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import pytest

from pallet.engine.shim import attach
from pallet.errors import Unavailable


def test_frame_reader_reassembles_frames_split_anywhere() -> None:
    data = attach.frame(attach.FRAME_STDIN, b"hello") + attach.frame(attach.FRAME_CLOSE_STDIN)
    reader = attach.FrameReader()
    got = []
    for n in range(len(data)):
        got += reader.feed(data[n : n + 1])
    assert got == [(attach.FRAME_STDIN, b"hello"), (attach.FRAME_CLOSE_STDIN, b"")]


def test_output_frames_use_dockers_8_byte_header() -> None:
    assert attach.output_frame(attach.STDERR, b"oops") == b"\x02\x00\x00\x00\x00\x00\x00\x04oops"
    reader = attach.FrameReader(header=8)
    assert reader.feed(attach.output_frame(1, b"a") + attach.output_frame(2, b"bc")) == [
        (1, b"a"),
        (2, b"bc"),
    ]


def test_short_socket_paths_are_used_as_they_are(tmp_path: Path) -> None:
    assert attach.socket_address("/run/pallet/x/attach.sock") == ("/run/pallet/x/attach.sock", -1)


def test_long_socket_paths_go_through_a_directory_fd_closed_after_use(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 64) / ("e" * 64)
    deep.mkdir(parents=True)
    path = str(deep / "attach.sock")
    address, dir_fd = attach.socket_address(path)
    assert len(address) < 108
    server = socket.socket(socket.AF_UNIX)
    server.bind(address)
    os.close(dir_fd)
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        with conn, server:
            conn.recv(4096)
            conn.sendall(b'{"tty": false}\n')

    thread = threading.Thread(target=serve)
    thread.start()
    fds_before = len(os.listdir("/proc/self/fd"))
    try:
        conn = attach.connect(path)
        conn.close()
    finally:
        thread.join()
    assert len(os.listdir("/proc/self/fd")) <= fds_before
    assert conn.tty is False


def fake_shim(path: str, tty: bool, seen: list[object]) -> threading.Thread:
    """A one-client shim: records the header and frames, answers with output, then closes."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        with conn, server:
            data = b""
            while b"\n" not in data:
                data += conn.recv(4096)
            header, _, rest = data.partition(b"\n")
            seen.append(json.loads(header))
            conn.sendall(json.dumps({"tty": tty}).encode() + b"\n")
            reader = attach.FrameReader()
            frames = reader.feed(rest)
            while not any(kind == attach.FRAME_CLOSE_STDIN for kind, _ in frames):
                frames += reader.feed(conn.recv(4096))
            seen.extend(frames)
            if tty:
                conn.sendall(b"raw output\r\n")
            else:
                conn.sendall(attach.output_frame(1, b"out\n") + attach.output_frame(2, b"err\n"))

    thread = threading.Thread(target=serve)
    thread.start()
    return thread


def test_pump_sends_stdin_then_eof_and_splits_output_by_stream(tmp_path: Path) -> None:
    seen: list[object] = []
    thread = fake_shim(str(tmp_path / "a.sock"), False, seen)
    in_r, in_w = os.pipe()
    out = tmp_path / "out"
    err = tmp_path / "err"
    try:
        conn = attach.connect(str(tmp_path / "a.sock"), stdin=True)
        os.write(in_w, b"typed\n")
        os.close(in_w)
        with open(out, "wb") as o, open(err, "wb") as e:
            attach.pump(conn, stdin_fd=in_r, stdout_fd=o.fileno(), stderr_fd=e.fileno())
        conn.close()
    finally:
        os.close(in_r)
        thread.join()
    assert seen[0] == {"stdin": True, "stdout": True, "stderr": True, "start": False}
    assert seen[1:] == [(attach.FRAME_STDIN, b"typed\n"), (attach.FRAME_CLOSE_STDIN, b"")]
    assert out.read_bytes() == b"out\n"
    assert err.read_bytes() == b"err\n"


def test_tty_output_is_raw_and_resize_is_a_frame(tmp_path: Path) -> None:
    seen: list[object] = []
    thread = fake_shim(str(tmp_path / "a.sock"), True, seen)
    try:
        conn = attach.connect(str(tmp_path / "a.sock"), stdin=True, start=True)
        assert conn.tty
        conn.resize(24, 80)
        conn.close_stdin()
        assert conn.read() == [(attach.STDOUT, b"raw output\r\n")]
        conn.close()
    finally:
        thread.join()
    assert seen[0] == {"stdin": True, "stdout": True, "stderr": True, "start": True}
    assert seen[1] == (attach.FRAME_RESIZE, b"\x00\x18\x00\x50")


def test_connect_without_a_shim_says_the_container_is_not_running(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="is the container running"):
        attach.connect(str(tmp_path / "attach.sock"))


def test_terminal_resize_is_forwarded_and_raw_mode_restored(tmp_path: Path) -> None:
    import fcntl
    import signal
    import struct
    import termios

    def set_size(fd: int, rows: int, cols: int) -> None:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    master, slave = os.openpty()
    set_size(master, 24, 80)
    before = termios.tcgetattr(slave)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "a.sock"))
    server.listen(1)
    resizes: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn, server:
            data = b""
            while b"\n" not in data:
                data += conn.recv(4096)
            conn.sendall(b'{"tty": true}\n')
            reader = attach.FrameReader()
            frames = reader.feed(data.partition(b"\n")[2])
            while len(frames) < 1:
                frames += reader.feed(conn.recv(4096))
            set_size(master, 50, 132)
            os.kill(os.getpid(), signal.SIGWINCH)
            while len(frames) < 2:
                frames += reader.feed(conn.recv(4096))
            resizes.extend(payload for kind, payload in frames if kind == attach.FRAME_RESIZE)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        conn = attach.connect(str(tmp_path / "a.sock"), stdin=True)
        out = tmp_path / "out"
        with open(out, "wb") as o:
            attach.pump(conn, stdin_fd=slave, stdout_fd=o.fileno(), stderr_fd=o.fileno())
        conn.close()
    finally:
        thread.join()
        after = termios.tcgetattr(slave)
        os.close(master)
        os.close(slave)
    assert resizes == [b"\x00\x18\x00\x50", b"\x00\x32\x00\x84"]
    assert after == before


def test_ctrl_p_ctrl_q_detaches_without_closing_the_containers_stdin(tmp_path: Path) -> None:
    master, slave = os.openpty()
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "a.sock"))
    server.listen(1)
    frames: list[tuple[int, bytes]] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn, server:
            data = b""
            while b"\n" not in data:
                data += conn.recv(4096)
            conn.sendall(b'{"tty": true}\n')
            reader = attach.FrameReader()
            frames.extend(reader.feed(data.partition(b"\n")[2]))
            while not frames:  # the first resize: the terminal is in raw mode from now on
                frames.extend(reader.feed(conn.recv(4096)))
            os.write(master, b"ab\x10")  # ctrl-p alone: held back until the next key
            while len([f for f in frames if f[0] == attach.FRAME_STDIN]) < 1:
                frames.extend(reader.feed(conn.recv(4096)))
            os.write(master, b"\x11")
            while chunk := conn.recv(4096):  # the client goes away: EOF
                frames.extend(reader.feed(chunk))

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        conn = attach.connect(str(tmp_path / "a.sock"), stdin=True)
        with open(tmp_path / "out", "wb") as o:
            detached = attach.pump(conn, stdin_fd=slave, stdout_fd=o.fileno(), stderr_fd=o.fileno())
        conn.close()
    finally:
        thread.join()
        os.close(master)
        os.close(slave)
    assert detached is True
    assert [f for f in frames if f[0] != attach.FRAME_RESIZE] == [(attach.FRAME_STDIN, b"ab")]
