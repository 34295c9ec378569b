"""The findings table: each foot-gun setting is found once, with its severity; the defaults give none."""

from __future__ import annotations

import pytest

from pallet.engine.spec.findings import Severity, findings_for, spec_findings
from pallet.engine.spec.options import (
    MountOptions,
    NetworkOptions,
    ResourceOptions,
    RunOptions,
    SecurityOptions,
    security_options,
)
from pallet.engine.spec.syntax import DeviceMapping, parse_network, parse_volume
from pallet.oci.runtime_spec import Linux, Namespace, Spec

HIGH, MEDIUM, LOW = Severity.HIGH, Severity.MEDIUM, Severity.LOW


def _kind(path: str) -> str:
    return {"/dev/sda": "block", "/dev/mem": "memory"}.get(path, "char")


def _caps(*caps: str) -> RunOptions:
    return RunOptions(security=SecurityOptions(cap_add=caps))


def _bind(text: str) -> RunOptions:
    return RunOptions(mounts=MountOptions(specs=(parse_volume(text),)))


def _device(path: str) -> RunOptions:
    return RunOptions(
        resources=ResourceOptions(devices=(DeviceMapping(path_on_host=path, path_in_container=path),))
    )


FOOT_GUNS: list[tuple[str, RunOptions, str, str]] = [
    ("privileged", RunOptions(security=SecurityOptions(privileged=True)), "--privileged", HIGH),
    ("cap-add ALL", _caps("ALL"), "--cap-add ALL", HIGH),
    ("SYS_ADMIN", _caps("CAP_SYS_ADMIN"), "--cap-add SYS_ADMIN", HIGH),
    ("SYS_MODULE", _caps("CAP_SYS_MODULE"), "--cap-add SYS_MODULE", HIGH),
    ("DAC_READ_SEARCH", _caps("CAP_DAC_READ_SEARCH"), "--cap-add DAC_READ_SEARCH", HIGH),
    ("SYS_RAWIO", _caps("CAP_SYS_RAWIO"), "--cap-add SYS_RAWIO", HIGH),
    ("BPF", _caps("CAP_BPF"), "--cap-add BPF", HIGH),
    ("SYS_PTRACE", _caps("CAP_SYS_PTRACE"), "--cap-add SYS_PTRACE", MEDIUM),
    ("NET_ADMIN", _caps("CAP_NET_ADMIN"), "--cap-add NET_ADMIN", MEDIUM),
    ("PERFMON", _caps("CAP_PERFMON"), "--cap-add PERFMON", MEDIUM),
    ("SYS_BOOT", _caps("CAP_SYS_BOOT"), "--cap-add SYS_BOOT", MEDIUM),
    (
        "seccomp unconfined",
        RunOptions(security=security_options(["seccomp=unconfined"])),
        "--security-opt seccomp=unconfined",
        HIGH,
    ),
    (
        "apparmor unconfined",
        RunOptions(security=security_options(["apparmor=unconfined"])),
        "--security-opt apparmor=unconfined",
        MEDIUM,
    ),
    (
        "no-new-privileges=false",
        RunOptions(security=security_options(["no-new-privileges=false"])),
        "--security-opt no-new-privileges=false",
        LOW,
    ),
    (
        "writable /proc/sys",
        RunOptions(security=security_options(["systempaths=unconfined"])),
        "--security-opt systempaths=unconfined",
        HIGH,
    ),
    ("host network", RunOptions(network=NetworkOptions(mode=parse_network("host"))), "--network host", HIGH),
    ("host userns", RunOptions(security=SecurityOptions(userns="host")), "--userns host", HIGH),
    ("bind /", _bind("/:/host:ro"), "-v /:/host:ro", HIGH),
    ("bind /proc", _bind("/proc:/hp"), "-v /proc:/hp:rw", HIGH),
    ("bind /sys", _bind("/sys:/hs"), "-v /sys:/hs:rw", HIGH),
    ("bind /sys ro", _bind("/sys:/hs:ro"), "-v /sys:/hs:ro", MEDIUM),
    ("bind cgroups", _bind("/sys/fs/cgroup:/cg"), "-v /sys/fs/cgroup:/cg:rw", HIGH),
    ("bind /dev", _bind("/dev:/hd"), "-v /dev:/hd:rw", HIGH),
    ("docker socket", _bind("/var/run/docker.sock:/s:ro"), "-v /var/run/docker.sock:/s:ro", HIGH),
    ("any /run socket", _bind("/run/foo/bar.sock:/s"), "-v /run/foo/bar.sock:/s:rw", HIGH),
    ("bind /etc", _bind("/etc:/he"), "-v /etc:/he:rw", HIGH),
    ("bind /etc ro", _bind("/etc:/he:ro"), "-v /etc:/he:ro", MEDIUM),
    ("pallet root", _bind("/var/lib/pallet:/p"), "-v /var/lib/pallet:/p:rw", HIGH),
    ("block device", _device("/dev/sda"), "--device /dev/sda:/dev/sda:rwm", HIGH),
    ("memory device", _device("/dev/mem"), "--device /dev/mem:/dev/mem:rwm", HIGH),
    ("other device", _device("/dev/net/tun"), "--device /dev/net/tun:/dev/net/tun:rwm", MEDIUM),
]


