"""Hooks: every phase runs, in order, with the state on stdin; a failing hook fails cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

from pallet.oci.jsonfast import loads

from .conftest import Runtime, base_config, leftovers

pytestmark = pytest.mark.root


def _hook(log: Path, phase: str) -> dict[str, object]:
    # /bin/sh of the host for host-side hooks; the container's busybox sh for in-container ones
    return {
        "path": "/bin/sh",
        "args": ["sh", "-c", f'read -r state; echo "{phase} $state" >> {log}'],
        "timeout": 5,
    }


def test_every_hook_phase_runs_in_order_with_the_state_on_stdin(runtime: Runtime, tmp_path: Path) -> None:
    log = tmp_path / "hooks.log"
    log.write_text("")
    config = base_config(runtime.rootfs, "true")
    # createContainer/startContainer hooks run in the container: log to a bind-mounted file
    config["mounts"].append(
        {"destination": "/hooks.log", "type": "bind", "source": str(log), "options": ["bind"]}
    )
    inside = Path("/hooks.log")
    config["hooks"] = {
        "prestart": [_hook(log, "prestart")],
        "createRuntime": [_hook(log, "createRuntime")],
        "createContainer": [_hook(log, "createContainer")],
        "startContainer": [_hook(inside, "startContainer")],
        "poststart": [_hook(log, "poststart")],
        "poststop": [_hook(log, "poststop")],
    }
    bundle = runtime.bundle(config)
    cid = runtime.new_id()
    created = runtime("create", "--bundle", str(bundle), cid)
    assert created.rc == 0, created.err
    pid = loads(runtime("state", cid).out)["pid"]  # type: ignore[index]
    assert runtime("start", cid).rc == 0
    runtime.wait_status(cid, "stopped")
    assert runtime("delete", cid).rc == 0
    entries = [line.split(" ", 1) for line in log.read_text().splitlines()]
    assert [phase for phase, _ in entries] == [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ]
    for phase, state_text in entries:
        state = loads(state_text)
        assert isinstance(state, dict)
        assert state["id"] == cid, phase
        assert state["bundle"] == str(bundle)
        if phase != "poststop":
            assert state["pid"] == pid, phase
    statuses = {phase: loads(text)["status"] for phase, text in entries}  # type: ignore[index]
    # prestart sees "created" (crun; the runtime-tools suite checks it), createRuntime "creating"
    assert (statuses["prestart"], statuses["createRuntime"], statuses["poststart"]) == (
        "created",
        "creating",
        "running",
    )


def test_a_failing_prestart_hook_fails_create_and_leaves_nothing(runtime: Runtime) -> None:
    config = base_config(runtime.rootfs, "true")
    config["hooks"] = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 4"]}]}
    bundle = runtime.bundle(config)
    cid = runtime.new_id()
    result = runtime("create", "--bundle", str(bundle), cid)
    assert result.rc == 1
    assert "error running prestart hook #0: exit status 4" in result.err
    assert "nope" in result.err
    assert leftovers(runtime, cid) == []


def test_a_failing_poststop_hook_only_warns(runtime: Runtime) -> None:
    config = base_config(runtime.rootfs, "true")
    config["hooks"] = {"poststop": [{"path": "/bin/false"}]}
    bundle = runtime.bundle(config)
    cid = runtime.new_id()
    assert runtime("run", "--detach", "--bundle", str(bundle), cid).rc == 0
    runtime.wait_status(cid, "stopped")
    result = runtime("delete", cid)
    assert result.rc == 0
    assert "poststop hook #0" in result.err
    assert leftovers(runtime, cid) == []


def test_a_hook_that_overruns_its_timeout_fails(runtime: Runtime) -> None:
    config = base_config(runtime.rootfs, "true")
    config["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}]}
    cid = runtime.new_id()
    result = runtime("create", "--bundle", str(runtime.bundle(config)), cid)
    assert (result.rc, "timeout" in result.err) == (1, True)
    assert leftovers(runtime, cid) == []


def test_a_failing_poststart_hook_only_warns_and_the_container_runs(runtime: Runtime) -> None:
    config = base_config(runtime.rootfs, "sleep", "30")
    config["hooks"] = {"poststart": [{"path": "/bin/false"}]}
    cid = runtime.new_id()
    assert runtime("create", "--bundle", str(runtime.bundle(config)), cid).rc == 0
    result = runtime("start", cid)
    assert result.rc == 0
    assert "poststart hook #0" in result.err
    assert runtime.status(cid) == "running"
