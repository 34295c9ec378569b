"""The cwd of a process run as another user, entered as runc does: first as the runtime (which may
reach what that user cannot), and when that is refused, again once the user is set. Checked with
pallet-runtime, runc and crun alike.

A runtime without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH (``setpriv`` drops them) stands for one that
cannot enter a directory its container's user owns: a volume chowned to that user, or a rootless
runtime.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import Result, Runtime, base_config

pytestmark = pytest.mark.root

NOBODY = 65534
#: private directories (mode 0700) in a volume, by owner
OWNERS = {"useronly": NOBODY, "rootonly": 0, "otheronly": 1234}
WITHOUT_DAC = (
    "--bounding-set",
    "-dac_override,-dac_read_search",
    "--inh-caps",
    "-dac_override,-dac_read_search",
)


def _volume(tmp_path: Path) -> Path:
    volume = tmp_path / "cwds"
    volume.mkdir()
    volume.chmod(0o755)
    for name, owner in OWNERS.items():
        (volume / name).mkdir(mode=0o700)
        os.chown(volume / name, owner, owner)
    return volume


def _config(rt: Runtime, volume: Path, *args: str) -> dict[str, object]:
    config = base_config(rt.rootfs, *args)
    config["ociVersion"] = "1.0.2"  # the newest crun 1.8 accepts
    config["mounts"].append(
        {"destination": "/cwds", "type": "bind", "source": str(volume), "options": ["rbind"]}
    )
    return config


def _exec_as_nobody(rt: Runtime, cid: str, cwd: str, *, runtime_has_dac: bool) -> Result:
    process = json.loads(json.dumps(base_config(rt.rootfs, "pwd")["process"]))
    process["cwd"] = cwd
    process["user"] = {"uid": NOBODY, "gid": NOBODY}
    spec = rt.tmp / f"process-{cwd.strip('/').replace('/', '-')}.json"
    spec.write_text(json.dumps(process))
    if runtime_has_dac:
        return rt("exec", "--process", str(spec), cid)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    # stdin a pipe, never the host's /dev/null: crun 1.8 hands the exec's stdio to its user (fchown),
    # which would make the host's /dev/null nobody's
    done = subprocess.run(
        [setpriv, *WITHOUT_DAC, rt.binary, "--root", str(rt.root), "exec", "--process", str(spec), cid],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def _running(rt: Runtime, volume: Path) -> str:
    cid = rt.new_id()
    result = rt("run", "--detach", "--bundle", str(rt.bundle(_config(rt, volume, "sleep", "300"))), cid)
    assert result.rc == 0, result.err
    return cid


def test_exec_enters_a_cwd_only_its_user_can_enter_once_the_user_is_set(
    any_runtime: Runtime, tmp_path: Path
) -> None:
    cid = _running(any_runtime, _volume(tmp_path))
    result = _exec_as_nobody(any_runtime, cid, "/cwds/useronly", runtime_has_dac=False)
    assert (result.rc, result.out) == (0, "/cwds/useronly\n"), result.err


def test_exec_fails_on_a_cwd_neither_the_runtime_nor_its_user_can_enter(
    any_runtime: Runtime, tmp_path: Path
) -> None:
    cid = _running(any_runtime, _volume(tmp_path))
    result = _exec_as_nobody(any_runtime, cid, "/cwds/otheronly", runtime_has_dac=False)
    assert result.rc != 0
    assert result.out == ""
    assert "permission denied" in result.err.lower()


def test_exec_and_create_enter_a_root_only_cwd_the_runtime_can_enter(
    any_runtime: Runtime, tmp_path: Path
) -> None:
    volume = _volume(tmp_path)
    cid = _running(any_runtime, volume)
    result = _exec_as_nobody(any_runtime, cid, "/cwds/rootonly", runtime_has_dac=True)
    assert (result.rc, result.out) == (0, "/cwds/rootonly\n"), result.err
    # the init too: entered before the user is set, never again after
    config = _config(any_runtime, volume, "pwd")
    config["process"]["cwd"] = "/cwds/rootonly"  # type: ignore[index]
    config["process"]["user"] = {"uid": NOBODY, "gid": NOBODY}  # type: ignore[index]
    ran = any_runtime.run(config)
    assert (ran.rc, ran.out) == (0, "/cwds/rootonly\n"), ran.err
