"""docker's option syntaxes, parsed: sizes, CPUs, ulimits, capabilities, security options,
devices, sysctls, tmpfs, restart policies, log options, network modes, ``-v`` volumes,
``--mount`` fields, environment entries and env files, labels and signals.

Each ``parse_*`` takes one value as a user writes it and returns it parsed
(sizes in bytes, CPUs in nano-CPUs, capabilities as ``CAP_X`` names, mounts
as ``MountSpec``), or raises ``InvalidArgument`` whose message names the
syntax, never a flag (``invalid size: "12x" (want ...)``): the same parsers
serve the CLI, ``pallet.Client`` and the coming API. A front end that
knows which of its inputs it was parsing says so in its own words: the CLI
prefixes docker's ``invalid argument "12x" for "-m, --memory" flag: ``.

Pure, but for ``parse_env``/``parse_env_file`` (the environment, a file).
"""

from __future__ import annotations

import os
import types

from pallet.errors import InvalidArgument, Unsupported
from pallet.linux.signals import parse_signal as _signal_number
from pallet.oci.record import EMPTY, Record
from pallet.oci.runtime_spec import ALL_CAPABILITIES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

__all__ = [
    "LOG_DRIVERS",
    "NETWORK_KINDS",
    "RESTART_POLICIES",
    "ULIMIT_NAMES",
    "DeviceMapping",
    "MountSpec",
    "NetworkMode",
    "PortRequest",
    "RestartPolicy",
    "Ulimit",
    "check_subpath",
    "collect_env",
    "is_cpu_list",
    "is_hostname",
    "parse_bool",
    "parse_bytes",
    "parse_capability",
    "parse_cgroupns_mode",
    "parse_cpus",
    "parse_device",
    "parse_device_cgroup_rule",
    "parse_env",
    "parse_env_file",
    "parse_extra_host",
    "parse_integer",
    "parse_ip",
    "parse_ipc_mode",
    "parse_label",
    "parse_link",
    "parse_log_driver",
    "parse_log_opt",
    "parse_mac",
    "parse_mount",
    "parse_network",
    "parse_pid_mode",
    "parse_publish",
    "parse_restart",
    "parse_security_opt",
    "parse_signal",
    "parse_sysctl",
    "parse_tmpfs",
    "parse_ulimit",
    "parse_uts_mode",
    "parse_volume",
    "parse_volumes_from",
]

#: restart policy names (docker's)
RESTART_POLICIES: tuple[str, ...] = ("no", "always", "on-failure", "unless-stopped")
#: the kinds of ``NetworkMode``
NETWORK_KINDS: tuple[str, ...] = ("private", "none", "host", "bridge", "container", "network")
#: ulimit names -> the spec's rlimit type (go-units' table)
ULIMIT_NAMES: Mapping[str, str] = types.MappingProxyType(
    {
        "as": "RLIMIT_AS",
        "core": "RLIMIT_CORE",
        "cpu": "RLIMIT_CPU",
        "data": "RLIMIT_DATA",
        "fsize": "RLIMIT_FSIZE",
        "locks": "RLIMIT_LOCKS",
        "memlock": "RLIMIT_MEMLOCK",
        "msgqueue": "RLIMIT_MSGQUEUE",
        "nice": "RLIMIT_NICE",
        "nofile": "RLIMIT_NOFILE",
        "nproc": "RLIMIT_NPROC",
        "rss": "RLIMIT_RSS",
        "rtprio": "RLIMIT_RTPRIO",
        "rttime": "RLIMIT_RTTIME",
        "sigpending": "RLIMIT_SIGPENDING",
        "stack": "RLIMIT_STACK",
    }
)
#: docker refuses memory limits below this (the kernel and runc need room to start the init)
MIN_MEMORY = 6 * 1024 * 1024

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
_CONSISTENCY = ("consistent", "cached", "delegated", "default")
_VOLUME_NAME_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_VOLUME_NAME_REST = _VOLUME_NAME_FIRST | frozenset("_.-")
_TMPFS_FLAGS = frozenset(
    [
        "ro",
        "rw",
        "nosuid",
        "suid",
        "nodev",
        "dev",
        "noexec",
        "exec",
        "sync",
        "async",
        "dirsync",
        "mand",
        "nomand",
        "atime",
        "noatime",
        "diratime",
        "nodiratime",
        "relatime",
        "norelatime",
        "strictatime",
        "nostrictatime",
        "private",
        "rprivate",
        "shared",
        "rshared",
        "slave",
        "rslave",
        "tmpcopyup",
    ]
)
_TMPFS_KEYS = frozenset(("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"))
# sysctls a container may set without changing the host: those of the ipc and network
# namespaces (docker's opts.ValidateSysctl list); the uts ones are set through --hostname
_IPC_SYSCTLS = frozenset(
    (
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    )
)
#: docker's log drivers (a name outside these is docker's "no log driver named" error); pallet
#: has json-file and none
LOG_DRIVERS = frozenset(
    (
        "json-file", "local", "none", "syslog", "journald", "gelf", "fluentd", "awslogs", "splunk",
        "etwlogs", "gcplogs", "logentries",
    )
)  # fmt: skip
_LOG_OPTS = frozenset(
    ("max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex", "tag")
)
_TRUE = ("1", "t", "true", "T", "TRUE", "True")
_FALSE = ("0", "f", "false", "F", "FALSE", "False")


