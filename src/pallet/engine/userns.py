"""User-namespace remapping for root mode (docker's ``userns-remap``, ``--userns=remap|host``).

A remapped container's root is an unprivileged host id: the container gets a
user namespace mapping its ids ``0..N-1`` to a subordinate range of a host
user (``/etc/subuid``, ``/etc/subgid``). Which range:

- ``userns-remap = "default"`` in ``<root>/config.toml`` (or ``--userns=remap``
  with no setting): the ranges of the user ``pallet``, made on first use as
  docker makes ``dockremap`` (a system user, and the first free 65536 ids at or
  above 100000 in both files);
- ``userns-remap = "user"`` or ``"user:group"``: that user's (and group's) ranges.

``--userns=host`` opts a container out of a root's default; ``--userns=remap``
opts it in when the root has none.

The image's files keep their owners on disk: the container's rootfs is an
overlay of *idmapped* copies of the layer and upper directories (``linux/idmap``),
so the container sees them owned by its own ids and the host sees them shifted.
Nothing is copied or chowned in the store, so a process killed at any point
leaves nothing to repair, and commit, diff and cp see the same unshifted
upper directory as for any container.

Volumes and bind mounts: a named volume's ``_data`` still owned by host root
(new, never written) is given to the container's root (host id = range start);
files in it are stored with host ids (start + container id). A bind mount
keeps its host owners: files owned by host ids outside the range show as
``nobody`` (65534) inside, and the container's root may write only where the
host's permissions let the range's ids write.
"""

from __future__ import annotations

import os

from pallet.errors import FailedPrecondition, InvalidArgument, SystemError_, Unavailable, Unsupported
from pallet.oci.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from pallet.engine.spec.generate import SpecOption
    from pallet.image.snapshots import Mount
    from pallet.linux.idmap import Mapping

__all__ = [
    "DEFAULT_USER",
    "USERNS_MODES",
    "Remap",
    "as_remapped_root",
    "check_userns_mode",
    "container_remap",
    "give_volume_to_root",
    "let_root_traverse",
    "mount_rootfs",
    "mount_snapshot",
    "release_scratch",
    "remap_of_bundle",
    "remap_spec_option",
    "resolve_remap",
    "subordinate_ranges",
    "unshifted_view",
]

#: docker's ``dockremap``, pallet's name
DEFAULT_USER = "pallet"
#: ``--userns`` values: the root's default, its opposite and opt-out
USERNS_MODES = ("", "host", "remap")
_FIRST_ID = 100000
_RANGE = 65536
SUBUID = "/etc/subuid"
SUBGID = "/etc/subgid"
_PING_GROUPS = "net.ipv4.ping_group_range"


class Remap(Record):
    """The mapping of a remapped container: container ids ``0..count-1`` are host ``start..``."""

    user: str
    uid_start: int
    uid_count: int
    gid_start: int
    gid_count: int

    @property
    def uid_map(self) -> Mapping:
        return ((0, self.uid_start, self.uid_count),)

    @property
    def gid_map(self) -> Mapping:
        return ((0, self.gid_start, self.gid_count),)


def check_userns_mode(mode: str) -> str:
    """``--userns`` checked: ``host``, ``remap`` or empty (the root's default)."""
    if mode not in USERNS_MODES:
        raise InvalidArgument(f'invalid USER mode "{mode}": want "host" or "remap"')
    return mode


def subordinate_ranges(text: str, names: Sequence[str]) -> list[tuple[int, int]]:
    """The ``(start, count)`` ranges ``/etc/subuid``-format ``text`` gives to any of ``names`` (user or id)."""
    ranges = []
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) != 3 or fields[0] not in names:
            continue
        try:
            start, count = int(fields[1]), int(fields[2])
        except ValueError:
            continue
        if count > 0:
            ranges.append((start, count))
    return ranges


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return ""
    except OSError as e:
        raise Unavailable(f"read {path}: {(e.strerror or str(e)).lower()}") from None


