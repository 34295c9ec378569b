"""The OCI config of a container: the image config and the user's options, merged as docker merges them.

``build_spec`` is the whole job; the steps are small functions so each of
docker's rules can be read (and tested) on its own:

- ``merge_config``: Entrypoint/Cmd (a user entrypoint drops the image's Cmd),
  Env (user entries first, image entries not overridden after them; then
  docker's PATH/HOSTNAME/TERM defaults under them), WorkingDir (default
  ``/``), User, hostname (first 12 characters of the id), StopSignal, labels;
- ``resolve_user``: ``name``, ``uid``, ``name:group``, ``uid:gid`` against the
  rootfs's /etc/passwd and /etc/group, with docker's errors;
- ``capabilities``: docker's 14 defaults, ``--cap-add/--cap-drop`` with ALL,
  ``--privileged``; a non-root user gets only the bounding set (what execve
  would leave it);
- mounts, namespaces, resources, devices, sysctls, rlimits, seccomp,
  masked/read-only paths, ``--init``, the network namespace.

Facts about the host (architecture, kernel, cgroup version, ...) come in as
a ``HostFacts``; ``host_facts()`` reads this machine's. The only I/O here is
reading the rootfs's passwd/group files (resolved inside the rootfs), the
host device nodes of ``--device``/``--privileged`` and a seccomp profile file.
"""

from __future__ import annotations

import os
import stat
import types