class RestartPolicy(Record):
    """A restart policy: ``name`` is one of ``RESTART_POLICIES``; ``max_retries`` only with on-failure."""

    name: str = "no"
    max_retries: int = 0

    def to_text(self) -> str:
        """The text that gives this policy (``on-failure:3``)."""
        return f"{self.name}:{self.max_retries}" if self.max_retries else self.name


class Ulimit(Record):
    """A ulimit, ``name=soft[:hard]``; -1 (unlimited) is stored as 2**64-1, as the spec wants."""

    name: str
    soft: int
    hard: int


class DeviceMapping(Record):
    """A device mapping, ``host[:container][:permissions]``."""

    path_on_host: str
    path_in_container: str
    permissions: str = "rwm"


class MountSpec(Record):
    """One volume (``-v``) or mount (``--mount``) request, before the engine resolves it to an OCI mount.

    ``type`` is ``bind``, ``volume`` or ``tmpfs``. ``source`` is the host path
    (bind), the volume name (volume; ``""`` asks for a new anonymous volume)
    or ``""`` (tmpfs). ``create_source``: a missing bind source is created
    (docker's ``-v``) instead of refused (``--mount``). ``relabel`` keeps
    ``z``/``Z``, accepted and ignored (no SELinux here).
    """

    type: str
    source: str = ""
    target: str
    read_only: bool = False
    propagation: str = ""
    relabel: str = ""
    create_source: bool = False
    volume_nocopy: bool = False
    volume_labels: Mapping[str, str] = EMPTY
    volume_driver: str = ""
    volume_options: Mapping[str, str] = EMPTY
    #: a path inside the volume mounted instead of its root (docker's ``volume-subpath``)
    volume_subpath: str = ""
    tmpfs_size: int | None = None
    tmpfs_mode: int | None = None


class NetworkMode(Record):
    """docker's network mode, parsed: ``kind`` is one of ``NETWORK_KINDS``.

    ``bridge`` (docker's "default", and the default) is the default network
    ``bridge`` (``private``, what records of an older pallet hold, means the same); ``none`` a network namespace of its own with loopback only;
    ``host`` the host's own; ``container`` (``name`` is the container) joins
    another container's; ``network`` (``name``) a user network.
    """

    kind: str = "bridge"
    name: str = ""

    @property
    def is_host(self) -> bool:
        """The container shares the host's network stack."""
        return self.kind == "host"

    @property
    def on_bridge(self) -> bool:
        """The container gets endpoints on a bridge network (the default one, or a user network)."""
        return self.kind in ("private", "bridge", "network")

    @property
    def network_name(self) -> str:
        """The bridge network the mode names: ``bridge`` for the default, the user network's name, else ""."""
        if self.kind in ("private", "bridge"):
            return "bridge"
        return self.name if self.kind == "network" else ""

    @property
    def own_namespace(self) -> bool:
        """The container gets a network namespace of its own (not the host's, not another container's)."""
        return self.kind not in ("host", "container")

    def to_text(self) -> str:
        """docker's ``HostConfig.NetworkMode`` string (``bridge``, ``host``, ``container:web``, ``mynet``);
        docker's default mode shows as ``bridge``, as dockerd records it."""
        if self.kind == "private":
            return "bridge"
        if self.kind == "container":
            return f"container:{self.name}"
        return self.name if self.kind == "network" else self.kind


class PortRequest(Record):
    """One ``-p`` request: host address (``""``: all), host ports ``host_start``-``host_end`` (0: any
    free one), container ports ``container_start``-``container_end``, protocol."""

    host_ip: str = ""
    host_start: int = 0
    host_end: int = 0
    container_start: int = 0
    container_end: int = 0
    protocol: str = "tcp"


def parse_bool(text: str) -> bool | None:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


# ---------------------------------------------------------------------------
# numbers


def parse_bytes(text: str) -> int:
    """``512m``, ``1.5g``, ``1024``, ``64MiB`` -> bytes (binary units, as docker's RAMInBytes)."""
    body = text.strip().lower()
    for suffix in ("ib", "b"):
        if len(body) > 1 and body.endswith(suffix) and (body[: -len(suffix)][-1:] in "kmgtp"):
            body = body[: -len(suffix)]
            break
    unit = ""
    if body and body[-1] in _UNITS:
        unit = body[-1]
        body = body[:-1].rstrip(" ")
    whole, dot, fraction = body.partition(".")
    if not whole.isdigit() or (dot and not fraction.isdigit()) or not whole.isascii():
        raise InvalidArgument(
            f'invalid size: "{text}" (want a number with an optional unit b, k, m, g, t or p, e.g. 512m)',
        )
    scale = _UNITS[unit]
    value = int(whole) * scale
    if fraction:
        value += int(fraction) * scale // 10 ** len(fraction)
    return value


