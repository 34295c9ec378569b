"""``linux.seccomp``: check a profile, compile it with libseccomp (cached), install it in the init.

The runtime uses it in three steps:

- ``prepare(spec.linux.seccomp, cache_dir=...)`` in the ``create`` process,
  before it forks: checks the profile (``SpecError`` with the JSON path),
  then reads the compiled BPF from ``<cache_dir>/<sha256>.bpf`` or, on a
  miss, compiles it with libseccomp through ``pyseccomp`` and stores it
  atomically. The key covers the canonical profile, the libseccomp version,
  the machine and the kernel release. A hit imports neither ``pyseccomp``
  nor ``ctypes.util`` (+26 ms): they stay off the hot path.
- ``install(prepared)`` in the container init: one ``seccomp(2)`` call. With
  ``SCMP_ACT_NOTIFY`` rules the kernel returns a listener fd, which goes to
  the ``create`` process over a socket pair made by ``prepare``.
- ``forward_listener(prepared, state)`` in the ``create`` process once the
  init reported READY: sends that fd and the container process state (as
  runc does: ``fds: ["seccompFd"]``, ``pid``, ``metadata``, ``state``) to the
  agent listening at ``listenerPath``.

Compilation follows runc: one rule per syscall name; a name libseccomp does
not know for this architecture is skipped; a rule whose action equals the
default action is dropped; conditions on the same argument index become
separate rules (OR), others one rule (AND); ERRNO and TRACE without
``errnoRet`` return EPERM; more than eight rules ask libseccomp for a binary
tree. Flags are arguments of ``seccomp(2)``, not part of the program, so they
are not in the cache key.
"""

from __future__ import annotations

import os
from errno import EEXIST, EPERM

from pallet.errors import FailedPrecondition, SpecError, Unavailable, Unsupported, errno_text
from pallet.linux import seccomp as kernel
from pallet.oci.jsonfast import dumps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from pallet.oci.runtime_spec import Seccomp

__all__ = ["PreparedSeccomp", "features", "forward_listener", "install", "prepare"]

#: bump when the compilation below changes, so old cached programs are not reused
_FORMAT = 1
_NR_SCALL_NONE = -1
_PATH = "linux.seccomp"

_ACT_NOTIFY = 0x7FC00000
#: action name -> the kernel's SECCOMP_RET_* value (its low 16 bits carry errnoRet)
_ACTIONS: dict[str, int] = {
    "SCMP_ACT_KILL": 0x00000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_NOTIFY": _ACT_NOTIFY,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
}
_TAKES_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")

#: operator name -> libseccomp's enum scmp_compare
_OPERATORS: dict[str, int] = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}

_64BIT = 0x80000000
_LE = 0x40000000
_N32 = 0x20000000
#: architecture name -> AUDIT_ARCH_* (linux/audit.h), what libseccomp's scmp_arch takes
_ARCHITECTURES: dict[str, int] = {
    "SCMP_ARCH_X86": 3 | _LE,
    "SCMP_ARCH_X86_64": 62 | _64BIT | _LE,
    "SCMP_ARCH_X32": 62 | _LE,
    "SCMP_ARCH_ARM": 40 | _LE,
    "SCMP_ARCH_AARCH64": 183 | _64BIT | _LE,
    "SCMP_ARCH_MIPS": 8,
    "SCMP_ARCH_MIPS64": 8 | _64BIT,
    "SCMP_ARCH_MIPS64N32": 8 | _64BIT | _N32,
    "SCMP_ARCH_MIPSEL": 8 | _LE,
    "SCMP_ARCH_MIPSEL64": 8 | _64BIT | _LE,
    "SCMP_ARCH_MIPSEL64N32": 8 | _64BIT | _LE | _N32,
    "SCMP_ARCH_PPC": 20,
    "SCMP_ARCH_PPC64": 21 | _64BIT,
    "SCMP_ARCH_PPC64LE": 21 | _64BIT | _LE,
    "SCMP_ARCH_RISCV64": 243 | _64BIT | _LE,
    "SCMP_ARCH_S390": 22,
    "SCMP_ARCH_S390X": 22 | _64BIT,
}

# The init makes these calls after loading the filter and before the agent has
# the notification fd (it gets it once the init reported READY): sending and
# closing that fd, dropping the user and capabilities (when the filter is loaded
# before them, without no_new_privs), chdir, and the READY write. A NOTIFY
# rule on one of them would block the init, and create, forever.
_NOTIFY_FORBIDDEN = frozenset(
    ("sendmsg", "close", "write", "chdir", "setgroups", "setresuid", "setresgid", "capset", "prctl")
)


