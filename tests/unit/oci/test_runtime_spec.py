"""config.json as records: what is accepted, what is refused (and the words used), round trips."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pallet.errors import SpecError
from pallet.oci import runtime_spec as rs
from pallet.oci.jsonfast import dumps

SRC = Path(__file__).resolve().parents[3] / "src"

BASE: dict[str, object] = {
    "ociVersion": "1.0.2-dev",
    "process": {
        "terminal": True,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": ["PATH=/usr/bin:/bin", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {"bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": []},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "box",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts"},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro"]},
    ],
    "hooks": {"prestart": [{"path": "/bin/true", "args": ["true"], "timeout": 5}]},
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "uts"}, {"type": "mount"}],
        "seccomp": {
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {
                    "names": ["read"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}],
                }
            ],
        },
        "sysctl": {"net.ipv4.ip_forward": "1"},
        "maskedPaths": ["/proc/kcore"],
    },
}

DELETE = object()


def edited(path: str, value: object) -> dict[str, object]:
    """A deep copy of BASE with the field at ``path`` (``a.b[2].c``) set, or removed with DELETE."""
    doc = copy.deepcopy(BASE)
    steps: list[str | int] = []
    for part in path.split("."):
        name, _, rest = part.partition("[")
        if name:
            steps.append(name)
        for index in rest.replace("]", "").split("[") if rest else []:
            steps.append(int(index))
    node: object = doc
    for step in steps[:-1]:
        node = node[step]  # type: ignore[index]
    if value is DELETE:
        del node[steps[-1]]  # type: ignore[attr-defined]
    else:
        node[steps[-1]] = value  # type: ignore[index]
    return doc


def refusal(doc: object) -> str:
    with pytest.raises(SpecError) as caught:
        rs.load_spec(json.dumps(doc).encode())
    return str(caught.value)


def test_a_complete_config_loads_into_records() -> None:
    spec = rs.load_spec(json.dumps(BASE).encode())
    assert spec.process is not None
    assert spec.process.args == ("sh",)
    assert spec.process.user == rs.User(uid=0, gid=0)
    assert spec.process.capabilities == rs.Capabilities(bounding=("CAP_KILL", "CAP_CHOWN"), effective=())
    assert spec.process.rlimits == (rs.Rlimit(type="RLIMIT_NOFILE", hard=1024, soft=1024),)
    assert spec.root == rs.Root(path="rootfs", readonly=True)
    assert spec.mounts[1] == rs.Mount(destination="/dev", type="tmpfs", source="tmpfs", options=("nosuid",))
    assert spec.hooks is not None
    assert spec.hooks.prestart == (rs.Hook(path="/bin/true", args=("true",), timeout=5),)
    assert spec.linux is not None
    assert [ns.type for ns in spec.linux.namespaces] == ["pid", "network", "uts", "mount"]
    assert spec.linux.resources == rs.Resources(devices=(rs.DeviceRule(allow=False, access="rwm"),))
    assert spec.linux.sysctl == {"net.ipv4.ip_forward": "1"}
    assert spec.linux.seccomp is not None
    assert spec.linux.seccomp.syscalls[0].args == (rs.SeccompArg(index=0, value=1, op="SCMP_CMP_EQ"),)


def test_to_json_gives_back_the_document_read() -> None:
    assert rs.load_spec(json.dumps(BASE)).to_json() == BASE


def test_absent_capability_sets_differ_from_empty_ones() -> None:
    caps = rs.load_spec(json.dumps(BASE)).process.capabilities  # type: ignore[union-attr]
    assert caps is not None
    assert caps.effective == ()
    assert caps.permitted is None
    assert "effective" in caps.to_json()
    assert "permitted" not in caps.to_json()


def test_zero_values_of_optional_fields_are_written_and_go_zero_values_are_not() -> None:
    memory = rs.Memory(limit=0, disable_oom_killer=False)
    assert memory.to_json() == {"limit": 0, "disableOOMKiller": False}
    mount = rs.Mount(destination="/x", type="", options=[])  # type: ignore[arg-type]
    assert mount.to_json() == {"destination": "/x"}


def test_unknown_fields_are_ignored_at_every_level() -> None:
    doc = copy.deepcopy(BASE)
    doc["futureField"] = {"x": 1}
    doc["process"]["futureField"] = [1]  # type: ignore[index]
    doc["linux"]["resources"]["futureField"] = True  # type: ignore[index]
    doc["mounts"][0]["futureField"] = "x"  # type: ignore[index]
    assert rs.load_spec(json.dumps(doc)) == rs.load_spec(json.dumps(BASE))


def test_null_reads_as_absent_like_go() -> None:
    spec = rs.load_spec(json.dumps(edited("linux.seccomp", None)))
    assert spec.linux is not None
    assert spec.linux.seccomp is None


@pytest.mark.parametrize("version", ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.0", "1.3.0", "1.0.0-rc5+dev.2"])
def test_every_1_x_y_version_is_accepted(version: str) -> None:
    assert rs.load_spec(json.dumps(edited("ociVersion", version))).oci_version == version


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("ociVersion", "invalid", 'ociVersion: "invalid" is not a version (want e.g. 1.0.2)'),
        ("ociVersion", "1.0", 'ociVersion: "1.0" is not a version (want e.g. 1.0.2)'),
        ("ociVersion", "1.01.0", 'ociVersion: "1.01.0" is not a version (want e.g. 1.0.2)'),
        ("ociVersion", "1.0.0-", 'ociVersion: "1.0.0-" is not a version (want e.g. 1.0.2)'),
        ("ociVersion", "2.0.0", 'ociVersion: version "2.0.0" is not supported (want 1.x.y)'),
        ("ociVersion", DELETE, "ociVersion: required"),
        ("linux.namespaces[2].type", "foo", 'linux.namespaces[2].type: unknown namespace "foo"'),
        ("linux.namespaces[3].type", "pid", 'linux.namespaces: duplicate namespace "pid"'),
        ("linux.namespaces[1].path", "netns/x", "linux.namespaces[1].path: must be an absolute path"),
        ("process.args", [], "process.args: must not be empty"),
        ("process.args", DELETE, "process.args: must not be empty"),
        ("process.args", ["sh", 1], "process.args[1]: must be a string, got integer"),
        ("process.cwd", "tmp", "process.cwd: must be an absolute path"),
        ("process.cwd", DELETE, "process.cwd: required"),
        ("process.env[1]", "NOVALUE", 'process.env[1]: "NOVALUE" is not NAME=value'),
        ("process.env[0]", "=x", 'process.env[0]: "=x" is not NAME=value'),
        ("mounts[3].destination", "sys", "mounts[3].destination: must be an absolute path"),
        ("mounts[0].destination", DELETE, "mounts[0].destination: required"),
        ("process.rlimits[0].type", "RLIMIT_FOO", 'process.rlimits[0].type: unknown rlimit "RLIMIT_FOO"'),
        (
            "process.rlimits",
            [{"type": "RLIMIT_CORE", "hard": 0, "soft": 0}, {"type": "RLIMIT_CORE", "hard": 1, "soft": 1}],
            'process.rlimits[1].type: duplicate rlimit "RLIMIT_CORE"',
        ),
        ("process.rlimits[0].soft", 4096, "process.rlimits[0].soft: 4096 is above the hard limit 1024"),
        (
            "process.rlimits[0].hard",
            -1,
            "process.rlimits[0].hard: must be between 0 and 18446744073709551615, got -1",
        ),
        (
            "process.capabilities.bounding[1]",
            "CAP_FOO",
            'process.capabilities.bounding[1]: unknown capability "CAP_FOO"',
        ),
        (
            "process.capabilities.ambient",
            "CAP_KILL",
            "process.capabilities.ambient: must be an array, got string",
        ),
        ("process.user.uid", "0", "process.user.uid: must be an integer, got string"),
        ("process.user.uid", 1.5, "process.user.uid: must be an integer, got number"),
        ("process.user.gid", True, "process.user.gid: must be an integer, got boolean"),
        ("process.user.uid", 2**32, "process.user.uid: must be between 0 and 4294967295, got 4294967296"),
        ("process.user.gid", DELETE, "process.user.gid: required"),
        ("process.terminal", "yes", "process.terminal: must be a boolean, got string"),
        ("process.oomScoreAdj", 1001, "process.oomScoreAdj: must be between -1000 and 1000, got 1001"),
        ("process", [], "process: must be an object, got array"),
        ("hooks.prestart[0].path", "true", "hooks.prestart[0].path: must be an absolute path"),
        ("hooks.prestart[0].timeout", 0, "hooks.prestart[0].timeout: must be greater than zero, got 0"),
        ("root", DELETE, "root: required to run a process"),
        ("root.path", DELETE, "root.path: required"),
        ("root.path", "", "root.path: must not be empty"),
        ("linux.rootfsPropagation", "sideways", 'linux.rootfsPropagation: unknown propagation "sideways"'),
        (
            "linux.seccomp.defaultAction",
            "SCMP_ACT_FOO",
            'linux.seccomp.defaultAction: unknown seccomp action "SCMP_ACT_FOO"',
        ),
        (
            "linux.seccomp.syscalls[0].action",
            "SCMP_ACT_NOTIFY",
            "linux.seccomp.listenerPath: required with the action SCMP_ACT_NOTIFY",
        ),
        (
            "linux.seccomp.syscalls[0].args[0].op",
            "SCMP_CMP_FOO",
            'linux.seccomp.syscalls[0].args[0].op: unknown seccomp operator "SCMP_CMP_FOO"',
        ),
        (
            "linux.seccomp.syscalls[0].args[0].index",
            6,
            "linux.seccomp.syscalls[0].args[0].index: must be between 0 and 5, got 6",
        ),
        ("linux.seccomp.syscalls[0].names", [], "linux.seccomp.syscalls[0].names: must not be empty"),
        (
            "linux.seccomp.architectures[0]",
            "SCMP_ARCH_Z80",
            'linux.seccomp.architectures[0]: unknown seccomp architecture "SCMP_ARCH_Z80"',
        ),
        (
            "linux.sysctl",
            {"../../etc/passwd": "x"},
            'linux.sysctl["../../etc/passwd"]: not a sysctl name (want e.g. net.ipv4.ip_forward)',
        ),
        (
            "linux.sysctl",
            {"net.ipv4..x": "1"},
            'linux.sysctl["net.ipv4..x"]: not a sysctl name (want e.g. net.ipv4.ip_forward)',
        ),
        ("linux.sysctl", {"kernel.x": 1}, 'linux.sysctl["kernel.x"]: must be a string, got integer'),
        (
            "linux.resources.devices[0].access",
            "rwx",
            'linux.resources.devices[0].access: "rwx" is not a combination of r, w and m',
        ),
        (
            "linux.resources.memory",
            {"swappiness": 101},
            "linux.resources.memory.swappiness: must be between 0 and 100, got 101",
        ),
        (
            "linux.devices",
            [{"path": "/dev/fuse", "type": "c", "minor": 229}],
            'linux.devices[0].major: required for a "c" device',
        ),
        (
            "linux.devices",
            [{"path": "/dev/x", "type": "z", "major": 1, "minor": 1}],
            'linux.devices[0].type: unknown device type "z" (want c, b, u or p)',
        ),
        ("linux.maskedPaths[0]", "proc/kcore", "linux.maskedPaths[0]: must be an absolute path"),
        (
            "linux.uidMappings",
            [{"containerID": 0, "hostID": 1000, "size": 1}],
            'linux.uidMappings: needs a user namespace (add {"type": "user"} to linux.namespaces)',
        ),
        (
            "linux.timeOffsets",
            {"boottime": {"secs": 1}},
            'linux.timeOffsets: needs a time namespace (add {"type": "time"} to linux.namespaces)',
        ),
        ("linux.namespaces[1]", {"type": "user"}, "linux.uidMappings: required with a user namespace"),
        (
            "linux.namespaces[2]",
            {"type": "ipc"},
            'hostname: needs a uts namespace (add {"type": "uts"} to linux.namespaces)',
        ),
    ],
)
def test_invalid_fields_are_refused_with_their_json_path(path: str, value: object, message: str) -> None:
    assert refusal(edited(path, value)) == message


def test_gid_mappings_are_required_too_with_a_user_namespace() -> None:
    doc = edited("linux.namespaces[1]", {"type": "user"})
    doc = {**doc, "linux": {**doc["linux"], "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}}  # type: ignore[dict-item]
    assert refusal(doc) == "linux.gidMappings: required with a user namespace"


def test_joining_an_existing_user_namespace_needs_no_mappings() -> None:
    spec = rs.load_spec(
        json.dumps(edited("linux.namespaces[1]", {"type": "user", "path": "/proc/1/ns/user"}))
    )
    assert spec.linux is not None
    assert spec.linux.namespace("user") == rs.Namespace(type="user", path="/proc/1/ns/user")


def test_a_spec_without_process_needs_no_root() -> None:
    doc = {"ociVersion": "1.0.0", "linux": {}}
    assert rs.load_spec(json.dumps(doc)) == rs.Spec(oci_version="1.0.0", linux=rs.Linux())


def test_syntax_errors_name_the_document() -> None:
    with pytest.raises(SpecError) as caught:
        rs.load_spec(b'{"ociVersion": ', source="/b/config.json")
    assert str(caught.value) == "/b/config.json: invalid JSON: expecting value at line 1 column 16 (char 15)"
    with pytest.raises(SpecError) as caught:
        rs.load_spec(b"[]")
    assert str(caught.value) == "config.json: must be a JSON object, got array"


def test_process_json_for_exec_loads_on_its_own() -> None:
    process = rs.load_process(json.dumps(BASE["process"]).encode())
    assert process.args == ("sh",)
    with pytest.raises(SpecError, match=r"^args: must not be empty$"):
        rs.load_process(b'{"cwd": "/", "args": []}')


# --- round trips over generated records ---------------------------------------

u32 = st.integers(0, 2**32 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
names = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=1, max_size=8)
abs_paths = names.map(lambda s: "/" + s)
cap_sets = st.none() | st.lists(st.sampled_from(list(rs.ALL_CAPABILITIES)), max_size=4).map(tuple)
id_maps = st.lists(st.builds(rs.IDMapping, container_id=u32, host_id=u32, size=u32), max_size=2).map(tuple)


@st.composite
def rlimits(draw: st.DrawFn) -> tuple[rs.Rlimit, ...]:
    types_ = draw(st.lists(st.sampled_from(list(rs.RLIMITS)), unique=True, max_size=3))
    out = []
    for t in types_:
        hard = draw(st.integers(0, 2**64 - 1))
        out.append(rs.Rlimit(type=t, hard=hard, soft=draw(st.integers(0, hard))))
    return tuple(out)


processes = st.builds(
    rs.Process,
    terminal=st.booleans(),
    console_size=st.none() | st.builds(rs.ConsoleSize, height=u32, width=u32),
    user=st.builds(
        rs.User,
        uid=u32,
        gid=u32,
        umask=st.none() | u32,
        additional_gids=st.lists(u32, max_size=3).map(tuple),
        username=st.text(max_size=5),
    ),
    args=st.lists(st.text(max_size=5), min_size=1, max_size=3).map(tuple),
    env=st.lists(names.filter(lambda s: "=" not in s).map(lambda s: s + "=v"), max_size=3).map(tuple),
    cwd=abs_paths,
    capabilities=st.none()
    | st.builds(rs.Capabilities, bounding=cap_sets, effective=cap_sets, ambient=cap_sets),
    rlimits=rlimits(),
    no_new_privileges=st.booleans(),
    oom_score_adj=st.none() | st.integers(-1000, 1000),
    io_priority=st.none()
    | st.builds(rs.IOPriority, class_=st.just("IOPRIO_CLASS_BE"), priority=st.integers(0, 7)),
)
mounts = st.lists(
    st.builds(
        rs.Mount,
        destination=abs_paths,
        type=st.sampled_from(["", "bind", "tmpfs"]),
        source=st.text(max_size=5),
        options=st.lists(st.sampled_from(rs.MOUNT_OPTIONS), max_size=3).map(tuple),
        uid_mappings=id_maps,
    ),
    max_size=3,
).map(tuple)
resources = st.builds(
    rs.Resources,
    devices=st.lists(
        st.builds(
            rs.DeviceRule,
            allow=st.booleans(),
            type=st.sampled_from(["", "a", "c", "b"]),
            major=st.none() | i64,
            access=st.sampled_from(["", "r", "rwm"]),
        ),
        max_size=2,
    ).map(tuple),
    memory=st.none()
    | st.builds(
        rs.Memory,
        limit=st.none() | i64,
        swappiness=st.none() | st.integers(0, 100),
        disable_oom_killer=st.none() | st.booleans(),
    ),
    cpu=st.none()
    | st.builds(
        rs.Cpu, shares=st.none() | st.integers(0, 2**64 - 1), quota=st.none() | i64, cpus=st.text(max_size=4)
    ),
    pids=st.none() | st.builds(rs.Pids, limit=i64),
    unified=st.dictionaries(names, st.text(max_size=4), max_size=2),
)
seccomps = st.builds(
    rs.Seccomp,
    default_action=st.sampled_from(rs.SECCOMP_ACTIONS).filter(lambda a: a != "SCMP_ACT_NOTIFY"),
    default_errno_ret=st.none() | u32,
    architectures=st.lists(st.sampled_from(rs.SECCOMP_ARCHITECTURES), max_size=2).map(tuple),
    syscalls=st.lists(
        st.builds(
            rs.SeccompSyscall,
            names=st.lists(names, min_size=1, max_size=2).map(tuple),
            action=st.sampled_from(["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"]),
            args=st.lists(
                st.builds(
                    rs.SeccompArg,
                    index=st.integers(0, 5),
                    value=st.integers(0, 2**64 - 1),
                    value_two=st.integers(0, 9),
                    op=st.sampled_from(rs.SECCOMP_OPERATORS),
                ),
                max_size=2,
            ).map(tuple),
        ),
        max_size=2,
    ).map(tuple),
)
linuxes = st.builds(
    rs.Linux,
    namespaces=st.lists(st.sampled_from(["pid", "network", "mount", "ipc", "uts", "cgroup"]), unique=True)
    .map(lambda ts: (*(rs.Namespace(type=t) for t in ts), rs.Namespace(type="uts", path="/proc/1/ns/uts")))
    .filter(lambda nss: len({n.type for n in nss}) == len(nss)),
    cgroups_path=st.text(max_size=8),
    resources=st.none() | resources,
    rootfs_propagation=st.sampled_from(["", *rs.ROOTFS_PROPAGATIONS]),
    seccomp=st.none() | seccomps,
    sysctl=st.dictionaries(
        st.sampled_from(["net.ipv4.ip_forward", "kernel/shmmax", "fs.mqueue.msg_max"]), st.text(max_size=3)
    ),
    masked_paths=st.lists(abs_paths, max_size=2).map(tuple),
    personality=st.none() | st.builds(rs.Personality, domain=st.sampled_from(["LINUX", "LINUX32"])),
)
specs = st.builds(
    rs.Spec,
    oci_version=st.sampled_from(["1.0.2", "1.2.0", "1.0.2-dev"]),
    process=processes,
    root=st.builds(rs.Root, path=names, readonly=st.booleans()),
    hostname=st.text(max_size=5),
    mounts=mounts,
    hooks=st.none()
    | st.builds(
        rs.Hooks,
        poststop=st.lists(
            st.builds(rs.Hook, path=abs_paths, timeout=st.none() | st.integers(1, 9)), max_size=2
        ).map(tuple),
    ),
    annotations=st.dictionaries(names, st.text(max_size=5), max_size=3),
    linux=linuxes,
)


@settings(max_examples=150, deadline=None)
@given(specs)
def test_specs_survive_to_json_dumps_and_load_spec(spec: rs.Spec) -> None:
    assert rs.load_spec(dumps(spec.to_json()).encode()) == spec
    assert rs.Spec.from_json(spec.to_json(), "") == spec


# --- runc's own defaults -----------------------------------------------------------


def runc_spec(tmp_path: Path, *flags: str) -> dict[str, object]:
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc is not installed: nothing to compare the default spec with")
    subprocess.run([runc, "spec", *flags], cwd=tmp_path, check=True, capture_output=True)
    doc = json.loads((tmp_path / "config.json").read_text())
    assert isinstance(doc, dict)
    return doc


def test_default_spec_is_what_runc_spec_writes(tmp_path: Path) -> None:
    expected = runc_spec(tmp_path)
    ours = rs.default_spec().to_json()
    # pallet writes the spec version it implements; runc writes its own
    assert ours.pop("ociVersion") == rs.SPEC_VERSION
    expected.pop("ociVersion")
    assert json.dumps(ours, indent=1) == json.dumps(expected, indent=1)  # same keys, same order


def test_rootless_default_spec_is_what_runc_spec_rootless_writes(tmp_path: Path) -> None:
    expected = runc_spec(tmp_path, "--rootless")
    ours = rs.default_spec(rootless=True).to_json()
    ours.pop("ociVersion")
    expected.pop("ociVersion")
    assert json.dumps(ours, indent=1) == json.dumps(expected, indent=1)
    linux = rs.default_spec(rootless=True, uid=1000, gid=1001).linux
    assert linux is not None
    assert (linux.uid_mappings[0].host_id, linux.gid_mappings[0].host_id) == (1000, 1001)


def test_default_specs_pass_their_own_validation() -> None:
    for rootless in (False, True):
        spec = rs.default_spec(rootless=rootless, uid=os.geteuid(), gid=os.getegid())
        assert rs.load_spec(dumps(spec.to_json())) == spec


def test_runtime_features_have_the_shape_of_runc_features() -> None:
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc is not installed: nothing to compare the features with")
    theirs = json.loads(subprocess.run([runc, "features"], check=True, capture_output=True).stdout)
    ours = rs.runtime_features()
    assert set(ours) == set(theirs) - {"annotations"}
    assert ours["hooks"] == theirs["hooks"]
    assert ours["mountOptions"] == theirs["mountOptions"]
    linux = ours["linux"]
    assert isinstance(linux, dict)
    assert set(linux) == set(theirs["linux"])
    assert linux["capabilities"] == theirs["linux"]["capabilities"]
    assert set(theirs["linux"]["namespaces"]) <= set(linux["namespaces"])
    assert set(linux["seccomp"]) == set(theirs["linux"]["seccomp"])
    assert set(theirs["linux"]["seccomp"]["archs"]) <= set(linux["seccomp"]["archs"])
    assert linux["seccomp"]["operators"] == theirs["linux"]["seccomp"]["operators"]
    assert linux["seccomp"]["actions"] == theirs["linux"]["seccomp"]["actions"]


def test_module_constants_carry_kernel_numbers() -> None:
    assert rs.ALL_CAPABILITIES["CAP_CHOWN"] == 0
    assert rs.ALL_CAPABILITIES["CAP_SYS_ADMIN"] == 21
    assert rs.ALL_CAPABILITIES["CAP_CHECKPOINT_RESTORE"] == 40
    assert list(rs.ALL_CAPABILITIES.values()) == list(range(41))
    assert rs.RLIMITS["RLIMIT_NOFILE"] == 7
    assert rs.RLIMITS["RLIMIT_RTTIME"] == 15
    assert set(rs.NAMESPACE_TYPES) == {"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"}


# --- import cost ---------------------------------------------------------------------

BANNED = {"dataclasses", "typing", "re", "enum", "json.decoder", "json.encoder", "inspect", "argparse"}


@pytest.mark.parametrize("module", ["pallet.oci.runtime_spec", "pallet.oci.state", "pallet.oci.jsonfast"])
def test_importing_the_module_pulls_in_no_heavy_stdlib_module(module: str) -> None:
    code = f"import sys; sys.path.insert(0, {str(SRC)!r}); import {module}"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-I", "-S", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert module in imported  # the output was parsed, not empty
    assert imported & BANNED == set()