def _first_free(text: str) -> int:
    """The first id at or above 100000 past every range in ``text`` (docker's choice for dockremap)."""
    end = _FIRST_ID
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
            end = max(end, int(fields[1]) + int(fields[2]))
    return end


def _ensure_default_user() -> None:
    """Make the ``pallet`` system user and its ranges if missing (idempotent: each step checks first).

    ``useradd`` and ``usermod`` take the shadow tools' locks and rewrite the
    files atomically, so a kill between the steps leaves a user without
    ranges, which the next call completes.
    """
    import pwd
    import subprocess

    try:
        pwd.getpwnam(DEFAULT_USER)
        missing = False
    except KeyError:
        missing = True
    if missing:
        done = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", DEFAULT_USER],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode not in (0, 9):  # 9: made meanwhile by another process
            raise Unavailable(f"useradd {DEFAULT_USER} failed: {done.stderr.strip()}")
    for flag, path in (("--add-subuids", SUBUID), ("--add-subgids", SUBGID)):
        text = _read(path)
        if subordinate_ranges(text, [DEFAULT_USER]):
            continue
        start = _first_free(text)
        done = subprocess.run(
            ["usermod", flag, f"{start}-{start + _RANGE - 1}", DEFAULT_USER],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise Unavailable(f"usermod {flag} for {DEFAULT_USER} failed: {done.stderr.strip()}")


def resolve_remap(setting: str) -> Remap:
    """The ``Remap`` of a ``userns-remap`` setting (``default``, ``user``, ``user:group``, or ids)."""
    import grp
    import pwd

    if setting == "default":
        _ensure_default_user()
        user, group = DEFAULT_USER, DEFAULT_USER
    else:
        user, _, group = setting.partition(":")
        group = group or user
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        raise InvalidArgument(
            f'userns-remap: no user "{user}" on this host; create it with subordinate ids in {SUBUID} '
            f'and {SUBGID}, or use "default"'
        ) from None
    try:
        group_entry = grp.getgrgid(int(group)) if group.isdigit() else grp.getgrnam(group)
        group_names = [group_entry.gr_name, str(group_entry.gr_gid)]
    except KeyError:
        group_names = [group]
    uids = subordinate_ranges(_read(SUBUID), [entry.pw_name, str(entry.pw_uid)])
    gids = subordinate_ranges(_read(SUBGID), group_names)
    for ranges, path, flag in ((uids, SUBUID, "--add-subuids"), (gids, SUBGID, "--add-subgids")):
        if not ranges:
            raise FailedPrecondition(
                f'userns-remap: "{entry.pw_name}" has no subordinate ids in {path}; add a range with '
                f"usermod {flag} 100000-165535 {entry.pw_name}"
            )
    # the first range of each, as docker maps one contiguous block
    (uid_start, uid_count), (gid_start, gid_count) = uids[0], gids[0]
    return Remap(
        user=entry.pw_name,
        uid_start=uid_start,
        uid_count=uid_count,
        gid_start=gid_start,
        gid_count=gid_count,
    )


def container_remap(mode: str, root: str) -> Remap | None:
    """The mapping a container of ``root`` gets: ``mode`` is its ``--userns``; else the root's
    ``userns-remap`` setting decides."""
    from pallet.engine.config import load_config

    mode = check_userns_mode(mode)
    root_setting = load_config(root).userns_remap if mode != "host" else ""
    if mode == "host" or (mode == "" and not root_setting):
        return None
    if os.environ.get("PALLET_ROOTLESS") == "1":
        return _rootless_remap()
    return resolve_remap(root_setting or "default")


def _rootless_remap() -> Remap:
    """Rootless: container ids 0… are the user's subordinate ids (ids 1… of their namespace)."""
    counts = []
    for name in ("uid_map", "gid_map"):
        try:
            with open(f"/proc/self/{name}") as f:
                total = sum(int(line.split()[2]) for line in f if line.strip())
        except (OSError, ValueError, IndexError):
            total = 1
        counts.append(min(total - 1, 65536))
    if min(counts) < 1:
        raise FailedPrecondition("--userns=remap: your user namespace maps no subordinate ids")
    return Remap(user="", uid_start=1, uid_count=counts[0], gid_start=1, gid_count=counts[1])


def remap_spec_option(remap: Remap) -> SpecOption:
    """A user namespace with the remap's mappings in the container's config.json."""
    from pallet.engine.spec.generate import compose, with_namespace
    from pallet.oci.runtime_spec import IDMapping, Linux, Spec

    def apply(spec: Spec) -> Spec:
        spec = compose(spec, with_namespace("user"))
        linux = spec.linux or Linux()
        sysctl = dict(linux.sysctl or {})
        if _PING_GROUPS in sysctl:
            # gids are read in the container's namespace: only its own are valid (ping keeps working)
            sysctl[_PING_GROUPS] = f"0 {remap.gid_count - 1}"
        return spec.replace(
            linux=linux.replace(
                uid_mappings=(IDMapping(container_id=0, host_id=remap.uid_start, size=remap.uid_count),),
                gid_mappings=(IDMapping(container_id=0, host_id=remap.gid_start, size=remap.gid_count),),
                sysctl=sysctl,
            )
        )

    return apply


def remap_of_bundle(bundle: str) -> Remap | None:
    """The mapping written into a bundle's config.json (``None``: not remapped)."""
    from pallet.oci.jsonfast import loads

    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            doc = loads(f.read())
    except (OSError, InvalidArgument):
        return None
    linux = doc.get("linux") if isinstance(doc, dict) else None
    if not isinstance(linux, dict):
        return None
    uids, gids = linux.get("uidMappings"), linux.get("gidMappings")
    if not (isinstance(uids, list) and uids and isinstance(gids, list) and gids):
        return None
    try:
        return Remap(
            user="",
            uid_start=int(uids[0]["hostID"]),
            uid_count=int(uids[0]["size"]),
            gid_start=int(gids[0]["hostID"]),
            gid_count=int(gids[0]["size"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def mount_snapshot(mounts: list[Mount], target: str, remap: Remap | None, scratch: str) -> None:
    """Mount a container's snapshot on ``target``: as it is, or shifted by ``remap`` (``mount_rootfs``)."""
    from pallet.image import snapshots

    if remap is None:
        snapshots.mount(mounts, target)
    else:
        mount_rootfs(mounts, target, remap, scratch)


def mount_rootfs(mounts: Sequence[Mount], target: str, remap: Remap, scratch: str) -> None:
    """Mount a snapshot's ``mounts`` on ``target`` with every owner shifted by ``remap``.

    Each directory the mount names (overlay's lower dirs and the directory
    holding ``upper`` and ``work``; a bind's source) gets an idmapped copy under
    ``scratch``; overlay is mounted over those by a process whose fs ids are the
    container's root, so its own work (work dir, copy-up) maps back to the
    disk's ids. The copies are detached once the overlay holds them (overlayfs
    keeps private clones of its layers). ``scratch`` is removed afterwards.
    """
    from pallet.image import snapshots
    from pallet.linux import idmap

    release_scratch(scratch)  # what a process killed in here before left
    if os.environ.get("PALLET_ROOTLESS") == "1":
        # a user may not make idmapped mounts of their home's file system: FUSE shifts instead
        _mount_fuse_overlay(mounts, target, remap)
        return
    ns = idmap.user_namespace_fd(remap.uid_map, remap.gid_map)
    attached: dict[str, str] = {}
    try:
        for m in mounts:
            if m.type == "bind":
                idmap.idmapped_clone(m.source, target, ns)
                continue
            if m.type != "overlay":
                raise Unsupported(f"--userns=remap: cannot shift a {m.type} mount")
            options = []
            for option in m.options:
                key, _, value = option.partition("=")
                if key == "lowerdir":
                    value = ":".join(_attach(d, scratch, ns, attached) for d in value.split(":"))
                elif key in ("upperdir", "workdir"):
                    value = os.path.join(
                        _attach(os.path.dirname(value), scratch, ns, attached), os.path.basename(value)
                    )
                options.append(f"{key}={value}" if value else key)
            idmap.mount_as(
                (remap.uid_start, remap.gid_start), "overlay", target, "overlay", ",".join(options)
            )
    except SystemError_ as e:
        raise Unsupported(
            f"--userns=remap needs idmapped mounts and overlayfs over idmapped layers (Linux 5.19 or "
            f"later): {e.message}; run the container with --userns=host"
        ) from None
    finally:
        os.close(ns)
        for point in reversed(attached.values()):
            snapshots.unmount(point)
        release_scratch(scratch)


def _mount_fuse_overlay(mounts: Sequence[Mount], target: str, remap: Remap) -> None:
    """fuse-overlayfs with its uid/gid mapping: the disk's ids shown shifted by ``remap``,
    the container's writes stored unshifted; ``allow_other``, for the container's ids."""
    import subprocess

    from pallet.engine.runtimes import find_executable

    program = find_executable("fuse-overlayfs")
    if program is None:
        raise Unavailable("rootless --userns=remap needs fuse-overlayfs: apt-get install fuse-overlayfs")
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        raise Unavailable(
            "rootless --userns=remap needs /dev/fuse open to users (mode 0666, as udev sets it): "
            "chmod 0666 /dev/fuse"
        )
    for m in mounts:
        kept = [o for o in m.options if o.partition("=")[0] in ("lowerdir", "upperdir", "workdir")]
        if m.type != "overlay" or not any(o.startswith("lowerdir=") for o in kept):
            raise Unsupported(f"rootless --userns=remap: cannot shift a {m.type} mount without layers")
        options = [
            *kept,
            f"uidmapping=0:{remap.uid_start}:{remap.uid_count}",
            f"gidmapping=0:{remap.gid_start}:{remap.gid_count}",
            "allow_other",
        ]
        done = subprocess.run(
            [program, "-o", ",".join(options), target],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise Unavailable(f"fuse-overlayfs failed: {done.stderr.strip() or done.returncode}")


def release_scratch(scratch: str) -> None:
    """Detach whatever is still attached under ``scratch`` and remove it; idempotent."""
    from pallet.image import snapshots

    try:
        names = os.listdir(scratch)
    except FileNotFoundError:
        return
    for name in names:  # empty mount points once detached
        point = os.path.join(scratch, name)
        snapshots.unmount(point)
        try:
            os.rmdir(point)
        except FileNotFoundError:
            continue
    os.rmdir(scratch)


def _attach(directory: str, scratch: str, ns: int, attached: dict[str, str]) -> str:
    """An idmapped copy of ``directory`` under ``scratch``, one per directory (overlay wants its
    upper and work dirs on one mount)."""
    from pallet.linux import idmap

    point = attached.get(directory)
    if point is None:
        point = os.path.join(scratch, str(len(attached)))
        os.makedirs(point)
        idmap.idmapped_clone(directory, point, ns)
        attached[directory] = point
    return point


def let_root_traverse(root: str, container_dir: str, remap: Remap) -> None:
    """Let the container's root reach its rootfs and files in ``container_dir`` (0710).

    The container dir's group becomes the range's first gid, and the engine's
    root and its ``containers`` dir become traversable by anyone (0711), as
    docker does for a remapped root. A directory above the root that the
    range's ids cannot pass is a ``FailedPrecondition`` naming it.
    """
    os.chown(container_dir, 0, remap.gid_start)
    for path in (root, os.path.dirname(container_dir)):
        mode = os.stat(path).st_mode
        if not mode & 0o001:
            os.chmod(path, (mode & 0o7777) | 0o011)
    path = os.path.dirname(os.path.abspath(root))
    while True:
        st = os.stat(path)
        passable = st.st_mode & 0o001 or (
            st.st_mode & 0o010 and remap.gid_start <= st.st_gid < remap.gid_start + remap.gid_count
        )
        if not passable:
            raise FailedPrecondition(
                f"--userns=remap: the container's root (host uid {remap.uid_start}) cannot pass through "
                f"{path} (mode {st.st_mode & 0o7777:04o}) to reach {root}; chmod o+x {path} or use a "
                "root below a directory others may enter"
            )
        if path == "/":
            return
        path = os.path.dirname(path)


class unshifted_view:  # noqa: N801 - used as a function: ``with unshifted_view(...) as path:``
    """A read-only view of a snapshot at ``point`` with the owners it has on disk, for the block.

    A remapped container's rootfs shows every owner shifted; ``export`` and
    ``cp`` out of it want the container's own ids. An overlay of the upper
    dir over the layers, read-only (no upper: nothing is written, and an
    upper in use by the container's own overlay is only read); a bind mount
    read-only. A class, not ``contextlib``: that import costs the run path.
    """

    __slots__ = ("_mounts", "_point")

    def __init__(self, mounts: Sequence[Mount], point: str) -> None:
        self._mounts = mounts
        self._point = point

    def __enter__(self) -> str:
        from pallet.image import snapshots
        from pallet.image.snapshots import Mount as SnapshotMount

        views = []
        for m in self._mounts:
            if m.type == "overlay":
                options = dict(o.partition("=")[::2] for o in m.options)
                lowers = (
                    [options["upperdir"], *options["lowerdir"].split(":")]
                    if "upperdir" in options
                    else [options["lowerdir"]]
                )
                views.append(
                    SnapshotMount(
                        type="overlay", source="overlay", options=("ro", f"lowerdir={':'.join(lowers)}")
                    )
                )
            else:
                views.append(m.replace(options=(*(o for o in m.options if o != "rw"), "ro")))
        os.makedirs(self._point, exist_ok=True)
        snapshots.unmount(self._point)  # what a killed command left
        snapshots.mount(views, self._point)
        return self._point

    def __exit__(self, *exc: object) -> None:
        from pallet.image import snapshots

        snapshots.unmount(self._point)
        os.rmdir(self._point)


class as_remapped_root:  # noqa: N801 - used as a function: ``with as_remapped_root(...) as owner:``
    """For the block, this thread writes into the container of ``bundle`` as its root does.

    Not remapped: nothing changes, and ``owner`` is given back as it is.
    Remapped: the thread's fs ids become the range's first ids (files made
    through the shifted rootfs then land with the container's ids on disk)
    and ``owner``, the container ids a copy gets, comes back as host ids.
    ``cp -a`` (keep each file's ids) into a remapped container is refused.
    """

    __slots__ = ("_bundle", "_ids", "_owner")

    def __init__(self, bundle: str, owner: tuple[int, int] | None) -> None:
        self._bundle = bundle
        self._owner = owner
        self._ids: object = None

    def __enter__(self) -> tuple[int, int] | None:
        remap = remap_of_bundle(self._bundle)
        if remap is None:
            return self._owner
        if self._owner is None:
            raise Unsupported("cp -a into a --userns=remap container is not supported: copy without -a")
        from pallet.linux.idmap import fs_ids

        ids = fs_ids(remap.uid_start, remap.gid_start)
        ids.__enter__()
        self._ids = ids
        uid, gid = self._owner
        return remap.uid_start + uid, remap.gid_start + gid

    def __exit__(self, *exc: object) -> None:
        from pallet.linux.idmap import fs_ids

        if isinstance(self._ids, fs_ids):
            self._ids.__exit__(*exc)


def give_volume_to_root(path: str, remap: Remap) -> None:
    """A volume's ``_data`` still owned by host root becomes the container root's (see the module doc)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if st.st_uid == 0 and st.st_gid == 0:
        os.lchown(path, remap.uid_start, remap.gid_start)