from pallet.engine.spec import defaults
from pallet.engine.spec.options import RunOptions, parse_capability, parse_signal, security_opts, validate
from pallet.errors import InvalidArgument, SystemError_
from pallet.oci.record import EMPTY, Record
from pallet.oci.runtime_spec import (
    ALL_CAPABILITIES,
    Capabilities,
    Cpu,
    Device,
    DeviceRule,
    Linux,
    Memory,
    Mount,
    Namespace,
    Pids,
    Process,
    Resources,
    Rlimit,
    Root,
    Seccomp,
    Spec,
    User,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from pallet.engine.spec.mounts import ResolvedMount
    from pallet.oci.image_spec import ContainerConfig

__all__ = [
    "ContainerSettings",
    "HostFacts",
    "build_spec",
    "capabilities",
    "host_facts",
    "merge_config",
    "resolve_user",
]

#: the runtime-spec version written: crun 1.8 refuses 1.2.x, and nothing here needs more than 1.0.2
SPEC_VERSION = "1.0.2"
_MAX_ID = 2**31 - 1
_CPU_PERIOD = 100_000
#: device nodes every runtime makes itself: never listed again for --privileged
_RUNTIME_DEVICES = frozenset(
    (
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
        "/dev/console",
        "/dev/ptmx",
    )
)
#: /dev entries --privileged does not copy (runc's HostDevices skips them too)
_SKIPPED_DEV_DIRS = frozenset(("pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"))
#: default mounts --read-only leaves writable (docker)
_WRITABLE_WITH_READ_ONLY = frozenset(("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue"))
#: sysctls docker sets in a private network namespace (ping and low ports for non-root users)
_PRIVATE_NET_SYSCTLS = (
    ("net.ipv4.ip_unprivileged_port_start", "0"),
    ("net.ipv4.ping_group_range", "0 2147483647"),
)


class HostFacts(Record):
    """What the spec depends on about the host; ``host_facts()`` reads this machine's."""

    arch: str
    kernel: tuple[int, int]
    #: every capability the running kernel knows (``--privileged`` and ``--cap-add ALL`` get these)
    capabilities: tuple[str, ...]
    cgroup_v2: bool
    swap_accounting: bool
    cpus: int
    hostname: str
    #: the static init binary for ``--init`` (None: not installed)
    init_path: str | None = None


_facts: HostFacts | None = None


def host_facts() -> HostFacts:
    """This machine's facts (read once per process)."""
    global _facts  # noqa: PLW0603 - a per-process cache of facts that do not change while it runs
    if _facts is None:
        from pallet.engine.spec.seccomp import go_arch, kernel_version

        bounding = _own_bounding_set()
        v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
        swap = v2 or os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
        init = next((p for p in defaults.INIT_SOURCES if os.access(p, os.X_OK)), None)
        _facts = HostFacts(
            arch=go_arch(),
            kernel=kernel_version(),
            capabilities=tuple(name for name, number in ALL_CAPABILITIES.items() if bounding >> number & 1),
            cgroup_v2=v2,
            swap_accounting=swap,
            cpus=os.cpu_count() or 1,
            hostname=os.uname().nodename,
            init_path=init,
        )
    return _facts


def _own_bounding_set() -> int:
    """This process's capability bounding set: "every capability" cannot be more than the engine has
    (a root without CAP_SYS_RESOURCE, as in some VMs, would make the runtime's capset fail)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return (1 << (max(ALL_CAPABILITIES.values()) + 1)) - 1


# ---------------------------------------------------------------------------
# image config + options


class ContainerSettings(Record):
    """The merged process settings of a container (what inspect's ``Config`` shows)."""

    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    args: tuple[str, ...]
    env: tuple[str, ...]
    workdir: str
    user: str
    hostname: str
    stop_signal: str
    stop_timeout: int
    labels: Mapping[str, str] = EMPTY


def _env_key(entry: str) -> str:
    return entry.partition("=")[0]


def _replace_or_append(base: list[str], overrides: Iterable[str]) -> list[str]:
    """Docker's ReplaceOrAppendEnvValues: an override replaces the entry with its name, in place."""
    out = list(base)
    for entry in overrides:
        key = _env_key(entry)
        for i, current in enumerate(out):
            if _env_key(current) == key:
                out[i] = entry
                break
        else:
            out.append(entry)
    return out


def merge_config(
    image: ContainerConfig | None, options: RunOptions, *, container_id: str, host_hostname: str = ""
) -> ContainerSettings:
    """The image's config and the user's options merged as docker merges them."""
    if options.entrypoint is not None:
        # any --entrypoint (even "") replaces the image's and drops its Cmd (docker's documented rule)
        entrypoint = () if options.entrypoint == ("",) else options.entrypoint
        cmd = options.cmd or ()
    else:
        entrypoint = (image.entrypoint if image else None) or ()
        cmd = options.cmd or ((image.cmd if image else None) or ())
    args = (*entrypoint, *cmd)
    if not args:
        raise InvalidArgument(
            "no command specified: the image has no Entrypoint or Cmd; give a command after the image name"
        )
    user_env = list(options.env)
    image_env = list((image.env if image else None) or ())
    if user_env:
        keys = {_env_key(e) for e in user_env}
        user_env += [e for e in image_env if _env_key(e) not in keys]
    else:
        user_env = image_env
    if options.hostname:
        hostname = options.hostname
    elif options.network == "host" and host_hostname:
        hostname = host_hostname
    else:
        hostname = container_id[:12]
    base = [f"PATH={defaults.DEFAULT_PATH}", f"HOSTNAME={hostname}"]
    if options.tty:
        base.append("TERM=xterm")
    env = tuple(_replace_or_append(base, user_env))
    workdir = options.workdir or ((image.working_dir if image else None) or "/")
    if not workdir.startswith("/"):
        workdir = "/" + workdir
    workdir = os.path.normpath(workdir)
    signal = options.stop_signal or ((image.stop_signal if image else None) or defaults.DEFAULT_STOP_SIGNAL)
    signal = parse_signal(signal, flag="--stop-signal" if options.stop_signal else "")
    timeout = options.stop_timeout
    if timeout is None:
        timeout = (image.stop_timeout if image else None) or defaults.DEFAULT_STOP_TIMEOUT
    labels = dict((image.labels if image else None) or {})
    labels.update(options.labels)
    return ContainerSettings(
        entrypoint=entrypoint,
        cmd=tuple(cmd),
        args=args,
        env=env,
        workdir=workdir,
        user=options.user or ((image.user if image else None) or ""),
        hostname=hostname,
        stop_signal=signal,
        stop_timeout=timeout,
        labels=types.MappingProxyType(labels),
    )


# ---------------------------------------------------------------------------
# users


def _read_in_root(rootfs: str, path: str) -> str | None:
    """A file of the rootfs, resolved inside it (an image's symlink cannot point at the host's)."""
    from pallet.linux.openat2 import open_in_root

    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = open_in_root(root_fd, path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    finally:
        os.close(root_fd)
    with os.fdopen(fd, "rb") as f:
        return f.read(4 << 20).decode(errors="replace")


def _entries(text: str | None) -> list[list[str]]:
    if not text:
        return []
    return [
        line.split(":") for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _in_range(value: int) -> int:
    if not 0 <= value <= _MAX_ID:
        raise InvalidArgument(f"uids and gids must be in range 0-{_MAX_ID}")
    return value


def resolve_user(rootfs: str, spec: str, group_add: Iterable[str] = ()) -> tuple[int, int, tuple[int, ...]]:
    """``(uid, gid, additional gids)`` for ``-u spec`` from the rootfs's passwd/group files.

    docker's rules: a name must be in /etc/passwd (``unable to find user foo:
    no matching entries in passwd file``); a number need not be; a user found
    by name or number brings its primary group and, without an explicit
    group, the groups listing it as a member; ``:group`` must name a group
    or be a number. ``group_add`` (``--group-add``) adds groups by name or
    number. The primary gid leads the additional gids, so setgroups never
    leaves the runtime's own groups in place.
    """
    user_arg, _, group_arg = spec.partition(":")
    passwd = _entries(_read_in_root(rootfs, "/etc/passwd"))
    uid_arg = _number(user_arg)
    uid = gid = 0
    matched = ""
    for entry in passwd:
        if len(entry) < 4:
            continue
        name, entry_uid, entry_gid = entry[0], _number(entry[2]), _number(entry[3])
        if entry_uid is None or entry_gid is None:
            continue
        if not user_arg:
            hit = entry_uid == 0  # no -u: root, with its groups
        elif uid_arg is not None:
            hit = entry_uid == uid_arg
        else:
            hit = name == user_arg
        if hit:
            matched, uid, gid = name, entry_uid, entry_gid
            break
    else:
        if user_arg:
            if uid_arg is None:
                raise InvalidArgument(f"unable to find user {user_arg}: no matching entries in passwd file")
            uid = _in_range(uid_arg)
    groups = _entries(_read_in_root(rootfs, "/etc/group")) if (group_arg or matched or group_add) else []
    extra: list[int] = []
    if group_arg:
        gid_arg = _number(group_arg)
        for entry in groups:
            if len(entry) >= 3 and (entry[2] == group_arg if gid_arg is not None else entry[0] == group_arg):
                found = _number(entry[2])
                if found is not None:
                    gid = found
                    break
        else:
            if gid_arg is None:
                raise InvalidArgument(f"unable to find group {group_arg}: no matching entries in group file")
            gid = _in_range(gid_arg)
    elif matched:
        for entry in groups:
            if len(entry) >= 4 and matched in entry[3].split(","):
                found = _number(entry[2])
                if found is not None:
                    extra.append(found)
    for item in group_add:
        number = _number(item)
        if number is None:
            found_gid = next((_number(e[2]) for e in groups if len(e) >= 3 and e[0] == item), None)
            if found_gid is None:
                raise InvalidArgument(f"unable to find group {item}: no matching entries in group file")
            number = found_gid
        extra.append(_in_range(number))
    additional = [gid]
    for g in extra:
        if g not in additional:
            additional.append(g)
    return uid, gid, tuple(additional)


# ---------------------------------------------------------------------------
# capabilities


def capabilities(
    cap_add: Iterable[str], cap_drop: Iterable[str], *, privileged: bool, all_caps: Iterable[str]
) -> tuple[str, ...]:
    """The container's capability set: docker's TweakCapabilities.

    ``--privileged`` or ``--cap-add ALL`` start from every capability
    (``all_caps``) and ``--cap-drop ALL`` from none; otherwise from docker's
    14 defaults. Then drops, then adds (an added capability wins over the
    same dropped one, as in docker).
    """
    everything = tuple(all_caps)
    add = [c for c in cap_add]
    drop = [c for c in cap_drop]
    if privileged:
        return everything
    if "ALL" in add:
        base = list(everything)
    elif "ALL" in drop:
        base = []
    else:
        base = list(defaults.DEFAULT_CAPABILITIES)
    if "ALL" not in drop or "ALL" in add:
        base = [c for c in base if c not in drop or c in add]
    for cap in add:
        if cap != "ALL" and cap not in base:
            base.append(cap)
    return tuple(base)


# ---------------------------------------------------------------------------
# pieces of the spec


def _seccomp(
    options: RunOptions, security: Mapping[str, str], caps: tuple[str, ...], host: HostFacts
) -> Seccomp | None:
    if options.privileged:
        return None
    choice = security.get("seccomp", "")
    if choice == "unconfined":
        return None
    from pallet.engine.spec import seccomp

    profile = seccomp.load_profile(choice) if choice else seccomp.default_profile()
    return seccomp.resolve(profile, capabilities=caps, arch=host.arch, kernel=host.kernel)


_OPPOSITES = {"exec": "noexec", "suid": "nosuid", "dev": "nodev", "ro": "rw"}
_OPPOSITES.update({v: k for k, v in _OPPOSITES.items()})


def _tmpfs_options(data: str) -> tuple[str, ...]:
    """``--tmpfs`` options over docker's defaults: a later option replaces an earlier one with the
    same key (``size=``) or the opposite flag (``exec`` replaces ``noexec``), as MergeTmpfsOptions."""
    merged = ["noexec", "nosuid", "nodev", "rprivate"]
    for option in filter(None, data.split(",")):
        key = option.partition("=")[0]
        merged = [o for o in merged if o.partition("=")[0] != key and o != _OPPOSITES.get(key)]
        merged.append(option)
    return tuple(merged)


def _mount_depth(mount: Mount) -> int:
    return len([p for p in mount.destination.split("/") if p])


def _mounts(
    options: RunOptions,
    user_mounts: tuple[ResolvedMount, ...],
    hosts_files: Mapping[str, str],
    init_source: str | None,
) -> tuple[Mount, ...]:
    shm = options.shm_size or defaults.DEFAULT_SHM_SIZE
    user: list[Mount] = [
        Mount(destination=m.destination, type=m.type, source=m.source, options=tuple(m.options))
        for m in user_mounts
    ]
    for path, data in options.tmpfs.items():
        user.append(Mount(destination=path, type="tmpfs", source="tmpfs", options=_tmpfs_options(data)))
    destinations = {m.destination for m in user}
    if len(destinations) != len(user):
        seen: set[str] = set()
        for m in user:
            if m.destination in seen:
                raise InvalidArgument(f"Duplicate mount point: {m.destination}")
            seen.add(m.destination)
    user.sort(key=_mount_depth)  # parents before children; stable for equal depth
    mount_dev = "/dev" in destinations
    result: list[Mount] = []
    for mount in defaults.default_mounts(shm_size=shm):
        if mount.destination in destinations:
            continue
        if mount_dev and mount.destination.startswith("/dev/"):
            continue
        opts = mount.options
        if options.privileged and mount.type in ("sysfs", "cgroup"):
            opts = tuple(o for o in opts if o != "ro")
        if options.read_only and mount.destination not in _WRITABLE_WITH_READ_ONLY and "ro" not in opts:
            opts = (*opts, "ro")
        result.append(mount.replace(options=opts))
    result.extend(user)
    for destination, source in sorted(hosts_files.items()):
        if destination not in destinations:
            opts = ("rbind", "rprivate", "ro") if options.read_only else ("rbind", "rprivate")
            result.append(Mount(destination=destination, type="bind", source=source, options=opts))
    if options.init:
        if init_source is None:
            raise InvalidArgument(
                "--init needs a static init binary on the host (install Debian's tini package: "
                f"it provides {defaults.INIT_SOURCES[0]})"
            )
        result.append(
            Mount(destination=defaults.INIT_PATH, type="bind", source=init_source, options=("bind", "ro"))
        )
    return tuple(result)


def _rootfs_propagation(user_mounts: tuple[ResolvedMount, ...]) -> str:
    propagation = ""
    for mount in user_mounts:
        opts = set(mount.options)
        if opts & {"shared", "rshared"}:
            return "shared"
        if opts & {"slave", "rslave"}:
            propagation = "rslave"
    return propagation


def _device_from_path(source: str, target: str) -> Device:
    try:
        st = os.stat(source)
    except OSError as e:
        raise SystemError_(
            f'error gathering device information while adding custom device "{source}"', e.errno or 0
        ) from None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        raise InvalidArgument(
            f'error gathering device information while adding custom device "{source}": not a device node'
        )
    return Device(
        type=kind,
        path=target,
        major=os.major(st.st_rdev),
        minor=os.minor(st.st_rdev),
        file_mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
    )


def _user_devices(options: RunOptions) -> tuple[list[Device], list[DeviceRule]]:
    devices: list[Device] = []
    rules: list[DeviceRule] = []
    for mapping in options.devices:
        source, target = mapping.path_on_host, mapping.path_in_container
        found: list[tuple[str, str]] = []
        if os.path.isdir(source):
            # a directory maps every device node below it, as docker does
            for dirpath, _, files in os.walk(source):
                for name in sorted(files):
                    path = os.path.join(dirpath, name)
                    mode = os.lstat(path).st_mode
                    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                        found.append((path, os.path.join(target, os.path.relpath(path, source))))
        else:
            found.append((source, target))
        for host_path, container_path in found:
            device = _device_from_path(host_path, container_path)
            devices.append(device)
            rules.append(
                DeviceRule(
                    allow=True,
                    type=device.type,
                    major=device.major,
                    minor=device.minor,
                    access=mapping.permissions,
                )
            )
    return devices, rules


def _host_devices(dev: str = "/dev") -> list[Device]:
    """Every device node of the host's /dev (``--privileged``), but those the runtime makes itself."""
    devices: list[Device] = []
    for dirpath, dirnames, files in os.walk(dev):
        if dirpath == dev:
            dirnames[:] = [d for d in dirnames if d not in _SKIPPED_DEV_DIRS]
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            if path in _RUNTIME_DEVICES:
                continue
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue  # gone while we looked
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                devices.append(_device_from_path(path, path))
    return devices


def _resources(options: RunOptions, host: HostFacts, device_rules: list[DeviceRule]) -> Resources:
    memory = None
    if options.memory or options.memory_reservation:
        swap = options.memory_swap
        if options.memory and swap in (None, 0):
            swap = options.memory * 2  # docker: as much swap as memory unless told otherwise
        memory = Memory(
            limit=options.memory or None,
            reservation=options.memory_reservation or None,
            swap=swap if host.swap_accounting and options.memory else None,
        )
    cpu = None
    if options.cpus or options.cpu_shares or options.cpuset_cpus or options.cpuset_mems:
        cpu = Cpu(
            shares=options.cpu_shares or None,
            quota=options.cpus * _CPU_PERIOD // 10**9 if options.cpus else None,
            period=_CPU_PERIOD if options.cpus else None,
            cpus=options.cpuset_cpus,
            mems=options.cpuset_mems,
        )
    pids = Pids(limit=options.pids_limit) if options.pids_limit and options.pids_limit > 0 else None
    if options.privileged:
        rules = [DeviceRule(allow=True, access="rwm")]
    else:
        rules = [*defaults.DEFAULT_DEVICE_RULES, *device_rules]
    return Resources(devices=tuple(rules), memory=memory, cpu=cpu, pids=pids)


def _namespaces(options: RunOptions, host: HostFacts) -> tuple[Namespace, ...]:
    kinds = ["mount"]
    if options.network != "host":
        kinds.append("network")
    kinds += ["uts", "pid", "ipc"]
    # docker's default cgroupns mode: private on cgroup v2, host on v1
    if host.cgroup_v2:
        kinds.append("cgroup")
    return tuple(Namespace(type=k) for k in kinds)


# ---------------------------------------------------------------------------
# the whole spec


def build_spec(
    *,
    container_id: str,
    image_config: ContainerConfig | None,
    options: RunOptions,
    rootfs: str,
    mounts: tuple[ResolvedMount, ...] = (),
    cgroup_parent: str = "/pallet",
    hosts_files: Mapping[str, str] = EMPTY,
    host: HostFacts | None = None,
) -> Spec:
    """The config.json of a new container (``root.path`` is ``rootfs`` as given).

    ``mounts`` are the user's mounts already resolved (binds, volumes,
    ``--mount type=tmpfs``); ``--tmpfs`` is handled here. ``hosts_files``
    maps container paths (``/etc/hosts``, ``/etc/resolv.conf``, ...) to host
    files bind-mounted there unless the user mounts the same path.
    """
    host = host or host_facts()
    validate(options, host_cpus=host.cpus)
    security = security_opts(options)
    settings = merge_config(image_config, options, container_id=container_id, host_hostname=host.hostname)
    uid, gid, additional = resolve_user(rootfs, settings.user, options.group_add)
    # "sys_admin" from the Python API reads as CAP_SYS_ADMIN, as the flag does
    cap_add = [parse_capability(c) for c in options.cap_add]
    cap_drop = [parse_capability(c, flag="--cap-drop") for c in options.cap_drop]
    caps = capabilities(cap_add, cap_drop, privileged=options.privileged, all_caps=host.capabilities)
    if uid == 0:
        process_caps = Capabilities(bounding=caps, effective=caps, permitted=caps)
    else:
        # a non-root user keeps only the bounding set: what execve leaves it (moby's SetCapabilities)
        process_caps = Capabilities(bounding=caps)
    no_new_privileges = security.get("no-new-privileges") == "true"
    args = settings.args
    if options.init:
        args = (defaults.INIT_PATH, "--", *args)
    rlimits = tuple(Rlimit(type=_rlimit_type(u.name), soft=u.soft, hard=u.hard) for u in options.ulimits)
    process = Process(
        terminal=options.tty,
        user=User(uid=uid, gid=gid, additional_gids=additional),
        args=args,
        env=settings.env,
        cwd=settings.workdir,
        capabilities=process_caps,
        rlimits=rlimits,
        no_new_privileges=no_new_privileges,
        # explicit, as docker: otherwise the container inherits the engine's (maybe negative) score
        oom_score_adj=0,
    )
    devices, device_rules = _user_devices(options)
    if options.privileged:
        host_devices = _host_devices()
        taken = {d.path for d in host_devices}
        devices = host_devices + [d for d in devices if d.path not in taken]
    system_paths = not options.privileged and security.get("systempaths") != "unconfined"
    sysctl = dict(options.sysctls)
    if options.network != "host":
        for key, value in _PRIVATE_NET_SYSCTLS:
            sysctl.setdefault(key, value)
    linux = Linux(
        namespaces=_namespaces(options, host),
        devices=tuple(devices),
        cgroups_path=f"{cgroup_parent.rstrip('/')}/{container_id}",
        resources=_resources(options, host, device_rules),
        rootfs_propagation=_rootfs_propagation(mounts),
        seccomp=_seccomp(options, security, caps, host),
        sysctl=sysctl,
        masked_paths=defaults.MASKED_PATHS if system_paths else (),
        readonly_paths=defaults.READONLY_PATHS if system_paths else (),
    )
    return Spec(
        oci_version=SPEC_VERSION,
        process=process,
        root=Root(path=rootfs, readonly=options.read_only),
        hostname=settings.hostname,
        domainname=options.domainname,
        mounts=_mounts(options, mounts, hosts_files, host.init_path),
        linux=linux,
    )


def _rlimit_type(name: str) -> str:
    from pallet.engine.spec.options import ULIMIT_NAMES

    try:
        return ULIMIT_NAMES[name]
    except KeyError:
        raise InvalidArgument(f"invalid ulimit type: {name}") from None
