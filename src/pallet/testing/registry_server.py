"""``pallet registry serve`` as a child of a test, on a free 127.0.0.1 port.

``pallet_registry(argv, storage)`` starts it with ``argv`` (the pallet
launcher and its global flags, e.g. ``PalletEnv.argv()``) on ``storage``,
waits until it accepts connections, yields its ``127.0.0.1:PORT`` and stops it
by its pid (SIGTERM, then SIGKILL) when the block ends, even on failure.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["pallet_registry"]


@contextlib.contextmanager
def pallet_registry(argv: list[str], storage: Path) -> Iterator[str]:
    """``pallet registry serve`` on a free 127.0.0.1 port; its ``host:port``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [*argv, "registry", "serve", "--addr", f"127.0.0.1:{port}", "--storage", str(storage)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError(f"pallet registry serve exited ({server.returncode})") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"pallet registry serve does not answer on port {port}") from None
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
