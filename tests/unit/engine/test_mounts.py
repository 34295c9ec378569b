"""Mount requests become OCI mounts as docker makes them; volumes are created, recorded and seeded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pallet.engine.spec.mounts import clean_destination, resolve_mounts
from pallet.engine.volumes import VolumeStore
from pallet.errors import InvalidArgument
from pallet.oci.record import EMPTY, Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping


class Req(Record):
    """A stand-in with the fields of E-SPEC's MountSpec."""

    type: str
    source: str | None = None
    target: str
    read_only: bool = False
    propagation: str | None = None
    relabel: str | None = None
    tmpfs_size: int | None = None
    tmpfs_mode: int | None = None
    volume_nocopy: bool = False
    volume_labels: Mapping[str, str] = EMPTY
    volume_driver: str = ""
    volume_options: Mapping[str, str] = EMPTY
    volume_subpath: str = ""


CID = "c" * 64


@pytest.fixture
def volumes(tmp_path: Path) -> Iterator[VolumeStore]:
    with VolumeStore.open(tmp_path / "root") as store:
        yield store


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "data").mkdir(parents=True)
    (root / "data" / "seed.txt").write_text("from image")
    (root / "etc").mkdir()
    # a hostile image: its VOLUME path is a symlink pointing at the host's /etc
    (root / "evil").symlink_to("/etc")
    return root


