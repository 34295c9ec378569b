"""The OCI runtime spec (config.json, versions 1.0 to 1.2, Linux parts) as typed records.

Each record mirrors one object of the spec: field names are the JSON names in
snake_case, arrays are tuples, maps are read-only mappings (``EMPTY`` when
absent), absent optional objects are ``None``. Where the Go types of the spec
use a plain string, int or bool, an absent field reads as ``""``, ``0`` or
``False`` (what Go's encoding/json gives runc); where Go uses a pointer, absent
is ``None``. Capability sets keep the difference between absent and empty.

``from_json(obj, path)`` checks JSON types and every rule a runtime must
enforce before it starts work, and raises ``SpecError`` naming the JSON path of
the bad field (``linux.namespaces[2].type: unknown namespace "foo"``).
Unknown fields are ignored, as the spec requires. ``to_json()`` writes the
same object back (camelCase keys in the spec's field order, absent optionals
omitted), so ``X.from_json(x.to_json(), "") == x``.

This module is on ``pallet-runtime``'s hot path: it imports no ``typing``,
``re``, ``enum`` or ``dataclasses`` at run time (a test measures that).
"""

from __future__ import annotations

import os

from pallet.errors import InvalidArgument, SpecError
from pallet.oci.jsonfast import loads
from pallet.oci.record import EMPTY, MappingProxy, Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, ClassVar, Self, TypeAlias

    _Parse: TypeAlias = Callable[[object, str], Any]

__all__ = [
    "ALL_CAPABILITIES",
    "HOOK_NAMES",
    "MOUNT_OPTIONS",
    "NAMESPACE_TYPES",
    "READONLY_PATHS",
    "RLIMITS",
    "ROOTFS_PROPAGATIONS",
    "SECCOMP_ACTIONS",
    "SECCOMP_ARCHITECTURES",
    "SECCOMP_FLAGS",
    "SECCOMP_OPERATORS",
    "SPEC_VERSION",
    "BlockIO",
    "Capabilities",
    "ConsoleSize",
    "Cpu",
    "Device",
    "DeviceRule",
    "Hook",
    "Hooks",
    "HugepageLimit",
    "IDMapping",
    "IOPriority",
    "IntelRdt",
    "InterfacePriority",
    "Linux",
    "Memory",
    "Mount",
    "Namespace",
    "Network",
    "Personality",
    "Pids",
    "Process",
    "RdmaLimit",
    "Resources",
    "Rlimit",
    "Root",
    "Scheduler",
    "Seccomp",
    "SeccompArg",
    "SeccompSyscall",
    "Spec",
    "ThrottleDevice",
    "TimeOffset",
    "User",
    "WeightDevice",
    "default_spec",
    "load_process",
    "load_spec",
    "runtime_features",
]

#: the version of the spec pallet writes; it reads every 1.x.y
SPEC_VERSION = "1.2.0"
#: the oldest version ``runtime_features`` claims, like runc
SPEC_VERSION_MIN = "1.0.0"

#: capability name -> number (linux/capability.h), in number order
ALL_CAPABILITIES: Mapping[str, int] = MappingProxy(
    {
        name: number
        for number, name in enumerate(
            (
                "CAP_CHOWN",
                "CAP_DAC_OVERRIDE",
                "CAP_DAC_READ_SEARCH",
                "CAP_FOWNER",
                "CAP_FSETID",
                "CAP_KILL",
                "CAP_SETGID",
                "CAP_SETUID",
                "CAP_SETPCAP",
                "CAP_LINUX_IMMUTABLE",
                "CAP_NET_BIND_SERVICE",
                "CAP_NET_BROADCAST",
                "CAP_NET_ADMIN",
                "CAP_NET_RAW",
                "CAP_IPC_LOCK",
                "CAP_IPC_OWNER",
                "CAP_SYS_MODULE",
                "CAP_SYS_RAWIO",
                "CAP_SYS_CHROOT",
                "CAP_SYS_PTRACE",
                "CAP_SYS_PACCT",
                "CAP_SYS_ADMIN",
                "CAP_SYS_BOOT",
                "CAP_SYS_NICE",
                "CAP_SYS_RESOURCE",
                "CAP_SYS_TIME",
                "CAP_SYS_TTY_CONFIG",
                "CAP_MKNOD",
                "CAP_LEASE",
                "CAP_AUDIT_WRITE",
                "CAP_AUDIT_CONTROL",
                "CAP_SETFCAP",
                "CAP_MAC_OVERRIDE",
                "CAP_MAC_ADMIN",
                "CAP_SYSLOG",
                "CAP_WAKE_ALARM",
                "CAP_BLOCK_SUSPEND",
                "CAP_AUDIT_READ",
                "CAP_PERFMON",
                "CAP_BPF",
                "CAP_CHECKPOINT_RESTORE",
            )
        )
    }
)

#: the namespace types of ``linux.namespaces``, in the spec's order
NAMESPACE_TYPES: tuple[str, ...] = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")

