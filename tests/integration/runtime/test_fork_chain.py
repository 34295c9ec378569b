"""The runtime forks the init (and an exec'd process) itself, into the container's pid namespace.

``create`` and ``exec`` enter the container's pid namespace only for the one
fork: every process the runtime starts afterwards (hooks) is the host's, and
the container's processes are where they belong, whichever chain made them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pallet.oci.jsonfast import loads

from .conftest import Runtime, base_config

pytestmark = pytest.mark.root


def _ns_hook(log: Path, phase: str) -> dict[str, object]:
    return {"path": "/bin/sh", "args": ["sh", "-c", f'echo "{phase} $(readlink /proc/self/ns/pid)" >> {log}']}


def test_hooks_after_the_init_is_forked_run_in_the_hosts_pid_namespace(
    runtime: Runtime, tmp_path: Path
) -> None:
    log = tmp_path / "ns.log"
    log.write_text("")
    config = base_config(runtime.rootfs, "sh", "-c", "echo $$; readlink /proc/self/ns/pid")
    config["hooks"] = {
        phase: [_ns_hook(log, phase)] for phase in ("prestart", "createRuntime", "poststart", "poststop")
    }
    result = runtime.run(config)
    assert result.rc == 0, result.err
    pid, container_ns = result.out.split()
    host_ns = os.readlink("/proc/self/ns/pid")
    assert pid == "1"
    assert container_ns != host_ns
    seen = dict(line.split(" ", 1) for line in log.read_text().splitlines())
    assert seen == dict.fromkeys(("prestart", "createRuntime", "poststart", "poststop"), host_ns)


def test_an_exec_process_is_in_the_containers_pid_namespace_and_cgroup(runtime: Runtime) -> None:
    cid = runtime.new_id()
    bundle = runtime.bundle(base_config(runtime.rootfs, "sleep", "300"))
    assert runtime("run", "--detach", "--bundle", str(bundle), cid).rc == 0
    init_cgroup = runtime("exec", cid, "cat", "/proc/1/cgroup")
    own = runtime(
        "exec",
        cid,
        "sh",
        "-c",
        "cat /proc/self/cgroup; echo $$; readlink /proc/1/ns/pid; readlink /proc/self/ns/pid",
    )
    assert own.rc == 0, own.err
    lines = own.out.splitlines()
    assert "\n".join(lines[:-3]) == init_cgroup.out.strip()
    pid, init_ns, own_ns = lines[-3:]
    assert pid != "1"
    assert own_ns == init_ns


def test_the_init_is_in_the_containers_cgroup_in_every_hierarchy(runtime: Runtime) -> None:
    cid = runtime.new_id()
    bundle = runtime.bundle(base_config(runtime.rootfs, "sleep", "300"))
    assert runtime("run", "--detach", "--bundle", str(bundle), cid).rc == 0
    pid = loads(runtime("state", cid).out)["pid"]  # type: ignore[index]
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    v1 = [line for line in lines if not line.startswith("0::")]
    if not v1:
        pytest.skip("no cgroup v1 hierarchy here")
    assert [line for line in v1 if not line.endswith(f"/{cid}")] == []
