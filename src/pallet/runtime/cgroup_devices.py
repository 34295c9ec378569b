"""Device access rules of a container's cgroup: v1 ``devices.allow``/``devices.deny`` writes, and
the v2 BPF device program (``BPF_PROG_TYPE_CGROUP_DEVICE``) built from the same rules.

Semantics (both versions): access starts denied; rules apply in order and a
later rule overrides an earlier one, separately for each access bit (``m``
mknod, ``r`` read, ``w`` write): a request is allowed when, for each bit it
asks for, the last rule that matches the device and names that bit allows it.
A rule of type ``a`` (or ``""``) matches every device with every access and so
resets the state, as in cgroup v1. An empty ``access`` means ``rwm``; major or
minor ``None`` or negative means any.

On v1 the kernel applies the rules itself: we write ``a`` to ``devices.deny``
(start from deny-all) and then each rule. v1 cannot punch a hole in a wildcard
exception (``allow c *:* rwm`` then ``deny c 1:3 w`` leaves 1:3 writable); the
v2 program does what the rules say (1:3 not writable). runc avoids that case by
emulating v1; rule lists from engines never contain it.

The v2 program, like crun's, evaluates the rules from last to first and stops at
the first match; one chain per access bit. ``container_rules`` adds the devices
runc always allows (``/dev/null``, ``/dev/pts/*``, ... and ``mknod`` of any
char/block device) and the spec's ``linux.devices``.
"""

from __future__ import annotations

import os

from pallet.errors import SpecError
from pallet.oci.runtime_spec import DeviceRule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from pallet.oci.runtime_spec import Device

__all__ = [
    "DEFAULT_ALLOWED",
    "attach_program",
    "check_rules",
    "container_rules",
    "device_program",
    "rule_text",
    "v1_device_writes",
]

# runc's AllowedDevices: what every container may use whatever its spec says
DEFAULT_ALLOWED: tuple[DeviceRule, ...] = (
    DeviceRule(allow=True, type="c", access="m"),
    DeviceRule(allow=True, type="b", access="m"),
    DeviceRule(allow=True, type="c", major=1, minor=3, access="rwm"),  # /dev/null
    DeviceRule(allow=True, type="c", major=1, minor=8, access="rwm"),  # /dev/random
    DeviceRule(allow=True, type="c", major=1, minor=7, access="rwm"),  # /dev/full
    DeviceRule(allow=True, type="c", major=5, minor=0, access="rwm"),  # /dev/tty
    DeviceRule(allow=True, type="c", major=1, minor=5, access="rwm"),  # /dev/zero
    DeviceRule(allow=True, type="c", major=1, minor=9, access="rwm"),  # /dev/urandom
    DeviceRule(allow=True, type="c", major=136, access="rwm"),  # /dev/pts/*
    DeviceRule(allow=True, type="c", major=5, minor=2, access="rwm"),  # /dev/ptmx
    DeviceRule(allow=True, type="c", major=10, minor=200, access="rwm"),  # /dev/net/tun
)


_MAX_MAJOR = 0xFFF  # Linux device numbers: 12 bits of major, 20 of minor
_MAX_MINOR = 0xFFFFF


def _check_numbers(major: int | None, minor: int | None, path: str) -> None:
    if major is not None and major > _MAX_MAJOR:
        raise SpecError(f"{path}.major", f"{major} is not a device major number (at most {_MAX_MAJOR})")
    if minor is not None and minor > _MAX_MINOR:
        raise SpecError(f"{path}.minor", f"{minor} is not a device minor number (at most {_MAX_MINOR})")


def check_rules(rules: Iterable[DeviceRule], path: str = "linux.resources.devices") -> None:
    """Raise ``SpecError`` for a rule whose major or minor no device can have."""
    for i, rule in enumerate(rules):
        _check_numbers(rule.major, rule.minor, f"{path}[{i}]")


def container_rules(rules: Sequence[DeviceRule], devices: Sequence[Device] = ()) -> tuple[DeviceRule, ...]:
    """The rule list a container's cgroup gets: the spec's rules, runc's always-allowed
    devices, then read/write/mknod of each device node in ``linux.devices``.

    Raises ``SpecError`` for device numbers out of range (JSON paths of the spec).
    """
    check_rules(rules)
    extra = []
    for i, d in enumerate(devices):
        if d.type in ("b", "c", "u") and d.major is not None and d.minor is not None:
            _check_numbers(d.major, d.minor, f"linux.devices[{i}]")
            kind = "b" if d.type == "b" else "c"
            extra.append(DeviceRule(allow=True, type=kind, major=d.major, minor=d.minor, access="rwm"))
    return (*rules, *DEFAULT_ALLOWED, *extra)


def _kind(rule: DeviceRule) -> str:
    return rule.type if rule.type in ("b", "c") else "a"


def _number(value: int | None) -> int | None:
    return None if value is None or value < 0 else value


def _access(rule: DeviceRule) -> str:
    return rule.access or "rwm"


def rule_text(rule: DeviceRule) -> str:
    """The v1 ``devices.allow``/``deny`` line: ``c 1:3 rwm``, ``b 8:* r``, ``a *:* rwm``."""
    major, minor = _number(rule.major), _number(rule.minor)
    if _kind(rule) == "a":
        return "a *:* rwm"
    text_major = "*" if major is None else str(major)
    text_minor = "*" if minor is None else str(minor)
    return f"{_kind(rule)} {text_major}:{text_minor} {_access(rule)}"


