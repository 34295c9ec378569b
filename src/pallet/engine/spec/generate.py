"""The OCI config of a container, built from small spec options composed, as containerd's are.

A spec option (``SpecOption``: ``Spec -> Spec``) makes one decision:
``with_process_args(...)``, ``with_memory_limit(...)``,
``with_capabilities(...)``, ``with_readonly_rootfs()``,
``with_network_namespace(path)``, ``with_hostname(...)``, ...
``new_spec(rootfs, *options)`` applies them in order to ``base_spec``
(docker's defaults: mounts, namespaces, masked paths, device rules), so a
Dockerfile RUN step, ``exec`` or an API request makes a spec from the few
options it needs, without a ``RunOptions``.

``build_spec`` is ``pallet run``'s composition: from the image config and a
``RunOptions`` it picks the options, with docker's rules read each in its own
function:

- ``container_hostname`` and ``merge_config``: Entrypoint/Cmd (a user
  entrypoint drops the image's Cmd), Env (user entries first, image entries
  not overridden after them; then docker's PATH/HOSTNAME/TERM defaults under
  them), WorkingDir (default ``/``), User, hostname (the host's on the host
  network, else the id's first 12 characters), StopSignal, labels;
- ``resolve_user``: ``name``, ``uid``, ``name:group``, ``uid:gid`` against the
  rootfs's /etc/passwd and /etc/group, with docker's errors;
- ``capabilities``: pallet's defaults (docker's less CAP_AUDIT_WRITE), cap-add/cap-drop with ALL,
  privileged; a non-root user gets only the bounding set (what execve
  would leave it);
- ``security_spec_options``, ``resource_spec_options``, ``network_spec_options``,
  ``mount_spec_options``: one group of the options each.

Facts about the host (architecture, kernel, cgroup version, ...) come in as
a ``HostFacts``; ``host_facts()`` reads this machine's. The only I/O here is
reading the rootfs's passwd/group files (resolved inside the rootfs), the
host device nodes of devices and ``privileged`` and a seccomp profile file.
"""

from __future__ import annotations

import os
import stat
import types