class PreparedSeccomp:
    """A checked, compiled profile: the program, the seccomp(2) flags, the listener's channel."""

    __slots__ = ("_from_init", "_to_parent", "flags", "listener_metadata", "listener_path", "program")

    def __init__(self, program: bytes, flags: int, listener_path: str, listener_metadata: str) -> None:
        self.program = program
        self.flags = flags
        self.listener_path = listener_path
        self.listener_metadata = listener_metadata
        # a SOCK_SEQPACKET pair (close-on-exec) when the filter has a listener
        self._from_init = -1
        self._to_parent = -1
        if flags & kernel.FILTER_FLAG_NEW_LISTENER:
            import _socket

            parent_end, init_end = _socket.socketpair(
                _socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC
            )
            self._from_init = parent_end.detach()
            self._to_parent = init_end.detach()

    @property
    def has_listener(self) -> bool:
        return self._from_init >= 0

    def close(self) -> None:
        """Release the listener channel (idempotent); ``create`` calls it when it gives up."""
        for fd in (self._from_init, self._to_parent):
            if fd >= 0:
                os.close(fd)
        self._from_init = self._to_parent = -1


# ---------------------------------------------------------------------------
# checking: the spec model -> a _Profile, one rule per syscall name


class _Rule:
    """One syscall name of ``syscalls[i]``: its action value and its conditions (index, op, a, b)."""

    __slots__ = ("action", "args", "at", "name")

    def __init__(self, at: str, name: str, action: int, args: list[tuple[int, int, int, int]]) -> None:
        self.at = at
        self.name = name
        self.action = action
        self.args = args


class _Profile:
    """A checked profile reduced to what the program depends on (flags are not: they go to seccomp(2))."""

    __slots__ = ("architectures", "default", "rules")

    def __init__(self, default: int, architectures: list[int], rules: list[_Rule]) -> None:
        self.default = default
        self.architectures = architectures
        self.rules = rules

    def key_data(self) -> dict[str, object]:
        """Plain data in a fixed order, hashed into the cache key."""
        return {
            "defaultAction": self.default,
            "architectures": self.architectures,
            "rules": [[rule.name, rule.action, [list(arg) for arg in rule.args]] for rule in self.rules],
        }


def _action(name: str, errno_ret: int | None, path: str, errno_path: str) -> int:
    value = _ACTIONS.get(name)
    if value is None:
        raise SpecError(path, f'unknown action "{name}" (one of {", ".join(_ACTIONS)})')
    if name not in _TAKES_ERRNO:
        return value
    if errno_ret is None:
        errno_ret = EPERM
    if not 0 <= errno_ret <= 0xFFFF:
        raise SpecError(errno_path, f"{errno_ret} does not fit in 16 bits (an errno is at most 4095)")
    return value | errno_ret


def _check(profile: Seccomp) -> _Profile:
    """Check every field (``SpecError`` with its JSON path) and expand one rule per syscall name."""
    default = _action(
        profile.default_action,
        profile.default_errno_ret,
        f"{_PATH}.defaultAction",
        f"{_PATH}.defaultErrnoRet",
    )
    if default == _ACT_NOTIFY:
        raise SpecError(
            f"{_PATH}.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action (the runtime itself would block)",
        )
    architectures: list[int] = []
    for i, arch in enumerate(profile.architectures):
        value = _ARCHITECTURES.get(arch)
        if value is None:
            raise SpecError(f"{_PATH}.architectures[{i}]", f'unknown architecture "{arch}"')
        if value not in architectures:
            architectures.append(value)
    rules: list[_Rule] = []
    for i, call in enumerate(profile.syscalls):
        path = f"{_PATH}.syscalls[{i}]"
        action = _action(call.action, call.errno_ret, f"{path}.action", f"{path}.errnoRet")
        if not call.names:
            raise SpecError(f"{path}.names", "must not be empty")
        conditions: list[tuple[int, int, int, int]] = []
        for j, arg in enumerate(call.args):
            where = f"{path}.args[{j}]"
            op = _OPERATORS.get(arg.op)
            if op is None:
                raise SpecError(
                    f"{where}.op", f'unknown operator "{arg.op}" (one of {", ".join(_OPERATORS)})'
                )
            if not 0 <= arg.index <= 5:
                raise SpecError(f"{where}.index", f"{arg.index} is not an argument index (0 to 5)")
            for key, number in (("value", arg.value), ("valueTwo", arg.value_two)):
                if not 0 <= number < 1 << 64:
                    raise SpecError(f"{where}.{key}", f"{number} is not an unsigned 64-bit value")
            conditions.append((arg.index, op, arg.value, arg.value_two))
        for k, name in enumerate(call.names):
            if not name:
                raise SpecError(f"{path}.names[{k}]", "must not be empty")
            if action == _ACT_NOTIFY and name in _NOTIFY_FORBIDDEN:
                raise SpecError(
                    f"{path}.names[{k}]",
                    f'SCMP_ACT_NOTIFY cannot be used for "{name}": the container init calls it '
                    "after loading the filter, before the agent has the notification fd",
                )
            rules.append(_Rule(path, name, action, conditions))
    return _Profile(default, architectures, rules)