#: rlimit name -> resource number (asm-generic/resource.h)
RLIMITS: Mapping[str, int] = MappingProxy(
    {
        "RLIMIT_CPU": 0,
        "RLIMIT_FSIZE": 1,
        "RLIMIT_DATA": 2,
        "RLIMIT_STACK": 3,
        "RLIMIT_CORE": 4,
        "RLIMIT_RSS": 5,
        "RLIMIT_NPROC": 6,
        "RLIMIT_NOFILE": 7,
        "RLIMIT_MEMLOCK": 8,
        "RLIMIT_AS": 9,
        "RLIMIT_LOCKS": 10,
        "RLIMIT_SIGPENDING": 11,
        "RLIMIT_MSGQUEUE": 12,
        "RLIMIT_NICE": 13,
        "RLIMIT_RTPRIO": 14,
        "RLIMIT_RTTIME": 15,
    }
)

SECCOMP_ACTIONS: tuple[str, ...] = (
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
)
SECCOMP_OPERATORS: tuple[str, ...] = (
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
)
SECCOMP_ARCHITECTURES: tuple[str, ...] = (
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
)
SECCOMP_FLAGS: tuple[str, ...] = (
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
)
#: values of ``linux.rootfsPropagation`` (the spec's four, and runc's recursive forms)
ROOTFS_PROPAGATIONS: tuple[str, ...] = (
    "shared",
    "slave",
    "private",
    "unbindable",
    "rshared",
    "rslave",
    "rprivate",
    "runbindable",
)
HOOK_NAMES: tuple[str, ...] = (
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
)
#: the mount options runc understands (``runc features``); pallet takes the same set
_MOUNT_OPTION_WORDS = (
    "acl async atime bind defaults dev diratime dirsync exec iversion lazytime loud mand noacl "
    "noatime nodev nodiratime noexec noiversion nolazytime nomand norelatime nostrictatime nosuid "
    "nosymfollow private ratime rbind rdev rdiratime relatime remount rexec rnoatime rnodev "
    "rnodiratime rnoexec rnorelatime rnostrictatime rnosuid rnosymfollow ro rprivate rrelatime rro "
    "rrw rshared rslave rstrictatime rsuid rsymfollow runbindable rw shared silent slave strictatime "
    "suid symfollow sync tmpcopyup unbindable"
)
MOUNT_OPTIONS: tuple[str, ...] = tuple(_MOUNT_OPTION_WORDS.split())
_SCHEDULER_POLICIES = frozenset(
    ("SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO", "SCHED_IDLE", "SCHED_DEADLINE")
)
_SCHEDULER_FLAGS = frozenset(
    (
        "SCHED_FLAG_RESET_ON_FORK",
        "SCHED_FLAG_RECLAIM",
        "SCHED_FLAG_DL_OVERRUN",
        "SCHED_FLAG_KEEP_POLICY",
        "SCHED_FLAG_KEEP_PARAMS",
        "SCHED_FLAG_UTIL_CLAMP_MIN",
        "SCHED_FLAG_UTIL_CLAMP_MAX",
    )
)
_IO_PRIORITY_CLASSES = frozenset(("IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"))
_TIME_OFFSET_CLOCKS = frozenset(("boottime", "monotonic"))
_DIGITS = frozenset("0123456789")
_IDENTIFIER_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-")

