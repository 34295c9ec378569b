"""Device rules: v1 lines, and the v2 BPF program run in a small eBPF interpreter for (type, major, minor, access)."""

from __future__ import annotations

import itertools
import struct

import pytest

from pallet.errors import SpecError
from pallet.oci.runtime_spec import Device, DeviceRule
from pallet.runtime.cgroup_devices import (
    DEFAULT_ALLOWED,
    container_rules,
    device_program,
    rule_text,
    v1_device_writes,
)

ACCESS = {"m": 1, "r": 2, "w": 4}
TYPES = {"b": 1, "c": 2}


def run(program: bytes, kind: str, major: int, minor: int, access: str) -> int:
    """Interpret the instructions of a cgroup device program (the subset the kernel verifier would see)."""
    ctx = struct.pack("<III", TYPES[kind] | (sum(ACCESS[a] for a in access) << 16), major, minor)
    insns = [struct.unpack_from("<BBhi", program, i) for i in range(0, len(program), 8)]
    regs = [0] * 11
    regs[1] = -1  # the context pointer, only used as a base for loads
    pc = 0
    steps = 0
    while True:
        steps += 1
        assert steps < 10_000, "no loop may run away (the verifier forbids backward jumps)"
        code, regbyte, off, imm = insns[pc]
        dst, src = regbyte & 0xF, regbyte >> 4
        pc += 1
        if code == 0x61:  # ldx w
            assert src == 1
            assert off in (0, 4, 8)
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code == 0x54:  # and32 k
            regs[dst] = (regs[dst] & imm) & 0xFFFFFFFF
        elif code == 0x74:  # rsh32 k
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif code == 0xBF:  # mov64 x
            regs[dst] = regs[src]
        elif code == 0x57:  # and64 k
            regs[dst] &= imm
        elif code == 0xB7:  # mov64 k
            regs[dst] = imm
        elif code == 0x15:  # jeq k
            pc += off if regs[dst] == imm else 0
        elif code == 0x55:  # jne k
            pc += off if regs[dst] != imm else 0
        elif code == 0x05:  # ja
            pc += off
        elif code == 0x95:  # exit
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
        assert off >= 0, "forward jumps only"


def rule(
    allow: bool, kind: str = "", major: int | None = None, minor: int | None = None, access: str = "rwm"
) -> DeviceRule:
    return DeviceRule(allow=allow, type=kind, major=major, minor=minor, access=access)


def reachable(program: bytes) -> bool:
    """Every instruction is reachable (the kernel verifier rejects programs with dead code)."""
    n = len(program) // 8
    seen: set[int] = set()
    todo = [0]
    while todo:
        pc = todo.pop()
        if pc in seen:
            continue
        seen.add(pc)
        code, _, off, _ = struct.unpack_from("<BBhi", program, pc * 8)
        if code == 0x95:
            continue
        if code == 0x05:
            todo.append(pc + 1 + off)
        elif code in (0x15, 0x55):
            todo += [pc + 1, pc + 1 + off]
        else:
            todo.append(pc + 1)
    return seen == set(range(n))


def test_v1_lines_use_wildcards_and_default_access() -> None:
    assert rule_text(rule(True, "c", 1, 3, "rw")) == "c 1:3 rw"
    assert rule_text(rule(False, "b", 8, None, "")) == "b 8:* rwm"
    assert rule_text(rule(True, "c", -1, -1, "m")) == "c *:* m"
    assert rule_text(rule(False, "a", 1, 3, "r")) == "a *:* rwm"


def test_v1_writes_start_from_deny_all() -> None:
    assert v1_device_writes([rule(True, "c", 1, 3), rule(False, "c", 1, 3, "w")]) == [
        ("devices.deny", "a"),
        ("devices.allow", "c 1:3 rwm"),
        ("devices.deny", "c 1:3 w"),
    ]


def test_empty_rule_list_denies_everything() -> None:
    program = device_program([])
    assert reachable(program)
    for kind, access in itertools.product("bc", ["m", "r", "w", "rw", "rwm"]):
        assert run(program, kind, 1, 3, access) == 0


def test_docker_default_rules_allow_only_listed_devices() -> None:
    rules = container_rules([rule(False)], [Device(type="c", path="/dev/fuse", major=10, minor=229)])
    program = device_program(rules)
    assert reachable(program)
    assert run(program, "c", 1, 3, "rw") == 1  # /dev/null
    assert run(program, "c", 136, 7, "rw") == 1  # /dev/pts/7
    assert run(program, "c", 10, 229, "rwm") == 1  # linux.devices entry
    assert run(program, "b", 8, 0, "m") == 1  # mknod of any block device
    assert run(program, "b", 8, 0, "r") == 0  # but not reading it
    assert run(program, "b", 8, 0, "rm") == 0
    assert run(program, "c", 1, 1, "r") == 0  # /dev/mem
    assert run(program, "c", 4, 1, "w") == 0  # a tty