def _filter_flags(profile: Seccomp, checked: _Profile) -> int:
    flags = 0
    for i, name in enumerate(profile.flags):
        value = kernel.FILTER_FLAGS.get(name)
        if value is None:
            raise SpecError(
                f"{_PATH}.flags[{i}]", f'unknown flag "{name}" (one of {", ".join(kernel.FILTER_FLAGS)})'
            )
        flags |= value
    if any(rule.action == _ACT_NOTIFY for rule in checked.rules):
        if not profile.listener_path:
            raise SpecError(f"{_PATH}.listenerPath", "required with the action SCMP_ACT_NOTIFY")
        flags |= kernel.FILTER_FLAG_NEW_LISTENER
        if flags & kernel.FILTER_FLAG_TSYNC:
            # TSYNC and NEW_LISTENER exclude each other unless a TSYNC failure is reported as ESRCH
            flags |= kernel.FILTER_FLAG_TSYNC_ESRCH
    else:
        # it only changes how a notified task waits; the kernel refuses it without a listener
        flags &= ~kernel.FILTER_FLAGS["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    return flags


# ---------------------------------------------------------------------------
# compiling (libseccomp, off the hot path) and the cache


def _import_pyseccomp() -> Any:
    try:
        import pyseccomp  # type: ignore[import-untyped]
    except ModuleNotFoundError:
        # pallet-runtime's launcher runs Python with -S (no site-packages: faster start);
        # on a cache miss only, add them as site would have, and try again
        import site

        site.main()
        try:
            import pyseccomp
        except ModuleNotFoundError:
            raise Unsupported(
                "linux.seccomp: the pyseccomp package is not installed; run scripts/install.sh "
                "(pip install pyseccomp) to compile seccomp profiles"
            ) from None
    return pyseccomp


def _compile(profile: _Profile) -> bytes:
    """The BPF program libseccomp makes of a checked profile. Imports ``pyseccomp`` (slow)."""
    pyseccomp = _import_pyseccomp()
    try:
        program_filter = pyseccomp.SyscallFilter(profile.default)
    except OSError as e:
        raise SpecError(
            f"{_PATH}.defaultAction", f"libseccomp rejects it: {errno_text(e.errno or 0)}"
        ) from None
    for arch in profile.architectures:
        try:
            program_filter.add_arch(arch)
        except OSError as e:
            if e.errno != EEXIST:  # the native architecture is always there
                raise SpecError(
                    f"{_PATH}.architectures", f"libseccomp cannot add {arch:#x}: {errno_text(e.errno or 0)}"
                ) from None
    if len(profile.rules) > 8:
        program_filter.set_attr(pyseccomp.Attr.CTL_OPTIMIZE, 2)
    for rule in profile.rules:
        if rule.action == profile.default:
            continue  # redundant; libseccomp would refuse it
        number = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, rule.name)
        if number == _NR_SCALL_NONE:
            continue  # unknown to libseccomp on this architecture: skipped, as runc does
        conditions = [pyseccomp.Arg(index, op, a, b) for index, op, a, b in rule.args]
        indexes = [arg[0] for arg in rule.args]
        # runc: conditions on one argument index are alternatives, each its own rule
        groups = [[c] for c in conditions] if len(set(indexes)) < len(indexes) else [conditions]
        for group in groups:
            try:
                program_filter.add_rule(rule.action, number, *group)
            except OSError as e:
                raise SpecError(
                    rule.at, f'libseccomp rejects the rule for "{rule.name}": {errno_text(e.errno or 0)}'
                ) from None
    fd = os.memfd_create("pallet-seccomp", os.MFD_CLOEXEC)
    try:
        program_filter.export_bpf(_FileNo(fd))
        size = os.lseek(fd, 0, os.SEEK_END)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


