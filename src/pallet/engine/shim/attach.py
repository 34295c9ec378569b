"""The attach socket: how clients see a container's live output and feed its stdin.

The shim listens on ``<run dir>/attach.sock`` (unix stream). A client sends
one JSON line, then frames; the shim answers one JSON line, then the output::

    client -> shim   {"stdin": true, "stdout": true, "stderr": true, "start": false}\\n
                     then frames: kind (1 byte) + length (4 bytes, big endian) + payload
                       kind 0: stdin data       kind 1: close stdin (EOF)
                       kind 2: resize, payload rows, cols (2 bytes each, big endian)
    shim -> client   {"tty": false}\\n
                     then the output: raw bytes with a tty, else docker's multiplexed
                     stream: 8-byte headers [stream, 0, 0, 0, length (4 bytes BE)],
                     stream 1 = stdout, 2 = stderr (the Engine API's attach format)

The shim closes the connection once the container has exited and its output
is sent: EOF on the socket means "the container is gone" (its exit code is
then in ``exit.json``). ``start: true`` asks a shim launched with
``start_on_attach`` to start the container now, so this client misses no
output. Several clients may be attached at once; each gets all output.

The first half (constants, ``FrameReader``, ``output_frame``, socket
addresses) is used by the shim: standard library only. ``connect`` and
``pump`` are the client side.
"""

from __future__ import annotations

import os

from pallet.errors import InvalidArgument, Unavailable

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket

__all__ = [
    "DETACH_KEYS",
    "FRAME_CLOSE_STDIN",
    "FRAME_RESIZE",
    "FRAME_STDIN",
    "STDERR",
    "STDOUT",
    "AttachConnection",
    "FrameReader",
    "answer",
    "connect",
    "frame",
    "greet",
    "output_frame",
    "pump",
    "socket_address",
]

#: docker's default detach keys: ctrl-p ctrl-q
DETACH_KEYS = b"\x10\x11"
FRAME_STDIN = 0
FRAME_CLOSE_STDIN = 1
FRAME_RESIZE = 2
STDOUT = 1
STDERR = 2

#: the longest unix socket path the kernel takes (sun_path is 108 bytes with its NUL)
_SUN_PATH_MAX = 107


