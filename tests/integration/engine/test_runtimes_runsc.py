"""Containers under gVisor (``--runtime runsc``) and runtimes registered in the root's config.toml.

Skipped where runsc is not installed or cannot start a sandbox on this host
(the reason is runsc's own words).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request

import pytest

from pallet.testing.engineconfig import add_config

from .conftest import PalletEnv

pytestmark = pytest.mark.root

LOOP = 'echo started; trap "echo bye; exit 0" TERM; while :; do sleep 1; done'


@pytest.fixture(scope="module")
def runsc(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = shutil.which("runsc")
    if path is None:
        pytest.skip("runsc (gVisor) is not installed: apt-get install runsc")
    if os.geteuid() != 0:
        pytest.skip("needs root")
    state = tmp_path_factory.mktemp("runsc-probe")
    probe = subprocess.run(  # stdin a pipe: runsc hands its stdio to nobody, never the host's /dev/null
        [path, "--root", str(state), "--network=none", "do", "/bin/true"],
        input="",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"runsc cannot start a sandbox here: {probe.stderr.strip()[-300:]}")
    return path


def _wait_for_log(env: PalletEnv, cid: str, text: str) -> str:
    for _ in range(300):
        out = env.ok("logs", cid)
        if text in out:
            return out
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared in the logs of {cid}: {out!r}")


def test_dmesg_shows_gvisors_kernel(pallet_env: PalletEnv, runsc: str) -> None:
    out = pallet_env.ok("run", "--rm", "--runtime", "runsc", "busybox", "dmesg")
    assert "Starting gVisor..." in out
    assert pallet_env.container_ids() == []


def test_run_logs_exec_stop_rm_under_runsc(pallet_env: PalletEnv, runsc: str) -> None:
    cid = pallet_env.ok("run", "-d", "--runtime", "runsc", "busybox", "sh", "-c", LOOP).strip()
    assert pallet_env.ok("inspect", "-f", "{{.HostConfig.Runtime}}", cid).strip() == "runsc"
    _wait_for_log(pallet_env, cid, "started")
    # the sentry answers for the kernel: the host's release is not what the container sees
    inside = pallet_env.ok("exec", cid, "cat", "/proc/version")
    assert os.uname().release not in inside
    assert pallet_env.ok("exec", cid, "sh", "-c", "dmesg | head -1").startswith("[")
    assert cid[:12] in pallet_env.ok("ps", "-q")
    pallet_env.ok("stop", cid)
    assert _wait_for_log(pallet_env, cid, "bye").splitlines() == ["started", "bye"]
    assert pallet_env.ok("inspect", "-f", "{{.State.ExitCode}}", cid).strip() == "0"
    pallet_env.ok("rm", cid)
    assert pallet_env.container_ids() == []
    assert not any((pallet_env.run_root / "runtimes" / "runsc").glob(f"{cid}*"))


def test_default_runtime_and_registered_runtimes_from_config_toml(pallet_env: PalletEnv, runsc: str) -> None:
    add_config(
        pallet_env.root,
        keys='default-runtime = "sandboxed"',
        tables=(
            "[runtimes.sandboxed]\n"
            f'path = "{runsc}"\n'
            'runtimeArgs = ["--network=none"]\n'
            "[runtimes.kata]\n"
            'path = "/nonexistent/kata-runtime"\n'
        ),
    )
    assert "Starting gVisor..." in pallet_env.ok("run", "--rm", "busybox", "dmesg")
    assert pallet_env.ok("info", "-f", "{{.DefaultRuntime}}").strip() == "sandboxed"
    text = pallet_env.ok("info")
    assert f"  sandboxed: {runsc} --network=none\n" in text
    assert "  kata: /nonexistent/kata-runtime (not installed)\n" in text


def test_unknown_and_missing_runtimes_are_one_line_and_create_nothing(pallet_env: PalletEnv) -> None:
    add_config(pallet_env.root, tables='[runtimes.kata]\npath = "/nonexistent/kata-runtime"\n')
    unknown = pallet_env.pallet("run", "--rm", "--runtime", "gvisor", "busybox", "true")
    assert unknown.returncode == 125
    assert unknown.stderr.strip().splitlines() == [
        "pallet: unknown or invalid runtime name: gvisor (known runtimes: crun, kata, pallet-runtime, "
        f"runc, runsc; register others under [runtimes] in {pallet_env.root}/config.toml)"
    ]
    missing = pallet_env.pallet("create", "--runtime", "kata", "busybox", "true")
    assert missing.returncode != 0
    assert missing.stderr.strip().splitlines() == [
        'pallet: OCI runtime "kata" is not installed: /nonexistent/kata-runtime not found; install it '
        f"or set its path in {pallet_env.root}/config.toml"
    ]
    assert pallet_env.container_ids() == []
    assert pallet_env.ok("ps", "-aq") == ""


def test_the_configured_default_runtime_runs_containers_without_the_flag(pallet_env: PalletEnv) -> None:
    add_config(pallet_env.root, keys='default-runtime = "runc"')
    cid = pallet_env.ok("create", "busybox", "echo", "hi").strip()
    assert pallet_env.ok("inspect", "-f", "{{.HostConfig.Runtime}}", cid).strip() == "runc"
    assert pallet_env.ok("start", "-a", cid) == "hi\n"
    other = pallet_env.ok("create", "--runtime", "crun", "busybox").strip()
    assert pallet_env.ok("inspect", "-f", "{{.HostConfig.Runtime}}", other).strip() == "crun"


def test_a_runsc_container_on_the_bridge_network_serves_a_published_port(
    pallet_env: PalletEnv, runsc: str
) -> None:
    cid = pallet_env.ok(
        "run", "-d", "--runtime", "runsc", "-p", "127.0.0.1::8080", "busybox", "httpd", "-f", "-p", "8080", "-h", "/etc"
    ).strip()  # fmt: skip
    address = pallet_env.ok("port", cid, "8080").splitlines()[0]
    assert address.startswith("127.0.0.1:")
    body = b""
    for _ in range(300):  # until httpd listens in the sandbox
        try:
            with urllib.request.urlopen(f"http://{address}/hostname", timeout=5) as reply:
                body = reply.read()
            break
        except OSError:
            time.sleep(0.1)
    assert body == f"{cid[:12]}\n".encode()
    assert pallet_env.ok("exec", cid, "dmesg").startswith("[   0.000000] Starting gVisor...")
    pallet_env.ok("rm", "-f", cid)
    assert pallet_env.container_ids() == []
