"""``state.json`` as a ``SavedState``: old files load, unknown keys survive, bad ones are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pallet.errors import InvalidArgument
from pallet.oci.runtime_spec import Hook
from pallet.runtime import lifecycle
from pallet.runtime.containers import ContainerDir, status_of
from pallet.runtime.logsink import LogSink
from pallet.runtime.ocistate import oci_state
from pallet.runtime.savedstate import SavedState

# written by the previous version (01630a3): `create` of a bundle with annotations and
# poststart/poststop hooks, then `update --memory 64m --pids-limit 50`; byte for byte
PREVIOUS_VERSION = (
    b'{"ociVersion": "1.0.2-dev", "id": "old1", "status": "created", "pid": 26502, '
    b'"bundle": "/tmp/oldshape/b", "rootfs": "/tmp/oldshape/b/rootfs", '
    b'"created": "2026-12-07T05:35:46.551905703Z", "owner": "", '
    b'"annotations": {"org.example.key": "value"}, '
    b'"poststart": [{"path": "/bin/true", "args": ["true", "poststart"]}], '
    b'"poststop": [{"path": "/bin/true", "args": ["true"], "env": ["A=1"], "timeout": 5}], '
    b'"cgroups": {"cpu": "/sys/fs/cgroup/cpu/old1", "cpuacct": "/sys/fs/cgroup/cpuacct/old1", '
    b'"cpuset": "/sys/fs/cgroup/cpuset/old1", '
    b'"memory": "/sys/fs/cgroup/memory/process_api/f022a5b8b3a7b96f5c51008e9ba547be/old1", '
    b'"devices": "/sys/fs/cgroup/devices/old1", "freezer": "/sys/fs/cgroup/freezer/old1", '
    b'"blkio": "/sys/fs/cgroup/blkio/old1", "pids": "/sys/fs/cgroup/pids/old1", '
    b'"name=systemd": "/sys/fs/cgroup/systemd/old1", "hugetlb": "/sys/fs/cgroup/hugetlb/old1"}, '
    b'"init_start": 253642, '
    b'"resources": {"memory": {"limit": 67108864}, "pids": {"limit": 50}}}'
)


def _container(tmp_path: Path, data: bytes, container_id: str = "old1") -> ContainerDir:
    cdir = ContainerDir(str(tmp_path), container_id)
    cdir.claim()
    Path(cdir.state_path).write_bytes(data)
    return cdir


def test_a_state_json_of_the_previous_version_loads_typed_and_saves_back_byte_for_byte(
    tmp_path: Path,
) -> None:
    cdir = _container(tmp_path, PREVIOUS_VERSION)
    saved = cdir.load()
    assert (saved.oci_version, saved.id, saved.status, saved.pid) == ("1.0.2-dev", "old1", "created", 26502)
    assert (saved.bundle, saved.rootfs) == ("/tmp/oldshape/b", "/tmp/oldshape/b/rootfs")
    assert (saved.created, saved.owner) == ("2026-12-07T05:35:46.551905703Z", "")
    assert dict(saved.annotations) == {"org.example.key": "value"}
    assert saved.poststart == (Hook(path="/bin/true", args=("true", "poststart")),)
    assert saved.poststop == (Hook(path="/bin/true", args=("true",), env=("A=1",), timeout=5),)
    assert saved.cgroups["name=systemd"] == "/sys/fs/cgroup/systemd/old1"
    assert len(saved.cgroups) == 10
    assert saved.init_start == 253642
    assert dict(saved.resources) == {"memory": {"limit": 67108864}, "pids": {"limit": 50}}
    assert (saved.host_mounts, dict(saved.unknown)) == (False, {})
    cdir.save(saved)
    # the same bytes: the previous version reads what this one writes
    assert Path(cdir.state_path).read_bytes() == PREVIOUS_VERSION


def test_the_previous_versions_state_reports_the_same_oci_state(tmp_path: Path) -> None:
    cdir = _container(tmp_path, PREVIOUS_VERSION)
    assert oci_state(cdir.load(), "stopped") == {
        "ociVersion": "1.0.2-dev",
        "id": "old1",
        "pid": 0,
        "status": "stopped",
        "bundle": "/tmp/oldshape/b",
        "rootfs": "/tmp/oldshape/b/rootfs",
        "created": "2026-12-07T05:35:46.551905703Z",
        "owner": "",
        "annotations": {"org.example.key": "value"},
    }


def test_missing_keys_take_their_defaults_and_the_id_comes_from_the_directory(tmp_path: Path) -> None:
    cdir = _container(tmp_path, b'{"status": "created", "pid": 4, "init_start": null}', "c2")
    saved = cdir.load()
    assert saved == SavedState(id="c2", status="created", pid=4)
    assert saved.cgroups == {}
    assert saved.poststop == ()
    assert saved.oci_version == "1.2.0"
    assert status_of(cdir, saved) == "stopped"  # no start time: the pid cannot be trusted


def test_a_container_being_created_has_a_creating_state_before_its_file_exists(tmp_path: Path) -> None:
    cdir = ContainerDir(str(tmp_path), "c3")
    cdir.claim()
    assert cdir.load() == SavedState(id="c3")
    assert status_of(cdir, cdir.load()) == "creating"


def test_keys_this_version_does_not_know_are_written_back(tmp_path: Path) -> None:
    newer = {**json.loads(PREVIOUS_VERSION), "checkpoint": {"path": "/x"}, "intel_rdt": "c"}
    cdir = _container(tmp_path, json.dumps(newer).encode())
    saved = cdir.load()
    assert dict(saved.unknown) == {"checkpoint": {"path": "/x"}, "intel_rdt": "c"}
    cdir.save(saved.replace(resources={"pids": {"limit": 9}}))
    assert json.loads(Path(cdir.state_path).read_bytes()) == {**newer, "resources": {"pids": {"limit": 9}}}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b'{"id": "c4", "pid": "12"}', "pid: must be a non-negative integer"),
        (b'{"id": "c4", "cgroups": {"pids": 3}}', 'cgroups["pids"]: must be a string'),
        (b'{"id": "c4", "poststop": [{"args": []}]}', "poststop[0].path: required"),
        (b'{"id": "c4", "host_mounts": "yes"}', "host_mounts: must be true or false"),
        (b"[1]", "not a JSON object"),
    ],
)
def test_a_key_of_the_wrong_type_is_named_and_delete_force_still_removes_the_container(
    tmp_path: Path, data: bytes, problem: str
) -> None:
    cdir = _container(tmp_path, data, "c4")
    with pytest.raises(InvalidArgument) as caught:
        cdir.load()
    assert str(caught.value) == f"{cdir.state_path}: {problem}; delete the container with --force"
    with pytest.raises(InvalidArgument):
        lifecycle.delete(str(tmp_path), "c4", False, LogSink())
    assert cdir.exists()
    lifecycle.delete(str(tmp_path), "c4", True, LogSink())
    assert not cdir.exists()
