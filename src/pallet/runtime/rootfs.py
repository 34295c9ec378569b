"""The container's filesystem view: mounts, /dev, pivot_root, masked and read-only paths.

Runs in the container init (C2), inside its new mount namespace, through the
``Syscalls`` seam so the plan is unit-tested with the recording fake. The order
is runc's: ``prepare`` (propagation, bind the rootfs onto itself, config
mounts in order, devices, /dev links) before the createContainer hooks, then
``pivot`` (or MS_MOVE + chroot with ``--no-pivot``), then ``finish``
(read-only paths, masked paths, read-only root) after sysctl and hostname.
Mount targets are resolved inside the rootfs: a symlink in the image cannot
point a mount outside it.
"""

from __future__ import annotations

import os
import stat
from errno import ELOOP, EPERM

from pallet.errors import InvalidArgument, PalletError, SystemError_
from pallet.linux import flags as f
from pallet.runtime.mountopts import PROPAGATION_OPTIONS, parse_options

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.linux.syscalls import Syscalls
    from pallet.oci.runtime_spec import Device, Mount, Spec

#: the devices every container gets (path, major, minor); runc's list
DEFAULT_DEVICES: tuple[tuple[str, int, int], ...] = (
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
)

DEV_SYMLINKS: tuple[tuple[str, str], ...] = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
)

_MAX_LINKS = 255


def secure_join(root: str, path: str) -> str:
    """``root``/``path`` with every symlink resolved as if ``root`` were ``/`` (never outside it)."""
    parts = [p for p in path.split("/") if p]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root + "/" + "/".join([*resolved, part])
        try:
            target = os.readlink(candidate)
        except OSError:
            resolved.append(part)
            continue
        links += 1
        if links > _MAX_LINKS:
            raise SystemError_(f"resolve {path} in {root}", ELOOP)
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p] + parts
    return root.rstrip("/") + "/" + "/".join(resolved)


def _mount_point_of(path: str, mountinfo: str) -> tuple[str, bool] | None:
    """The mount point holding ``path`` and whether it is shared, from ``mountinfo``."""
    best: tuple[str, bool] | None = None
    try:
        with open(mountinfo) as info:
            for line in info:
                fields = line.split(" - ", 1)[0].split()
                point = fields[4].replace("\\040", " ")
                inside = path == point or path.startswith(point.rstrip("/") + "/")
                if inside and (best is None or len(point) >= len(best[0])):
                    best = (point, any(o.startswith("shared:") for o in fields[6:]))
    except OSError:
        return None
    return best


def _make_target(target: str, as_dir: bool) -> None:
    if as_dir:
        os.makedirs(target, exist_ok=True)
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if not os.path.lexists(target):
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


def _source_is_dir(source: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(source).st_mode)
    except OSError:
        return True