@pytest.mark.parametrize(
    ("options", "setting", "severity"), [c[1:] for c in FOOT_GUNS], ids=[c[0] for c in FOOT_GUNS]
)
def test_each_foot_gun_is_found_once_with_its_severity(
    options: RunOptions, setting: str, severity: str
) -> None:
    [finding] = findings_for(options, device_kind=_kind)
    assert (finding.setting, finding.severity) == (setting, severity)
    assert finding.escape
    assert finding.fix
    assert finding.warning().startswith(f"{setting} ({severity}): ")


def test_defaults_and_harmless_options_give_no_finding() -> None:
    options = RunOptions(
        security=security_options(
            ["no-new-privileges=true"], cap_add=("CAP_NET_BIND_SERVICE",), cap_drop=("ALL",)
        ),
        mounts=MountOptions(specs=(parse_volume("data:/data"), parse_volume("/srv/app:/app:ro"))),
    )
    assert findings_for(RunOptions()) == []
    assert findings_for(options) == []


def test_findings_come_most_severe_first() -> None:
    options = RunOptions(
        security=security_options(["no-new-privileges=false"], cap_add=("CAP_SYS_PTRACE", "CAP_SYS_ADMIN"))
    )
    assert [f.severity for f in findings_for(options)] == [HIGH, MEDIUM, LOW]


def _spec(*namespaces: str) -> Spec:
    return Spec(oci_version="1.2.0", linux=Linux(namespaces=tuple(Namespace(type=t) for t in namespaces)))


DEFAULT_NAMESPACES = ("mount", "network", "uts", "pid", "ipc", "cgroup")


@pytest.mark.parametrize(
    ("missing", "setting", "severity"),
    [
        ("pid", "--pid host", HIGH),
        ("ipc", "--ipc host", MEDIUM),
        ("uts", "--uts host", LOW),
        ("cgroup", "--cgroupns host", MEDIUM),
    ],
)
def test_host_namespaces_in_the_spec_are_found(missing: str, setting: str, severity: str) -> None:
    spec = _spec(*(n for n in DEFAULT_NAMESPACES if n != missing))
    [finding] = spec_findings(spec, private_by_default=DEFAULT_NAMESPACES)
    assert (finding.setting, finding.severity) == (setting, severity)


def test_a_namespace_private_by_default_nowhere_is_no_finding() -> None:
    spec = _spec("mount", "network", "uts", "pid", "ipc")  # cgroup v1 host: docker's default is the host's
    assert spec_findings(spec, private_by_default=("mount", "network", "uts", "pid", "ipc")) == []
    assert [f.setting for f in spec_findings(spec, private_by_default=(*DEFAULT_NAMESPACES, "user"))] == [
        "--userns host",
        "--cgroupns host",
    ]
