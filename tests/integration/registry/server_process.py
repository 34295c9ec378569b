"""Test kit for the registry-server integration tests: run ``pallet registry serve`` as a child.

``RegistryProcess`` starts the server on 127.0.0.1 with port 0 (the server
picks a free port and names it in its first log line), waits until it answers,
and is stopped by pid by the fixture that made it.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

_LISTENING = re.compile(r"serving the registry on (https?)://127\.0\.0\.1:(\d+)")

_MAIN = "from pallet.cli.main import main; raise SystemExit(main())"


class RegistryProcess:
    """A running ``pallet registry serve`` child process and a way to talk HTTP to it."""

    def __init__(self, storage: Path, log: Path, *args: str, cafile: str | None = None) -> None:
        self.storage = storage
        self.log = log
        self.cafile = cafile
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _MAIN,
                "registry",
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--storage",
                str(storage),
                *args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self.scheme, self.port = self._wait_listening()

    def _wait_listening(self) -> tuple[str, int]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = _LISTENING.search(self.log.read_text(errors="replace"))
            if found:
                return found.group(1), int(found.group(2))
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"registry did not start: {self.log.read_text(errors='replace')[-2000:]}")

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def connection(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            context = ssl.create_default_context(cafile=self.cafile)
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=context)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        conn: http.client.HTTPConnection | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request; returns status, headers (last value wins) and body."""
        own = conn is None
        conn = conn or self.connection()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            if own:
                conn.close()

    def error_code(self, body: bytes) -> str:
        return str(json.loads(body)["errors"][0]["code"])

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after 10 s; returns the exit status."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log_file.close()
        return self.proc.returncode