class RootfsBuilder:
    """Builds one container's rootfs; holds what the steps share."""

    def __init__(
        self,
        sys: Syscalls,
        spec: Spec,
        rootfs: str,
        bundle: str,
        *,
        in_user_namespace: bool = False,
        cgroup_dirs: dict[str, str] | None = None,
        cgroup_mounts: dict[str, str] | None = None,
        host_mount_namespace: bool = False,
    ) -> None:
        self.sys = sys
        #: no mount namespace in the spec: the mounts are made in the runtime's own namespace
        #: (as runc does; they outlive the container) and the root is entered with chroot
        self.host_mount_namespace = host_mount_namespace
        self.spec = spec
        self.rootfs = rootfs.rstrip("/") or "/"
        self.bundle = bundle
        self.in_user_namespace = in_user_namespace
        # hierarchy -> the container's cgroup directory on the host / the hierarchy's mount point
        self.cgroup_dirs = cgroup_dirs or {}
        self.cgroup_mounts = cgroup_mounts or {}
        # read after the propagation change above, so "shared" reflects this mount namespace
        self.mountinfo = "/proc/self/mountinfo"
        # linux.rootfsPropagation as flags (0: not given), set again on "/" after the pivot
        self.propagation = 0

    # -- before the createContainer hooks -------------------------------------------------

    def prepare(self) -> None:
        linux = self.spec.linux
        propagation_name = (linux.rootfs_propagation if linux else "") or "rslave"
        propagation = PROPAGATION_OPTIONS.get(propagation_name)
        if propagation is None:
            raise InvalidArgument(f'linux.rootfsPropagation: unknown propagation "{propagation_name}"')
        if not self.host_mount_namespace:
            # stop our mounts from reaching the host before making any
            self.sys.mount("", "/", "", propagation | f.MS_REC, "")
            self.propagation = propagation if linux and linux.rootfs_propagation else 0
            # pivot_root refuses a shared parent: make the mount holding the rootfs private before
            # binding the rootfs onto itself (the bind would join a shared peer group, and every
            # mount made under it would reach the host). That mount is the rootfs itself when it
            # is a mount point (containerd's overlay), else the one holding it: runc's choice too
            parent = _mount_point_of(self.rootfs, self.mountinfo)
            # (an unbindable parent, from rootfsPropagation "unbindable", would refuse the bind too;
            # the propagation asked for is applied again to the new root after the pivot)
            if parent is not None and (parent[1] or propagation & f.MS_UNBINDABLE):
                self.sys.mount("", parent[0], "", f.MS_PRIVATE, "")
        self.sys.mount(self.rootfs, self.rootfs, "", f.MS_BIND | f.MS_REC, "")
        dev_is_tmpfs = dev_is_bind = False
        for mount in self.spec.mounts:
            self.mount(mount)
            if mount.destination.rstrip("/") == "/dev":
                is_bind = mount.type == "bind" or "bind" in mount.options or "rbind" in mount.options
                dev_is_tmpfs, dev_is_bind = not is_bind, is_bind
        if dev_is_tmpfs:
            self.create_default_devices()
        # a /dev bound from the host is the host's: making nodes there would replace the host's own
        # (unlink, mknod, chown), so runc makes none then (needsSetupDev); neither do we
        if not dev_is_bind:
            self.create_devices(linux.devices if linux else ())
        if dev_is_tmpfs:
            self.create_dev_symlinks()

    def mount(self, mount: Mount) -> None:
        """One entry of ``mounts``, in the rootfs."""
        target = secure_join(self.rootfs, mount.destination)
        options = parse_options(mount.options)
        if mount.type == "cgroup" and not options.is_bind:
            self._mount_cgroup_v1(target, options.flags)
            return
        if options.is_bind or mount.type == "bind":
            source = mount.source or ""
            if not source.startswith("/"):
                source = os.path.join(self.bundle, source)
            _make_target(target, _source_is_dir(source))
            bind_flags = options.flags | f.MS_BIND
            self.sys.mount(source, target, "", bind_flags & (f.MS_BIND | f.MS_REC), "")
            extra = bind_flags & ~(f.MS_BIND | f.MS_REC | f.MS_REMOUNT)
            if extra:
                # bind ignores the other flags: apply them with a remount of the bind
                self.sys.mount("", target, "", bind_flags | f.MS_REMOUNT, "")
        else:
            _make_target(target, True)
            try:
                self.sys.mount(
                    mount.source or mount.type or "none",
                    target,
                    mount.type or "",
                    options.flags,
                    options.data,
                )
            except SystemError_ as e:
                if mount.type != "sysfs" or e.errno != EPERM:
                    raise
                # a user namespace that does not own the network namespace (one an engine made)
                # may not mount sysfs: the host's /sys, read-only, as runc does then
                from pallet.oci.runtime_spec import Mount as SpecMount

                sysfs = ("rbind", "nosuid", "noexec", "nodev", "ro")
                self.mount(
                    SpecMount(type="bind", source="/sys", destination=mount.destination, options=sysfs)
                )
                return
        for propagation in options.propagation:
            self.sys.mount("", target, "", propagation, "")

    def _mount_cgroup_v1(self, target: str, flags: int) -> None:
        if set(self.cgroup_dirs) == {""}:
            # v2: the container's own cgroup directory, as runc binds it without a cgroup namespace
            _make_target(target, True)
            self.sys.mount(self.cgroup_dirs[""], target, "", f.MS_BIND | f.MS_REC, "")
            self.sys.mount("", target, "", f.MS_BIND | f.MS_REMOUNT | flags, "")
            return
        # runc's layout on v1: a tmpfs holding one bind of the container's cgroup per hierarchy
        _make_target(target, True)
        base = flags & (f.MS_NOSUID | f.MS_NODEV | f.MS_NOEXEC)
        self.sys.mount("tmpfs", target, "tmpfs", base, "mode=755")
        for hierarchy, mount_point in sorted(self.cgroup_mounts.items()):
            source = self.cgroup_dirs.get(hierarchy, mount_point)
            sub = os.path.join(target, os.path.basename(mount_point))
            _make_target(sub, True)
            self.sys.mount(source, sub, "", f.MS_BIND | f.MS_REC, "")
            self.sys.mount("", sub, "", f.MS_BIND | f.MS_REMOUNT | base | (flags & f.MS_RDONLY), "")
        if flags & f.MS_RDONLY:
            self.sys.mount("tmpfs", target, "", f.MS_REMOUNT | f.MS_RDONLY | base, "mode=755")

    def create_default_devices(self) -> None:
        for path, major, minor in DEFAULT_DEVICES:
            self._device(path, stat.S_IFCHR | 0o666, major, minor, 0, 0)

    def create_devices(self, devices: tuple[Device, ...]) -> None:
        kinds = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
        for device in devices:
            kind = kinds.get(device.type)
            if kind is None:
                raise InvalidArgument(f'linux.devices: {device.path}: unknown device type "{device.type}"')
            mode = device.file_mode if device.file_mode is not None else 0o666
            self._device(
                device.path,
                kind | (mode & 0o7777),
                device.major or 0,
                device.minor or 0,
                device.uid or 0,
                device.gid or 0,
            )

    def _device(self, path: str, mode: int, major: int, minor: int, uid: int, gid: int) -> None:  # noqa: PLR0917
        target = secure_join(self.rootfs, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if self.in_user_namespace:
            # mknod is refused in a user namespace: bind the host's node instead, as runc does
            _make_target(target, False)
            self.sys.mount(path, target, "", f.MS_BIND, "")
            return
        if os.path.lexists(target):
            os.unlink(target)
        self.sys.mknod(target, mode, os.makedev(major, minor))
        # mknod applies the umask: set the mode the config asked for
        os.chmod(target, mode & 0o7777)
        os.chown(target, uid, gid)

    def create_dev_symlinks(self) -> None:
        for source, link in DEV_SYMLINKS:
            target = self.rootfs + link
            if os.path.lexists(target):
                if link != "/dev/ptmx":
                    continue
                os.unlink(target)
            os.symlink(source, target)
        if os.path.exists("/proc/kcore"):
            core = self.rootfs + "/dev/core"
            if not os.path.lexists(core):
                os.symlink("/proc/kcore", core)

    # -- the switch ------------------------------------------------------------------------

    def pivot(self, no_pivot: bool) -> None:
        """Make the rootfs ``/``: pivot_root, or MS_MOVE + chroot with ``--no-pivot``."""
        os.chdir(self.rootfs)
        if self.host_mount_namespace:
            # pivot_root here would move the root of every process in the host's namespace
            os.chroot(".")
        elif no_pivot:
            self.sys.mount(self.rootfs, "/", "", f.MS_MOVE, "")
            os.chroot(".")
        else:
            self.sys.pivot_root(".", ".")
            # the old root is now stacked under ".": detach it without touching the host's mounts
            self.sys.mount("", ".", "", f.MS_SLAVE | f.MS_REC, "")
            self.sys.umount2(".", f.MNT_DETACH)
        os.chdir("/")
        if self.propagation:
            # applied to the new "/" itself: before the pivot it would have reached the host's mount
            self.sys.mount("", "/", "", self.propagation, "")

    # -- after sysctl and hostname ---------------------------------------------------------

    def finish(self, root: str = "/") -> None:
        """Read-only paths, masked paths, then the read-only root (paths are inside ``root``)."""
        linux = self.spec.linux
        if linux:
            for path in linux.readonly_paths:
                self.readonly_path(root.rstrip("/") + path)
            for path in linux.masked_paths:
                self.mask_path(root.rstrip("/") + path)
        if self.spec.root is not None and self.spec.root.readonly:
            self.sys.mount("", root, "", f.MS_BIND | f.MS_REMOUNT | f.MS_RDONLY | self._kept_flags(root), "")

    def readonly_path(self, path: str) -> None:
        if not os.path.exists(path):
            return
        self.sys.mount(path, path, "", f.MS_BIND | f.MS_REC, "")
        self.sys.mount(
            path, path, "", f.MS_BIND | f.MS_REMOUNT | f.MS_RDONLY | f.MS_REC | self._kept_flags(path), ""
        )

    def mask_path(self, path: str) -> None:
        if not os.path.exists(path):
            return
        if os.path.isdir(path):
            self.sys.mount("tmpfs", path, "tmpfs", f.MS_RDONLY, "")
        else:
            self.sys.mount("/dev/null", path, "", f.MS_BIND, "")

    @staticmethod
    def _kept_flags(path: str) -> int:
        # a remount must repeat the nosuid/nodev/noexec it has (locked in user namespaces)
        try:
            st_flags = os.statvfs(path).f_flag
        except OSError:
            return 0
        return st_flags & (f.MS_NOSUID | f.MS_NODEV | f.MS_NOEXEC)


def unmount_tree(root: str, sys: Syscalls, mountinfo: str = "/proc/self/mountinfo") -> None:
    """Detach every mount at or below ``root`` in the caller's namespace, deepest first.

    For a container made without a mount namespace: its mounts were made in
    the runtime's own and stay after the container is gone.
    """
    root = root.rstrip("/") or "/"
    points = []
    with open(mountinfo) as info:
        for line in info:
            point = line.split(" - ", 1)[0].split()[4].replace("\\040", " ")
            if point == root or point.startswith(root + "/"):
                points.append(point)
    for point in sorted(points, key=len, reverse=True):
        try:
            sys.umount2(point, f.MNT_DETACH)
        except PalletError:
            continue  # already gone with its parent
