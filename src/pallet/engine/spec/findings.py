"""The one table of settings that give a container's isolation away: ``Finding``s, for warnings and audit.

A finding names the setting as the user wrote it (``--cap-add SYS_ADMIN``,
``-v /var/run/docker.sock:/sock``), a severity, the escape it opens (what a
process in the container can then do to the host) and the fix. ``pallet
run``/``create`` print each as one warning line (``spec/security.py``);
``pallet audit`` prints them for existing containers (``engine/audit.py``)
and fails when one is ``high``. Both read this table, so a setting is
judged the same way, in the same words, wherever it is reported.

Severities: ``high`` — one step from root on the host (a known escape needs
nothing more); ``medium`` — weakens a boundary, or leaks host data, that an
escape chains with; ``low`` — worth knowing, not an escape by itself.

``findings_for(options)`` reads the options a container was made with;
``spec_findings(spec, ...)`` reads what its ``config.json`` shares with the
host (namespaces the options have no flag for: a container made through the
API with ``PidMode: host`` is judged too). Pure: no I/O except ``stat`` of a
``--device`` path to tell block devices from character ones.
"""

from __future__ import annotations

import os
import stat

from pallet.engine.spec.options import MountOptions
from pallet.oci.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from pallet.engine.spec.options import RunOptions
    from pallet.engine.spec.syntax import DeviceMapping, MountSpec
    from pallet.oci.runtime_spec import Spec

__all__ = [
    "CAPABILITY_RISKS",
    "CONTROL_SURFACES",
    "Finding",
    "Severity",
    "findings_for",
    "spec_findings",
]


