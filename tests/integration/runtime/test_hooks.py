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


def _failing_then_logging(log: Path, phase: str) -> list[dict[str, object]]:
    # a failing hook (with output, to see it in the warning), then one that records that it ran
    return [
        {"path": "/bin/sh", "args": ["sh", "-c", f"echo {phase}-broke >&2; exit 3"]},
        _hook(log, f"{phase}-after"),
    ]


def _warnings(log_file: Path) -> list[str]:
    entries = [loads(line) for line in log_file.read_text().splitlines()]
    return [str(e["msg"]) for e in entries if isinstance(e, dict) and e["level"] == "warning"]


def test_a_failing_poststop_hook_warns_and_the_later_hooks_and_delete_go_on(
    runtime: Runtime, tmp_path: Path
) -> None:
    ran = tmp_path / "ran.log"
    ran.write_text("")
    log_file = tmp_path / "runtime.log"
    config = base_config(runtime.rootfs, "true")
    config["hooks"] = {"poststop": _failing_then_logging(ran, "poststop")}
    bundle = runtime.bundle(config)
    cid = runtime.new_id()
    assert runtime("run", "--detach", "--bundle", str(bundle), cid).rc == 0
    runtime.wait_status(cid, "stopped")
    result = runtime("--log", str(log_file), "--log-format", "json", "delete", cid)
    assert result.rc == 0, result.err
    assert [line.split(" ", 1)[0] for line in ran.read_text().splitlines()] == ["poststop-after"]
    warnings = _warnings(log_file)
    assert len(warnings) == 1
    assert "error running poststop hook #0: exit status 3" in warnings[0]
    assert "poststop-broke" in warnings[0]
    assert "poststop hook #0" in result.err
    assert leftovers(runtime, cid) == []


def test_a_hook_that_overruns_its_timeout_fails(runtime: Runtime) -> None:
    config = base_config(runtime.rootfs, "true")
    config["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}]}
    cid = runtime.new_id()
    result = runtime("create", "--bundle", str(runtime.bundle(config)), cid)
    assert (result.rc, "timeout" in result.err) == (1, True)
    assert leftovers(runtime, cid) == []


def test_a_failing_poststart_hook_warns_and_the_container_and_later_hooks_run(
    runtime: Runtime, tmp_path: Path
) -> None:
    ran = tmp_path / "ran.log"
    ran.write_text("")
    log_file = tmp_path / "runtime.log"
    config = base_config(runtime.rootfs, "sleep", "30")
    config["hooks"] = {"poststart": _failing_then_logging(ran, "poststart")}
    cid = runtime.new_id()
    assert runtime("create", "--bundle", str(runtime.bundle(config)), cid).rc == 0
    result = runtime("--log", str(log_file), "--log-format", "json", "start", cid)
    assert result.rc == 0, result.err
    assert runtime.status(cid) == "running"
    entries = [line.split(" ", 1) for line in ran.read_text().splitlines()]
    assert [phase for phase, _ in entries] == ["poststart-after"]
    assert loads(entries[0][1])["status"] == "running"  # type: ignore[index]
    warnings = _warnings(log_file)
    assert len(warnings) == 1
    assert "error running poststart hook #0: exit status 3" in warnings[0]
    assert "poststart-broke" in warnings[0]


def test_a_failing_create_runtime_hook_fails_create_skips_the_later_ones_and_runs_poststop(
    runtime: Runtime, tmp_path: Path
) -> None:
    ran = tmp_path / "ran.log"
    ran.write_text("")
    config = base_config(runtime.rootfs, "true")
    config["hooks"] = {
        "createRuntime": _failing_then_logging(ran, "createRuntime"),
        "poststop": [_hook(ran, "poststop")],
    }
    cid = runtime.new_id()
    result = runtime("create", "--bundle", str(runtime.bundle(config)), cid)
    assert result.rc == 1
    assert "error running createRuntime hook #0: exit status 3" in result.err
    # the lifecycle goes on at the container's destruction and its poststop hooks, as runc does
    entries = [line.split(" ", 1) for line in ran.read_text().splitlines()]
    assert [phase for phase, _ in entries] == ["poststop"]
    assert loads(entries[0][1])["id"] == cid  # type: ignore[index]
    assert leftovers(runtime, cid) == []
