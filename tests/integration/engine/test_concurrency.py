"""30 ``pallet run -d`` from 30 processes at once, then 30 ``pallet rm -f`` at once."""

from __future__ import annotations

import subprocess

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import PalletEnv

pytestmark = [pytest.mark.root, pytest.mark.slow]

COUNT = 30


def run_all(commands: list[list[str]]) -> list[tuple[int, str, str]]:
    """Start every command at once; (exit code, stdout, stderr) of each."""
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        out.append((proc.returncode, stdout, stderr))
    return out


def test_thirty_concurrent_runs_and_removals(pallet_env: PalletEnv) -> None:
    started = run_all([pallet_env.argv("run", "-d", "busybox", "sleep", "600") for _ in range(COUNT)])
    assert [code for code, _, _ in started] == [0] * COUNT, [err for _, _, err in started if err]
    ids = [out.strip() for _, out, _ in started]
    assert len(set(ids)) == COUNT
    listed = pallet_env.ok("ps", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.State}}").splitlines()
    assert sorted(line.split()[0] for line in listed) == sorted(ids)
    assert len({line.split()[1] for line in listed}) == COUNT
    assert {line.split()[2] for line in listed} == {"running"}

    removed = run_all([pallet_env.argv("rm", "-f", cid) for cid in ids])
    assert [code for code, _, _ in removed] == [0] * COUNT, [err for _, _, err in removed if err]
    assert pallet_env.ok("ps", "-a", "-q") == ""
    assert pallet_env.leftovers(ids) == {}
    assert pallet_env.processes() == []


def test_concurrent_runs_with_one_name_let_exactly_one_win(pallet_env: PalletEnv) -> None:
    results = run_all(
        [pallet_env.argv("run", "-d", "--name", "only", "busybox", "sleep", "600") for _ in range(6)]
    )
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 125, 125, 125, 125, 125]
    losers = [err for code, _, err in results if code]
    assert all('the container name "/only" is already in use' in err for err in losers)
    assert len(pallet_env.container_ids()) == 1