def test_later_rules_override_earlier_ones_per_access_bit() -> None:
    program = device_program([rule(True, "c", 1, 3, "rwm"), rule(False, "c", 1, 3, "w")])
    assert reachable(program)
    assert run(program, "c", 1, 3, "r") == 1
    assert run(program, "c", 1, 3, "m") == 1
    assert run(program, "c", 1, 3, "w") == 0
    assert run(program, "c", 1, 3, "rw") == 0  # asking for a denied bit denies the whole request


def test_separate_allows_for_read_and_write_combine() -> None:
    program = device_program([rule(True, "c", 1, 5, "r"), rule(True, "c", 1, 5, "w")])
    assert run(program, "c", 1, 5, "rw") == 1
    assert run(program, "c", 1, 5, "rwm") == 0


def test_wildcard_major_and_minor_and_type() -> None:
    program = device_program([rule(True, "c", None, 3, "r"), rule(True, "b", 8, None, "w")])
    assert run(program, "c", 99, 3, "r") == 1
    assert run(program, "c", 99, 4, "r") == 0
    assert run(program, "b", 8, 17, "w") == 1
    assert run(program, "c", 8, 17, "w") == 0  # type matters


def test_allow_all_then_deny_one_device() -> None:
    program = device_program([rule(True, "a"), rule(False, "c", 1, 1, "rw")])
    assert reachable(program)
    assert run(program, "c", 1, 1, "r") == 0
    assert run(program, "c", 1, 1, "m") == 1
    assert run(program, "b", 8, 0, "rwm") == 1


def test_a_wildcard_rule_resets_what_came_before() -> None:
    program = device_program([rule(True, "c", 1, 3), rule(False, "a"), rule(True, "c", 1, 5, "r")])
    assert reachable(program)
    assert run(program, "c", 1, 3, "r") == 0
    assert run(program, "c", 1, 5, "r") == 1
    assert run(program, "c", 1, 5, "w") == 0


def test_every_rule_combination_agrees_with_a_reference_model() -> None:
    candidates = [
        rule(True, "c", 1, 3, "rw"),
        rule(False, "c", 1, None, "w"),
        rule(True, "b", None, None, "m"),
        rule(False, "a"),
        rule(True, "a"),
        rule(True, "c", None, 3, "r"),
    ]
    devices = [("c", 1, 3), ("c", 1, 4), ("c", 2, 3), ("b", 1, 3)]

    def model(rules: list[DeviceRule], kind: str, major: int, minor: int, access: str) -> int:
        for letter in access:
            verdict = False
            for r in rules:
                wild = r.type in ("", "a")
                if wild or (
                    r.type == kind
                    and letter in (r.access or "rwm")
                    and r.major in (None, major)
                    and r.minor in (None, minor)
                ):
                    verdict = r.allow
            if not verdict:
                return 0
        return 1

    for length in range(4):
        for rules in itertools.permutations(candidates, length):
            program = device_program(list(rules))
            assert reachable(program), rules
            for (kind, major, minor), access in itertools.product(devices, ["m", "r", "w", "rw", "rwm"]):
                assert run(program, kind, major, minor, access) == model(
                    list(rules), kind, major, minor, access
                ), (rules, kind, major, minor, access)


def test_container_rules_append_runc_defaults_and_spec_devices() -> None:
    rules = container_rules(
        [rule(False)],
        [Device(type="b", path="/dev/sda", major=8, minor=0), Device(type="p", path="/dev/fifo")],
    )
    assert rules[0] == rule(False)
    assert rules[1 : 1 + len(DEFAULT_ALLOWED)] == DEFAULT_ALLOWED
    assert rules[-1] == rule(True, "b", 8, 0, "rwm")
    assert len(rules) == 2 + len(DEFAULT_ALLOWED)


@pytest.mark.parametrize("count", [0, 1, 30])
def test_program_is_whole_instructions(count: int) -> None:
    program = device_program([rule(True, "c", 1, n) for n in range(count)])
    assert len(program) % 8 == 0
    assert struct.unpack_from("<BBhi", program, len(program) - 8)[0] == 0x95  # ends with exit


def test_impossible_device_numbers_are_spec_errors() -> None:
    with pytest.raises(
        SpecError, match=r"^linux\.resources\.devices\[1\]\.major: 4096 is not a device major number"
    ):
        container_rules([rule(False), rule(True, "c", 4096, 0)])
    with pytest.raises(SpecError, match=r"^linux\.devices\[0\]\.minor: 1048576 is not a device minor number"):
        container_rules([], [Device(type="c", path="/dev/x", major=1, minor=1 << 20)])
    with pytest.raises(SpecError, match=r"major"):
        device_program([rule(True, "c", 1 << 40, 0)])