def v1_device_writes(rules: Iterable[DeviceRule]) -> list[tuple[str, str]]:
    """``(file, line)`` writes for a v1 ``devices`` cgroup: deny everything, then each rule in order."""
    rules = tuple(rules)
    check_rules(rules)
    writes = [("devices.deny", "a")]
    for rule in rules:
        writes.append(("devices.allow" if rule.allow else "devices.deny", rule_text(rule)))
    return writes


# ---------------------------------------------------------------------------
# the v2 program (eBPF instructions, struct bpf_insn: u8 code, u8 dst|src<<4, s16 off, s32 imm)

# opcodes
_LDX_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
_AND32_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
_RSH32_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K
_MOV64_X = 0xBF  # BPF_ALU64 | BPF_MOV | BPF_X
_AND64_K = 0x57  # BPF_ALU64 | BPF_AND | BPF_K
_MOV64_K = 0xB7  # BPF_ALU64 | BPF_MOV | BPF_K
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JNE_K = 0x55  # BPF_JMP | BPF_JNE | BPF_K
_JA = 0x05  # BPF_JMP | BPF_JA
_EXIT = 0x95  # BPF_JMP | BPF_EXIT

# struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }: access_type is
# the device type in the low 16 bits and the access bits in the high 16
_DEV_TYPE = {"b": 1, "c": 2}  # BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
_ACCESS_BIT = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE
_R0, _R1, _R2, _R3, _R4, _R5 = 0, 1, 2, 3, 4, 5


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    # struct.pack("<BBhi", ...), without importing struct on the runtime's hot path
    return (
        bytes((code, dst | (src << 4)))
        + off.to_bytes(2, "little", signed=True)
        + imm.to_bytes(4, "little", signed=True)
    )


class _Assembler:
    """Instructions with forward jumps to labels, resolved by ``assemble``."""

    def __init__(self) -> None:
        self.code: list[tuple[int, int, int, object, int]] = []
        self.labels: dict[object, int] = {}

    def emit(self, code: int, dst: int = 0, src: int = 0, off: object = 0, imm: int = 0) -> None:
        self.code.append((code, dst, src, off, imm))

    def label(self, name: object) -> None:
        self.labels[name] = len(self.code)

    def assemble(self) -> bytes:
        out = []
        for index, (code, dst, src, off, imm) in enumerate(self.code):
            # jump offsets count from the next instruction
            offset = off if isinstance(off, int) else self.labels[off] - index - 1
            out.append(_insn(code, dst, src, offset, imm))
        return b"".join(out)


def device_program(rules: Sequence[DeviceRule]) -> bytes:
    """The cgroup v2 device program for ``rules`` (semantics in the module docstring).

    The verifier rejects unreachable instructions, so nothing is emitted after a
    rule that matches every device.
    """
    check_rules(rules)
    asm = _Assembler()
    asm.emit(_LDX_W, _R2, _R1, 0)
    asm.emit(_AND32_K, _R2, imm=0xFFFF)  # r2: device type
    asm.emit(_LDX_W, _R3, _R1, 0)
    asm.emit(_RSH32_K, _R3, imm=16)  # r3: requested access bits
    asm.emit(_LDX_W, _R4, _R1, 4)  # r4: major
    asm.emit(_LDX_W, _R5, _R1, 8)  # r5: minor
    for letter, bit in _ACCESS_BIT.items():
        granted = ("granted", letter)
        asm.emit(_MOV64_X, _R0, _R3)
        asm.emit(_AND64_K, _R0, imm=bit)
        asm.emit(_JEQ_K, _R0, off=granted, imm=0)  # this bit not requested
        matches_all = False
        for number, rule in enumerate(reversed(rules)):
            if _kind(rule) != "a" and letter not in _access(rule):
                continue
            following = ("next", letter, number)
            major, minor = _number(rule.major), _number(rule.minor)
            if _kind(rule) != "a":
                asm.emit(_JNE_K, _R2, off=following, imm=_DEV_TYPE[_kind(rule)])
                if major is not None:
                    asm.emit(_JNE_K, _R4, off=following, imm=major)
                if minor is not None:
                    asm.emit(_JNE_K, _R5, off=following, imm=minor)
            matches_all = _kind(rule) == "a"
            if rule.allow:
                if not matches_all:
                    asm.emit(_JA, off=granted)
            else:
                asm.emit(_MOV64_K, _R0, imm=0)
                asm.emit(_EXIT)
            asm.label(following)
            if matches_all:
                break
        if not matches_all:
            asm.emit(_MOV64_K, _R0, imm=0)  # no rule for this bit: denied
            asm.emit(_EXIT)
        asm.label(granted)
    asm.emit(_MOV64_K, _R0, imm=1)
    asm.emit(_EXIT)
    return asm.assemble()


def attach_program(cgroup_dir: str, rules: Sequence[DeviceRule]) -> None:
    """Load the program for ``rules`` and make it the cgroup's only device program.

    The new program is attached before the old ones are detached, so the cgroup
    is never left without device rules (``runc update`` does the same).
    """
    from pallet.linux import bpf

    program = bpf.load_program(device_program(rules))
    cgroup_fd = -1
    try:
        cgroup_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        old = bpf.query(cgroup_fd)
        bpf.attach(cgroup_fd, program)
        for program_id in old:
            old_fd = bpf.program_fd_by_id(program_id)
            try:
                bpf.detach(cgroup_fd, old_fd)
            finally:
                bpf.close(old_fd)
    finally:
        bpf.close(program)
        if cgroup_fd >= 0:
            os.close(cgroup_fd)
