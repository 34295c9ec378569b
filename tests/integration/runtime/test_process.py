"""process.*: args and PATH lookup, env, cwd, user, umask, rlimits, capabilities, oomScoreAdj, noNewPrivileges."""

from __future__ import annotations

import resource

import pytest

from pallet.testing.host import require_capability

from .conftest import Runtime, base_config, leftovers

pytestmark = pytest.mark.root


def test_env_cwd_and_path_lookup_come_from_the_config(runtime: Runtime) -> None:
    config = base_config(runtime.rootfs, "sh", "-c", 'echo "$GREETING"; pwd; which sh')
    config["process"]["env"] = ["PATH=/bin", "GREETING=hello there"]
    config["process"]["cwd"] = "/root"
    result = runtime.run(config)
    assert (result.rc, result.out) == (0, "hello there\n/root\n/bin/sh\n"), result.err


def test_user_groups_and_umask_apply_to_the_process(runtime: Runtime) -> None:
    config = base_config(runtime.rootfs, "sh", "-c", "id -u; id -g; id -G; umask")
    config["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5, 1002], "umask": 0o027}
    result = runtime.run(config)
    assert result.out.split("\n") == ["1000", "1001", "1001 5 1002", "0027", ""], result.err


def test_rlimits_are_set_in_the_process(runtime: Runtime) -> None:
    config = base_config(runtime.rootfs, "sh", "-c", "ulimit -n; ulimit -Hn")
    config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]
    assert runtime.run(config).out == "123\n456\n"


def test_an_rlimit_above_the_hard_limit_is_refused_without_cap_sys_resource(runtime: Runtime) -> None:
    # with CAP_SYS_RESOURCE root may raise hard limits, and the kernel would allow it
    require_capability("CAP_SYS_RESOURCE", present=False)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        pytest.skip("RLIMIT_NOFILE is unlimited here: there is no hard limit to go above")
    config = base_config(runtime.rootfs, "true")
    config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": hard + 1, "hard": hard + 1}]
    bundle = runtime.bundle(config)
    cid = runtime.new_id()
    result = runtime("create", "--bundle", str(bundle), cid)
    assert result.rc != 0
    # runc's words, then what was asked and the limit it is above
    assert "error setting rlimit type 7: operation not permitted (RLIMIT_NOFILE" in result.err
    assert f"the hard limit here is {hard}" in result.err
    assert leftovers(runtime, cid) == []


def _caps(out: str) -> dict[str, int]:
    return {
        line.split(":")[0]: int(line.split()[1], 16) for line in out.splitlines() if line.startswith("Cap")
    }


def test_capability_sets_are_exactly_the_configured_ones(runtime: Runtime) -> None:
    config = base_config(runtime.rootfs, "grep", "^Cap", "/proc/self/status")
    config["process"]["user"] = {"uid": 1000, "gid": 1000}
    config["process"]["capabilities"] = {
        "bounding": ["CAP_KILL", "CAP_NET_RAW", "CAP_CHOWN"],
        "effective": ["CAP_KILL", "CAP_NET_RAW"],
        "permitted": ["CAP_KILL", "CAP_NET_RAW"],
        "inheritable": ["CAP_KILL", "CAP_NET_RAW"],
        "ambient": ["CAP_NET_RAW"],
    }
    result = runtime.run(config)
    caps = _caps(result.out)
    kill, net_raw, chown = 1 << 5, 1 << 13, 1 << 0
    assert caps == {
        "CapBnd": kill | net_raw | chown,
        "CapInh": kill | net_raw,
        "CapPrm": net_raw,  # after exec as non-root: the ambient set
        "CapEff": net_raw,
        "CapAmb": net_raw,
    }, result.err


def test_no_new_privileges_and_oom_score_adj_are_set(runtime: Runtime) -> None:
    config = base_config(
        runtime.rootfs, "sh", "-c", "grep NoNewPrivs /proc/self/status; cat /proc/self/oom_score_adj"
    )
    config["process"]["noNewPrivileges"] = True
    config["process"]["oomScoreAdj"] = 500
    result = runtime.run(config)
    assert result.out.split() == ["NoNewPrivs:", "1", "500"], result.err


def test_a_missing_program_fails_create_with_go_wording_and_leaves_nothing(runtime: Runtime) -> None:
    for program, message in (
        ("/nope", 'exec: "/nope": stat /nope: no such file or directory'),
        ("nope", 'exec: "nope": executable file not found in $PATH'),
    ):
        bundle = runtime.bundle(base_config(runtime.rootfs, program))
        cid = runtime.new_id()
        result = runtime("create", "--bundle", str(bundle), cid)
        assert (result.rc, result.err.strip()) == (1, message)
        assert leftovers(runtime, cid) == []


def test_memory_and_pids_limits_apply_to_the_container_cgroup(runtime: Runtime) -> None:
    config = base_config(
        runtime.rootfs,
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max",
    )
    config["mounts"].append(
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"]}
    )
    config["linux"]["resources"] = {"memory": {"limit": 64 * 1024 * 1024}, "pids": {"limit": 42}}
    result = runtime.run(config)
    assert result.out.split() == [str(64 * 1024 * 1024), "42"], result.err


def test_fds_the_caller_leaks_do_not_reach_the_program(runtime: Runtime) -> None:
    import os
    import subprocess

    from .conftest import RUNTIME

    bundle = runtime.bundle(base_config(runtime.rootfs, "sh", "-c", "ls /proc/$$/fd; true"))
    leaked_r, leaked_w = os.pipe()  # inheritable in the runtime, as a careless caller's would be
    try:
        done = subprocess.run(
            [RUNTIME, "--root", str(runtime.root), "run", "--bundle", str(bundle), runtime.new_id()],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            pass_fds=(leaked_r, leaked_w),
        )
    finally:
        os.close(leaked_r)
        os.close(leaked_w)
    assert (done.returncode, done.stdout.split()) == (0, ["0", "1", "2"]), done.stderr


def test_preserve_fds_passes_exactly_those_fds_to_the_program(runtime: Runtime) -> None:
    import os
    import subprocess
    import sys

    from .conftest import RUNTIME

    script = "echo through-fd-3 >&3; ls /proc/$$/fd; true"
    bundle = runtime.bundle(base_config(runtime.rootfs, "sh", "-c", script))
    read_end, write_end = os.pipe()
    leaked_r, leaked_w = os.pipe()  # inheritable too, but after the preserved one: not passed on
    argv = [RUNTIME, "--root", str(runtime.root), "run", "--preserve-fds", "1", "--bundle", str(bundle)]
    # the runtime's fd 3 is our pipe's write end, as a caller of `--preserve-fds 1` arranges
    wrapper = (
        f"import os; os.dup2({write_end}, 3); os.set_inheritable({leaked_w}, True); "
        f"os.execv({RUNTIME!r}, {[*argv, runtime.new_id()]!r})"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", wrapper],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            pass_fds=(write_end, leaked_r, leaked_w),
        )
        os.close(write_end)
        got = os.read(read_end, 100)
    finally:
        for fd in (read_end, leaked_r, leaked_w):
            os.close(fd)
    assert done.returncode == 0, done.stderr
    assert got == b"through-fd-3\n"
    assert done.stdout.split() == ["0", "1", "2", "3"]
