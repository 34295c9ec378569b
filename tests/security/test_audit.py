"""``pallet audit`` end to end: foot-gun containers found with their severity, a default one reports nothing.

Each container is made with ``pallet create`` (no need to start it: audit
reads what it was made with and its ``config.json``); ``create`` warns one
line per finding, the same ones audit reports.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import PalletEnv

pytestmark = pytest.mark.root

#: name -> (create flags, the finding's setting, its severity)
FOOT_GUNS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "privileged": (("--privileged",), "--privileged", "high"),
    "sysadmin": (("--cap-add", "SYS_ADMIN"), "--cap-add SYS_ADMIN", "high"),
    "module": (("--cap-add", "sys_module"), "--cap-add SYS_MODULE", "high"),
    "shocker": (("--cap-add", "DAC_READ_SEARCH"), "--cap-add DAC_READ_SEARCH", "high"),
    "allcaps": (("--cap-add", "ALL"), "--cap-add ALL", "high"),
    "ptrace": (("--cap-add", "SYS_PTRACE"), "--cap-add SYS_PTRACE", "medium"),
    "netadmin": (("--cap-add", "NET_ADMIN"), "--cap-add NET_ADMIN", "medium"),
    "unconfined": (("--security-opt", "seccomp=unconfined"), "--security-opt seccomp=unconfined", "high"),
    "procsys": (
        ("--security-opt", "systempaths=unconfined"),
        "--security-opt systempaths=unconfined",
        "high",
    ),
    "nnp": (("--security-opt", "no-new-privileges=false"), "--security-opt no-new-privileges=false", "low"),
    "hostnet": (("--network", "host"), "--network host", "high"),
    "rootfs": (("-v", "/:/host:ro"), "-v /:/host:ro", "high"),
    "hostproc": (("-v", "/proc:/hostproc"), "-v /proc:/hostproc:rw", "high"),
    "cgroups": (("-v", "/sys/fs/cgroup:/cg"), "-v /sys/fs/cgroup:/cg:rw", "high"),
    "etc": (("-v", "/etc:/hostetc:ro"), "-v /etc:/hostetc:ro", "medium"),
    "dev": (("-v", "/dev:/hostdev"), "-v /dev:/hostdev:rw", "high"),
    "disk": (("--device", "/dev/loop0"), "--device /dev/loop0:/dev/loop0:rwm", "high"),
}


def _audit(env: PalletEnv, *args: str) -> tuple[int, list[dict[str, object]]]:
    done = env.pallet("audit", "--format", "json", *args)
    return done.returncode, json.loads(done.stdout)


def test_each_foot_gun_container_is_found_with_its_severity(pallet_env: PalletEnv) -> None:
    if not Path("/dev/loop0").exists():
        pytest.skip("/dev/loop0 is missing on this host (the block device the test passes with --device)")
    for name, (flags, setting, severity) in FOOT_GUNS.items():
        done = pallet_env.pallet("create", "--name", name, *flags, "busybox", "true")
        assert done.returncode == 0, done.stderr
        assert f"WARNING: {setting} ({severity}): " in done.stderr
    code, audits = _audit(pallet_env, "--all")
    assert code == 1  # high findings fail the audit, for CI
    found = {str(a["Name"]): a["Findings"] for a in audits}
    assert set(found) == set(FOOT_GUNS)
    for name, (_, setting, severity) in FOOT_GUNS.items():
        findings = found[name]
        assert isinstance(findings, list)
        [finding] = [f for f in findings if f["setting"] == setting]
        assert finding["severity"] == severity, name
        assert finding["escape"]
        assert finding["fix"]
    table = pallet_env.pallet("audit", "--all")
    assert table.returncode == 1
    assert table.stdout.splitlines()[0].split() == ["NAME", "SEVERITY", "SETTING", "ESCAPE", "FIX"]
    assert table.stdout.splitlines()[-1].startswith(f"{sum(len(f) for f in found.values())} findings in ")


def test_a_default_container_reports_nothing(pallet_env: PalletEnv) -> None:
    done = pallet_env.pallet("run", "-d", "--name", "plain", "busybox", "sleep", "300")
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr
    assert _audit(pallet_env, "plain") == (
        0,
        [{"Type": "container", "Id": done.stdout.strip(), "Name": "plain", "Findings": []}],
    )
    table = pallet_env.pallet("audit")  # the running containers
    assert (table.returncode, table.stdout) == (0, "")


def test_only_medium_and_low_findings_pass(pallet_env: PalletEnv) -> None:
    pallet_env.ok("create", "--name", "tracer", "--cap-add", "SYS_PTRACE", "busybox", "true")
    code, [audit] = _audit(pallet_env, "tracer")
    assert code == 0
    assert [f["severity"] for f in audit["Findings"]] == ["medium"]  # type: ignore[union-attr]


def test_host_namespaces_in_the_config_are_found(pallet_env: PalletEnv) -> None:
    # what an API client asking for PidMode "host" gets: a config.json without a pid namespace
    cid = pallet_env.ok("create", "--name", "hostpid", "busybox", "true").strip()
    config = pallet_env.root / "containers" / cid / "bundle" / "config.json"
    spec = json.loads(config.read_text())
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] not in ("pid", "ipc")]
    config.write_text(json.dumps(spec))
    code, [audit] = _audit(pallet_env, "hostpid")
    assert code == 1
    settings = {(f["setting"], f["severity"]) for f in audit["Findings"]}  # type: ignore[union-attr]
    assert settings == {("--pid host", "high"), ("--ipc host", "medium")}


def test_an_unknown_container_is_refused_before_any_output(pallet_env: PalletEnv) -> None:
    pallet_env.ok("create", "--name", "plain", "busybox", "true")
    done = pallet_env.pallet("audit", "plain", "nope")
    assert done.returncode != 0
    assert done.stdout == ""
    assert "No such container: nope" in done.stderr


def _image_tar(path: Path) -> None:
    with tarfile.open(path, "w") as tar:
        for name, mode in (("bin/su", 0o4755), ("bin/wall", 0o2755), ("bin/ok", 0o755)):
            data = b"#!/bin/sh\n"
            info = tarfile.TarInfo(name)
            info.mode, info.size = mode, len(data)
            tar.addfile(info, io.BytesIO(data))


def test_image_audit_finds_root_setuid_files_and_secrets(pallet_env: PalletEnv, tmp_path: Path) -> None:
    tar = tmp_path / "rootfs.tar"
    _image_tar(tar)
    pallet_env.ok(
        "import",
        "-c",
        "ENV DB_PASSWORD=hunter2-long",
        "-c",
        "ENV AWS_KEY_ID=AKIAABCDEFGHIJKLMNOP",
        str(tar),
        "leaky:1",
    )
    code, [audit] = _audit(pallet_env, "--image", "leaky:1")
    assert code == 1
    findings = {(f["setting"], f["severity"]) for f in audit["Findings"]}  # type: ignore[union-attr]
    assert findings == {
        ("ENV DB_PASSWORD", "high"),
        ("ENV AWS_KEY_ID", "high"),
        ("no USER (root)", "medium"),
        ("/bin/su (setuid, uid 0)", "low"),
        ("/bin/wall (setgid, gid 0)", "low"),
    }
    assert "hunter2" not in json.dumps(audit)  # secrets are masked


def test_audit_refuses_image_and_containers_together(pallet_env: PalletEnv) -> None:
    done = pallet_env.pallet("audit", "--image", "busybox", "plain")
    assert done.returncode == 125
    assert "--image audits one image" in done.stderr