class Severity:
    """The severities, plain strings (no ``enum`` on ``run``'s path); ``ORDER`` is most severe first."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    ORDER = (HIGH, MEDIUM, LOW)


HIGH, MEDIUM, LOW = Severity.HIGH, Severity.MEDIUM, Severity.LOW


class Finding(Record):
    """One setting that gives isolation away."""

    #: ``high``, ``medium`` or ``low`` (``Severity``)
    severity: str
    #: the setting as the user writes it (``--privileged``, ``--cap-add SYS_ADMIN``)
    setting: str
    #: what a process in the container can then do to the host
    escape: str
    #: what to do instead
    fix: str

    @property
    def rank(self) -> int:
        """0 for ``high``, then 1, 2: the sort key of "most severe first"."""
        return Severity.ORDER.index(self.severity)

    def warning(self) -> str:
        """The one line ``run``/``create`` print (the CLI prefixes ``WARNING: ``)."""
        return f"{self.setting} ({self.severity}): {self.escape}"

    def to_json(self) -> dict[str, str]:
        return {"severity": self.severity, "setting": self.setting, "escape": self.escape, "fix": self.fix}


#: capability -> (severity, what it lets a container do to the host); the ones not here are docker's
#: defaults or harmless
CAPABILITY_RISKS: dict[str, tuple[str, str]] = {
    "CAP_SYS_ADMIN": (
        HIGH,
        "mount filesystems (a cgroup v1 release_agent runs a program as root on the host), create "
        "namespaces, load BPF; the usual first step of a container escape",
    ),
    "CAP_SYS_MODULE": (HIGH, "load kernel modules: full control of the host kernel"),
    "CAP_SYS_RAWIO": (HIGH, "raw I/O ports and devices (iopl, ioperm, /dev/mem where it is mapped)"),
    "CAP_DAC_READ_SEARCH": (
        HIGH,
        "open_by_handle_at, which opens any file of the host filesystem by inode number (the 'shocker' escape)",
    ),
    "CAP_BPF": (HIGH, "load BPF programs into the host kernel, a large source of kernel exploits"),
    "CAP_SYS_PTRACE": (
        MEDIUM,
        "trace processes and read or write their memory (the host's own with --pid host), and lifts the "
        "seccomp ban on ptrace, process_vm_readv/writev, kcmp and userfaultfd",
    ),
    "CAP_NET_ADMIN": (
        MEDIUM,
        "reconfigure interfaces, routes and firewall rules (the host's own with --network host), and lifts "
        "the seccomp confinement of raw and packet sockets: sniff and spoof traffic on the bridge",
    ),
    "CAP_PERFMON": (MEDIUM, "observe processes through perf events, which leaks kernel addresses"),
    "CAP_SYS_BOOT": (MEDIUM, "reboot, and kexec a new kernel where the seccomp profile allows it"),
    "CAP_SYS_TIME": (MEDIUM, "set the clock of the whole host"),
    "CAP_SYSLOG": (MEDIUM, "read and clear the host kernel log, which leaks kernel addresses"),
    "CAP_MAC_ADMIN": (MEDIUM, "change the host's mandatory access control policy"),
    "CAP_MAC_OVERRIDE": (MEDIUM, "bypass the host's mandatory access control policy"),
    "CAP_AUDIT_CONTROL": (MEDIUM, "change or turn off the host's audit rules"),
    "CAP_SYS_RESOURCE": (LOW, "raise resource limits and use reserved disk space, so it can starve the host"),
    "CAP_AUDIT_WRITE": (LOW, "write records into the host's audit log: forge logins, bury its own trail"),
    "CAP_LINUX_IMMUTABLE": (LOW, "change immutable and append-only files"),
    "CAP_IPC_OWNER": (LOW, "bypass permission checks on System V IPC objects"),
    "CAP_WAKE_ALARM": (LOW, "set alarms that wake the host from suspend"),
    "CAP_BLOCK_SUSPEND": (LOW, "keep the host from suspending"),
    "CAP_CHECKPOINT_RESTORE": (
        LOW,
        "checkpoint and restore processes (pick pids, read other processes' state)",
    ),
    "CAP_SYS_NICE": (
        LOW,
        "raise its own priority and move memory between NUMA nodes, starving other workloads",
    ),
    "CAP_SYS_PACCT": (LOW, "switch process accounting on or off for the host"),
    "CAP_SYS_TTY_CONFIG": (LOW, "vhangup terminals"),
    "CAP_LEASE": (LOW, "take leases on files it does not own"),
}

#: host path -> (severity read-write, severity read-only, what mounting it or a directory holding it
#: gives the container). A unix socket is as dangerous read-only: connect(2) ignores the mount flag.
CONTROL_SURFACES: dict[str, tuple[str, str, str]] = {
    "/": (HIGH, HIGH, "the host's whole filesystem, with its credentials and the engines' sockets"),
    "/var/run/docker.sock": (
        HIGH,
        HIGH,
        "the Docker engine socket: start a privileged container, root on the host",
    ),
    "/run/docker.sock": (
        HIGH,
        HIGH,
        "the Docker engine socket: start a privileged container, root on the host",
    ),
    "/run/containerd/containerd.sock": (
        HIGH,
        HIGH,
        "containerd's socket: start any container, root on the host",
    ),
    "/run/podman/podman.sock": (
        HIGH,
        HIGH,
        "podman's socket: start a privileged container, root on the host",
    ),
    "/run/pallet": (
        HIGH,
        HIGH,
        "pallet's run directory (shim sockets, runtime state, locks): every container",
    ),
    "/var/lib/pallet": (
        HIGH,
        MEDIUM,
        "pallet's state (images, containers, volumes): what every container runs",
    ),
    "/var/lib/docker": (HIGH, MEDIUM, "Docker's state: what every Docker container runs"),
    "/sys/fs/cgroup": (
        HIGH,
        MEDIUM,
        "the host's cgroups: a release_agent runs as root on the host; lift limits",
    ),
    "/proc": (
        HIGH,
        HIGH,
        "the host's /proc: host processes' environment and /proc/<pid>/root (the host's filesystem, "
        "writable whatever the mount flag), /proc/sys/kernel/core_pattern",
    ),
    "/sys": (HIGH, MEDIUM, "the host's /sys: kernel and device settings, uevent_helper, firmware"),
    "/etc": (HIGH, MEDIUM, "the host's configuration: /etc/shadow, sudoers, cron"),
    "/dev": (HIGH, HIGH, "every device of the host, its disks among them"),
    "/boot": (HIGH, MEDIUM, "the host's kernels and boot loader"),
    "/lib/modules": (HIGH, LOW, "the host's kernel modules"),
    "/root": (HIGH, MEDIUM, "root's home on the host (SSH keys, credentials)"),
}

#: directories whose ``*.sock`` files are host services' sockets (docker's, containerd's, podman's, ...)
_SOCKET_DIRS = ("/run", "/var/run")
#: host devices that are memory (mem, kmem, port): raw access to the host's memory and I/O ports
_MEMORY_DEVICES = {(1, 1), (1, 2), (1, 4)}
_MEMORY_DEVICE_PATHS = ("/dev/mem", "/dev/kmem", "/dev/port")
#: namespace -> (the flag that shares the host's, severity, escape); the network one is judged from the
#: options (``--network host`` names more than a missing namespace)
_HOST_NAMESPACES: dict[str, tuple[str, str, str]] = {
    "pid": (
        "--pid host",
        HIGH,
        "sees and signals every host process (root in the container kills them), and reaches the host's "
        "filesystem through /proc/1/root",
    ),
    "ipc": ("--ipc host", MEDIUM, "reads and writes the host's System V and POSIX shared memory"),
    "uts": ("--uts host", LOW, "shares the host's hostname (changing it needs CAP_SYS_ADMIN)"),
    "cgroup": (
        "--cgroupns host",
        MEDIUM,
        "sees the host's whole cgroup tree and the paths of other containers",
    ),
    "user": (
        "--userns host",
        HIGH,
        "root in the container is root on the host: any escape lands as host root",
    ),
}


def _inside(path: str, parent: str) -> bool:
    return parent in ("/", path) or path.startswith(parent.rstrip("/") + "/")


def _mount_findings(mount: MountSpec, surfaces: dict[str, tuple[str, str, str]]) -> Finding | None:
    if mount.type != "bind" or not mount.source:
        return None
    source = os.path.normpath(mount.source)
    hits: list[tuple[str, str]] = []
    for surface, (rw, ro, what) in surfaces.items():
        severity = ro if mount.read_only else rw
        if source == surface:
            hits.append((severity, f"{surface} is {what}"))
        elif surface != "/" and _inside(source, surface):
            hits.append((severity, f"{source} is inside {surface}, {what}"))
        elif surface != "/" and _inside(surface, source):
            hits.append((severity, f"{source} holds {surface}, {what}"))
    if (
        not hits
        and source.endswith(".sock")
        and any(_inside(source, d) and source != d for d in _SOCKET_DIRS)
    ):
        hits.append((HIGH, f"{source} is a host service's socket: whoever talks to it acts as that service"))
    if not hits:
        return None
    access = "ro" if mount.read_only else "rw"
    return Finding(
        severity=min((s for s, _ in hits), key=Severity.ORDER.index),
        setting=f"-v {source}:{mount.target}:{access}",
        escape="; ".join(what for _, what in hits),
        fix=(
            "do not mount a service's socket (read-only does not stop connect); give the container a proxy "
            "that allows only the calls it needs"
            if source.endswith(".sock")
            else "mount only the files the workload needs, read-only, or use a volume"
        ),
    )


def _device_kind(path: str) -> str:
    """``block``, ``memory`` or ``char`` for a host device path (``char`` if it cannot be read)."""
    if path in _MEMORY_DEVICE_PATHS:
        return "memory"
    try:
        st = os.stat(path)
    except OSError:
        return "char"
    if stat.S_ISBLK(st.st_mode):
        return "block"
    if stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) in _MEMORY_DEVICES:
        return "memory"
    return "char"


def _device_finding(device: DeviceMapping, kind: Callable[[str], str]) -> Finding:
    what = kind(device.path_on_host)
    setting = f"--device {device.path_on_host}:{device.path_in_container}:{device.permissions}"
    if what == "block":
        return Finding(
            severity=HIGH,
            setting=setting,
            escape=f"the host's block device {device.path_on_host}: read and write the host's disk under "
            "every file permission",
            fix="use a volume or a bind mount of the files needed instead of the disk",
        )
    if what == "memory":
        return Finding(
            severity=HIGH,
            setting=setting,
            escape=f"{device.path_on_host} is the host's physical memory or I/O ports: patch the running kernel",
            fix="never pass memory devices into a container",
        )
    return Finding(
        severity=MEDIUM,
        setting=setting,
        escape=f"direct access to the host device {device.path_on_host}: its driver's bugs are the host kernel's",
        fix="pass only the devices the workload needs, read-only where it can",
    )


def _capability_findings(cap_add: Iterable[str]) -> list[Finding]:
    caps = list(cap_add)
    if "ALL" in caps:
        return [
            Finding(
                severity=HIGH,
                setting="--cap-add ALL",
                escape="every capability, CAP_SYS_ADMIN and CAP_SYS_MODULE among them: load a module or mount "
                "the host's disk and own the host",
                fix="add only the capabilities the workload needs",
            )
        ]
    out = []
    for cap in caps:
        risk = CAPABILITY_RISKS.get(cap)
        if risk is not None:
            out.append(
                Finding(
                    severity=risk[0],
                    setting=f"--cap-add {cap.removeprefix('CAP_')}",
                    escape=risk[1],
                    fix=f"drop --cap-add {cap.removeprefix('CAP_')}, or grant it to a narrower helper process",
                )
            )
    return out


def findings_for(
    options: RunOptions,
    mounts: Iterable[MountSpec] | MountOptions | None = None,
    *,
    engine_paths: Iterable[str] = (),
    device_kind: Callable[[str], str] = _device_kind,
    private_cgroupns: bool = True,
) -> list[Finding]:
    """Every finding of ``options``, most severe first (empty for a default container).

    ``mounts`` defaults to ``options.mounts`` (a ``MountOptions`` is read as
    its specs); ``engine_paths`` adds this engine's root and run directories
    when they are not the defaults; ``device_kind`` tells ``block``,
    ``memory`` and ``char`` devices apart (default: ``stat`` of the host path);
    ``private_cgroupns``: a default container has a cgroup namespace of its own here (cgroup v2),
    so ``--cgroupns host`` gives something away.
    """
    out: list[Finding] = []
    security = options.security
    if security.privileged:
        out.append(
            Finding(
                severity=HIGH,
                setting="--privileged",
                escape="every capability, every host device, no seccomp filter, no masked /proc paths, writable "
                "/sys and /proc/sys: mount the host's disk, load a module or set core_pattern and own the host",
                fix="drop --privileged; add only the capabilities and --device the workload needs",
            )
        )
    else:
        out += _capability_findings(security.cap_add)
        if security.seccomp == "unconfined":
            out.append(
                Finding(
                    severity=HIGH,
                    setting="--security-opt seccomp=unconfined",
                    escape="no system call filter: keyctl, bpf, userfaultfd, io_uring, unshare and the other "
                    "calls behind known kernel exploits are open",
                    fix="keep the default profile, or pass a profile that allows only the calls needed",
                )
            )
        elif security.seccomp:
            out.append(
                Finding(
                    severity=LOW,
                    setting=f"--security-opt seccomp={security.seccomp}",
                    escape="the default system call filter is replaced by that file",
                    fix="make sure the profile is an allow-list at least as strict as the default",
                )
            )
        if security.unmask_system_paths:
            out.append(
                Finding(
                    severity=HIGH,
                    setting="--security-opt systempaths=unconfined",
                    escape="/proc/sys is writable (kernel.core_pattern runs a program as root on the host at the "
                    "next crash) and /proc/kcore, /proc/keys, /sys/firmware are unmasked",
                    fix="drop systempaths=unconfined; set namespaced settings with --sysctl",
                )
            )
        for device in options.resources.devices:
            out.append(_device_finding(device, device_kind))
    if security.apparmor == "unconfined":
        out.append(
            Finding(
                severity=MEDIUM,
                setting="--security-opt apparmor=unconfined",
                escape="no AppArmor profile confines the container where the host uses AppArmor",
                fix="drop apparmor=unconfined",
            )
        )
    if security.no_new_privileges is False:
        out.append(
            Finding(
                severity=LOW,
                setting="--security-opt no-new-privileges=false",
                escape="setuid binaries and file capabilities in the image can raise a user's privileges",
                fix="use --security-opt no-new-privileges=true unless the workload runs setuid programs",
            )
        )
    if security.userns == "host":
        setting, severity, escape = _HOST_NAMESPACES["user"]
        out.append(
            Finding(
                severity=severity,
                setting=setting,
                escape=escape,
                fix="drop --userns host: with userns-remap in the root's config.toml, root in the container "
                "is an unprivileged id on the host",
            )
        )
    namespaces = options.namespaces
    for kind, mode in (
        ("pid", namespaces.pid),
        ("ipc", namespaces.ipc),
        ("uts", namespaces.uts),
        ("cgroup", namespaces.cgroupns),
    ):
        if mode == "host" and (kind != "cgroup" or private_cgroupns):  # the words of spec_findings
            setting, severity, escape = _HOST_NAMESPACES[kind]
            out.append(Finding(severity=severity, setting=setting, escape=escape, fix=f"drop {setting}"))
    if options.network.mode.is_host:
        out.append(
            Finding(
                severity=HIGH,
                setting="--network host",
                escape="the host's network stack: services on the host's 127.0.0.1 and its abstract unix "
                "sockets (containerd-shim's escape), every host port, the host's traffic",
                fix="publish ports with -p instead",
            )
        )
    surfaces = dict(CONTROL_SURFACES)
    for path in engine_paths:
        surfaces.setdefault(os.path.normpath(path), (HIGH, HIGH, "this engine's own state: every container"))
    if mounts is None:
        mounts = options.mounts
    for mount in mounts.specs if isinstance(mounts, MountOptions) else mounts:
        finding = _mount_findings(mount, surfaces)
        if finding is not None:
            out.append(finding)
    return sorted(out, key=lambda f: f.rank)


def spec_findings(spec: Spec, *, private_by_default: Iterable[str]) -> list[Finding]:
    """The host namespaces ``spec`` shares that a default container of this engine would not
    (``private_by_default``: the namespace types a plain ``run`` gets here, e.g. without ``cgroup``
    on a cgroup v1 host where docker's default is the host's)."""
    own = {ns.type for ns in spec.linux.namespaces} if spec.linux is not None else set()
    out = []
    for kind, (setting, severity, escape) in _HOST_NAMESPACES.items():
        if kind in private_by_default and kind not in own:
            out.append(
                Finding(
                    severity=severity,
                    setting=setting,
                    escape=escape,
                    fix=f"drop {setting}",
                )
            )
    return sorted(out, key=lambda f: f.rank)
