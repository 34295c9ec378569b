"""The escape-attempt suite: the static probe (``probe.c``) run in a container under each engine's defaults.

Each check of the probe prints ``allowed`` or ``blocked``. The host's own run
(the probe as root, outside any container) says what this kernel offers at
all: a check the host blocks too (no module support, no sysrq, io_uring off)
is left out of every comparison. Then:

- pallet's default blocks every check but tracing its own processes (docker
  and podman allow that too: gdb and strace work in containers);
- ``--privileged`` lets the probe see escapes (so a "blocked" is not the
  probe failing to try);
- pallet's default blocks everything docker's and podman's defaults block,
  and more (each peer where installed: a private dockerd on a private bridge,
  podman on a private root);
- ``--cap-add`` and ``--security-opt`` turn each refusal back on.

The counts are printed side by side (``pytest -s`` shows them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import PalletEnv

pytestmark = [pytest.mark.root, pytest.mark.slow]

#: what pallet's default leaves open on purpose: ptrace of the container's own processes (docker's
#: and podman's defaults too; needed by gdb and strace; kernels since 4.8 keep seccomp in force)
ALLOWED_BY_DEFAULT = frozenset({"ptrace"})


def _run(argv: list[str], timeout: float = 120) -> dict[str, bool]:
    """Run a command that runs the probe; ``{check: allowed}`` from what it printed."""
    done = subprocess.run(
        argv, check=False, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    results: dict[str, bool] = {}
    for line in done.stdout.splitlines():
        name, _, rest = line.partition(" ")
        verdict = rest.split(" ", 1)[0]
        if verdict in ("allowed", "blocked"):
            results[name] = verdict == "allowed"
    if not results:
        raise AssertionError(f"the probe printed nothing ({done.returncode}): {done.stdout}{done.stderr}")
    return results


@pytest.fixture(scope="module")
def host(probe_binary: Path) -> dict[str, bool]:
    """The probe on the host, as root: the checks this kernel can allow at all."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    return _run([str(probe_binary)])


def _pallet(env: PalletEnv, probe_dir: Path, *flags: str) -> dict[str, bool]:
    return _run(env.argv("run", "--rm", *flags, "-v", f"{probe_dir}:/probe:ro", "busybox", "/probe/probe"))


@pytest.fixture(scope="module")
def peers(
    probe_rootfs_tar: Path,
) -> Iterator[dict[str, dict[str, bool]]]:
    """The probe under docker's and podman's defaults, where installed (skipped ones absent)."""
    from pallet.testing.peer_engines import PrivateDockerd, PrivatePodman, firewall_tables, restore_firewall

    if os.geteuid() != 0:
        pytest.skip("needs root")
    suffix = os.urandom(2).hex()
    out: dict[str, dict[str, bool]] = {}
    before = firewall_tables()
    started: list[PrivateDockerd | PrivatePodman] = []
    try:
        if shutil.which("dockerd") and shutil.which("docker"):
            dockerd = PrivateDockerd(f"plsec{suffix}d")
            started.append(dockerd)
            dockerd.docker("import", str(probe_rootfs_tar), "probe:latest")
            out["docker"] = _run(
                [
                    "docker",
                    "-H",
                    f"unix://{dockerd.socket}",
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "probe",
                    "/probe",
                ]
            )
        if shutil.which("podman"):
            podman = PrivatePodman(f"plsec{suffix}p", f"plsec{suffix}net")
            started.append(podman)
            podman.podman("import", str(probe_rootfs_tar), "probe:latest")
            out["podman"] = _run(
                [*podman.base, "run", "--rm", *podman.limits(), "--network", "none", "probe", "/probe"]
            )
        yield out
    finally:
        for peer in started:
            peer.stop()
        restore_firewall(before, {p.bridge for p in started}, [p.subnet for p in started])


def _blocked(results: dict[str, bool], host: dict[str, bool]) -> set[str]:
    """The checks blocked in ``results`` among those this kernel allows at all."""
    return {name for name, allowed in results.items() if host.get(name) and not allowed}