# ---------------------------------------------------------------------------
# Field parsers: (value, path) -> checked value, raising SpecError(path, ...).


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _string(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise SpecError(path, f"must be a string, got {_json_kind(value)}")
    return value


def _boolean(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(path, f"must be a boolean, got {_json_kind(value)}")
    return value


def _integer(low: int, high: int) -> _Parse:
    def parse(value: object, path: str) -> int:
        # bool is an int to Python but not to JSON; 1.0 and 1e3 are numbers Go refuses for ints
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(path, f"must be an integer, got {_json_kind(value)}")
        if not low <= value <= high:
            raise SpecError(path, f"must be between {low} and {high}, got {value}")
        return value

    return parse


_u16 = _integer(0, 2**16 - 1)
_u32 = _integer(0, 2**32 - 1)
_i32 = _integer(-(2**31), 2**31 - 1)
_u64 = _integer(0, 2**64 - 1)
_i64 = _integer(-(2**63), 2**63 - 1)


def _one_of(words: Mapping[str, object] | tuple[str, ...] | frozenset[str], what: str) -> _Parse:
    def parse(value: object, path: str) -> str:
        word = _string(value, path)
        if word not in words:
            raise SpecError(path, f'unknown {what} "{word}"')
        return word

    return parse


def _absolute_path(value: object, path: str) -> str:
    text = _string(value, path)
    if not text.startswith("/"):
        raise SpecError(path, "must be an absolute path")
    return text


def _array_of(item: _Parse) -> _Parse:
    def parse(value: object, path: str) -> tuple[object, ...]:
        if not isinstance(value, list):
            raise SpecError(path, f"must be an array, got {_json_kind(value)}")
        return tuple(item(v, f"{path}[{i}]") for i, v in enumerate(value))

    return parse


def _object_of(item: _Parse) -> _Parse:
    def parse(value: object, path: str) -> Mapping[str, object]:
        if not isinstance(value, dict):
            raise SpecError(path, f"must be an object, got {_json_kind(value)}")
        return MappingProxy({k: item(v, f'{path}["{k}"]') for k, v in value.items()})

    return parse


_strings = _array_of(_string)
_string_map = _object_of(_string)
_absolute_paths = _array_of(_absolute_path)


def _plain(value: object) -> object:
    """A record value as JSON-ready data (tuples as lists, mappings as dicts)."""
    if isinstance(value, _SpecObject):
        return value.to_json()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, (dict, MappingProxy)):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _SpecObject(Record):
    """A spec object read and written through a table of its JSON fields.

    ``_json`` lists ``(attribute, JSON key, parser)`` in the spec's field order.
    A field without a default is required. ``to_json`` leaves out, like Go's
    ``omitempty``, a ``None`` field and an empty or zero field whose default is
    a zero value (``""``, ``0``, ``False``, ``()``, ``EMPTY``); a field whose
    default is ``None`` keeps ``0``, ``False`` and ``()``, which are set values.
    """

    _json: ClassVar[tuple[tuple[str, str, _Parse], ...]] = ()
    if TYPE_CHECKING:
        _defaults: ClassVar[dict[str, object]]

    @classmethod
    def from_json(cls, obj: object, path: str = "") -> Self:
        """Read and check one JSON object; ``path`` is its JSON path, for errors."""
        if not isinstance(obj, dict):
            raise SpecError(path, f"must be an object, got {_json_kind(obj)}")
        values: dict[str, Any] = {}
        defaults = cls._defaults
        for attr, key, parse in cls._json:
            value = obj.get(key)
            # null is absent, as Go's encoding/json reads it
            if value is None:
                if attr not in defaults:
                    raise SpecError(_join(path, key), "required")
                continue
            values[attr] = parse(value, _join(path, key))
        record = cls(**values)
        record._check(path)
        return record

    def _check(self, path: str) -> None:
        """Rules beyond each field's JSON type; raises ``SpecError``."""

    def to_json(self) -> dict[str, object]:
        """The JSON object (camelCase keys, absent optionals left out)."""
        out: dict[str, object] = {}
        defaults = self._defaults
        for attr, key, _ in self._json:
            value = getattr(self, attr)
            if attr in defaults:
                default = defaults[attr]
                # None is "absent" and differs from 0, () or False; other falsy defaults are Go zero values
                if not default and (value is None if default is None else not value):
                    continue
            out[key] = _plain(value)
        return out


def _record(cls: type[_SpecObject]) -> _Parse:
    return cls.from_json


# ---------------------------------------------------------------------------
# process


class ConsoleSize(_SpecObject):
    height: int
    width: int

    _json = (("height", "height", _u32), ("width", "width", _u32))


class User(_SpecObject):
    uid: int
    gid: int
    umask: int | None = None
    additional_gids: tuple[int, ...] = ()
    username: str = ""

    _json = (
        ("uid", "uid", _u32),
        ("gid", "gid", _u32),
        ("umask", "umask", _u32),
        ("additional_gids", "additionalGids", _array_of(_u32)),
        ("username", "username", _string),
    )


_capability_names = _array_of(_one_of(ALL_CAPABILITIES, "capability"))


class Capabilities(_SpecObject):
    """The five capability sets; ``None`` (absent) and ``()`` (empty) differ."""

    bounding: tuple[str, ...] | None = None
    effective: tuple[str, ...] | None = None
    inheritable: tuple[str, ...] | None = None
    permitted: tuple[str, ...] | None = None
    ambient: tuple[str, ...] | None = None

    _json = (
        ("bounding", "bounding", _capability_names),
        ("effective", "effective", _capability_names),
        ("inheritable", "inheritable", _capability_names),
        ("permitted", "permitted", _capability_names),
        ("ambient", "ambient", _capability_names),
    )


class Rlimit(_SpecObject):
    type: str
    hard: int
    soft: int

    _json = (
        ("type", "type", _one_of(RLIMITS, "rlimit")),
        ("hard", "hard", _u64),
        ("soft", "soft", _u64),
    )

    def _check(self, path: str) -> None:
        if self.soft > self.hard:
            raise SpecError(_join(path, "soft"), f"{self.soft} is above the hard limit {self.hard}")


class Scheduler(_SpecObject):
    policy: str
    nice: int = 0
    priority: int = 0
    flags: tuple[str, ...] = ()
    runtime: int = 0
    deadline: int = 0
    period: int = 0

    _json = (
        ("policy", "policy", _one_of(_SCHEDULER_POLICIES, "scheduler policy")),
        ("nice", "nice", _i32),
        ("priority", "priority", _i32),
        ("flags", "flags", _array_of(_one_of(_SCHEDULER_FLAGS, "scheduler flag"))),
        ("runtime", "runtime", _u64),
        ("deadline", "deadline", _u64),
        ("period", "period", _u64),
    )


class IOPriority(_SpecObject):
    """``process.ioPriority``; ``class_`` is the JSON ``class`` (a Python keyword)."""

    class_: str
    priority: int = 0

    _json = (
        ("class_", "class", _one_of(_IO_PRIORITY_CLASSES, "I/O priority class")),
        ("priority", "priority", _integer(0, 7)),
    )


def _env_entry(value: object, path: str) -> str:
    entry = _string(value, path)
    name, sep, _ = entry.partition("=")
    if not sep or not name or "\0" in name:
        raise SpecError(path, f'"{entry}" is not NAME=value')
    return entry


_ROOT_USER = User(uid=0, gid=0)


class Process(_SpecObject):
    terminal: bool = False
    console_size: ConsoleSize | None = None
    user: User = _ROOT_USER
    args: tuple[str, ...] = ()
    command_line: str = ""
    env: tuple[str, ...] = ()
    cwd: str
    capabilities: Capabilities | None = None
    rlimits: tuple[Rlimit, ...] = ()
    no_new_privileges: bool = False
    apparmor_profile: str = ""
    oom_score_adj: int | None = None
    selinux_label: str = ""
    scheduler: Scheduler | None = None
    io_priority: IOPriority | None = None

    _json = (
        ("terminal", "terminal", _boolean),
        ("console_size", "consoleSize", _record(ConsoleSize)),
        ("user", "user", _record(User)),
        ("args", "args", _strings),
        ("command_line", "commandLine", _string),
        ("env", "env", _array_of(_env_entry)),
        ("cwd", "cwd", _string),
        ("capabilities", "capabilities", _record(Capabilities)),
        ("rlimits", "rlimits", _array_of(_record(Rlimit))),
        ("no_new_privileges", "noNewPrivileges", _boolean),
        ("apparmor_profile", "apparmorProfile", _string),
        ("oom_score_adj", "oomScoreAdj", _integer(-1000, 1000)),
        ("scheduler", "scheduler", _record(Scheduler)),
        ("selinux_label", "selinuxLabel", _string),
        ("io_priority", "ioPriority", _record(IOPriority)),
    )

    def _check(self, path: str) -> None:
        if not self.args:
            raise SpecError(_join(path, "args"), "must not be empty")
        if not self.cwd.startswith("/"):
            raise SpecError(_join(path, "cwd"), "must be an absolute path")
        seen: set[str] = set()
        for i, rlimit in enumerate(self.rlimits):
            if rlimit.type in seen:
                raise SpecError(_join(path, f"rlimits[{i}].type"), f'duplicate rlimit "{rlimit.type}"')
            seen.add(rlimit.type)


# ---------------------------------------------------------------------------
# root, mounts, hooks


class Root(_SpecObject):
    path: str
    readonly: bool = False

    _json = (("path", "path", _string), ("readonly", "readonly", _boolean))

    def _check(self, path: str) -> None:
        if not self.path:
            raise SpecError(_join(path, "path"), "must not be empty")


class IDMapping(_SpecObject):
    container_id: int
    host_id: int
    size: int

    _json = (
        ("container_id", "containerID", _u32),
        ("host_id", "hostID", _u32),
        ("size", "size", _u32),
    )


_id_mappings = _array_of(_record(IDMapping))


class Mount(_SpecObject):
    destination: str
    type: str = ""
    source: str = ""
    options: tuple[str, ...] = ()
    uid_mappings: tuple[IDMapping, ...] = ()
    gid_mappings: tuple[IDMapping, ...] = ()

    _json = (
        ("destination", "destination", _absolute_path),
        ("type", "type", _string),
        ("source", "source", _string),
        ("options", "options", _strings),
        ("uid_mappings", "uidMappings", _id_mappings),
        ("gid_mappings", "gidMappings", _id_mappings),
    )


class Hook(_SpecObject):
    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: int | None = None

    _json = (
        ("path", "path", _absolute_path),
        ("args", "args", _strings),
        ("env", "env", _array_of(_env_entry)),
        ("timeout", "timeout", _i64),
    )

    def _check(self, path: str) -> None:
        if self.timeout is not None and self.timeout <= 0:
            raise SpecError(_join(path, "timeout"), f"must be greater than zero, got {self.timeout}")


_hooks = _array_of(_record(Hook))


class Hooks(_SpecObject):
    prestart: tuple[Hook, ...] = ()
    create_runtime: tuple[Hook, ...] = ()
    create_container: tuple[Hook, ...] = ()
    start_container: tuple[Hook, ...] = ()
    poststart: tuple[Hook, ...] = ()
    poststop: tuple[Hook, ...] = ()

    _json = (
        ("prestart", "prestart", _hooks),
        ("create_runtime", "createRuntime", _hooks),
        ("create_container", "createContainer", _hooks),
        ("start_container", "startContainer", _hooks),
        ("poststart", "poststart", _hooks),
        ("poststop", "poststop", _hooks),
    )


# ---------------------------------------------------------------------------
# linux: namespaces, devices, resources


class Namespace(_SpecObject):
    type: str
    path: str = ""

    _json = (
        ("type", "type", _one_of(NAMESPACE_TYPES, "namespace")),
        ("path", "path", _absolute_path),
    )


class TimeOffset(_SpecObject):
    secs: int = 0
    nanosecs: int = 0

    _json = (("secs", "secs", _i64), ("nanosecs", "nanosecs", _u32))


class Device(_SpecObject):
    """A device node to create; ``major``/``minor`` are required except for fifos."""

    type: str
    path: str
    major: int | None = None
    minor: int | None = None
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None

    _json = (
        ("path", "path", _absolute_path),
        ("type", "type", _string),
        ("major", "major", _i64),
        ("minor", "minor", _i64),
        ("file_mode", "fileMode", _u32),
        ("uid", "uid", _u32),
        ("gid", "gid", _u32),
    )

    def _check(self, path: str) -> None:
        if self.type not in ("c", "b", "u", "p"):
            raise SpecError(_join(path, "type"), f'unknown device type "{self.type}" (want c, b, u or p)')
        if self.type != "p":
            for field in ("major", "minor"):
                if getattr(self, field) is None:
                    raise SpecError(_join(path, field), f'required for a "{self.type}" device')


class DeviceRule(_SpecObject):
    """A device cgroup rule; ``type`` "" means all ("a"), ``major``/``minor`` None mean any."""

    allow: bool
    type: str = ""
    major: int | None = None
    minor: int | None = None
    access: str = ""

    _json = (
        ("allow", "allow", _boolean),
        ("type", "type", _string),
        ("major", "major", _i64),
        ("minor", "minor", _i64),
        ("access", "access", _string),
    )

    def _check(self, path: str) -> None:
        if self.type not in ("", "a", "c", "b"):
            raise SpecError(_join(path, "type"), f'unknown device type "{self.type}" (want a, c or b)')
        if not set(self.access) <= {"r", "w", "m"}:
            raise SpecError(_join(path, "access"), f'"{self.access}" is not a combination of r, w and m')


class Memory(_SpecObject):
    limit: int | None = None
    reservation: int | None = None
    swap: int | None = None
    kernel: int | None = None
    kernel_tcp: int | None = None
    swappiness: int | None = None
    disable_oom_killer: bool | None = None
    use_hierarchy: bool | None = None
    check_before_update: bool | None = None

    _json = (
        ("limit", "limit", _i64),
        ("reservation", "reservation", _i64),
        ("swap", "swap", _i64),
        ("kernel", "kernel", _i64),
        ("kernel_tcp", "kernelTCP", _i64),
        ("swappiness", "swappiness", _u64),
        ("disable_oom_killer", "disableOOMKiller", _boolean),
        ("use_hierarchy", "useHierarchy", _boolean),
        ("check_before_update", "checkBeforeUpdate", _boolean),
    )

    def _check(self, path: str) -> None:
        # 2**64-1 is -1 written as an unsigned number: "leave the kernel default", as in runc
        swappiness = self.swappiness
        if swappiness is not None and swappiness > 100 and swappiness != 2**64 - 1:
            raise SpecError(_join(path, "swappiness"), f"must be between 0 and 100, got {swappiness}")


class Cpu(_SpecObject):
    shares: int | None = None
    quota: int | None = None
    burst: int | None = None
    period: int | None = None
    realtime_runtime: int | None = None
    realtime_period: int | None = None
    cpus: str = ""
    mems: str = ""
    idle: int | None = None

    _json = (
        ("shares", "shares", _u64),
        ("quota", "quota", _i64),
        ("burst", "burst", _u64),
        ("period", "period", _u64),
        ("realtime_runtime", "realtimeRuntime", _i64),
        ("realtime_period", "realtimePeriod", _u64),
        ("cpus", "cpus", _string),
        ("mems", "mems", _string),
        ("idle", "idle", _i64),
    )


class Pids(_SpecObject):
    limit: int

    _json = (("limit", "limit", _i64),)


class WeightDevice(_SpecObject):
    major: int
    minor: int
    weight: int | None = None
    leaf_weight: int | None = None

    _json = (
        ("major", "major", _i64),
        ("minor", "minor", _i64),
        ("weight", "weight", _u16),
        ("leaf_weight", "leafWeight", _u16),
    )


class ThrottleDevice(_SpecObject):
    major: int
    minor: int
    rate: int

    _json = (("major", "major", _i64), ("minor", "minor", _i64), ("rate", "rate", _u64))


_throttle_devices = _array_of(_record(ThrottleDevice))


class BlockIO(_SpecObject):
    weight: int | None = None
    leaf_weight: int | None = None
    weight_device: tuple[WeightDevice, ...] = ()
    throttle_read_bps_device: tuple[ThrottleDevice, ...] = ()
    throttle_write_bps_device: tuple[ThrottleDevice, ...] = ()
    throttle_read_iops_device: tuple[ThrottleDevice, ...] = ()
    throttle_write_iops_device: tuple[ThrottleDevice, ...] = ()

    _json = (
        ("weight", "weight", _u16),
        ("leaf_weight", "leafWeight", _u16),
        ("weight_device", "weightDevice", _array_of(_record(WeightDevice))),
        ("throttle_read_bps_device", "throttleReadBpsDevice", _throttle_devices),
        ("throttle_write_bps_device", "throttleWriteBpsDevice", _throttle_devices),
        ("throttle_read_iops_device", "throttleReadIOPSDevice", _throttle_devices),
        ("throttle_write_iops_device", "throttleWriteIOPSDevice", _throttle_devices),
    )


class HugepageLimit(_SpecObject):
    page_size: str
    limit: int

    _json = (("page_size", "pageSize", _string), ("limit", "limit", _u64))


class InterfacePriority(_SpecObject):
    name: str
    priority: int

    _json = (("name", "name", _string), ("priority", "priority", _u32))


class Network(_SpecObject):
    class_id: int | None = None
    priorities: tuple[InterfacePriority, ...] = ()

    _json = (
        ("class_id", "classID", _u32),
        ("priorities", "priorities", _array_of(_record(InterfacePriority))),
    )


class RdmaLimit(_SpecObject):
    hca_handles: int | None = None
    hca_objects: int | None = None

    _json = (("hca_handles", "hcaHandles", _u32), ("hca_objects", "hcaObjects", _u32))


class Resources(_SpecObject):
    """``linux.resources``; also the body of ``runc update --resources``."""

    devices: tuple[DeviceRule, ...] = ()
    memory: Memory | None = None
    cpu: Cpu | None = None
    pids: Pids | None = None
    block_io: BlockIO | None = None
    hugepage_limits: tuple[HugepageLimit, ...] = ()
    network: Network | None = None
    rdma: Mapping[str, RdmaLimit] = EMPTY  # type: ignore[assignment]  # EMPTY is typed Mapping[str, str]
    unified: Mapping[str, str] = EMPTY

    _json = (
        ("devices", "devices", _array_of(_record(DeviceRule))),
        ("memory", "memory", _record(Memory)),
        ("cpu", "cpu", _record(Cpu)),
        ("pids", "pids", _record(Pids)),
        ("block_io", "blockIO", _record(BlockIO)),
        ("hugepage_limits", "hugepageLimits", _array_of(_record(HugepageLimit))),
        ("network", "network", _record(Network)),
        ("rdma", "rdma", _object_of(_record(RdmaLimit))),
        ("unified", "unified", _string_map),
    )


# ---------------------------------------------------------------------------
# linux: seccomp, personality, intel RDT


class SeccompArg(_SpecObject):
    index: int
    value: int
    value_two: int = 0
    op: str

    _json = (
        ("index", "index", _integer(0, 5)),
        ("value", "value", _u64),
        ("value_two", "valueTwo", _u64),
        ("op", "op", _one_of(SECCOMP_OPERATORS, "seccomp operator")),
    )


_seccomp_action = _one_of(SECCOMP_ACTIONS, "seccomp action")


class SeccompSyscall(_SpecObject):
    names: tuple[str, ...]
    action: str
    errno_ret: int | None = None
    args: tuple[SeccompArg, ...] = ()

    _json = (
        ("names", "names", _strings),
        ("action", "action", _seccomp_action),
        ("errno_ret", "errnoRet", _u32),
        ("args", "args", _array_of(_record(SeccompArg))),
    )

    def _check(self, path: str) -> None:
        if not self.names:
            raise SpecError(_join(path, "names"), "must not be empty")


class Seccomp(_SpecObject):
    default_action: str
    default_errno_ret: int | None = None
    architectures: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    listener_path: str = ""
    listener_metadata: str = ""
    syscalls: tuple[SeccompSyscall, ...] = ()

    _json = (
        ("default_action", "defaultAction", _seccomp_action),
        ("default_errno_ret", "defaultErrnoRet", _u32),
        ("architectures", "architectures", _array_of(_one_of(SECCOMP_ARCHITECTURES, "seccomp architecture"))),
        ("flags", "flags", _array_of(_one_of(SECCOMP_FLAGS, "seccomp flag"))),
        ("listener_path", "listenerPath", _absolute_path),
        ("listener_metadata", "listenerMetadata", _string),
        ("syscalls", "syscalls", _array_of(_record(SeccompSyscall))),
    )

    def _check(self, path: str) -> None:
        notify = self.default_action == "SCMP_ACT_NOTIFY" or any(
            s.action == "SCMP_ACT_NOTIFY" for s in self.syscalls
        )
        if notify and not self.listener_path:
            raise SpecError(_join(path, "listenerPath"), "required with the action SCMP_ACT_NOTIFY")


class Personality(_SpecObject):
    domain: str
    flags: tuple[str, ...] = ()

    _json = (
        ("domain", "domain", _one_of(("LINUX", "LINUX32"), "personality domain")),
        ("flags", "flags", _strings),
    )


class IntelRdt(_SpecObject):
    clos_id: str = ""
    l3_cache_schema: str = ""
    mem_bw_schema: str = ""
    enable_cmt: bool = False
    enable_mbm: bool = False

    _json = (
        ("clos_id", "closID", _string),
        ("l3_cache_schema", "l3CacheSchema", _string),
        ("mem_bw_schema", "memBwSchema", _string),
        ("enable_cmt", "enableCMT", _boolean),
        ("enable_mbm", "enableMBM", _boolean),
    )


def _sysctl_name_ok(name: str) -> bool:
    # Names reach /proc/sys/<name with dots as slashes>: refuse anything that
    # could leave that tree or is not a plain name.
    if not name or name[0] in "./" or name[-1] in "./":
        return False
    if any(c.isspace() or c in "\0=" for c in name):
        return False
    parts = name.replace("/", ".").split(".")
    return all(part and part != ".." for part in parts)


class Linux(_SpecObject):
    namespaces: tuple[Namespace, ...] = ()
    uid_mappings: tuple[IDMapping, ...] = ()
    gid_mappings: tuple[IDMapping, ...] = ()
    time_offsets: Mapping[str, TimeOffset] = EMPTY  # type: ignore[assignment]  # EMPTY is typed Mapping[str, str]
    devices: tuple[Device, ...] = ()
    cgroups_path: str = ""
    resources: Resources | None = None
    rootfs_propagation: str = ""
    seccomp: Seccomp | None = None
    sysctl: Mapping[str, str] = EMPTY
    masked_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    mount_label: str = ""
    personality: Personality | None = None
    intel_rdt: IntelRdt | None = None

    _json = (
        ("uid_mappings", "uidMappings", _id_mappings),
        ("gid_mappings", "gidMappings", _id_mappings),
        ("time_offsets", "timeOffsets", _object_of(_record(TimeOffset))),
        ("sysctl", "sysctl", _string_map),
        ("resources", "resources", _record(Resources)),
        ("cgroups_path", "cgroupsPath", _string),
        ("namespaces", "namespaces", _array_of(_record(Namespace))),
        ("devices", "devices", _array_of(_record(Device))),
        ("seccomp", "seccomp", _record(Seccomp)),
        ("rootfs_propagation", "rootfsPropagation", _one_of(ROOTFS_PROPAGATIONS, "propagation")),
        ("masked_paths", "maskedPaths", _absolute_paths),
        ("readonly_paths", "readonlyPaths", _absolute_paths),
        ("mount_label", "mountLabel", _string),
        ("intel_rdt", "intelRdt", _record(IntelRdt)),
        ("personality", "personality", _record(Personality)),
    )

    def namespace(self, type_: str) -> Namespace | None:
        """The entry of ``namespaces`` with this type, if any."""
        for ns in self.namespaces:
            if ns.type == type_:
                return ns
        return None

    def _check(self, path: str) -> None:
        seen: set[str] = set()
        for ns in self.namespaces:
            if ns.type in seen:
                raise SpecError(_join(path, "namespaces"), f'duplicate namespace "{ns.type}"')
            seen.add(ns.type)
        user = self.namespace("user")
        for key, mappings in (("uidMappings", self.uid_mappings), ("gidMappings", self.gid_mappings)):
            if user is None and mappings:
                raise SpecError(
                    _join(path, key), 'needs a user namespace (add {"type": "user"} to linux.namespaces)'
                )
            # joining an existing user namespace (a path) keeps its mappings
            if user is not None and not user.path and not mappings:
                raise SpecError(_join(path, key), "required with a user namespace")
        for clock in self.time_offsets:
            if clock not in _TIME_OFFSET_CLOCKS:
                raise SpecError(
                    _join(path, f'timeOffsets["{clock}"]'), "unknown clock (want boottime or monotonic)"
                )
        if self.time_offsets and "time" not in seen:
            raise SpecError(
                _join(path, "timeOffsets"),
                'needs a time namespace (add {"type": "time"} to linux.namespaces)',
            )
        for name in self.sysctl:
            if not _sysctl_name_ok(name):
                raise SpecError(
                    _join(path, f'sysctl["{name}"]'), "not a sysctl name (want e.g. net.ipv4.ip_forward)"
                )


# ---------------------------------------------------------------------------
# the document


def _is_version(text: str) -> bool:
    """Whether ``text`` is a semantic version (2.0.0 grammar), without ``re``."""
    core, _, build = text.partition("+")
    core, dash, prerelease = core.partition("-")
    numbers = core.split(".")
    if len(numbers) != 3:
        return False
    for number in numbers:
        if not number or not set(number) <= _DIGITS or (len(number) > 1 and number[0] == "0"):
            return False
    for label, present in ((prerelease, bool(dash)), (build, "+" in text)):
        if present:
            for ident in label.split("."):
                if not ident or not set(ident) <= _IDENTIFIER_CHARS:
                    return False
    return True


def _version(value: object, path: str) -> str:
    text = _string(value, path)
    if not _is_version(text):
        raise SpecError(path, f'"{text}" is not a version (want e.g. 1.0.2)')
    if not text.startswith("1."):
        raise SpecError(path, f'version "{text}" is not supported (want 1.x.y)')
    return text


class Spec(_SpecObject):
    """A whole config.json."""

    oci_version: str
    process: Process | None = None
    root: Root | None = None
    hostname: str = ""
    domainname: str = ""
    mounts: tuple[Mount, ...] = ()
    hooks: Hooks | None = None
    annotations: Mapping[str, str] = EMPTY
    linux: Linux | None = None

    _json = (
        ("oci_version", "ociVersion", _version),
        ("process", "process", _record(Process)),
        ("root", "root", _record(Root)),
        ("hostname", "hostname", _string),
        ("domainname", "domainname", _string),
        ("mounts", "mounts", _array_of(_record(Mount))),
        ("hooks", "hooks", _record(Hooks)),
        ("annotations", "annotations", _string_map),
        ("linux", "linux", _record(Linux)),
    )

    def _check(self, path: str) -> None:
        # runc refuses to create a container without a root filesystem
        if self.process is not None and self.root is None:
            raise SpecError(_join(path, "root"), "required to run a process")
        for key, value in (("hostname", self.hostname), ("domainname", self.domainname)):
            if value and (self.linux is None or self.linux.namespace("uts") is None):
                raise SpecError(
                    _join(path, key), 'needs a uts namespace (add {"type": "uts"} to linux.namespaces)'
                )


def _load_object(data: bytes | str, source: str) -> dict[str, object]:
    try:
        doc = loads(data)
    except InvalidArgument as exc:
        raise SpecError(source, str(exc)) from None
    if not isinstance(doc, dict):
        raise SpecError(source, f"must be a JSON object, got {_json_kind(doc)}")
    return doc


def load_spec(data: bytes | str, *, source: str = "config.json") -> Spec:
    """Parse and check a config.json; every problem is a ``SpecError``.

    ``source`` names the document in JSON syntax errors (field errors carry
    their JSON path instead).
    """
    return Spec.from_json(_load_object(data, source), "")


def load_process(data: bytes | str, *, source: str = "process.json") -> Process:
    """Parse and check a process.json (``runc exec --process``)."""
    return Process.from_json(_load_object(data, source), "")


# ---------------------------------------------------------------------------
# what `runc spec` and `runc features` write

_DEFAULT_CAPABILITIES = ("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")
_MASKED_PATHS = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
)
#: visible but read-only in a container: host-wide kernel knobs (runc's ``spec`` and docker's defaults agree)
READONLY_PATHS: tuple[str, ...] = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def default_spec(*, rootless: bool = False, uid: int | None = None, gid: int | None = None) -> Spec:
    """The spec ``runc spec`` (or ``runc spec --rootless``) writes, apart from ``ociVersion``.

    For a rootless spec, container root maps to ``uid``/``gid`` (default: this
    process's effective ids), and /sys is bind-mounted because a user namespace
    cannot mount a new sysfs without its own network namespace.
    """
    devpts: tuple[str, ...] = ("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620")
    if rootless:
        sys_mount = Mount(
            destination="/sys",
            type="none",
            source="/sys",
            options=("rbind", "nosuid", "noexec", "nodev", "ro"),
        )
    else:
        devpts = (*devpts, "gid=5")
        sys_mount = Mount(
            destination="/sys", type="sysfs", source="sysfs", options=("nosuid", "noexec", "nodev", "ro")
        )
    mounts = (
        Mount(destination="/proc", type="proc", source="proc"),
        Mount(
            destination="/dev",
            type="tmpfs",
            source="tmpfs",
            options=("nosuid", "strictatime", "mode=755", "size=65536k"),
        ),
        Mount(destination="/dev/pts", type="devpts", source="devpts", options=devpts),
        Mount(
            destination="/dev/shm",
            type="tmpfs",
            source="shm",
            options=("nosuid", "noexec", "nodev", "mode=1777", "size=65536k"),
        ),
        Mount(
            destination="/dev/mqueue", type="mqueue", source="mqueue", options=("nosuid", "noexec", "nodev")
        ),
        sys_mount,
        Mount(
            destination="/sys/fs/cgroup",
            type="cgroup",
            source="cgroup",
            options=("nosuid", "noexec", "nodev", "relatime", "ro"),
        ),
    )
    if rootless:
        host_uid = os.geteuid() if uid is None else uid
        host_gid = os.getegid() if gid is None else gid
        linux = Linux(
            uid_mappings=(IDMapping(container_id=0, host_id=host_uid, size=1),),
            gid_mappings=(IDMapping(container_id=0, host_id=host_gid, size=1),),
            namespaces=tuple(Namespace(type=t) for t in ("pid", "ipc", "uts", "mount", "user")),
            masked_paths=_MASKED_PATHS,
            readonly_paths=READONLY_PATHS,
        )
    else:
        linux = Linux(
            resources=Resources(devices=(DeviceRule(allow=False, access="rwm"),)),
            namespaces=tuple(Namespace(type=t) for t in ("pid", "network", "ipc", "uts", "mount")),
            masked_paths=_MASKED_PATHS,
            readonly_paths=READONLY_PATHS,
        )
    return Spec(
        oci_version=SPEC_VERSION,
        process=Process(
            terminal=True,
            user=_ROOT_USER,
            args=("sh",),
            env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"),
            cwd="/",
            capabilities=Capabilities(
                bounding=_DEFAULT_CAPABILITIES,
                effective=_DEFAULT_CAPABILITIES,
                permitted=_DEFAULT_CAPABILITIES,
                ambient=_DEFAULT_CAPABILITIES,
            ),
            rlimits=(Rlimit(type="RLIMIT_NOFILE", hard=1024, soft=1024),),
            no_new_privileges=True,
        ),
        root=Root(path="rootfs", readonly=True),
        hostname="runc",
        mounts=mounts,
        linux=linux,
    )