def socket_address(path: str) -> tuple[str, int]:
    """An address for ``path`` that fits in ``sun_path``, and a directory fd to close after use (or -1).

    Long paths (deep temp roots, 64-hex ids) go through
    ``/proc/self/fd/<dirfd>/<name>`` with a directory fd opened for the
    duration of the ``connect``/``bind``, as podman does.
    """
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        return path, -1
    directory, name = os.path.split(path)
    fd = os.open(directory or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    short = f"/proc/self/fd/{fd}/{name}"
    if len(short) > _SUN_PATH_MAX:
        os.close(fd)
        raise InvalidArgument(f"socket name too long: {name}")
    return short, fd


def frame(kind: int, payload: bytes = b"") -> bytes:
    """A client -> shim frame."""
    return bytes((kind,)) + len(payload).to_bytes(4, "big") + payload


def output_frame(stream: int, data: bytes) -> bytes:
    """A shim -> client frame of docker's multiplexed stream (no tty)."""
    return bytes((stream, 0, 0, 0)) + len(data).to_bytes(4, "big") + data


class FrameReader:
    """Parses a byte stream into ``(kind, payload)`` frames (client -> shim, or docker's 8-byte headers)."""

    __slots__ = ("_buf", "_header")

    def __init__(self, header: int = 5) -> None:
        self._buf = b""
        self._header = header

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf = self._buf + data
        out: list[tuple[int, bytes]] = []
        h = self._header
        while len(buf) >= h:
            size = int.from_bytes(buf[h - 4 : h], "big")
            if len(buf) < h + size:
                break
            out.append((buf[0], buf[h : h + size]))
            buf = buf[h + size :]
        self._buf = buf
        return out


# ---- client ----------------------------------------------------------------------------------


class AttachConnection:
    """One client connection to a shim's attach socket."""

    def __init__(self, sock: _socket.socket, tty: bool, rest: bytes) -> None:
        self.sock = sock
        self.tty = tty
        #: the shim closed its end: frames we send go nowhere
        self.peer_gone = False
        self._frames = FrameReader(header=8)
        self._rest = rest

    def send_stdin(self, data: bytes) -> None:
        self._send(frame(FRAME_STDIN, data))

    def close_stdin(self) -> None:
        self._send(frame(FRAME_CLOSE_STDIN))

    def resize(self, rows: int, cols: int) -> None:
        self._send(frame(FRAME_RESIZE, rows.to_bytes(2, "big") + cols.to_bytes(2, "big")))

    def _send(self, data: bytes) -> None:
        """Send a frame; if the shim has closed (the container exited), drop it: the output
        still queued for us is read all the same, then EOF."""
        if self.peer_gone:
            return
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.peer_gone = True

    def read(self) -> list[tuple[int, bytes]] | None:
        """The next output as ``(stream, data)`` pieces (stream 1 with a tty); None at EOF."""
        data, self._rest = (self._rest, b"") if self._rest else (self.sock.recv(65536), b"")
        if not data:
            return None
        if self.tty:
            return [(STDOUT, data)]
        return self._frames.feed(data)

    def buffered(self) -> bool:
        """Whether output was received already (with the shim's first line): ``read`` it before polling."""
        return bool(self._rest)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()


def connect(
    path: str, *, stdin: bool = False, stdout: bool = True, stderr: bool = True, start: bool = False
) -> AttachConnection:
    """Attach to the shim serving ``path``; ``Unavailable`` if no shim serves it (container not running)."""
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        address, dir_fd = socket_address(path)
        try:
            sock.connect(address)
        finally:
            if dir_fd >= 0:
                os.close(dir_fd)
        greet(sock, stdin=stdin, stdout=stdout, stderr=stderr, start=start)
        return answer(sock, path)
    except OSError as e:
        sock.close()
        raise Unavailable(
            f"attach {path}: {(e.strerror or str(e)).lower()}; is the container running?"
        ) from None
    except Unavailable:
        sock.close()
        raise


def greet(
    sock: _socket.socket,
    *,
    stdin: bool = False,
    stdout: bool = True,
    stderr: bool = True,
    start: bool = False,
) -> None:
    """Send the client's first line (what it wants) on a connected socket."""
    from pallet.oci.jsonfast import dumps

    header = {"stdin": stdin, "stdout": stdout, "stderr": stderr, "start": start}
    sock.sendall(dumps(header).encode() + b"\n")


def answer(sock: _socket.socket, name: str) -> AttachConnection:
    """Read the shim's first line after ``greet``: the connection, ready for output.

    ``Unavailable`` if the shim closed the socket instead; the caller closes ``sock`` then.
    """
    from pallet.oci.jsonfast import loads

    reply = b""
    while b"\n" not in reply:
        chunk = sock.recv(4096)
        if not chunk:
            raise Unavailable(f"attach {name}: the shim closed the connection")
        reply += chunk
    line, _, rest = reply.partition(b"\n")
    doc = loads(line)
    tty = isinstance(doc, dict) and doc.get("tty") is True
    return AttachConnection(sock, tty, rest)


def pump(
    conn: AttachConnection,
    *,
    stdin_fd: int | None = None,
    stdout_fd: int = 1,
    stderr_fd: int = 2,
    close_stdin_at_eof: bool = True,
    detach_keys: bytes = DETACH_KEYS,
) -> bool:
    """Copy ``stdin_fd`` to the container and its output to ``stdout_fd``/``stderr_fd`` until it exits.

    With a tty and a terminal on ``stdin_fd``, that terminal is put in raw mode
    (restored on return), its size is sent first and on every SIGWINCH, and
    typing ``detach_keys`` (docker's ctrl-p ctrl-q; ``b""`` for none) detaches:
    ``pump`` then returns True and the container runs on. EOF on ``stdin_fd``
    closes the container's stdin when ``close_stdin_at_eof`` (``docker run -i``).
    Returns False once the container has exited.
    """
    import select

    saved = None
    resized = [False]
    old_handler: object = None
    terminal = stdin_fd is not None and conn.tty and os.isatty(stdin_fd)
    if terminal and stdin_fd is not None:
        import termios
        import tty

        saved = termios.tcgetattr(stdin_fd)
        tty.setraw(stdin_fd)
        old_handler = _watch_winch(resized)  # before the first size: no change goes unseen
        size = os.get_terminal_size(stdin_fd)
        conn.resize(size.lines, size.columns)
    try:
        if conn.buffered():  # output that came with the shim's first line
            for stream, data in conn.read() or ():
                _write_all(stderr_fd if stream == STDERR else stdout_fd, data)
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN)
        if stdin_fd is not None:
            poller.register(stdin_fd, select.POLLIN)
        keys = detach_keys if terminal else b""
        held = b""  # a typed prefix of the detach keys, sent once it turns out not to be them
        while True:
            # a terminal's size changes arrive as SIGWINCH: its handler only sets a flag,
            # so frames are never interleaved; poll wakes up to look at it
            events = poller.poll(200 if terminal else None)
            if resized[0] and stdin_fd is not None:
                resized[0] = False
                size = os.get_terminal_size(stdin_fd)
                conn.resize(size.lines, size.columns)
            for fd, _ in events:
                if fd == stdin_fd:
                    data = os.read(stdin_fd, 65536)
                    if data:
                        data, held, detached = _split_detach(held + data, keys)
                        if data:
                            conn.send_stdin(data)
                        if detached:
                            return True
                        continue
                    poller.unregister(stdin_fd)
                    if close_stdin_at_eof:
                        conn.close_stdin()
                    continue
                pieces = conn.read()
                if pieces is None:
                    return False
                for stream, data in pieces:
                    _write_all(stderr_fd if stream == STDERR else stdout_fd, data)
    finally:
        if saved is not None and stdin_fd is not None:
            import termios

            termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
        if terminal:
            _restore_winch(old_handler)


def _split_detach(data: bytes, keys: bytes) -> tuple[bytes, bytes, bool]:
    """(bytes to send now, bytes to hold back, whether the detach keys were typed)."""
    if not keys:
        return data, b"", False
    at = data.find(keys)
    if at >= 0:
        return data[:at], b"", True
    for size in range(min(len(keys) - 1, len(data)), 0, -1):
        if data.endswith(keys[:size]):
            return data[:-size], data[-size:], False
    return data, b"", False


_SIGWINCH = 28
_NOT_WATCHED = object()


def _watch_winch(flag: list[bool]) -> object:
    if TYPE_CHECKING:
        import signal as _signal
    else:
        import _signal

    def on_winch(signum: int, frame: object) -> None:
        flag[0] = True

    try:
        return _signal.signal(_SIGWINCH, on_winch)
    except ValueError:  # not the main thread: sizes are then sent at the start only
        return _NOT_WATCHED


def _restore_winch(handler: object) -> None:
    if TYPE_CHECKING:
        import signal as _signal
    else:
        import _signal

    if handler is not _NOT_WATCHED:
        _signal.signal(_SIGWINCH, handler)  # type: ignore[arg-type]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