class _FileNo:
    """What ``export_bpf`` takes: anything with ``fileno()``."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        return self._fd


def _sha256_hex(data: bytes) -> str:
    # hashlib loads OpenSSL (+4 ms); the builtin module is enough for a cache key
    try:
        import _sha256 as module  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # Python >= 3.12
        import _sha2 as module  # type: ignore[import-not-found,no-redef,unused-ignore]
    return str(module.sha256(data).hexdigest())


def _read_cached(path: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = b""
        while chunk := os.read(fd, 65536):
            data += chunk
    finally:
        os.close(fd)
    # a torn or foreign file is a miss, never an error: it is compiled again
    if not data or len(data) % 8 or len(data) > 4096 * 8:
        return None
    return data


def _store(cache_dir: str, path: str, program: bytes) -> None:
    """Atomic: ``path`` is absent or complete. A cache that cannot be written only costs time."""
    from pallet.linux.atomicfile import write_atomic

    try:
        os.makedirs(cache_dir, 0o700, exist_ok=True)
        write_atomic(path, program, mode=0o600)
    except OSError:
        return


def prepare(profile: Seccomp | None, *, cache_dir: str) -> PreparedSeccomp | None:
    """Check and compile ``linux.seccomp``; ``None`` when the spec has none.

    Raises ``SpecError`` (with the JSON path) for a bad profile and
    ``Unsupported`` when libseccomp is missing. Call before forking: the result
    is inherited by the init, which only needs ``install``. ``cache_dir`` must
    be as trusted as the runtime's state: a program found there is loaded as is.
    """
    if profile is None:
        return None
    checked = _check(profile)
    flags = _filter_flags(profile, checked)
    uname = os.uname()
    key_doc = {
        "format": _FORMAT,
        "libseccomp": kernel.libseccomp_version(),
        "machine": uname.machine,
        "kernel": uname.release,
        "profile": checked.key_data(),
    }
    path = os.path.join(cache_dir, _sha256_hex(dumps(key_doc).encode()) + ".bpf")
    program = _read_cached(path)
    if program is None:
        program = _compile(checked)
        if len(program) > 4096 * 8:
            raise SpecError(
                _PATH,
                f"the profile compiles to {len(program) // 8} BPF instructions, more than the kernel's 4096",
            )
        _store(cache_dir, path, program)
    return PreparedSeccomp(program, flags, profile.listener_path, profile.listener_metadata)


# ---------------------------------------------------------------------------
# the container side and the listener


def install(prepared: PreparedSeccomp | None) -> None:
    """Load the filter on the calling process (the init, just before it reports READY).

    Needs no_new_privs or CAP_SYS_ADMIN (``FailedPrecondition`` otherwise).
    Every call the init makes afterwards, up to and including ``execve``, is
    filtered. With a listener, its fd is sent to the ``create`` process and
    closed here.
    """
    if prepared is None:
        return
    fd = kernel.load_filter(prepared.program, prepared.flags)
    if prepared.flags & kernel.FILTER_FLAG_NEW_LISTENER:
        try:
            kernel.send_fd(prepared._to_parent, b"seccompFd", fd)
        finally:
            os.close(fd)


def forward_listener(prepared: PreparedSeccomp | None, state: Mapping[str, object]) -> None:
    """Send the init's notification fd and the container process state to ``listenerPath``.

    Call in the ``create`` process after the init reported READY (it sent the
    fd before that). ``state`` is the OCI state of the container (status
    ``creating``, the init's host pid). No-op without a listener. Closes the
    channel whatever happens.
    """
    if prepared is None or not prepared.has_listener:
        return
    import _socket

    try:
        os.close(prepared._to_parent)
        prepared._to_parent = -1
        fd = kernel.receive_fd(prepared._from_init, wait=False)
        if fd < 0:
            raise FailedPrecondition("the container init did not send its seccomp notification fd")
        doc: dict[str, object] = {
            "ociVersion": state.get("ociVersion", "1.2.0"),
            "fds": ["seccompFd"],
            "pid": state.get("pid", 0),
        }
        if prepared.listener_metadata:
            doc["metadata"] = prepared.listener_metadata
        doc["state"] = dict(state)
        conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        try:
            conn.connect(prepared.listener_path)
            kernel.send_fd(conn.fileno(), dumps(doc).encode(), fd)
        except OSError as e:
            raise Unavailable(
                f'{_PATH}.listenerPath: cannot reach the seccomp agent at "{prepared.listener_path}": '
                f"{errno_text(e.errno or 0)}; start the agent before the container"
            ) from None
        finally:
            conn.close()
            os.close(fd)
    finally:
        prepared.close()


def features() -> dict[str, object]:
    """``linux.seccomp`` of ``pallet-runtime features``, as runc reports it (runtime-spec features.md)."""
    try:
        kernel.libseccomp_version()
    except Unsupported:
        return {"enabled": False}
    return {
        "enabled": True,
        "actions": sorted(_ACTIONS),
        "operators": sorted(_OPERATORS),
        "archs": sorted(_ARCHITECTURES),
        "knownFlags": sorted(kernel.FILTER_FLAGS),
        "supportedFlags": sorted(name for name, flag in kernel.FILTER_FLAGS.items() if _flag_supported(flag)),
    }


def _flag_supported(flag: int) -> bool:
    if flag == kernel.FILTER_FLAGS["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]:
        # the kernel accepts it only together with a listener
        flag |= kernel.FILTER_FLAG_NEW_LISTENER
    return kernel.flag_supported(flag)
