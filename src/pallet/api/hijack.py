"""A hijacked connection: after the upgrade answer, raw bytes both ways (attach, exec start).

docker's contract (``Upgrade: tcp``): the server answers ``101 UPGRADED``
(or ``200 OK`` to an older client that did not ask to upgrade) and from then
on the connection carries the container's stdin in and its output out:
docker's multiplexed frames (8-byte headers: stream, 0, 0, 0, length) without
a tty, raw bytes with one. A client that has no more stdin half-closes
(``shutdown(SHUT_WR)``); it still reads the output until the server closes.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pallet.api.messages import Reader

__all__ = ["Connection", "upgrade_head"]


def upgrade_head(upgrade: bool, content_type: str, headers: dict[str, str]) -> bytes:
    """The answer's head: ``101 UPGRADED`` if the client asked for ``Upgrade: tcp``, else ``200 OK``;
    ``headers`` are the ones every answer carries."""
    lines = ["HTTP/1.1 101 UPGRADED" if upgrade else "HTTP/1.1 200 OK", f"Content-Type: {content_type}"]
    if upgrade:
        lines += ["Connection: Upgrade", "Upgrade: tcp"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def hung_up(sock: socket.socket) -> bool:
    """Whether the peer closed the connection (or it broke), without reading from it.

    A half-close (the client's stdin is over) is not a hang-up on a unix
    socket; on TCP it cannot be told apart, so it counts only for answers
    that take no more input (a log follow, a wait).
    """
    import select

    poller = select.poll()
    poller.register(sock, select.POLLHUP | select.POLLERR | select.POLLRDHUP)
    try:
        return bool(poller.poll(0))
    except OSError:
        return True


class Connection:
    """The client's side after the hijack. Reads go through the HTTP reader (it may hold stdin the
    client sent right behind its request); writes go to the socket."""

    def __init__(self, sock: socket.socket, rfile: Reader) -> None:
        self.sock = sock
        self._rfile = rfile

    def recv(self, size: int = 65536) -> bytes:
        """What the client sent next; b"" once it half-closed or went away."""
        try:
            return self._rfile.read1(size)
        except (ConnectionError, OSError):
            return b""

    def send(self, data: bytes) -> bool:
        """Send ``data``; False if the client is gone."""
        try:
            self.sock.sendall(data)
        except (ConnectionError, OSError):
            return False
        return True

    def hung_up(self) -> bool:
        """The client closed both ends (a half-close is not a hang-up here): see ``hung_up``."""
        import select

        poller = select.poll()
        poller.register(self.sock, select.POLLHUP | select.POLLERR)
        try:
            return bool(poller.poll(0))
        except OSError:
            return True

    def shutdown(self) -> None:
        """End the connection both ways (a detach): the client reads EOF and can send no more."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            return

    def close_write(self) -> None:
        """Half-close: the client reads EOF (its output is complete) and may still send."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return