def parse_cpus(text: str) -> int:
    """``1.5`` -> 1500000000 nano-CPUs (docker's NanoCpus); at most nine decimals."""
    whole, dot, fraction = text.strip().partition(".")
    whole = whole or "0"
    if not whole.isdigit() or (dot and not fraction.isdigit()) or not whole.isascii():
        raise InvalidArgument(f"failed to parse {text} as a rational number (want e.g. 1.5)")
    if len(fraction) > 9:
        raise InvalidArgument("value is too precise (at most nine decimals)")
    return int(whole) * 10**9 + int((fraction or "0").ljust(9, "0"))


def parse_integer(text: str, what: str, *, low: int | None = None) -> int:
    body = text.strip()
    digits = body[1:] if body[:1] in "+-" else body
    if not digits.isdigit() or not digits.isascii():
        raise InvalidArgument(f'{what} must be an integer, got "{text}"')
    value = int(body)
    if low is not None and value < low:
        raise InvalidArgument(f"{what} must be at least {low}, got {value}")
    return value


# ---------------------------------------------------------------------------
# process: env, labels, signals, ulimits, capabilities


def parse_env(text: str, environ: Mapping[str, str] | None = None) -> str | None:
    """``-e NAME=value`` as is; ``-e NAME`` takes NAME from ``environ`` (None: absent, dropped)."""
    name, sep, _ = text.partition("=")
    if not name:
        raise InvalidArgument(f'invalid environment variable: "{text}" (want NAME=value or NAME)')
    if sep:
        return text
    source = os.environ if environ is None else environ
    value = source.get(name)
    return None if value is None else f"{name}={value}"


