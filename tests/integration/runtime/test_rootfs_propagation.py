"""linux.rootfsPropagation with a rootfs that is itself a shared mount point, as containerd's CRI
makes it (the overlay is mounted at ``$bundle/rootfs``): the container starts under pallet-runtime,
runc and crun alike, its ``/`` has the propagation asked for (read from inside), and none of its
mounts reach the host.

Kubernetes' Bidirectional mounts ask for ``rshared``; pallet-runtime used to fail that with
``pivot_root .: invalid argument``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Runtime, base_config

pytestmark = pytest.mark.root

#: the propagation "/" shows in mountinfo for each rootfsPropagation value (runtime-spec config-linux.md)
EXPECTED = {
    "rshared": "shared",
    "shared": "shared",
    "rslave": "slave",
    "slave": "slave",
    "private": "private",
}

#: where a peer, as installed here, differs from EXPECTED (seen with runc 1.1.5 and crun 1.8.1)
PEER_DEVIATIONS = {
    ("runc", "rshared"): "runc 1.1.5 leaves the container's / private",
    ("runc", "shared"): "runc 1.1.5 leaves the container's / private",
    (
        "runc",
        "slave",
    ): "runc 1.1.5 makes the shared rootfs mount private; the non-recursive slave keeps it so",
    ("crun", "rslave"): "crun 1.8.1 makes the rootfs mount private before the bind; slave keeps it so",
    ("crun", "slave"): "crun 1.8.1 makes the rootfs mount private before the bind; slave keeps it so",
}


def _optional_fields(line: str) -> list[str]:
    # mountinfo: id parent dev root point options [optional fields...] - type source super
    return line.split(" - ", 1)[0].split()[6:]


def _mount_lines(mountinfo: str, point: str) -> list[str]:
    return [line for line in mountinfo.splitlines() if line.split()[4:5] == [point]]


def _propagation(fields: list[str]) -> str:
    if any(f.startswith("shared:") for f in fields):
        return "shared"
    if any(f.startswith("master:") for f in fields):
        return "slave"
    return "private"


def _host_mounts_under(path: Path) -> list[str]:
    """Mount point and propagation of every host mount at or below ``path`` (ids left out)."""
    text = Path("/proc/self/mountinfo").read_text()
    return sorted(
        f"{line.split()[4]} {' '.join(_optional_fields(line))}"
        for line in text.splitlines()
        if line.split()[4] == str(path) or line.split()[4].startswith(f"{path}/")
    )


@pytest.fixture
def mounted_rootfs(tmp_path: Path, busybox_rootfs: Path) -> Iterator[Path]:
    """``bundle/rootfs`` as an overlay on the busybox tree, made a shared mount (a systemd host's default)."""
    if "overlay" not in Path("/proc/filesystems").read_text():
        pytest.skip("the kernel has no overlay filesystem")
    upper, work, rootfs = tmp_path / "upper", tmp_path / "work", tmp_path / "bundle" / "rootfs"
    for d in (upper, work, rootfs):
        d.mkdir(parents=True)
    options = f"lowerdir={busybox_rootfs},upperdir={upper},workdir={work}"
    made = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", options, str(rootfs)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount an overlay here: {made.stderr.strip()}")
    try:
        subprocess.run(["mount", "--make-shared", str(rootfs)], check=True)
        yield rootfs
    finally:
        # everything at or below the rootfs, deepest first: also what a leaking runtime left
        for point in sorted((line.split()[0] for line in _host_mounts_under(rootfs)), reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


@pytest.mark.parametrize("propagation", list(EXPECTED))
def test_a_rootfs_that_is_a_shared_mount_point_starts_with_its_propagation_and_leaks_nothing(
    any_runtime: Runtime, mounted_rootfs: Path, propagation: str
) -> None:
    host_line = _mount_lines(Path("/proc/self/mountinfo").read_text(), str(mounted_rootfs))[-1]
    host_group = next(f for f in _optional_fields(host_line) if f.startswith("shared:"))
    before = _host_mounts_under(mounted_rootfs)
    config = base_config(mounted_rootfs, "cat", "/proc/self/mountinfo")
    config["ociVersion"] = "1.0.2"  # the newest crun 1.8 accepts
    config["linux"]["rootfsPropagation"] = propagation
    result = any_runtime.run(config)
    assert result.rc == 0, result.err
    assert _host_mounts_under(mounted_rootfs) == before
    roots = _mount_lines(result.out, "/")
    assert len(roots) == 1, result.out
    fields = _optional_fields(roots[0])
    # the container's / is never a peer of the host's rootfs mount: its mounts would reach the host
    assert host_group not in fields
    if any(f.startswith("master:") for f in fields):
        assert f"master:{host_group.split(':')[1]}" in fields
    name = Path(any_runtime.binary).name
    deviation = PEER_DEVIATIONS.get((name, propagation))
    if deviation is not None and _propagation(fields) != EXPECTED[propagation]:
        pytest.xfail(deviation)
    assert _propagation(fields) == EXPECTED[propagation]