def runtime_features(seccomp: dict[str, object] | None = None) -> dict[str, object]:
    """What this runtime supports, in the shape of ``runc features`` (runtime-spec features.md).

    ``seccomp`` is what the host's libseccomp offers (the runtime probes it;
    this module does no I/O); without it, every action, operator and
    architecture the spec model accepts. cgroup v1 and v2 each have a driver,
    chosen by what the host mounts; ``slice:prefix:name`` paths are accepted
    with ``--systemd-cgroup`` (made with cgroupfs, as the unit's path).
    """
    return {
        "ociVersionMin": SPEC_VERSION_MIN,
        "ociVersionMax": SPEC_VERSION,
        "hooks": list(HOOK_NAMES),
        "mountOptions": list(MOUNT_OPTIONS),
        "linux": {
            "namespaces": sorted(NAMESPACE_TYPES),
            "capabilities": list(ALL_CAPABILITIES),
            "cgroup": {"v1": True, "v2": True, "systemd": True, "systemdUser": False},
            "seccomp": seccomp
            if seccomp is not None
            else {
                "enabled": True,
                "actions": list(SECCOMP_ACTIONS),
                "operators": list(SECCOMP_OPERATORS),
                "archs": list(SECCOMP_ARCHITECTURES),
            },
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
    }
