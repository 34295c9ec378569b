"""Attach sessions: a hijacked client joined to a container's shim, and attaches waiting for a start.

docker's CLI attaches first and starts after (``docker run``, ``start -a``),
so that no output is missed. An attach to a container that has not started
registers here (``Waiting``); the start that follows makes its attach
client the shim's first (``Service.start_with_attach``) and hands the
connection to the waiting attach. ``pump`` then copies: the client's stdin
to the container (until the detach keys, or the client's half-close, which
closes the container's stdin when it was made to be attached once), and the
container's output to the client (docker's frames without a tty, raw with
one) until the container exits; then the server closes the connection.
"""

from __future__ import annotations

import threading
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from pallet.api.framing import DetachMatcher, frame

if TYPE_CHECKING:
    from pallet.api.hijack import Connection
    from pallet.engine.service import AttachConnection

__all__ = ["Waiting", "pump", "take_waiting", "wait_for_start"]

_KEY = "attach.waiting"
_LOCK = threading.Lock()


class Waiting:
    """An attach to a container not started yet: the start hands it its connection (or an error)."""

    def __init__(self, container_id: str, *, stdin: bool, size: tuple[int, int] | None) -> None:
        self.container_id = container_id
        self.stdin = stdin
        self.size = size
        self.conn: AttachConnection | None = None
        self.error: str | None = None
        self._ready = threading.Event()

    def deliver(self, conn: AttachConnection) -> None:
        self.conn = conn
        self._ready.set()

    def fail(self, message: str) -> None:
        self.error = message
        self._ready.set()

    def wait(self, timeout: float) -> bool:
        return self._ready.wait(timeout)


def wait_for_start(shared: MutableMapping[str, Any], waiting: Waiting) -> None:
    with _LOCK:
        shared.setdefault(_KEY, {}).setdefault(waiting.container_id, []).append(waiting)


def forget(shared: MutableMapping[str, Any], waiting: Waiting) -> None:
    with _LOCK:
        entries = shared.get(_KEY, {}).get(waiting.container_id, [])
        if waiting in entries:
            entries.remove(waiting)


def take_waiting(shared: MutableMapping[str, Any], container_id: str) -> list[Waiting]:
    """The attaches waiting for ``container_id``'s start, removed from the table."""
    with _LOCK:
        return list(shared.get(_KEY, {}).pop(container_id, []))


def _hang_up(shim: AttachConnection) -> None:
    """End our connection to the shim from another thread: a shutdown wakes a blocked read, a close would not."""
    import socket

    try:
        shim.sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        return


def pump(
    client: Connection,
    shim: AttachConnection,
    *,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    close_stdin: bool,
    detach_keys: bytes,
) -> None:
    """Copy between ``client`` and the container's ``shim`` until the container exits, the user
    detaches, or the client goes away; the container runs on in the last two cases."""
    done = threading.Event()

    def feed_stdin() -> None:
        try:
            copy_stdin()
        except OSError:
            return  # the shim's connection closed under us: the container exited

    def copy_stdin() -> None:
        matcher = DetachMatcher(detach_keys)
        while not done.is_set():
            data = client.recv()
            if not data:  # the client half-closed: its stdin is over
                if close_stdin:
                    shim.close_stdin()
                return
            send, detached = matcher.feed(data)
            if send:
                shim.send_stdin(send)
            if detached:
                done.set()
                _hang_up(shim)  # our end only: the output loop ends, the container runs on
                return

    def watch_client() -> None:
        # a quiet container and a client gone: nothing would end the output loop otherwise
        while not done.wait(1.0):
            if client.hung_up():
                done.set()
                _hang_up(shim)
                return

    if stdin:
        threading.Thread(target=feed_stdin, name="attach stdin", daemon=True).start()
    threading.Thread(target=watch_client, name="attach watch", daemon=True).start()
    try:
        while True:
            try:
                pieces = shim.read()
            except OSError:
                break  # closed by a detach, or the shim went away
            if pieces is None:
                break
            for stream, data in pieces:
                if (stream == 2 and not stderr) or (stream != 2 and not stdout):
                    continue
                if not client.send(data if shim.tty else frame(stream, data)):
                    return  # the client is gone
    finally:
        done.set()
        shim.close()
        client.close_write()
