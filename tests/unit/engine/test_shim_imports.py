"""The shim's process imports only light modules: an idle shim per container must stay small."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src"
BANNED = {
    "asyncio", "http", "dataclasses", "typing", "re", "enum", "argparse", "subprocess", "signal",
    "json", "json.decoder", "json.encoder", "ctypes.util", "logging", "datetime", "inspect", "tempfile",
    "shutil", "socket", "selectors", "threading", "contextlib", "sqlite3",
}  # fmt: skip

# everything main._run, the supervisor and the runtime client import on the way
SHIM_PATH = """
import sys
sys.path.insert(0, sys.argv[1])
import pallet.engine.shim.main, pallet.engine.shim.supervisor, pallet.engine.shim.config
import pallet.engine.runtimes, pallet.linux.libc, _signal, _socket, fcntl
print(" ".join(sorted(sys.modules)))
"""


def test_shim_imports_no_heavy_module() -> None:
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", SHIM_PATH, str(SRC)], capture_output=True, text=True, check=True
    )
    assert BANNED & set(done.stdout.split()) == set()


# what the zygote loads before it forks shims: all of it is in every forked shim
ZYGOTE_PATH = """
import sys
sys.path.insert(0, sys.argv[1])
from pallet.engine.shim import zygote
zygote._warm()
print(" ".join(sorted(sys.modules)))
"""


def test_the_zygote_loads_no_heavy_module() -> None:
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", ZYGOTE_PATH, str(SRC)], capture_output=True, text=True, check=True
    )
    assert BANNED & set(done.stdout.split()) == set()