from pallet.engine.spec import defaults
from pallet.engine.spec.syntax import ULIMIT_NAMES, parse_signal
from pallet.errors import InvalidArgument, SystemError_
from pallet.oci.record import EMPTY, Record
from pallet.oci.runtime_spec import (
    ALL_CAPABILITIES,
    BlockIO,
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
    Spec,
    User,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from pallet.engine.spec.mounts import ResolvedMount
    from pallet.engine.spec.options import (
        MountOptions,
        NamespaceOptions,
        NetworkOptions,
        ProcessOptions,
        ResourceOptions,
        RunOptions,
        SecurityOptions,
    )
    from pallet.engine.spec.syntax import DeviceMapping
    from pallet.oci.image_spec import ContainerConfig
    from pallet.oci.runtime_spec import Seccomp

    #: a spec option: one decision about the spec, applied to it (containerd's ``SpecOpts``)
    SpecOption = Callable[[Spec], Spec]

__all__ = [
    "ContainerSettings",
    "HostFacts",
    "SpecOption",
    "base_spec",
    "build_spec",
    "capabilities",
    "compose",
    "container_hostname",
    "host_devices",
    "host_facts",
    "merge_config",
    "mount_spec_options",
    "namespace_spec_options",
    "network_spec_options",
    "new_spec",
    "resolve_user",
    "resource_spec_options",
    "security_spec_options",
    "user_devices",
    "with_all_devices_allowed",
    "with_blkio_weight",
    "with_bounding_capabilities",
    "with_capabilities",
    "with_cgroups_path",
    "with_cpu_cfs",
    "with_cpu_shares",
    "with_cpus",
    "with_cpuset",
    "with_cwd",
    "with_devices",
    "with_domainname",
    "with_env",
    "with_host_namespace",
    "with_host_network",
    "with_host_uts",
    "with_hostname",
    "with_hosts_files",
    "with_init",
    "with_masked_paths",
    "with_memory_limit",
    "with_memory_reservation",
    "with_memory_swap",
    "with_memory_swappiness",
    "with_mounts",
    "with_namespace",
    "with_network_namespace",
    "with_no_new_privileges",
    "with_pids_limit",
    "with_process_args",
    "with_readonly_paths",
    "with_readonly_rootfs",
    "with_rlimits",
    "with_rootfs_propagation",
    "with_seccomp",
    "with_shm",
    "with_shm_size",
    "with_sysctls",
    "with_terminal",
    "with_user",
    "with_writable_sysfs",
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
    """Docker's ReplaceOrAppendEnvValues: an override replaces the entry with its name, in place;
    an override without ``=`` removes it (and is not added)."""
    out = list(base)
    for entry in overrides:
        key = _env_key(entry)
        if "=" not in entry:
            out = [e for e in out if _env_key(e) != key]
            continue
        for i, current in enumerate(out):
            if _env_key(current) == key:
                out[i] = entry
                break
        else:
            out.append(entry)
    return out


def container_hostname(network: NetworkOptions, *, container_id: str, host_hostname: str = "") -> str:
    """The hostname asked for; else the host's on the host network; else the id's first 12
    characters (with ``--uts host`` too, as dockerd: HOSTNAME and /etc/hostname say the id while
    the kernel's hostname is the host's)."""
    if network.hostname:
        return network.hostname
    if network.mode.is_host and host_hostname:
        return host_hostname
    return container_id[:12]


def merge_config(
    image: ContainerConfig | None,
    process: ProcessOptions,
    *,
    hostname: str,
    labels: Mapping[str, str] = EMPTY,
    linked_env: Iterable[str] = (),
) -> ContainerSettings:
    """The image's config and the user's process options (and ``labels``) merged as docker merges them;
    ``linked_env`` (the variables of legacy links) goes under the user's and the image's entries."""
    if process.entrypoint is not None:
        # any --entrypoint (even "") replaces the image's and drops its Cmd (docker's documented rule)
        entrypoint = () if process.entrypoint == ("",) else process.entrypoint
        cmd = process.cmd or ()
    else:
        entrypoint = (image.entrypoint if image else None) or ()
        cmd = process.cmd or ((image.cmd if image else None) or ())
    args = (*entrypoint, *cmd)
    if not args:
        raise InvalidArgument(
            "no command specified: the image has no Entrypoint or Cmd; give a command after the image name"
        )
    user_env = list(process.env)
    image_env = list((image.env if image else None) or ())
    if user_env:
        keys = {_env_key(e) for e in user_env}
        user_env += [e for e in image_env if _env_key(e) not in keys]
    else:
        user_env = image_env
    base = [f"PATH={defaults.DEFAULT_PATH}", f"HOSTNAME={hostname}"]
    if process.tty:
        base.append("TERM=xterm")
    base += linked_env
    env = tuple(_replace_or_append(base, user_env))
    workdir = process.workdir or ((image.working_dir if image else None) or "/")
    if not workdir.startswith("/"):
        workdir = "/" + workdir
    workdir = os.path.normpath(workdir)
    signal = parse_signal(
        process.stop_signal or ((image.stop_signal if image else None) or defaults.DEFAULT_STOP_SIGNAL)
    )
    timeout = process.stop_timeout
    if timeout is None:
        timeout = (image.stop_timeout if image else None) or defaults.DEFAULT_STOP_TIMEOUT
    merged_labels = dict((image.labels if image else None) or {})
    merged_labels.update(labels)
    return ContainerSettings(
        entrypoint=entrypoint,
        cmd=tuple(cmd),
        args=args,
        env=env,
        workdir=workdir,
        user=process.user or ((image.user if image else None) or ""),
        hostname=hostname,
        stop_signal=signal,
        stop_timeout=timeout,
        labels=types.MappingProxyType(merged_labels),
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
    (``all_caps``) and ``--cap-drop ALL`` from none; otherwise from
    ``defaults.DEFAULT_CAPABILITIES``. Then drops, then adds (an added capability wins over the
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
# spec options: one decision each, applied in order (containerd's With... SpecOpts)


def _process(spec: Spec) -> Process:
    return spec.process if spec.process is not None else Process(cwd="/")


def _linux(spec: Spec) -> Linux:
    return spec.linux if spec.linux is not None else Linux()


def _with_process(spec: Spec, **changes: object) -> Spec:
    return spec.replace(process=_process(spec).replace(**changes))


def _with_linux(spec: Spec, **changes: object) -> Spec:
    return spec.replace(linux=_linux(spec).replace(**changes))


def _with_resources(spec: Spec, **changes: object) -> Spec:
    linux = _linux(spec)
    resources = linux.resources if linux.resources is not None else Resources()
    return spec.replace(linux=linux.replace(resources=resources.replace(**changes)))


def _memory(spec: Spec) -> Memory:
    resources = _linux(spec).resources
    return resources.memory if resources is not None and resources.memory is not None else Memory()


def _cpu(spec: Spec) -> Cpu:
    resources = _linux(spec).resources
    return resources.cpu if resources is not None and resources.cpu is not None else Cpu()


def base_spec(rootfs: str) -> Spec:
    """docker's defaults before any option: root in ``rootfs``, the default mounts, the mount,
    network, uts, pid and ipc namespaces, masked and read-only paths, the default device rules,
    a root process in ``/`` with no command yet and an explicit OOM score adjustment of 0
    (otherwise the container inherits the engine's, maybe negative, one)."""
    return Spec(
        oci_version=SPEC_VERSION,
        process=Process(cwd="/", user=User(uid=0, gid=0), oom_score_adj=0),
        root=Root(path=rootfs),
        mounts=defaults.default_mounts(),
        linux=Linux(
            namespaces=tuple(Namespace(type=k) for k in ("mount", "network", "uts", "pid", "ipc")),
            resources=Resources(devices=tuple(defaults.DEFAULT_DEVICE_RULES)),
            masked_paths=defaults.MASKED_PATHS,
            readonly_paths=defaults.READONLY_PATHS,
        ),
    )


def new_spec(rootfs: str, *options: SpecOption) -> Spec:
    """``base_spec(rootfs)`` with ``options`` applied in order."""
    return compose(base_spec(rootfs), *options)


def compose(spec: Spec, *options: SpecOption) -> Spec:
    """``spec`` with each of ``options`` applied, in order (a later option sees the earlier ones)."""
    for option in options:
        spec = option(spec)
    return spec


# --- process


def with_process_args(args: Iterable[str]) -> SpecOption:
    """The command line of the container's process."""
    values = tuple(args)
    return lambda spec: _with_process(spec, args=values)


def with_env(env: Iterable[str]) -> SpecOption:
    """The process's environment, ``NAME=value`` entries, replacing any before."""
    values = tuple(env)
    return lambda spec: _with_process(spec, env=values)


def with_cwd(path: str) -> SpecOption:
    """The process's working directory."""
    return lambda spec: _with_process(spec, cwd=path)


def with_user(uid: int, gid: int, additional_gids: Iterable[int] = ()) -> SpecOption:
    """The process's credentials."""
    user = User(uid=uid, gid=gid, additional_gids=tuple(additional_gids))
    return lambda spec: _with_process(spec, user=user)


def with_terminal() -> SpecOption:
    """Give the process a terminal (``-t``)."""
    return lambda spec: _with_process(spec, terminal=True)


def with_capabilities(caps: Iterable[str]) -> SpecOption:
    """The capabilities of a root process: bounding, effective and permitted sets."""
    values = tuple(caps)
    return lambda spec: _with_process(
        spec, capabilities=Capabilities(bounding=values, effective=values, permitted=values)
    )


def with_bounding_capabilities(caps: Iterable[str]) -> SpecOption:
    """The capabilities of a non-root process: only the bounding set, what execve would leave
    it (moby's SetCapabilities)."""
    values = tuple(caps)
    return lambda spec: _with_process(spec, capabilities=Capabilities(bounding=values))


def with_rlimits(rlimits: Iterable[Rlimit]) -> SpecOption:
    """The process's resource limits."""
    values = tuple(rlimits)
    return lambda spec: _with_process(spec, rlimits=values)


def with_no_new_privileges() -> SpecOption:
    """setuid binaries and file capabilities cannot raise the process's privileges."""
    return lambda spec: _with_process(spec, no_new_privileges=True)


def with_init(source: str | None) -> SpecOption:
    """docker's init (tini at ``source`` on the host) as PID 1, running the command given before."""
    if source is None:
        raise InvalidArgument(
            "--init needs a static init binary on the host (install Debian's tini package: "
            f"it provides {defaults.INIT_SOURCES[0]})"
        )
    mount = Mount(destination=defaults.INIT_PATH, type="bind", source=source, options=("bind", "ro"))

    def apply(spec: Spec) -> Spec:
        spec = _with_process(spec, args=(defaults.INIT_PATH, "--", *_process(spec).args))
        return spec.replace(mounts=(*spec.mounts, mount))

    return apply


# --- names and root


def with_hostname(name: str) -> SpecOption:
    """The container's hostname (its own uts namespace)."""
    return lambda spec: spec.replace(hostname=name)


def with_domainname(name: str) -> SpecOption:
    """The container's NIS domain name."""
    return lambda spec: spec.replace(domainname=name)


def with_readonly_rootfs() -> SpecOption:
    """A read-only root, and read-only system mounts but those docker leaves writable (/proc, /dev,
    /dev/pts, /dev/shm, /dev/mqueue). It changes the mounts already in the spec: apply it before
    the user's own mounts."""

    def apply(spec: Spec) -> Spec:
        mounts = tuple(
            m
            if m.destination in _WRITABLE_WITH_READ_ONLY or "ro" in m.options
            else m.replace(options=(*m.options, "ro"))
            for m in spec.mounts
        )
        root = spec.root if spec.root is not None else Root(path="rootfs")
        return spec.replace(root=root.replace(readonly=True), mounts=mounts)

    return apply


def with_cgroups_path(path: str) -> SpecOption:
    """Where the runtime puts the container's cgroup."""
    return lambda spec: _with_linux(spec, cgroups_path=path)


# --- namespaces


def with_namespace(kind: str, path: str = "") -> SpecOption:
    """A namespace of ``kind``: a new one, or the one at ``path`` joined (replacing any before)."""

    def apply(spec: Spec) -> Spec:
        namespaces = list(_linux(spec).namespaces)
        for i, namespace in enumerate(namespaces):
            if namespace.type == kind:
                namespaces[i] = Namespace(type=kind, path=path)
                break
        else:
            namespaces.append(Namespace(type=kind, path=path))
        return _with_linux(spec, namespaces=tuple(namespaces))

    return apply


def with_host_namespace(kind: str) -> SpecOption:
    """No namespace of ``kind``: the container shares the host's."""
    return lambda spec: _with_linux(
        spec, namespaces=tuple(n for n in _linux(spec).namespaces if n.type != kind)
    )


def with_network_namespace(path: str = "") -> SpecOption:
    """A network namespace of its own, or the one at ``path`` (another container's, or one a
    network driver made)."""
    return with_namespace("network", path)


def with_host_network() -> SpecOption:
    """The host's network stack."""
    return with_host_namespace("network")


def with_host_uts() -> SpecOption:
    """The host's hostname and domain name: no uts namespace, so none set (a runtime refuses a
    hostname without a uts namespace of its own)."""

    def apply(spec: Spec) -> Spec:
        return with_host_namespace("uts")(spec).replace(hostname="", domainname="")

    return apply


# --- resources


def with_memory_limit(limit: int) -> SpecOption:
    """The memory cgroup's hard limit, in bytes."""
    return lambda spec: _with_resources(spec, memory=_memory(spec).replace(limit=limit))


def with_memory_reservation(reservation: int) -> SpecOption:
    """The memory cgroup's soft limit, in bytes."""
    return lambda spec: _with_resources(spec, memory=_memory(spec).replace(reservation=reservation))


def with_memory_swap(swap: int) -> SpecOption:
    """Memory plus swap, in bytes (-1: unlimited swap)."""
    return lambda spec: _with_resources(spec, memory=_memory(spec).replace(swap=swap))


def with_memory_swappiness(swappiness: int) -> SpecOption:
    """How eagerly the kernel swaps the container's memory, 0 to 100 (a cgroup v1 setting)."""
    return lambda spec: _with_resources(spec, memory=_memory(spec).replace(swappiness=swappiness))


def with_cpus(nano_cpus: int) -> SpecOption:
    """A CPU quota of ``nano_cpus`` billionths of a CPU (docker's NanoCpus) per 100 ms period."""
    quota = nano_cpus * _CPU_PERIOD // 10**9
    return lambda spec: _with_resources(spec, cpu=_cpu(spec).replace(quota=quota, period=_CPU_PERIOD))


def with_cpu_cfs(*, period: int | None = None, quota: int | None = None) -> SpecOption:
    """The CFS period and quota in microseconds, as given (docker's ``--cpu-period``/``--cpu-quota``)."""
    changes = {k: v for k, v in (("period", period), ("quota", quota)) if v}
    return lambda spec: _with_resources(spec, cpu=_cpu(spec).replace(**changes))


def with_blkio_weight(weight: int) -> SpecOption:
    """The block I/O weight of the container's cgroup (10 to 1000)."""

    def apply(spec: Spec) -> Spec:
        resources = _linux(spec).resources
        block_io = (
            resources.block_io if resources is not None and resources.block_io is not None else BlockIO()
        )
        return _with_resources(spec, block_io=block_io.replace(weight=weight))

    return apply


def with_cpu_shares(shares: int) -> SpecOption:
    """The CPU weight relative to other containers (cgroup v1 shares; runtimes convert for v2)."""
    return lambda spec: _with_resources(spec, cpu=_cpu(spec).replace(shares=shares))


def with_cpuset(cpus: str = "", mems: str = "") -> SpecOption:
    """The CPUs and memory nodes the container may use (``0-2,4``)."""
    return lambda spec: _with_resources(spec, cpu=_cpu(spec).replace(cpus=cpus, mems=mems))


def with_pids_limit(limit: int) -> SpecOption:
    """At most ``limit`` tasks in the container's cgroup."""
    return lambda spec: _with_resources(spec, pids=Pids(limit=limit))


def with_devices(devices: Iterable[Device], rules: Iterable[DeviceRule] = ()) -> SpecOption:
    """Device nodes made in the container, and device cgroup rules allowing them, after those before."""
    more, allowed = tuple(devices), tuple(rules)

    def apply(spec: Spec) -> Spec:
        linux = _linux(spec)
        resources = linux.resources if linux.resources is not None else Resources()
        return spec.replace(
            linux=linux.replace(
                devices=(*linux.devices, *more),
                resources=resources.replace(devices=(*resources.devices, *allowed)),
            )
        )

    return apply


def with_all_devices_allowed() -> SpecOption:
    """A device cgroup that allows every device (``--privileged``)."""
    return lambda spec: _with_resources(spec, devices=(DeviceRule(allow=True, access="rwm"),))


# --- security


def with_seccomp(seccomp: Seccomp | None) -> SpecOption:
    """The system call filter (None: none)."""
    return lambda spec: _with_linux(spec, seccomp=seccomp)


def with_masked_paths(paths: Iterable[str]) -> SpecOption:
    """Paths the runtime hides (an empty directory or /dev/null over them)."""
    values = tuple(paths)
    return lambda spec: _with_linux(spec, masked_paths=values)


def with_readonly_paths(paths: Iterable[str]) -> SpecOption:
    """Paths the runtime remounts read-only."""
    values = tuple(paths)
    return lambda spec: _with_linux(spec, readonly_paths=values)


def with_writable_sysfs() -> SpecOption:
    """/sys and its cgroup mount read-write (``--privileged``)."""

    def apply(spec: Spec) -> Spec:
        mounts = tuple(
            m.replace(options=tuple(o for o in m.options if o != "ro"))
            if m.type in ("sysfs", "cgroup")
            else m
            for m in spec.mounts
        )
        return spec.replace(mounts=mounts)

    return apply


def with_sysctls(sysctls: Mapping[str, str]) -> SpecOption:
    """Kernel parameters set in the container's namespaces; they replace the same keys set before."""
    values = dict(sysctls)
    return lambda spec: _with_linux(spec, sysctl={**_linux(spec).sysctl, **values})


# --- mounts


def with_shm(source: str | None) -> SpecOption:
    """/dev/shm as the ipc mode wants it: ``source`` (a host directory: the host's /dev/shm, a
    shareable container's) bound there, or, with None, no /dev/shm at all (``--ipc none``)."""

    def apply(spec: Spec) -> Spec:
        kept = tuple(m for m in spec.mounts if m.destination != "/dev/shm")
        if source is None:
            return spec.replace(mounts=kept)
        shm = Mount(
            destination="/dev/shm", type="bind", source=source, options=("rbind", "nosuid", "noexec", "nodev")
        )
        return spec.replace(mounts=(*kept, shm))

    return apply


def with_shm_size(size: int) -> SpecOption:
    """The size of /dev/shm, in bytes."""

    def apply(spec: Spec) -> Spec:
        mounts = tuple(
            m.replace(options=(*(o for o in m.options if not o.startswith("size=")), f"size={size}"))
            if m.destination == "/dev/shm"
            else m
            for m in spec.mounts
        )
        return spec.replace(mounts=mounts)

    return apply


def _mount_depth(mount: Mount) -> int:
    return len([p for p in mount.destination.split("/") if p])


def with_mounts(mounts: Iterable[Mount]) -> SpecOption:
    """The user's mounts, parents before children; they replace the mounts before them with the
    same destination (a user /dev also the default ones below it). ``InvalidArgument`` for two
    with one destination."""
    user = list(mounts)
    seen: set[str] = set()
    for m in user:
        if m.destination in seen:
            raise InvalidArgument(f"Duplicate mount point: {m.destination}")
        seen.add(m.destination)
    user.sort(key=_mount_depth)  # stable for equal depth

    def apply(spec: Spec) -> Spec:
        kept = [
            m
            for m in spec.mounts
            if m.destination not in seen and not ("/dev" in seen and m.destination.startswith("/dev/"))
        ]
        return spec.replace(mounts=(*kept, *user))

    return apply


def with_hosts_files(files: Mapping[str, str], *, read_only: bool = False) -> SpecOption:
    """Host files (/etc/hosts, /etc/resolv.conf, ...) bound at their container paths, unless a
    mount already covers that path; read-only with a read-only root."""
    options = ("rbind", "rprivate", "ro") if read_only else ("rbind", "rprivate")

    def apply(spec: Spec) -> Spec:
        taken = {m.destination for m in spec.mounts}
        more = tuple(
            Mount(destination=destination, type="bind", source=source, options=options)
            for destination, source in sorted(files.items())
            if destination not in taken
        )
        return spec.replace(mounts=(*spec.mounts, *more))

    return apply


def with_rootfs_propagation(propagation: str) -> SpecOption:
    """The propagation of the root mount (``shared`` or ``rslave`` for mounts that need it)."""
    return lambda spec: _with_linux(spec, rootfs_propagation=propagation)


# ---------------------------------------------------------------------------
# from docker's options to spec options

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


def user_devices(mappings: Iterable[DeviceMapping]) -> tuple[list[Device], list[DeviceRule]]:
    """The device nodes of ``--device`` mappings (a directory maps every node below it, as
    docker does) and the cgroup rules that allow them."""
    devices: list[Device] = []
    rules: list[DeviceRule] = []
    for mapping in mappings:
        source, target = mapping.path_on_host, mapping.path_in_container
        found: list[tuple[str, str]] = []
        if os.path.isdir(source):
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


def host_devices(dev: str = "/dev") -> list[Device]:
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


def _seccomp(security: SecurityOptions, caps: tuple[str, ...], host: HostFacts) -> Seccomp | None:
    if security.privileged or security.seccomp == "unconfined":
        return None
    from pallet.engine.spec import seccomp

    profile = seccomp.load_profile(security.seccomp) if security.seccomp else seccomp.default_profile()
    return seccomp.resolve(profile, capabilities=caps, arch=host.arch, kernel=host.kernel)


def resource_spec_options(resources: ResourceOptions, host: HostFacts) -> list[SpecOption]:
    """docker's resource rules: swap twice the memory unless told (and only where the kernel
    accounts swap), a CPU quota per 100 ms, pids only when positive."""
    out: list[SpecOption] = []
    memory = resources.memory
    if memory:
        out.append(with_memory_limit(memory))
    if resources.memory_reservation:
        out.append(with_memory_reservation(resources.memory_reservation))
    if memory and host.swap_accounting:
        swap = resources.memory_swap
        out.append(with_memory_swap(memory * 2 if swap in (None, 0) else swap))
    if resources.memory_swappiness is not None and not host.cgroup_v2:  # cgroup v2 has no such knob
        out.append(with_memory_swappiness(resources.memory_swappiness))
    if resources.cpus:
        out.append(with_cpus(resources.cpus))
    if resources.cpu_period or resources.cpu_quota:
        out.append(with_cpu_cfs(period=resources.cpu_period, quota=resources.cpu_quota))
    if resources.cpu_shares:
        out.append(with_cpu_shares(resources.cpu_shares))
    if resources.blkio_weight:
        out.append(with_blkio_weight(resources.blkio_weight))
    if resources.cpuset_cpus or resources.cpuset_mems:
        out.append(with_cpuset(resources.cpuset_cpus, resources.cpuset_mems))
    if resources.pids_limit and resources.pids_limit > 0:
        out.append(with_pids_limit(resources.pids_limit))
    if resources.shm_size:
        out.append(with_shm_size(resources.shm_size))
    if resources.ulimits:
        out.append(
            with_rlimits(
                Rlimit(type=ULIMIT_NAMES[u.name], soft=u.soft, hard=u.hard) for u in resources.ulimits
            )
        )
    return out


def security_spec_options(
    security: SecurityOptions, caps: tuple[str, ...], *, root: bool, host: HostFacts
) -> list[SpecOption]:
    """Capabilities (all three sets for root, the bounding set otherwise), no-new-privileges,
    seccomp, masked paths, read-only root, and what ``--privileged`` lifts."""
    out: list[SpecOption] = [with_capabilities(caps) if root else with_bounding_capabilities(caps)]
    if security.no_new_privileges:
        out.append(with_no_new_privileges())
    out.append(with_seccomp(_seccomp(security, caps, host)))
    if security.privileged or security.unmask_system_paths:
        out += [with_masked_paths(()), with_readonly_paths(())]
    if security.privileged:
        out += [with_writable_sysfs(), with_all_devices_allowed(), with_devices(host_devices())]
    if security.read_only:
        out.append(with_readonly_rootfs())
    return out


def network_spec_options(network: NetworkOptions, *, hostname: str, namespace: str = "") -> list[SpecOption]:
    """The network namespace the mode asks for (``namespace``: the path of one the engine made, or
    of the container whose network is joined; else a new one), docker's sysctls in a namespace of
    its own (ping and low ports for non-root users), the hostname and domain name."""
    out: list[SpecOption] = []
    if network.mode.is_host:
        out.append(with_host_network())
    else:
        if namespace:
            out.append(with_network_namespace(namespace))
        if network.mode.own_namespace:
            out.append(with_sysctls(dict(_PRIVATE_NET_SYSCTLS)))
    out.append(with_hostname(hostname))
    if network.domainname:
        out.append(with_domainname(network.domainname))
    return out


def namespace_spec_options(
    namespaces: NamespaceOptions, host: HostFacts, *, joined: Mapping[str, str] = EMPTY, shm: str = ""
) -> list[SpecOption]:
    """docker's pid, ipc, uts and cgroup namespace modes: ``host`` leaves the namespace out (the
    container shares the host's), ``container:NAME`` joins the namespace at ``joined[kind]`` (the
    path of that container's, ``/proc/PID/ns/KIND``), the rest get one of their own. /dev/shm
    follows the ipc mode: none for ``none``, ``shm`` (a host directory: the host's /dev/shm, or the
    tmpfs of a shareable container, the joined one's or its own) bound for the shared modes. The
    cgroup namespace defaults to private on cgroup v2 and the host's on v1, as docker's."""
    out: list[SpecOption] = []
    for kind, mode in (("pid", namespaces.pid), ("ipc", namespaces.ipc)):
        if mode == "host":
            out.append(with_host_namespace(kind))
        elif namespaces.joined(mode):
            out.append(with_namespace(kind, joined.get(kind, "")))
    ipc = namespaces.ipc_mode
    if ipc == "none":
        out.append(with_shm(None))
    elif ipc == "host":
        out.append(with_shm("/dev/shm"))
    elif ipc != "private" and shm:
        out.append(with_shm(shm))
    if namespaces.uts == "host":
        out.append(with_host_uts())
    if namespaces.cgroupns == "private" or (not namespaces.cgroupns and host.cgroup_v2):
        out.append(with_namespace("cgroup"))
    return out


def mount_spec_options(
    mounts: MountOptions,
    resolved: tuple[ResolvedMount, ...],
    hosts_files: Mapping[str, str],
    *,
    read_only: bool,
) -> list[SpecOption]:
    """The user's resolved mounts and ``--tmpfs`` ones, the hosts files, the root's propagation."""
    user = [
        Mount(destination=m.destination, type=m.type, source=m.source, options=tuple(m.options))
        for m in resolved
    ]
    user += [
        Mount(destination=path, type="tmpfs", source="tmpfs", options=_tmpfs_options(data))
        for path, data in mounts.tmpfs.items()
    ]
    out = [with_mounts(user)]
    if hosts_files:
        out.append(with_hosts_files(hosts_files, read_only=read_only))
    propagation = _rootfs_propagation(resolved)
    if propagation:
        out.append(with_rootfs_propagation(propagation))
    return out


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
    network_namespace: str = "",
    hostname: str = "",
    joined_namespaces: Mapping[str, str] = EMPTY,
    shm: str = "",
    linked_env: Iterable[str] = (),
) -> Spec:
    """The config.json of a new container (``root.path`` is ``rootfs`` as given): ``base_spec``
    composed with the spec options ``options`` and the image's config ask for.

    ``mounts`` are the user's mounts already resolved (binds, volumes,
    ``--mount type=tmpfs``); ``--tmpfs`` is handled here. ``hosts_files``
    maps container paths (``/etc/hosts``, ``/etc/resolv.conf``, ...) to host
    files bind-mounted there unless the user mounts the same path.
    ``network_namespace`` is the path of the network namespace the container
    joins (made by the engine's network driver, or another container's);
    "" for a new one (or none with the host network). ``hostname`` overrides
    the one the options give (a container that joins another's network
    takes that one's). ``joined_namespaces`` (``pid``/``ipc`` -> path) are the namespaces of the
    containers a ``container:NAME`` mode joins, ``shm`` the host directory bound at /dev/shm for
    the ipc modes that share one (``namespace_spec_options``), ``linked_env`` the variables of
    legacy links. ``options`` were checked when they were made: nothing is checked again.
    """
    host = host or host_facts()
    process, security = options.process, options.security
    hostname = hostname or container_hostname(
        options.network, container_id=container_id, host_hostname=host.hostname
    )
    settings = merge_config(image_config, process, hostname=hostname, linked_env=linked_env)
    uid, gid, additional = resolve_user(rootfs, settings.user, process.group_add)
    caps = capabilities(
        security.cap_add, security.cap_drop, privileged=security.privileged, all_caps=host.capabilities
    )
    devices, device_rules = user_devices(options.resources.devices)
    steps: list[SpecOption] = [
        with_process_args(settings.args),
        with_env(settings.env),
        with_cwd(settings.workdir),
        with_user(uid, gid, additional),
    ]
    if process.tty:
        steps.append(with_terminal())
    steps += security_spec_options(security, caps, root=uid == 0, host=host)
    device_rules += [_device_cgroup_rule(text) for text in options.resources.device_cgroup_rules]
    if not security.privileged:
        steps.append(with_devices(devices, device_rules))
    else:  # the host's nodes are there already: keep a --device only where it adds a path
        steps.append(_with_devices_not_taken(devices))
    steps += network_spec_options(options.network, hostname=hostname, namespace=network_namespace)
    steps.append(with_cgroups_path(f"{cgroup_parent.rstrip('/')}/{container_id}"))
    steps += resource_spec_options(options.resources, host)
    # after the hostname and /dev/shm's size: a shared uts namespace has no hostname, a shared
    # /dev/shm is another's mount
    steps += namespace_spec_options(options.namespaces, host, joined=joined_namespaces, shm=shm)
    if security.sysctls:
        steps.append(with_sysctls(security.sysctls))
    steps += mount_spec_options(options.mounts, mounts, hosts_files, read_only=security.read_only)
    if process.init:
        steps.append(with_init(host.init_path))
    return new_spec(rootfs, *steps)


def _device_cgroup_rule(text: str) -> DeviceRule:
    from pallet.engine.spec.syntax import parse_device_cgroup_rule

    kind, major, minor, access = parse_device_cgroup_rule(text)
    return DeviceRule(allow=True, type=kind, major=major, minor=minor, access=access)


def _with_devices_not_taken(devices: list[Device]) -> SpecOption:
    def apply(spec: Spec) -> Spec:
        taken = {d.path for d in _linux(spec).devices}
        return _with_linux(
            spec, devices=(*_linux(spec).devices, *(d for d in devices if d.path not in taken))
        )

    return apply
