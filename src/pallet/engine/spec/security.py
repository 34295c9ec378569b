"""What a container's options give away, said out loud: the warnings ``pallet run``/``create`` print.

``warnings_for(options, mounts)`` returns one sentence per thing that
weakens the isolation docker's defaults give: ``--privileged``, dangerous
added capabilities, the seccomp filter or system paths turned off, the host
network, host devices, and bind mounts of the host's control surfaces (the
engine sockets and state, /proc, /sys, cgroups, /, /etc, /dev, ...). Each
says what it is and what a process in the container can then do. The
options still work; the user decides. The CLI prefixes ``WARNING: ``.

Pure: it looks only at its arguments (``engine_paths`` names pallet's own
root and run directories, which are control surfaces too).
"""

from __future__ import annotations

import os

from pallet.engine.spec.options import MountOptions

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from pallet.engine.spec.options import RunOptions
    from pallet.engine.spec.syntax import MountSpec

__all__ = ["CONTROL_SURFACES", "DANGEROUS_CAPABILITIES", "warnings_for"]

#: capability -> what it lets a container do to the host
DANGEROUS_CAPABILITIES: dict[str, str] = {
    "CAP_SYS_ADMIN": "mount filesystems, create namespaces, load BPF and perform most administrative "
    "operations; it is the usual first step of a container escape",
    "CAP_SYS_MODULE": "load kernel modules: full control of the host kernel",
    "CAP_SYS_PTRACE": "trace processes and read or write their memory, and lifts the seccomp ban on "
    "ptrace, process_vm_readv/writev and kcmp",
    "CAP_SYS_RAWIO": "raw I/O port and device access (iopl, ioperm, /dev/mem when it is mapped)",
    "CAP_DAC_READ_SEARCH": "open_by_handle_at, which can open any file of the host filesystem by its "
    "inode number (the 'shocker' escape)",
    "CAP_NET_ADMIN": "reconfigure interfaces, routes and firewall rules of its network namespace "
    "(the host's own with --network host)",
    "CAP_SYS_BOOT": "reboot (the host's kernel, with kexec_load)",
    "CAP_SYS_TIME": "set the clock of the whole host",
    "CAP_SYSLOG": "read and clear the host kernel log, which leaks kernel addresses",
    "CAP_BPF": "load BPF programs into the host kernel",
    "CAP_PERFMON": "observe every process of the host through perf events",
    "CAP_MAC_ADMIN": "change the host's mandatory access control policy",
    "CAP_MAC_OVERRIDE": "bypass the host's mandatory access control policy",
    "CAP_AUDIT_CONTROL": "change or turn off the host's audit rules",
    "CAP_SYS_RESOURCE": "raise resource limits and use reserved disk space, so it can starve the host",
    "CAP_LINUX_IMMUTABLE": "change immutable and append-only files",
    "CAP_IPC_OWNER": "bypass permission checks on System V IPC objects",
    "CAP_WAKE_ALARM": "set alarms that wake the host from suspend",
    "CAP_BLOCK_SUSPEND": "keep the host from suspending",
    "CAP_CHECKPOINT_RESTORE": "checkpoint and restore processes (pick pids, read other processes' state)",
    "CAP_SYS_NICE": "raise its own priority and move memory between NUMA nodes, starving other workloads",
    "CAP_SYS_PACCT": "switch process accounting on or off for the host",
    "CAP_SYS_TTY_CONFIG": "vhangup terminals",
    "CAP_LEASE": "take leases on files it does not own",
}

#: host path -> what mounting it (or a directory holding it) gives the container
CONTROL_SURFACES: dict[str, str] = {
    "/": "the host's whole filesystem: every file of the host, including credentials and the engines' sockets",
    "/var/run/docker.sock": "the Docker engine socket: whoever can talk to it can start a privileged "
    "container, which is root on the host",
    "/run/docker.sock": "the Docker engine socket: whoever can talk to it is root on the host",
    "/run/containerd/containerd.sock": "containerd's socket: whoever can talk to it is root on the host",
    "/run/podman/podman.sock": "podman's socket: whoever can talk to it is root on the host",
    "/run/pallet": "pallet's run directory (shim sockets, runtime state, locks): it controls every container",
    "/var/lib/pallet": "pallet's state (images, containers, volumes): it can change what every container runs",
    "/var/lib/docker": "Docker's state: it can change what every Docker container runs",
    "/sys/fs/cgroup": "the host's cgroups: it can change or lift the limits of every process on the host",
    "/proc": "the host's /proc: host processes, their environment, and kernel knobs in /proc/sys",
    "/sys": "the host's /sys: kernel and device settings, including cgroups and firmware",
    "/etc": "the host's configuration, including /etc/shadow, sudoers and cron",
    "/dev": "every device of the host, including its disks",
    "/boot": "the host's kernels and boot loader",
    "/lib/modules": "the host's kernel modules",
    "/root": "root's home on the host (SSH keys, credentials)",
}


