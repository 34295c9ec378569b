"""Configs from ``build_spec`` run under pallet-runtime, runc and crun; what they promise is checked from inside.

Each test builds a config.json from options (as ``pallet run`` does), runs it
with ``<runtime> --root <tmp> run`` and asserts on the program's output. The
containers' cgroups live under a parent made for this module, removed at the
end; a failed run is force-deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pallet.engine.spec.generate import build_spec
from pallet.engine.spec.syntax import (
    DeviceMapping,
    parse_bytes,
    parse_network,
    parse_security_opt,
    parse_ulimit,
    parse_volume,
)
from pallet.oci.image_spec import ContainerConfig
from pallet.testing.host import require_host_path
from pallet.testing.options import run_options

pytestmark = pytest.mark.root

VENV_BIN = Path(__file__).resolve().parents[3] / ".venv" / "bin"
RUNTIMES = {"pallet-runtime": str(VENV_BIN / "pallet-runtime"), "runc": "runc", "crun": "crun"}
IMAGE = ContainerConfig(cmd=("sh",), env=("PATH=/bin",))
CGROUP_PARENT = f"/pallet-specgen-test-{os.getpid()}"
FULL_CAPS = "000001ffffffffff"


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A busybox rootfs with a user ``alice`` (1000, also in group staff 50); read-only to tests."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    busybox = "/bin/busybox"
    if not os.path.exists(busybox):
        pytest.skip("busybox-static is not installed")
    root = tmp_path_factory.mktemp("specgen") / "rootfs"
    for d in ("bin", "etc", "dev", "proc", "sys", "tmp", "root", "run"):
        (root / d).mkdir(parents=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    for applet in subprocess.run(
        [busybox, "--list"], capture_output=True, text=True, check=True
    ).stdout.split():
        if applet != "busybox":
            os.symlink("busybox", root / "bin" / applet)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/tmp:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nalice:x:1000:\nstaff:x:50:alice\n")
    (root / "tmp").chmod(0o1777)
    yield root
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        parent = hierarchy / CGROUP_PARENT.lstrip("/")
        if parent.is_dir():
            for child in parent.iterdir():
                if child.is_dir():
                    child.rmdir()
            parent.rmdir()


@pytest.fixture(params=sorted(RUNTIMES))
def runtime(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    binary = RUNTIMES[name]
    if shutil.which(binary) is None:
        pytest.skip(f"{name} is not installed")
    if name == "crun":
        request.getfixturevalue("crun_ready")  # the one-time hybrid-cgroup fix crun needs
    return binary


class Run:
    def __init__(self, rc: int, out: str, err: str) -> None:
        self.rc, self.out, self.err = rc, out, err


def run(
    runtime: str,
    rootfs: Path,
    tmp_path: Path,
    script: str,
    mounts: tuple[object, ...] = (),
    hosts_files: dict[str, str] | None = None,
    **options: object,
) -> Run:
    """Run ``sh -c script`` in a container made by ``build_spec`` with ``options``."""
    container_id = f"specgen-{os.getpid()}-{tmp_path.name}"[:60]
    spec = build_spec(
        container_id=container_id,
        image_config=IMAGE,
        options=run_options(cmd=("sh", "-c", script), **options),
        rootfs=str(rootfs),
        mounts=mounts,  # type: ignore[arg-type]
        cgroup_parent=CGROUP_PARENT,
        hosts_files=hosts_files or {},
    )
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(spec.to_json()))
    state = tmp_path / "state"
    out, err = tmp_path / "out", tmp_path / "err"
    try:
        with open(out, "w+") as stdout, open(err, "w+") as stderr:
            done = subprocess.run(
                [runtime, "--root", str(state), "run", "--bundle", str(bundle), container_id],
                input=b"",  # a pipe: crun hands a process's stdio to its user, never the host's /dev/null
                stdout=stdout,
                stderr=stderr,
                timeout=60,
                check=False,
            )
    finally:
        subprocess.run(
            [runtime, "--root", str(state), "delete", "--force", container_id],
            capture_output=True,
            check=False,
        )
    return Run(done.returncode, out.read_text(), err.read_text())


def lines(result: Run) -> dict[str, str]:
    """``key=value`` lines printed by a script."""
    out = {}
    for line in result.out.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def test_default_container_has_dockers_caps_seccomp_masks_and_loopback(
    runtime: str, rootfs: Path, tmp_path: Path
) -> None:
    require_host_path("/proc/timer_list", "the masked path the container reads")
    script = (
        "echo uid=$(id -u); echo caps=$(grep CapEff /proc/self/status | cut -f2); "
        "echo seccomp=$(grep '^Seccomp:' /proc/self/status | cut -f2); echo host=$(hostname); "
        "echo env=$HOSTNAME; echo masked=$(wc -c < /proc/timer_list); "
        "unshare -n true 2>/dev/null; echo unshare=$?; mount -t tmpfs t /mnt 2>/dev/null; echo mount=$?; "
        "ping -c1 -W2 127.0.0.1 >/dev/null 2>&1; echo ping=$?; echo nets=$(ls /sys/class/net); "
        "touch /proc/sys/kernel/x 2>/dev/null; echo procsys=$?; echo cwd=$(pwd)"
    )
    result = run(runtime, rootfs, tmp_path, script)
    assert result.rc == 0, result.err
    seen = lines(result)
    assert seen["uid"] == "0"
    assert seen["caps"] == "00000000880425fb"  # docker's 14 default capabilities less CAP_AUDIT_WRITE
    assert seen["seccomp"] == "2"  # a filter is installed
    assert seen["host"] == seen["env"] != ""
    assert seen["masked"] == "0"  # /dev/null is bound over it
    assert seen["unshare"] != "0"
    assert seen["mount"] != "0"
    assert seen["ping"] == "0"  # loopback is up in the private network namespace
    assert seen["nets"] == "lo"
    assert seen["procsys"] != "0"
    assert seen["cwd"] == "/"


def test_limits_and_user_from_options_are_seen_inside(runtime: str, rootfs: Path, tmp_path: Path) -> None:
    script = (
        "echo id=$(id -u):$(id -g):$(id -G | tr ' ' ,); echo nofile=$(ulimit -n); "
        "echo caps=$(grep CapEff /proc/self/status | cut -f2); "
        "echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max); "
        "echo pids=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max); "
        "touch /rootfs-write 2>/dev/null; echo rootfs=$?; echo run=$(grep ' /run ' /proc/mounts | cut -d' ' -f3); touch /dev/shm/x && echo shmw=ok; "
        "echo shm=$(df -k /dev/shm | tail -1 | tr -s ' ' | cut -d' ' -f2); echo nnp=$(grep NoNewPrivs /proc/self/status | cut -f2)"
    )
    result = run(
        runtime,
        rootfs,
        tmp_path,
        script,
        user="alice",
        memory=parse_bytes("48m"),
        pids_limit=40,
        ulimits=(parse_ulimit("nofile=321:654"),),
        read_only=True,
        tmpfs={"/run": "mode=1777,size=1m"},
        shm_size=parse_bytes("8m"),
        security_opt=(parse_security_opt("no-new-privileges"),),
    )
    assert result.rc == 0, result.err
    seen = lines(result)
    assert seen["id"] == "1000:1000:1000,50"
    assert seen["nofile"] == "321"
    assert seen["caps"] == "0000000000000000"  # a non-root user keeps no effective capability
    assert seen["mem"] == str(48 << 20)
    assert seen["pids"] == "40"
    assert seen["rootfs"] != "0"
    assert seen["run"] == "tmpfs"
    assert seen["shmw"] == "ok"
    assert seen["shm"] == "8192"
    assert seen["nnp"] == "1"


def test_init_runs_tini_as_pid_1_and_the_command_under_it(runtime: str, rootfs: Path, tmp_path: Path) -> None:
    result = run(runtime, rootfs, tmp_path, "echo one=$(cat /proc/1/comm); echo me=$$", init=True)
    assert result.rc == 0, result.err
    seen = lines(result)
    assert seen["one"] in ("docker-init", "tini-static")
    assert seen["me"] != "1"


def test_cap_sys_admin_and_unconfined_seccomp_open_what_they_say(
    runtime: str, rootfs: Path, tmp_path: Path
) -> None:
    script = "unshare -n true; echo unshare=$?; echo seccomp=$(grep '^Seccomp:' /proc/self/status | cut -f2)"
    (tmp_path / "admin").mkdir()
    admin = run(runtime, rootfs, tmp_path / "admin", script, cap_add=("CAP_SYS_ADMIN",))
    assert admin.rc == 0, admin.err
    assert lines(admin)["unshare"] == "0"
    (tmp_path / "free").mkdir()
    free = run(runtime, rootfs, tmp_path / "free", script, security_opt=("seccomp=unconfined",))
    assert lines(free)["seccomp"] == "0"
    assert lines(free)["unshare"] != "0"  # still no CAP_SYS_ADMIN


def test_privileged_container_gets_every_capability_and_host_devices(
    runtime: str, rootfs: Path, tmp_path: Path
) -> None:
    require_host_path("/proc/timer_list", "the masked path the container reads")
    script = (
        "echo caps=$(grep CapEff /proc/self/status | cut -f2); echo seccomp=$(grep '^Seccomp:' /proc/self/status | cut -f2); "
        "test -c /dev/loop-control && echo loop=yes; touch /sys/fs/cgroup/x 2>/dev/null; echo masked=$(wc -c < /proc/timer_list)"
    )
    result = run(runtime, rootfs, tmp_path, script, privileged=True)
    assert result.rc == 0, result.err
    seen = lines(result)
    with open("/proc/self/status") as f:
        host_caps = next(line.split()[1] for line in f if line.startswith("CapBnd:"))
    assert seen["caps"] == host_caps
    assert seen["seccomp"] == "0"
    if os.path.exists("/dev/loop-control"):
        assert seen.get("loop") == "yes"
    assert int(seen["masked"]) > 0  # nothing masked


def test_device_and_host_network_and_bind_mounts(runtime: str, rootfs: Path, tmp_path: Path) -> None:
    from pallet.engine.spec.mounts import ResolvedMount

    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in.txt").write_text("from host\n")
    mount = ResolvedMount(
        type="bind", source=str(shared), destination="/data", options=("rbind", "rprivate", "ro")
    )
    script = (
        "echo null=$(echo hi > /dev/mynull && echo ok); cat /data/in.txt; touch /data/new 2>/dev/null; echo ro=$?; "
        "echo nets=$(ls /sys/class/net | tr '\\n' ' ')"
    )
    result = run(
        runtime,
        rootfs,
        tmp_path,
        script,
        mounts=(mount,),
        network="host",
        devices=(DeviceMapping(path_on_host="/dev/null", path_in_container="/dev/mynull"),),
    )
    assert result.rc == 0, result.err
    seen = lines(result)
    assert seen["null"] == "ok"
    assert "from host" in result.out
    assert seen["ro"] != "0"
    assert sorted(seen["nets"].split()) == sorted(os.listdir("/sys/class/net"))
    assert parse_volume(f"{shared}:/data:ro").read_only  # the -v form of the same mount


def test_docker_format_seccomp_file_is_enforced(runtime: str, rootfs: Path, tmp_path: Path) -> None:
    # rules apply only where their capability conditions hold (CAP_CHOWN is a default, CAP_SYS_ADMIN not)
    profile = tmp_path / "profile.json"
    enotsup = 95
    profile.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
                "syscalls": [
                    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": enotsup},
                    {
                        "names": ["symlink", "symlinkat"],
                        "action": "SCMP_ACT_ERRNO",
                        "errnoRet": enotsup,
                        "includes": {"caps": ["CAP_CHOWN"]},
                    },
                    {
                        "names": ["rmdir"],
                        "action": "SCMP_ACT_ERRNO",
                        "errnoRet": enotsup,
                        "includes": {"caps": ["CAP_SYS_ADMIN"]},
                    },
                ],
            }
        )
    )
    script = (
        "echo mkdir=$(mkdir /dev/shm/d 2>&1); echo symlink=$(ln -s x /dev/shm/l 2>&1); "
        "echo rmdir=$(rmdir /dev/shm/none 2>&1)"
    )
    result = run(runtime, rootfs, tmp_path, script, security_opt=(f"seccomp={profile}",))
    assert result.rc == 0, result.err
    seen = lines(result)
    assert "not supported" in seen["mkdir"].lower()
    assert "not supported" in seen["symlink"].lower()
    assert "no such file" in seen["rmdir"].lower()


def test_network_files_are_bound_and_resolve_localhost(runtime: str, rootfs: Path, tmp_path: Path) -> None:
    from pallet.engine.spec.hostsfiles import write_network_files

    files = tmp_path / "files"
    files.mkdir()
    hosts_files = write_network_files(str(files), hostname="web-1", network=parse_network("private"))
    script = "echo name=$(cat /etc/hostname); ping -c1 -W2 localhost >/dev/null && echo ping=ok; echo ns=$(grep -c nameserver /etc/resolv.conf)"
    result = run(runtime, rootfs, tmp_path, script, hosts_files=hosts_files, hostname="web-1", read_only=True)
    assert result.rc == 0, result.err
    seen = lines(result)
    assert seen["name"] == "web-1"
    assert seen["ping"] == "ok"
    assert int(seen["ns"]) >= 1