def test_bind_mount_options_and_inspect(volumes: VolumeStore, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    plan = resolve_mounts(
        [Req(type="bind", source=str(host), target="/srv/", read_only=True)],
        volumes=volumes,
        container_id=CID,
    )
    (mount,) = plan.mounts
    assert mount.to_oci() == {
        "destination": "/srv",
        "type": "bind",
        "source": str(host),
        "options": ["rbind", "ro", "rprivate"],
    }
    assert plan.points[0].to_inspect() == {
        "Type": "bind",
        "Source": str(host),
        "Destination": "/srv",
        "Mode": "ro",
        "RW": False,
        "Propagation": "rprivate",
    }


def test_missing_bind_source_is_created_for_v_and_refused_for_mount(
    volumes: VolumeStore, tmp_path: Path
) -> None:
    missing = tmp_path / "missing" / "dir"
    with pytest.raises(InvalidArgument, match="bind source path does not exist"):
        resolve_mounts(
            [Req(type="bind", source=str(missing), target="/x")],
            volumes=volumes,
            container_id=CID,
            create_host_path=False,
        )
    assert not missing.exists()
    resolve_mounts([Req(type="bind", source=str(missing), target="/x")], volumes=volumes, container_id=CID)
    assert missing.is_dir()


@pytest.mark.parametrize(
    ("target", "message"),
    [("relative", "must be absolute"), ("/", "destination can't be '/'"), ("", "must not be empty")],
)
def test_bad_destinations_are_refused(target: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        clean_destination(target)


def test_duplicate_mount_point_creates_nothing(volumes: VolumeStore) -> None:
    with pytest.raises(InvalidArgument, match="Duplicate mount point: /data"):
        resolve_mounts(
            [Req(type="volume", source="vol1", target="/data"), Req(type="tmpfs", target="/data/")],
            volumes=volumes,
            container_id=CID,
        )
    assert volumes.list_volumes() == []


def test_bad_propagation_is_refused(volumes: VolumeStore, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="invalid propagation mode"):
        resolve_mounts(
            [Req(type="bind", source=str(tmp_path), target="/x", propagation="sideways")],
            volumes=volumes,
            container_id=CID,
        )


def test_tmpfs_mount_options(volumes: VolumeStore) -> None:
    plan = resolve_mounts(
        [Req(type="tmpfs", target="/scratch", tmpfs_size=65536, tmpfs_mode=0o1770)],
        volumes=volumes,
        container_id=CID,
    )
    assert plan.mounts[0].type == "tmpfs"
    assert plan.mounts[0].options == ("noexec", "nosuid", "nodev", "size=65536", "mode=1770")


def test_named_volume_is_created_recorded_and_seeded(volumes: VolumeStore, rootfs: Path) -> None:
    plan = resolve_mounts(
        [Req(type="volume", source="appdata", target="/data")],
        volumes=volumes,
        container_id=CID,
        rootfs=rootfs,
    )
    assert plan.volumes == ("appdata",)
    assert volumes.get("appdata").users == (CID,)
    assert (Path(volumes.data_path("appdata")) / "seed.txt").read_text() == "from image"
    assert plan.mounts[0].source == volumes.data_path("appdata")
    assert plan.points[0].to_inspect()["Name"] == "appdata"


def test_nocopy_volume_starts_empty(volumes: VolumeStore, rootfs: Path) -> None:
    resolve_mounts(
        [Req(type="volume", source="empty1", target="/data", volume_nocopy=True)],
        volumes=volumes,
        container_id=CID,
        rootfs=rootfs,
    )
    assert os.listdir(volumes.data_path("empty1")) == []


def test_image_volumes_become_anonymous_unless_covered(volumes: VolumeStore, rootfs: Path) -> None:
    plan = resolve_mounts(
        [Req(type="volume", source="named1", target="/data")],
        volumes=volumes,
        container_id=CID,
        rootfs=rootfs,
        image_volumes=("/data", "/cache"),
    )
    assert [m.destination for m in plan.mounts] == ["/data", "/cache"]
    anonymous = [v for v in volumes.list_volumes() if v.anonymous]
    assert len(anonymous) == 1
    assert anonymous[0].users == (CID,)
    assert volumes.release(CID, remove_anonymous=True) == [anonymous[0].name]


def test_seeding_never_follows_a_symlink_out_of_the_root(volumes: VolumeStore, rootfs: Path) -> None:
    plan = resolve_mounts([], volumes=volumes, container_id=CID, rootfs=rootfs, image_volumes=("/evil",))
    data = volumes.data_path(plan.volumes[0])
    # /evil -> /etc resolves to <rootfs>/etc (empty), never to the host's /etc
    assert os.listdir(data) == []


def test_mounts_are_ordered_parents_first(volumes: VolumeStore) -> None:
    plan = resolve_mounts(
        [Req(type="tmpfs", target="/a/b/c"), Req(type="tmpfs", target="/a")],
        volumes=volumes,
        container_id=CID,
    )
    assert [m.destination for m in plan.mounts] == ["/a", "/a/b/c"]


def test_relabel_is_accepted_with_a_note(volumes: VolumeStore, tmp_path: Path) -> None:
    plan = resolve_mounts(
        [Req(type="bind", source=str(tmp_path), target="/x", relabel="Z")], volumes=volumes, container_id=CID
    )
    assert len(plan.mounts) == 1
    assert "SELinux" in plan.notes[0]


def test_volume_labels_are_set_on_creation(volumes: VolumeStore) -> None:
    resolve_mounts(
        [Req(type="volume", source="lab1", target="/x", volume_labels={"k": "v"})],
        volumes=volumes,
        container_id=CID,
    )
    assert dict(volumes.get("lab1").labels) == {"k": "v"}


def test_read_only_volume_is_mounted_ro(volumes: VolumeStore) -> None:
    plan = resolve_mounts(
        [Req(type="volume", source="ro1", target="/x", read_only=True)], volumes=volumes, container_id=CID
    )
    assert plan.mounts[0].options == ("rbind", "ro", "rprivate")
    assert plan.points[0].to_inspect()["RW"] is False


def test_bad_volume_name_is_refused_before_any_volume_is_made(volumes: VolumeStore) -> None:
    with pytest.raises(InvalidArgument, match="invalid characters"):
        resolve_mounts(
            [Req(type="volume", source="good1", target="/a"), Req(type="volume", source="b@d", target="/b")],
            volumes=volumes,
            container_id=CID,
        )
    assert volumes.list_volumes() == []