def test_pallet_default_blocks_every_escape_the_probe_tries(
    pallet_env: PalletEnv, probe_dir: Path, host: dict[str, bool]
) -> None:
    results = _pallet(pallet_env, probe_dir)
    assert set(results) == set(host)
    assert {name for name, allowed in results.items() if allowed} <= ALLOWED_BY_DEFAULT


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_the_default_profile_holds_under_other_oci_runtimes(
    pallet_env: PalletEnv,
    probe_dir: Path,
    host: dict[str, bool],
    runtime: str,
    request: pytest.FixtureRequest,
) -> None:
    if shutil.which(runtime) is None:
        pytest.skip(f"{runtime} is not installed")
    if runtime == "crun":
        request.getfixturevalue("crun_ready")
    results = _pallet(pallet_env, probe_dir, "--runtime", runtime)
    assert {name for name, allowed in results.items() if allowed} <= ALLOWED_BY_DEFAULT


def test_privileged_lets_the_probe_see_escapes(
    pallet_env: PalletEnv, probe_dir: Path, host: dict[str, bool]
) -> None:
    results = _pallet(pallet_env, probe_dir, "--privileged")
    allowed = {name for name, ok in results.items() if ok}
    assert {"mount", "raw_disk", "core_pattern", "bpf", "user_namespace", "packet_socket"} & set(
        host
    ) <= allowed
    assert (
        len(allowed) >= len([n for n, ok in host.items() if ok]) - 3
    )  # chroot and /proc/<pid>/root stay home


@pytest.mark.parametrize(
    ("flags", "opened"),
    [
        (("--security-opt", "seccomp=unconfined"), {"io_uring", "keyring", "user_namespace"}),
        (("--cap-add", "SYS_ADMIN"), {"mount", "user_namespace", "bpf", "perf"}),
        (("--cap-add", "NET_ADMIN"), {"packet_socket", "raw_socket", "raw_icmpv6", "raw_ip_forge"}),
        (("--cap-add", "SYS_PTRACE"), {"userfaultfd"}),
        (("--cap-add", "DAC_READ_SEARCH"), {"open_by_handle"}),
        (("--cap-add", "SYSLOG"), {"kernel_log"}),
    ],
    ids=["seccomp-unconfined", "SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH", "SYSLOG"],
)
def test_cap_add_and_security_opt_turn_refusals_back_on(
    pallet_env: PalletEnv, probe_dir: Path, host: dict[str, bool], flags: tuple[str, ...], opened: set[str]
) -> None:
    results = _pallet(pallet_env, probe_dir, *flags)
    expected = {name for name in opened if host.get(name)}
    assert expected <= {name for name, ok in results.items() if ok}


def test_pallet_default_blocks_what_docker_and_podman_block_and_more(
    pallet_env: PalletEnv, probe_dir: Path, host: dict[str, bool], peers: dict[str, dict[str, bool]]
) -> None:
    if not peers:
        pytest.skip("neither docker nor podman is installed")
    columns = {
        "pallet": _pallet(pallet_env, probe_dir),
        "privileged": _pallet(pallet_env, probe_dir, "--privileged"),
    }
    columns.update(peers)
    applicable = sorted(name for name, ok in host.items() if ok)
    print(
        f"\nescape probe: {len(applicable)} checks this kernel can allow (blocked = refused in the container)"
    )
    print(f"{'check':16}" + "".join(f"{engine:>12}" for engine in columns))
    for name in applicable:
        print(
            f"{name:16}"
            + "".join(f"{'allowed' if col.get(name) else 'blocked':>12}" for col in columns.values())
        )
    print(f"{'BLOCKED':16}" + "".join(f"{len(_blocked(col, host)):>12}" for col in columns.values()))
    pallet = _blocked(columns["pallet"], host)
    for engine, results in peers.items():
        theirs = _blocked(results, host)
        assert theirs <= pallet, f"{engine} blocks {sorted(theirs - pallet)} that pallet allows"
        assert pallet > theirs, f"pallet blocks nothing more than {engine}"


def test_busybox_ping_works_under_the_default(pallet_env: PalletEnv) -> None:
    done = pallet_env.pallet("run", "--rm", "busybox", "ping", "-c", "1", "-W", "5", "127.0.0.1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 packets received" in done.stdout