def _inside(path: str, parent: str) -> bool:
    return parent in ("/", path) or path.startswith(parent.rstrip("/") + "/")


def _mount_warnings(mounts: Iterable[MountSpec], surfaces: dict[str, str]) -> list[str]:
    out: list[str] = []
    for mount in mounts:
        if mount.type != "bind" or not mount.source:
            continue
        source = os.path.normpath(mount.source)
        access = "read-only" if mount.read_only else "read-write"
        hits: list[str] = []
        if source == "/":
            hits.append(f"/ is {surfaces['/']}")
        else:
            for surface, what in surfaces.items():
                if source == surface:
                    hits.append(f"{surface} is {what}")
                elif surface != "/" and _inside(source, surface):
                    hits.append(f"{source} is inside {surface}: {what}")
                elif _inside(surface, source):
                    hits.append(f"{source} holds {surface}, {what}")
        if hits:
            out.append(
                f"the bind mount {source}:{mount.target} ({access}) exposes a control surface of the host: "
                + "; ".join(hits)
            )
    return out


def warnings_for(
    options: RunOptions,
    mounts: Iterable[MountSpec] | MountOptions | None = None,
    *,
    engine_paths: Iterable[str] = (),
) -> list[str]:
    """One sentence per isolation the options give away (empty for docker's defaults).

    ``mounts`` defaults to ``options.mounts.specs`` (a ``MountOptions`` is
    read as its specs); ``engine_paths`` adds this engine's root and run
    directories when they are not the defaults.
    """
    out: list[str] = []
    security = options.security
    if security.privileged:
        out.append(
            "--privileged gives the container full access to the host: every capability, every host "
            "device, no seccomp filter, no masked /proc paths and writable /sys and cgroups; a process "
            "in it can take over the host"
        )
    else:
        if "ALL" in security.cap_add:
            out.append(
                "--cap-add ALL gives the container every capability, among them CAP_SYS_ADMIN and "
                "CAP_SYS_MODULE: a process in it can take over the host"
            )
        else:
            for cap in security.cap_add:
                what = DANGEROUS_CAPABILITIES.get(cap)
                if what is not None:
                    out.append(f"--cap-add {cap} lets the container {what}")
        seccomp = security.seccomp
        if seccomp == "unconfined":
            out.append(
                "--security-opt seccomp=unconfined turns the system call filter off: the container can "
                "call every system call, including the ones (keyctl, bpf, userfaultfd, unshare, ...) "
                "behind known container escapes"
            )
        elif seccomp:
            out.append(
                f"--security-opt seccomp={seccomp} replaces the default system call filter with that "
                "file: make sure it is an allow-list"
            )
        if security.unmask_system_paths:
            out.append(
                "--security-opt systempaths=unconfined unmasks /proc/kcore, /proc/keys, /sys/firmware and "
                "more, and makes /proc/sys writable: the container can read kernel memory layouts and "
                "change host-wide kernel settings"
            )
    if security.apparmor == "unconfined":
        out.append("--security-opt apparmor=unconfined: no AppArmor profile confines the container")
    if security.no_new_privileges is False and options.process.user not in ("", "0", "root"):
        out.append(
            "--security-opt no-new-privileges=false: setuid binaries in the image can raise the user's privileges"
        )
    if options.network.mode.is_host:
        out.append(
            "--network host shares the host's network stack: the container can bind any host port, reach "
            "services listening on the host's 127.0.0.1 and, with CAP_NET_RAW, see the host's traffic"
        )
    if not security.privileged:
        for device in options.resources.devices:
            out.append(
                f"--device {device.path_on_host} gives the container direct access to the host device "
                f"{device.path_on_host} ({device.permissions}) at {device.path_in_container}"
            )
    surfaces = dict(CONTROL_SURFACES)
    for path in engine_paths:
        clean = os.path.normpath(path)
        surfaces.setdefault(clean, "this engine's own state: it controls every container of the engine")
    if mounts is None:
        mounts = options.mounts
    out.extend(_mount_warnings(mounts.specs if isinstance(mounts, MountOptions) else mounts, surfaces))
    return out