def parse_env_file(path: str, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The entries of a docker env file: ``NAME=value`` lines, ``NAME`` alone from ``environ``,
    ``#`` comments and blank lines skipped; values are kept verbatim (no quotes removed)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InvalidArgument(f"open {path}: {(e.strerror or str(e)).lower()}") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    entries: list[str] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode().rstrip("\r").lstrip()
        except UnicodeDecodeError:
            raise InvalidArgument(f"env file {path} contains invalid utf8 bytes at line {number}") from None
        if not line or line.startswith("#"):
            continue
        name, sep, _ = line.partition("=")
        if not name:
            raise InvalidArgument(f"no variable name on line '{line}' of env file {path}")
        if any(c.isspace() for c in name):
            raise InvalidArgument(f"variable '{name}' contains whitespaces (env file {path}, line {number})")
        entry = line if sep else parse_env(name, environ)
        if entry is not None:
            entries.append(entry)
    return tuple(entries)


def collect_env(
    env: Iterable[str], env_files: Iterable[str] = (), environ: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """The user's environment as docker's CLI builds it: env-file entries first, then ``-e``."""
    out: list[str] = []
    for path in env_files:
        out.extend(parse_env_file(path, environ))
    for text in env:
        entry = parse_env(text, environ)
        if entry is not None:
            out.append(entry)
    return tuple(out)


def parse_label(text: str) -> tuple[str, str]:
    """``--label key=value`` (``key`` alone is an empty value)."""
    key, _, value = text.partition("=")
    if not key.strip():
        raise InvalidArgument(f'invalid label "{text}": the key is empty (want key=value)')
    return key, value


def parse_signal(text: str) -> str:
    """A signal as docker stores it: ``SIGTERM``/``SIGRTMIN+3`` for names, the number kept as given."""
    number = _signal_number(text.strip())
    if number is None:
        raise InvalidArgument(f"invalid signal: {text} (want a name such as SIGTERM or a number 1-64)")
    if text.strip().isdigit():
        return text.strip()
    name = text.strip().upper()
    return name if name.startswith("SIG") else "SIG" + name


def parse_ulimit(text: str) -> Ulimit:
    """``nofile=1024:2048`` or ``nproc=512`` (soft = hard); -1 is unlimited."""
    name, sep, limits = text.partition("=")
    if not sep or not limits:
        raise InvalidArgument(
            f"invalid ulimit argument: {text} (want name=soft[:hard], e.g. nofile=1024:2048)"
        )
    if name not in ULIMIT_NAMES:
        raise InvalidArgument(f"invalid ulimit type: {name} (known: {', '.join(sorted(ULIMIT_NAMES))})")
    soft_text, colon, hard_text = limits.partition(":")
    if colon and not hard_text:
        raise InvalidArgument(f"invalid ulimit argument: {text} (want name=soft[:hard])")
    values: list[int] = []
    for part in (soft_text, hard_text if colon else soft_text):
        value = parse_integer(part, "ulimit value", low=-1)
        values.append(2**64 - 1 if value == -1 else value)
    soft, hard = values
    if soft > hard:
        raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    return Ulimit(name=name, soft=soft, hard=hard)


def parse_capability(text: str) -> str:
    """``sys_admin``, ``CAP_SYS_ADMIN`` -> ``CAP_SYS_ADMIN``; ``all`` -> ``ALL``."""
    name = text.strip().upper()
    if name == "ALL":
        return name
    if not name.startswith("CAP_"):
        name = "CAP_" + name
    if name not in ALL_CAPABILITIES:
        raise InvalidArgument(f'unknown capability: "{name}" (see capabilities(7) for the names)')
    return name


def parse_security_opt(text: str) -> str:
    """One ``--security-opt``, in canonical form: ``no-new-privileges[=true|false]``,
    ``seccomp=unconfined|FILE``, ``apparmor=PROFILE``, ``label=...``, ``systempaths=unconfined``.

    ``key:value`` (docker's deprecated separator) is accepted and written as ``key=value``.
    """
    if text in ("no-new-privileges", "disable"):
        return "no-new-privileges=true" if text == "no-new-privileges" else "label=disable"
    sep = "=" if "=" in text else ":"
    key, found, value = text.partition(sep)
    if not found:
        raise InvalidArgument(
            f'invalid security option: "{text}" (want no-new-privileges, seccomp=unconfined|FILE, '
            "apparmor=PROFILE, label=VALUE or systempaths=unconfined)"
        )
    if key == "no-new-privileges":
        flag = parse_bool(value)
        if flag is None:
            raise InvalidArgument(f'invalid security option: "{text}" (want no-new-privileges=true or false)')
        return f"no-new-privileges={'true' if flag else 'false'}"
    if key == "seccomp":
        if not value:
            raise InvalidArgument(
                f'invalid security option: "{text}" (want seccomp=unconfined or seccomp=FILE)'
            )
        return f"seccomp={value}"
    if key == "systempaths":
        if value != "unconfined":
            raise InvalidArgument(f'invalid security option: "{text}" (only systempaths=unconfined exists)')
        return "systempaths=unconfined"
    if key in ("apparmor", "label"):
        return f"{key}={value}"
    raise InvalidArgument(
        f'invalid security option: "{text}": unknown option "{key}" (want no-new-privileges, seccomp, '
        "apparmor, label or systempaths)"
    )


# ---------------------------------------------------------------------------
# devices, sysctls, tmpfs, restart, logs, network


def _is_device_mode(text: str) -> bool:
    return bool(text) and len(text) <= 3 and set(text) <= {"r", "w", "m"} and len(set(text)) == len(text)


def parse_device(text: str) -> DeviceMapping:
    """``/dev/a``, ``/dev/a:/dev/b``, ``/dev/a:rw`` or ``/dev/a:/dev/b:rwm``."""
    parts = text.split(":")
    permissions = "rwm"
    if len(parts) == 3:
        if not _is_device_mode(parts[2]):
            raise InvalidArgument(f"invalid device mode: {parts[2]} (want a combination of r, w and m)")
        permissions = parts[2]
        parts = parts[:2]
    elif len(parts) == 2 and _is_device_mode(parts[1]):
        permissions = parts[1]
        parts = parts[:1]
    if len(parts) > 2 or not parts[0]:
        raise InvalidArgument(f"bad format for path: {text} (want /dev/HOST[:/dev/CONTAINER][:rwm])")
    source = parts[0]
    target = parts[1] if len(parts) == 2 and parts[1] else source
    for path in (source, target):
        if not path.startswith("/"):
            raise InvalidArgument(f"bad format for path: {path} (device paths must be absolute)")
    return DeviceMapping(
        path_on_host=source, path_in_container=os.path.normpath(target), permissions=permissions
    )


def parse_sysctl(text: str) -> tuple[str, str]:
    """``net.core.somaxconn=1024``; only sysctls of the container's own namespaces are allowed."""
    key, sep, value = text.partition("=")
    key = key.strip().replace("/", ".")
    if not sep or not key:
        raise InvalidArgument(f"sysctl '{text}' is not of the form key=value")
    if not (key in _IPC_SYSCTLS or key.startswith(("fs.mqueue.", "net."))):
        raise InvalidArgument(
            f'sysctl "{key}" is not namespaced: setting it would change the host; allowed are '
            "net.*, fs.mqueue.*, kernel.msg*, kernel.sem and kernel.shm* (the hostname is set as the container's hostname)",
        )
    return key, value


def parse_tmpfs(text: str) -> tuple[str, str]:
    """``/run`` or ``/run:rw,size=64m,mode=1777`` -> (path, options)."""
    path, _, options = text.partition(":")
    if not path.startswith("/"):
        raise InvalidArgument(f"invalid mount path: '{path}' mount path must be absolute")
    if os.path.normpath(path) == "/":
        raise InvalidArgument("invalid specification: destination can't be '/'")
    for option in filter(None, options.split(",")):
        key, sep, value = option.partition("=")
        if sep:
            if key not in _TMPFS_KEYS:
                raise InvalidArgument(
                    f'invalid tmpfs option "{option}" (known keys: {", ".join(sorted(_TMPFS_KEYS))})',
                )
            if key == "size":
                parse_bytes(value)
            elif key == "mode" and not _is_octal(value):
                raise InvalidArgument(f'invalid tmpfs mode "{value}" (want octal, e.g. 1777)')
        elif option not in _TMPFS_FLAGS:
            raise InvalidArgument(f'invalid tmpfs option "{option}"')
    return os.path.normpath(path), options


def _is_octal(text: str) -> bool:
    return bool(text) and set(text) <= set("01234567")


def parse_restart(text: str) -> RestartPolicy:
    """``no``, ``always``, ``unless-stopped``, ``on-failure`` or ``on-failure:N``."""
    name, colon, count = text.partition(":")
    if name not in RESTART_POLICIES:
        raise InvalidArgument(
            f"invalid restart policy format: {text} (want no, always, on-failure[:N] or unless-stopped)",
        )
    if not colon:
        return RestartPolicy(name=name)
    if name != "on-failure":
        raise InvalidArgument(f"maximum retry count cannot be used with restart policy '{name}'")
    retries = parse_integer(count, "maximum retry count")
    if retries < 0:
        raise InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
    return RestartPolicy(name=name, max_retries=retries)


def parse_log_opt(text: str) -> tuple[str, str]:
    """One json-file ``--log-opt``: ``max-size=10m``, ``max-file=3``, ``compress=false``, ..."""
    key, sep, value = text.partition("=")
    if not sep:
        raise InvalidArgument(f"invalid log opt {text!r} (want key=value, e.g. max-size=10m)")
    if key not in _LOG_OPTS:
        raise InvalidArgument(f"unknown log opt '{key}' for json-file log driver")
    if key == "max-size" and value != "-1":
        if parse_bytes(value) <= 0:
            raise InvalidArgument("max-size must be a positive size, e.g. 10m")
    elif key == "max-file" and parse_integer(value, "max-file") < 1:
        raise InvalidArgument("max-file cannot be less than 1")
    elif key == "compress" and parse_bool(value) is None:
        raise InvalidArgument("compress must be true or false")
    return key, value


def parse_network(text: str) -> NetworkMode:
    """``none``, ``host``, ``bridge`` (also ``default``: the default network), ``container:REF`` or a
    user network's name."""
    if text in ("", "default", "private", "bridge"):
        return NetworkMode()
    if text in ("none", "host"):
        return NetworkMode(kind=text)
    kind, colon, ref = text.partition(":")
    if colon and kind == "container":
        if not ref:
            raise InvalidArgument(f'invalid network mode "{text}": want container:NAME|ID')
        return NetworkMode(kind="container", name=ref)
    return NetworkMode(kind="network", name=text)


def _container_mode(text: str, what: str, simple: tuple[str, ...]) -> str:
    """One of the ``simple`` words or ``container:NAME``; docker's ``invalid <what> mode`` otherwise."""
    if text in simple:
        return text
    kind, colon, ref = text.partition(":")
    if colon and kind == "container" and ref:
        return text
    raise InvalidArgument(f"invalid {what} mode: {text}")


def parse_pid_mode(text: str) -> str:
    """``--pid``: "" (a pid namespace of its own), ``host`` or ``container:NAME``."""
    return _container_mode(text, "PID", ("", "host"))


def parse_ipc_mode(text: str) -> str:
    """``--ipc``: "" (the default, ``private``), ``private``, ``shareable`` (other containers may
    join it), ``none`` (no /dev/shm), ``host`` or ``container:NAME``."""
    return _container_mode(text, "IPC", ("", "private", "shareable", "none", "host"))


def parse_uts_mode(text: str) -> str:
    """``--uts``: "" (its own hostname) or ``host``."""
    if text not in ("", "host"):
        raise InvalidArgument(f"invalid UTS mode: {text}")
    return text


def parse_cgroupns_mode(text: str) -> str:
    """``--cgroupns``: "" (the host's default: private on cgroup v2, host on v1), ``private`` or ``host``."""
    if text not in ("", "private", "host"):
        raise InvalidArgument(f"invalid cgroup namespace mode: {text}")
    return text


def parse_link(text: str) -> str:
    """``--link NAME[:ALIAS]`` as ``NAME:ALIAS`` (the alias defaults to the name; a leading ``/`` of
    the name is dropped, as docker's ParseLink)."""
    parts = text.split(":")
    if len(parts) > 2 or not parts[0].strip("/") or (len(parts) == 2 and not parts[1]):
        raise InvalidArgument(f"bad format for links: {text}")
    name = parts[0].lstrip("/")
    alias = parts[1] if len(parts) == 2 else name
    return f"{name}:{alias.lstrip('/')}"


def parse_volumes_from(text: str) -> tuple[str, str]:
    """``--volumes-from NAME[:ro|:rw]`` -> (container, mode); "" keeps each mount's own mode."""
    name, colon, mode = text.partition(":")
    if not name:
        raise InvalidArgument(f"invalid volumes-from: {text} (want CONTAINER[:ro|:rw])")
    if colon and mode not in ("ro", "rw"):
        raise InvalidArgument(f"invalid mode: {mode}")
    return name, mode


def parse_device_cgroup_rule(text: str) -> tuple[str, int | None, int | None, str]:
    """``--device-cgroup-rule 'c 7:128 rwm'`` -> (type, major, minor, access); ``*`` is None (any)."""
    fields = text.split()
    numbers = fields[1].split(":") if len(fields) == 3 else []
    if (
        len(fields) != 3
        or fields[0] not in ("a", "b", "c")
        or len(numbers) != 2
        or not all(n == "*" or n.isdigit() for n in numbers)
        or not _is_device_mode(fields[2])
    ):
        raise InvalidArgument(f"invalid device cgroup format '{text}'")
    major, minor = (None if n == "*" else int(n) for n in numbers)
    return fields[0], major, minor, fields[2]


def parse_log_driver(text: str) -> str:
    """``--log-driver``: "" and ``json-file`` (what pallet writes) or ``none`` (nothing kept);
    another of docker's drivers is ``Unsupported``, a name docker does not know is docker's own error."""
    if text in ("", "json-file", "none"):
        return text
    if text not in LOG_DRIVERS:
        raise InvalidArgument(f"logger: no log driver named '{text}' is registered")
    raise Unsupported(
        f'log driver "{text}" is not supported by pallet: containers log to json-file '
        "(leave --log-driver out, or use json-file or none)"
    )


def _port_range(text: str, what: str, whole: str) -> tuple[int, int]:
    first, dash, last = text.partition("-")
    try:
        start = int(first)
        end = int(last) if dash else start
    except ValueError:
        raise InvalidArgument(
            f'invalid {what} "{text}" in "{whole}": want a port or a range such as 8000-8010'
        ) from None
    if not 0 < start <= end < 65536:
        raise InvalidArgument(f'invalid {what} "{text}" in "{whole}": ports lie between 1 and 65535')
    return start, end


def parse_publish(text: str) -> PortRequest:
    """docker's ``-p``: ``[ip:][hostPort:]containerPort[/tcp|udp|sctp]``, either port a range
    (``8000-8002:80-82``); an empty or missing host port is any free one; an IPv6 address in brackets."""
    body, _, protocol = text.partition("/")
    protocol = (protocol or "tcp").lower()
    if protocol not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f'invalid protocol "{protocol}" in "{text}": want tcp, udp or sctp')
    host_ip = ""
    if body.startswith("["):
        address, bracket, rest = body[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise InvalidArgument(f'invalid publish "{text}": want [ip:][hostPort:]containerPort[/protocol]')
        host_ip, body = parse_ip(address), rest[1:]
        parts = ["", *body.split(":")] if body.count(":") == 1 else ["", "", body]
        parts[0] = host_ip
    else:
        parts = body.split(":")
        if len(parts) > 3:
            raise InvalidArgument(f'invalid publish "{text}": want [ip:][hostPort:]containerPort[/protocol]')
        parts = [""] * (3 - len(parts)) + parts
        if parts[0]:
            host_ip = parse_ip(parts[0])
    host, container = parts[1], parts[2]
    if not container:
        raise InvalidArgument(f'invalid publish "{text}": no container port')
    container_start, container_end = _port_range(container, "container port", text)
    host_start = host_end = 0
    if host:
        host_start, host_end = _port_range(host, "host port", text)
        count, host_count = container_end - container_start, host_end - host_start
        if count and count != host_count:
            raise InvalidArgument(
                f'invalid ranges in "{text}": the host range {host} and the container range {container} '
                "differ in length"
            )
    return PortRequest(
        host_ip=host_ip, host_start=host_start, host_end=host_end, container_start=container_start,
        container_end=container_end, protocol=protocol,
    )  # fmt: skip


def parse_ip(text: str) -> str:
    """An IPv4 or IPv6 address, as written canonically; ``InvalidArgument`` naming it otherwise."""
    import ipaddress

    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise InvalidArgument(f'invalid IP address "{text}"') from None


def parse_mac(text: str) -> str:
    """A MAC address (six hex pairs, ``:`` or ``-``), lower case with ``:``."""
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 and set(p.lower()) <= set("0123456789abcdef") for p in parts):
        raise InvalidArgument(f"invalid MAC address {text!r}: want six hex pairs such as 02:42:ac:11:00:02")
    if int(parts[0], 16) & 1:
        raise InvalidArgument(f"invalid MAC address {text!r}: a multicast address cannot be a container's")
    return ":".join(parts).lower()


def parse_extra_host(text: str) -> tuple[str, str]:
    """docker's ``--add-host name:ip`` (also ``name=ip``; ``ip`` may be ``host-gateway``)."""
    sep = "=" if "=" in text else ":"
    name, found, address = text.partition(sep)
    if not found or not name or not address:
        raise InvalidArgument(f'invalid argument "{text}": want host:ip (or host:host-gateway)')
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    if address != "host-gateway":
        address = parse_ip(address)
    return name, address


# ---------------------------------------------------------------------------
# -v and --mount


def _check_target(target: str, spec: str, kind: str) -> str:
    if not target.startswith("/"):
        raise InvalidArgument(
            f"invalid mount config for type \"{kind}\": invalid mount path: '{target}' mount path must be absolute"
        )
    clean = os.path.normpath(target)
    if clean == "/":
        raise InvalidArgument(f"invalid specification: destination can't be '/' in '{spec}'")
    return clean


def _check_volume_name(name: str, spec: str) -> None:
    if len(name) < 2:
        raise InvalidArgument(
            f"invalid volume specification: '{spec}': volume name \"{name}\" is too short, "
            "names should be at least two alphanumeric characters"
        )
    if name[0] not in _VOLUME_NAME_FIRST or not set(name) <= _VOLUME_NAME_REST:
        raise InvalidArgument(
            f"invalid volume specification: '{spec}': \"{name}\" includes invalid characters for a local "
            'volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            "directory, use absolute path"
        )


def parse_volume(text: str) -> MountSpec:
    """``-v``: ``/path`` (anonymous volume), ``NAME:/path[:opts]`` or ``/host:/path[:opts]``.

    opts is a comma list of ``ro``/``rw``, ``z``/``Z``, a propagation
    (``rprivate``, ``rshared``, ...; binds only), ``nocopy`` (volumes only)
    and a consistency word (ignored, as on Linux docker).
    """
    parts = text.split(":")
    if not text or len(parts) > 3 or any(not p for p in parts[:2]):
        raise InvalidArgument(f"invalid volume specification: '{text}' (want [NAME|/HOST:]/PATH[:ro|rw|z|Z])")
    if len(parts) == 1:
        target = _check_target(parts[0], text, "volume")
        return MountSpec(type="volume", target=target)
    source, target = parts[0], parts[1]
    is_bind = source.startswith("/")
    kind = "bind" if is_bind else "volume"
    target = _check_target(target, text, kind)
    if is_bind:
        source = os.path.normpath(source)
    else:
        _check_volume_name(source, text)
    read_only = False
    propagation = relabel = ""
    nocopy = False
    seen_rw = False
    for mode in parts[2].split(",") if len(parts) == 3 else ():
        if mode in ("ro", "rw"):
            if seen_rw:
                raise InvalidArgument(f"invalid mode: {parts[2]} (give ro or rw once) in '{text}'")
            seen_rw = True
            read_only = mode == "ro"
        elif mode in ("z", "Z"):
            relabel = mode
        elif mode in _PROPAGATIONS and is_bind and not propagation:
            propagation = mode
        elif mode == "nocopy" and not is_bind:
            nocopy = True
        elif mode in _CONSISTENCY:
            continue
        else:
            raise InvalidArgument(
                f"invalid mode: {mode} in '{text}' (want ro, rw, z, Z, a propagation such as rslave for binds, "
                "or nocopy for volumes)"
            )
    return MountSpec(
        type=kind,
        source=source,
        target=target,
        read_only=read_only,
        propagation=propagation,
        relabel=relabel,
        create_source=is_bind,
        volume_nocopy=nocopy,
    )


def parse_mount(text: str) -> MountSpec:
    """``--mount type=bind|volume|tmpfs,source=...,target=...[,readonly][,...]`` (docker's keys)."""
    fields: dict[str, Any] = {"type": "volume"}
    labels: dict[str, str] = {}
    driver_opts: dict[str, str] = {}
    volume_keys: list[str] = []
    bind_keys: list[str] = []
    tmpfs_keys: list[str] = []
    for field in _split_csv(text):
        key, sep, value = field.partition("=")
        key = key.strip().lower()
        if not sep and key not in ("readonly", "ro", "volume-nocopy", "bind-nonrecursive"):
            raise InvalidArgument(f"invalid field '{field}' must be a key=value pair (in mount '{text}')")
        if key == "type":
            if value not in ("bind", "volume", "tmpfs"):
                raise InvalidArgument(
                    f"invalid mount type \"{value}\" in mount '{text}' (want bind, volume or tmpfs)"
                )
            fields["type"] = value
        elif key in ("source", "src"):
            fields["source"] = value
        elif key in ("target", "destination", "dst"):
            fields["target"] = value
        elif key in ("readonly", "ro"):
            flag_value = parse_bool(value) if sep else True
            if flag_value is None:
                raise InvalidArgument(f"invalid value for {key}: {value} (want true or false)")
            fields["read_only"] = flag_value
        elif key == "bind-propagation":
            if value not in _PROPAGATIONS:
                raise InvalidArgument(
                    f'invalid bind-propagation "{value}" (want one of {", ".join(_PROPAGATIONS)})'
                )
            fields["propagation"] = value
            bind_keys.append(key)
        elif key == "bind-nonrecursive":
            raise Unsupported(
                "bind-nonrecursive is not supported: pallet bind mounts are recursive, as docker's"
            )
        elif key == "consistency":
            if value not in _CONSISTENCY:
                raise InvalidArgument(f'invalid consistency "{value}" (want {", ".join(_CONSISTENCY)})')
        elif key == "volume-nocopy":
            flag_value = parse_bool(value) if sep else True
            if flag_value is None:
                raise InvalidArgument(f"invalid value for volume-nocopy: {value} (want true or false)")
            fields["volume_nocopy"] = flag_value
            volume_keys.append(key)
        elif key == "volume-label":
            label_key, _, label_value = value.partition("=")
            labels[label_key] = label_value
            volume_keys.append(key)
        elif key == "volume-driver":
            if value not in ("", "local"):
                raise Unsupported(f'volume driver "{value}" is not available (only "local")')
            fields["volume_driver"] = value
            volume_keys.append(key)
        elif key == "volume-opt":
            opt_key, _, opt_value = value.partition("=")
            driver_opts[opt_key] = opt_value
            volume_keys.append(key)
        elif key == "volume-subpath":
            fields["volume_subpath"] = check_subpath(value)
            volume_keys.append(key)
        elif key == "tmpfs-size":
            fields["tmpfs_size"] = parse_bytes(value)
            tmpfs_keys.append(key)
        elif key == "tmpfs-mode":
            if not _is_octal(value):
                raise InvalidArgument(f'invalid tmpfs-mode "{value}" (want octal, e.g. 1777)')
            fields["tmpfs_mode"] = int(value, 8)
            tmpfs_keys.append(key)
        else:
            raise InvalidArgument(f"unexpected key '{key}' in '{field}' (in mount '{text}')")
    kind: str = fields["type"]
    target = fields.get("target")
    if not target:
        raise InvalidArgument(f"target is required (in mount '{text}')")
    fields["target"] = _check_target(target, text, kind)
    for keys, allowed in ((volume_keys, "volume"), (bind_keys, "bind"), (tmpfs_keys, "tmpfs")):
        if keys and kind != allowed:
            raise InvalidArgument(f"cannot mix '{keys[0]}' options with mount type '{kind}'")
    source = fields.get("source", "")
    if kind == "bind":
        if not source:
            raise InvalidArgument('invalid mount config for type "bind": field Source must not be empty')
        if not source.startswith("/"):
            raise InvalidArgument(
                f"invalid mount config for type \"bind\": invalid mount path: '{source}' mount path must be absolute"
            )
        fields["source"] = os.path.normpath(source)
    elif kind == "tmpfs" and source:
        raise InvalidArgument('invalid mount config for type "tmpfs": field Source must not be specified')
    elif kind == "volume" and source:
        _check_volume_name(source, text)
    return MountSpec(
        **fields,
        volume_labels=types.MappingProxyType(labels) if labels else EMPTY,
        volume_options=types.MappingProxyType(driver_opts) if driver_opts else EMPTY,
    )


def check_subpath(text: str) -> str:
    """A volume subpath, cleaned: relative, and never above the volume's root (no ``..`` out of it)."""
    clean = os.path.normpath(text) if text else ""
    if not text or text.startswith("/") or clean == ".." or clean.startswith("../"):
        raise InvalidArgument(f'invalid volume subpath "{text}": must be a relative path within the volume')
    return clean


def _split_csv(text: str) -> list[str]:
    """Split a --mount value on commas, honouring double quotes as docker's csv reader does."""
    fields: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    if quoted:
        raise InvalidArgument(f"invalid mount '{text}': unterminated quote")
    fields.append("".join(current))
    return [f for f in fields if f]


_HOSTNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")


def is_hostname(text: str) -> bool:
    """An RFC 1123 name the kernel can keep (at most 63 characters)."""
    return len(text) <= 63 and set(text) <= _HOSTNAME_CHARS and text[0] not in "-." and text[-1] not in "-."


def is_cpu_list(text: str) -> bool:
    """A cpuset list such as ``0-2,4``."""
    for part in text.split(","):
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and (not high.isdigit() or int(high) < int(low))):
            return False
    return True
