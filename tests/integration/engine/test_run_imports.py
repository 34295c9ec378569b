"""``pallet run --rm busybox true`` imports none of the heavy modules STYLE.md bans from the run path.

The CLI runs in a child interpreter under ``python -X importtime`` (the list of
what was imported) with a finder at the front of ``sys.meta_path`` that notes,
for each module's first import, the stack that asked for it: a failure names
the line that pulled each offender in, not just the offender.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import PalletEnv

pytestmark = pytest.mark.root

SRC = Path(__file__).resolve().parents[3] / "src"
PYTHON = str(Path(__file__).resolve().parents[3] / ".venv" / "bin" / "python")

#: a module is banned if its name, or its top-level package, is listed (``re`` covers ``re._parser``)
BANNED = frozenset({
    "re", "pathlib", "argparse", "json", "subprocess", "typing", "enum", "dataclasses", "contextlib",
    "shutil", "hashlib", "datetime", "asyncio", "http", "urllib", "urllib3", "rich", "ctypes.util",
    "threading", "tempfile",
})  # fmt: skip

# What the ``pallet`` launcher does, plus the finder that records who imports what first.
# argv: REPORT SRC pallet-arguments...
_WRAPPER = """
import os, sys
report, src = sys.argv[1], sys.argv[2]
del sys.argv[1:3]
sys.argv[0] = "pallet"
sys.path.insert(0, src)
me = os.getpid()
first = {}

class _Who:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name not in first:
            frame, stack = sys._getframe(1), []
            while frame is not None:
                if not frame.f_code.co_filename.startswith("<frozen"):
                    stack.append(f"{frame.f_code.co_filename}:{frame.f_lineno}")
                frame = frame.f_back
            first[name] = stack
        return None

sys.meta_path.insert(0, _Who)
try:
    from pallet.cli.main import main
    code = main()
finally:
    if os.getpid() == me:
        with open(report, "w") as f:
            for name, stack in first.items():
                f.write("\\t".join([name, *stack]) + "\\n")
sys.exit(code)
"""


def _banned(name: str) -> bool:
    return name in BANNED or name.partition(".")[0] in BANNED


def _importers(importtime: str) -> dict[str, str]:
    """Module -> the module whose import pulled it in, read from ``-X importtime``'s indentation.

    Lines come after the imports they caused, indented two spaces per level,
    so the importer of a line is the next line one level shallower. A module
    at the top level was imported by code that ran (a function), not by an import.
    """
    rows: list[tuple[int, str]] = []
    for line in importtime.splitlines():
        if line.startswith("import time:") and "|" in line:
            field = line.rsplit("|", 1)[1]
            name = field.strip()
            if name != "imported package":
                rows.append(((len(field) - len(field.lstrip(" ")) - 1) // 2, name))
    parents: dict[str, str] = {}
    for i, (depth, name) in enumerate(rows):
        parent = next((n for d, n in rows[i + 1 :] if d == depth - 1), None) if depth else None
        parents.setdefault(name, parent or "(a function call at run time)")
    return parents


def _explain(name: str, parents: dict[str, str], stacks: dict[str, list[str]]) -> str:
    chain = [name]
    while chain[-1] in parents and not parents[chain[-1]].startswith("(") and len(chain) < 20:
        chain.append(parents[chain[-1]])
    stack = stacks.get(name, [])
    ours = [s for s in stack if s.startswith(str(SRC))]
    where = stack[0] if stack else "?"
    if ours and ours[0] != where:
        where += f" (from {ours[0]})"
    return f"{' <- '.join(chain)}: first imported at {where}"


def test_run_rm_imports_no_banned_module(pallet_env: PalletEnv, tmp_path: Path) -> None:
    # the everyday case: the image is unpacked already (the first run extracts its layers)
    pallet_env.ok("run", "--rm", "busybox", "true")
    report = tmp_path / "importers.tsv"
    done = subprocess.run(
        [
            PYTHON,
            "-X",
            "importtime",
            "-I",
            "-c",
            _WRAPPER,
            str(report),
            str(SRC),
            "--root",
            str(pallet_env.root),
            "--run-root",
            str(pallet_env.run_root),
            "run",
            "--rm",
            "busybox",
            "true",
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    parents = _importers(done.stderr)
    assert "pallet.engine.containers.lifecycle" in parents  # the run path was measured
    stacks: dict[str, list[str]] = {}
    for line in report.read_text().splitlines():
        name, *stack = line.split("\t")
        stacks[name] = stack
    offenders = sorted(name for name in parents if _banned(name))
    # report each offender once: the first banned module of a chain (``re``, not also ``re._parser``)
    roots = [n for n in offenders if not _banned(parents[n]) or parents[n].startswith("(")]
    assert roots == [], "banned modules on the run path:\n" + "\n".join(
        _explain(n, parents, stacks) for n in roots
    )
