"""What a plain ``pallet run`` gets: docker's defaults, as data.

The masked and read-only paths, the standard mounts of a container and the
device cgroup rules are docker's (moby ``oci/defaults.go`` and
``daemon/oci_linux.go``), so images behave as they do under docker. The
capability set is docker's less CAP_AUDIT_WRITE, and the seccomp allow-list
(``profiles/seccomp-default.json``, read by ``engine.spec.seccomp``) is
docker's made stricter: docs/security.md gives the measurement behind each
difference.
"""

from __future__ import annotations

from pallet.oci.runtime_spec import READONLY_PATHS, DeviceRule, Mount

__all__ = [
    "DEFAULT_CAPABILITIES",
    "DEFAULT_DEVICE_RULES",
    "DEFAULT_PATH",
    "DEFAULT_SHM_SIZE",
    "DEFAULT_STOP_SIGNAL",
    "DEFAULT_STOP_TIMEOUT",
    "INIT_PATH",
    "INIT_SOURCES",
    "MASKED_PATHS",
    "READONLY_PATHS",
    "default_mounts",
]

#: docker's 14 default capabilities less CAP_AUDIT_WRITE (bounding, effective and permitted sets of
#: a root process). CAP_AUDIT_WRITE lets a container write records into the host's audit log
#: (measured on Linux 6.18: an AUDIT_USER message from a private pid namespace is accepted), so a
#: container could forge logins or bury its trail; libaudit (PAM, sudo, sshd, login) takes EPERM
#: without the capability as "auditing is off" and goes on, and podman's defaults drop it too.
#: CAP_NET_RAW stays for busybox's ping, which opens a raw ICMP socket and never a ping socket; the
#: seccomp profile confines it to that (no packet sockets, no other raw protocols, no IP_HDRINCL).
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
)

# READONLY_PATHS (visible but read-only) is oci.runtime_spec's: docker's list is runc's.
# MASKED_PATHS is not: docker's adds /sys/devices/virtual/powercap and orders them its own way.

#: hidden from the container (an empty file or tmpfs over them): they leak host data or control it
MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)

#: the PATH a container gets when neither the image nor the user sets one
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: /dev/shm size without --shm-size (docker's 64 MiB)
DEFAULT_SHM_SIZE = 64 * 1024 * 1024
DEFAULT_STOP_SIGNAL = "SIGTERM"
#: seconds ``stop`` waits before SIGKILL
DEFAULT_STOP_TIMEOUT = 10

#: where ``--init`` puts the init in the container (docker's path, so scripts that look for it work)
INIT_PATH = "/sbin/docker-init"
#: host files tried for ``--init``, in order; it must be static: the image may have no libc
INIT_SOURCES: tuple[str, ...] = (
    "/usr/bin/tini-static",
    "/usr/libexec/docker/docker-init",
    "/usr/bin/docker-init",
)

_RWM = "rwm"
#: deny everything, then allow the standard character devices (null, zero, full, random, urandom,
#: tty, console, ptmx, pts) and nothing else; runtimes also add their own always-allowed set
DEFAULT_DEVICE_RULES: tuple[DeviceRule, ...] = (
    DeviceRule(allow=False, access=_RWM),
    DeviceRule(allow=True, type="c", major=1, minor=5, access=_RWM),  # /dev/zero
    DeviceRule(allow=True, type="c", major=1, minor=3, access=_RWM),  # /dev/null
    DeviceRule(allow=True, type="c", major=1, minor=9, access=_RWM),  # /dev/urandom
    DeviceRule(allow=True, type="c", major=1, minor=8, access=_RWM),  # /dev/random
    DeviceRule(allow=True, type="c", major=1, minor=7, access=_RWM),  # /dev/full
    DeviceRule(allow=True, type="c", major=5, minor=0, access=_RWM),  # /dev/tty
    DeviceRule(allow=True, type="c", major=5, minor=1, access=_RWM),  # /dev/console
    DeviceRule(allow=True, type="c", major=5, minor=2, access=_RWM),  # /dev/ptmx
    DeviceRule(allow=True, type="c", major=136, minor=None, access=_RWM),  # /dev/pts/*
    DeviceRule(allow=False, type="c", major=10, minor=229, access=_RWM),  # /dev/fuse
)


def default_mounts(*, shm_size: int = DEFAULT_SHM_SIZE) -> tuple[Mount, ...]:
    """The mounts every container gets, in docker's order (user mounts may replace them)."""
    return (
        Mount(destination="/proc", type="proc", source="proc", options=("nosuid", "noexec", "nodev")),
        Mount(
            destination="/dev",
            type="tmpfs",
            source="tmpfs",
            options=("nosuid", "strictatime", "mode=755", "size=65536k"),
        ),
        Mount(
            destination="/dev/pts",
            type="devpts",
            source="devpts",
            options=("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"),
        ),
        Mount(destination="/sys", type="sysfs", source="sysfs", options=("nosuid", "noexec", "nodev", "ro")),
        Mount(
            destination="/sys/fs/cgroup",
            type="cgroup",
            source="cgroup",
            options=("nosuid", "noexec", "nodev", "relatime", "ro"),
        ),
        Mount(
            destination="/dev/mqueue", type="mqueue", source="mqueue", options=("nosuid", "noexec", "nodev")
        ),
        Mount(
            destination="/dev/shm",
            type="tmpfs",
            source="shm",
            options=("nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size}"),
        ),
    )
