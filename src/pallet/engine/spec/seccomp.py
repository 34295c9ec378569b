"""Seccomp profiles for containers: pallet's default allow-list, and docker-format profile files.

A profile is a list of rules, each valid only for some architectures,
capabilities or kernels. ``resolve(profile, capabilities=..., arch=...,
kernel=...)`` keeps the rules that apply to one container and returns the
``linux.seccomp`` object of its config (``pallet.oci.runtime_spec.Seccomp``).

Two file formats are read:

- pallet's own (``profiles/seccomp-default.json``, the default): ``allow`` is
  the unconditional list, ``rules`` the conditional ones (``with_caps``,
  ``without_caps``, ``arches``, ``not_arches``, ``kernel_at_least``), flags
  such as ``CLONE_NEWNS`` named instead of summed, ``one_of`` for one rule
  per value of an argument (optionally masked: a socket's type);
- docker's (``--security-opt seccomp=FILE``): ``defaultAction``,
  ``archMap``/``architectures``, ``syscalls`` with ``includes``/``excludes``
  (``caps``, ``arches``, ``minKernel``) — which also covers a plain OCI
  ``linux.seccomp`` object.

Rule semantics are docker's: a rule needs *all* its ``with_caps``/``includes.caps``
in the bounding set and is dropped if *any* ``without_caps``/``excludes.caps``
is there; arches are Go names (``amd64``, ``arm64``, ``s390x``, ...).
"""

from __future__ import annotations

import os

from pallet.errors import InvalidArgument, SpecError
from pallet.oci.jsonfast import loads
from pallet.oci.record import Record
from pallet.oci.runtime_spec import Seccomp, SeccompArg, SeccompSyscall

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "Profile",
    "ProfileRule",
    "default_profile",
    "go_arch",
    "kernel_version",
    "load_profile",
    "parse_profile",
    "resolve",
]

DEFAULT_PROFILE_PATH = os.path.join(os.path.dirname(__file__), "profiles", "seccomp-default.json")

#: errno names the profile file may use
_ERRNOS = {"EPERM": 1, "ENOENT": 2, "EACCES": 13, "EINVAL": 22, "ENOSYS": 38}
#: flag names usable in ``value_flags`` (linux/sched.h)
_FLAGS = {
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
    "CLONE_NEWTIME": 0x00000080,
}
#: uname machine -> Go's GOARCH, the arch names of profiles
_GO_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i686": "386",
    "i386": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64": "mips64",
}
#: Go arch -> the libseccomp arch of its native ABI (to pick a docker archMap entry)
_NATIVE_SCMP = {
    "amd64": "SCMP_ARCH_X86_64",
    "arm64": "SCMP_ARCH_AARCH64",
    "arm": "SCMP_ARCH_ARM",
    "386": "SCMP_ARCH_X86",
    "ppc64le": "SCMP_ARCH_PPC64LE",
    "s390x": "SCMP_ARCH_S390X",
    "riscv64": "SCMP_ARCH_RISCV64",
    "mips64": "SCMP_ARCH_MIPS64",
}


class ProfileRule(Record):
    """One rule: ``names`` get ``action`` (with ``args`` conditions) where its conditions hold."""

    names: tuple[str, ...]
    action: str
    errno_ret: int | None = None
    args: tuple[SeccompArg, ...] = ()
    with_caps: tuple[str, ...] = ()
    without_caps: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    not_arches: tuple[str, ...] = ()
    kernel_at_least: tuple[int, int] | None = None
    kernel_below: tuple[int, int] | None = None

    def applies(self, capabilities: frozenset[str], arch: str, kernel: tuple[int, int]) -> bool:
        if any(c not in capabilities for c in self.with_caps):
            return False
        if any(c in capabilities for c in self.without_caps):
            return False
        if (self.arches and arch not in self.arches) or arch in self.not_arches:
            return False
        if self.kernel_at_least is not None and kernel < self.kernel_at_least:
            return False
        return self.kernel_below is None or kernel < self.kernel_below


class Profile(Record):
    """A whole profile; ``architectures`` maps a Go arch to the libseccomp arches to filter."""

    default_action: str
    default_errno_ret: int | None = None
    architectures: tuple[tuple[str, tuple[str, ...]], ...] = ()
    fixed_architectures: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    listener_path: str = ""
    rules: tuple[ProfileRule, ...] = ()


def go_arch(machine: str | None = None) -> str:
    """This machine's architecture as Go (and profiles) name it: ``x86_64`` -> ``amd64``."""
    name = machine or os.uname().machine
    return _GO_ARCH.get(name, name)


def kernel_version(release: str | None = None) -> tuple[int, int]:
    """``6.1.0-13-amd64`` -> (6, 1)."""
    text = release or os.uname().release
    parts = text.split(".")
    numbers = []
    for part in parts[:2]:
        digits = ""
        for char in part:
            if not char.isdigit():
                break
            digits += char
        numbers.append(int(digits or 0))
    while len(numbers) < 2:
        numbers.append(0)
    return numbers[0], numbers[1]


def _kernel(text: object, where: str) -> tuple[int, int]:
    if not isinstance(text, str) or not text[:1].isdigit():
        raise SpecError(where, f"want a kernel version such as 4.8, got {text!r}")
    return kernel_version(text)


_STR = frozenset({str})


def _strings(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    # set(map(type, ...)): the check runs in C; the default profile has ~400 names, read on every create
    if not isinstance(value, list) or not set(map(type, value)) <= _STR:
        raise SpecError(where, "must be an array of strings")
    return tuple(value)


def _errno(value: object, where: str) -> int:
    if isinstance(value, str) and value in _ERRNOS:
        return _ERRNOS[value]
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise SpecError(where, f"want an errno number or one of {', '.join(_ERRNOS)}, got {value!r}")


def _own_arg(doc: object, where: str) -> SeccompArg:
    if not isinstance(doc, dict):
        raise SpecError(where, "must be an object")
    value = doc.get("value", 0)
    if "value_flags" in doc:
        value = 0
        for name in _strings(doc["value_flags"], f"{where}.value_flags"):
            if name not in _FLAGS:
                raise SpecError(f"{where}.value_flags", f'unknown flag "{name}"')
            value |= _FLAGS[name]
    return SeccompArg.from_json(
        {"index": doc.get("index"), "value": value, "valueTwo": doc.get("value_two", 0), "op": doc.get("op")},
        where,
    )


def _arg_sets(rule: dict[str, object], raw_args: list[object], where: str) -> list[tuple[SeccompArg, ...]]:
    """The argument conditions of a rule; ``one_of`` makes one rule per value (conditions of one
    rule are ANDed, separate rules ORed), each with the rule's ``args`` as well."""
    args = tuple(_own_arg(a, f"{where}.args[{j}]") for j, a in enumerate(raw_args))
    one_of = rule.get("one_of")
    if one_of is None:
        return [args]
    if not isinstance(one_of, dict) or not isinstance(one_of.get("values"), list):
        raise SpecError(f"{where}.one_of", "must be an object with index, values and an optional mask")
    index, mask = one_of.get("index", 0), one_of.get("mask")
    out: list[tuple[SeccompArg, ...]] = []
    for value in one_of["values"]:
        cond = (
            {"index": index, "value": value, "op": "SCMP_CMP_EQ"}
            if mask is None
            else {"index": index, "value": mask, "valueTwo": value, "op": "SCMP_CMP_MASKED_EQ"}
        )
        out.append((*args, SeccompArg.from_json(cond, f"{where}.one_of")))
    return out


def _own_rules(doc: dict[str, object], source: str) -> list[ProfileRule]:
    rules = [ProfileRule(names=_strings(doc.get("allow"), f"{source}: allow"), action="SCMP_ACT_ALLOW")]
    raw_rules = doc.get("rules", [])
    if not isinstance(raw_rules, list):
        raise SpecError(f"{source}: rules", "must be an array")
    for i, rule in enumerate(raw_rules):
        where = f"{source}: rules[{i}]"
        if not isinstance(rule, dict):
            raise SpecError(where, "must be an object")
        if "allow" in rule:
            names, action, errno_ret = _strings(rule["allow"], f"{where}.allow"), "SCMP_ACT_ALLOW", None
        else:
            names, action = _strings(rule.get("deny"), f"{where}.deny"), "SCMP_ACT_ERRNO"
            errno_ret = _errno(rule.get("errno", "EPERM"), f"{where}.errno")
        raw_args = rule.get("args", [])
        if not isinstance(raw_args, list):
            raise SpecError(f"{where}.args", "must be an array")
        with_caps = _strings(rule.get("with_caps"), f"{where}.with_caps")
        without_caps = _strings(rule.get("without_caps"), f"{where}.without_caps")
        arches = _strings(rule.get("arches"), f"{where}.arches")
        not_arches = _strings(rule.get("not_arches"), f"{where}.not_arches")
        kernel_at_least = (
            _kernel(rule["kernel_at_least"], f"{where}.kernel_at_least")
            if "kernel_at_least" in rule
            else None
        )
        arg_sets = _arg_sets(rule, raw_args, where)
        # each rule built once (no base.replace): the default profile is parsed on every create
        rules.extend(
            ProfileRule(
                names=names,
                action=action,
                errno_ret=errno_ret,
                args=args,
                with_caps=with_caps,
                without_caps=without_caps,
                arches=arches,
                not_arches=not_arches,
                kernel_at_least=kernel_at_least,
            )
            for args in arg_sets
        )
    return rules


def _docker_filter(doc: object, where: str) -> dict[str, object]:
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise SpecError(where, "must be an object")
    return doc


def _docker_rules(doc: dict[str, object], source: str) -> list[ProfileRule]:
    raw = doc.get("syscalls") or []
    if not isinstance(raw, list):
        raise SpecError(f"{source}: syscalls", "must be an array")
    rules: list[ProfileRule] = []
    for i, call in enumerate(raw):
        where = f"{source}: syscalls[{i}]"
        if not isinstance(call, dict):
            raise SpecError(where, "must be an object")
        if call.get("name") and call.get("names"):
            raise SpecError(where, "use either 'name' or 'names', not both")
        names = (call["name"],) if call.get("name") else _strings(call.get("names"), f"{where}.names")
        # the OCI parser checks action, errnoRet and args, with their JSON paths
        checked = SeccompSyscall.from_json(
            {k: v for k, v in call.items() if k in ("action", "errnoRet", "args")}
            | {"names": list(names) or [""]},
            where,
        )
        includes = _docker_filter(call.get("includes"), f"{where}.includes")
        excludes = _docker_filter(call.get("excludes"), f"{where}.excludes")
        rules.append(
            ProfileRule(
                names=names,
                action=checked.action,
                errno_ret=checked.errno_ret,
                args=checked.args,
                with_caps=_strings(includes.get("caps"), f"{where}.includes.caps"),
                without_caps=_strings(excludes.get("caps"), f"{where}.excludes.caps"),
                arches=_strings(includes.get("arches"), f"{where}.includes.arches"),
                not_arches=_strings(excludes.get("arches"), f"{where}.excludes.arches"),
                kernel_at_least=(
                    _kernel(includes["minKernel"], f"{where}.includes.minKernel")
                    if includes.get("minKernel")
                    else None
                ),
                kernel_below=(
                    _kernel(excludes["minKernel"], f"{where}.excludes.minKernel")
                    if excludes.get("minKernel")
                    else None
                ),
            )
        )
    return rules


def parse_profile(doc: object, *, source: str) -> Profile:
    """A profile from its JSON (pallet's format if it has ``allow``/``rules``, else docker's)."""
    if not isinstance(doc, dict):
        raise SpecError(source, "a seccomp profile must be a JSON object")
    if "default" in doc:
        default = doc["default"]
        if not isinstance(default, dict):
            raise SpecError(f"{source}: default", "must be an object")
        checked = Seccomp.from_json({"defaultAction": default.get("action")}, f"{source}: default")
        errno_ret = _errno(default["errno"], f"{source}: default.errno") if "errno" in default else None
        arches = doc.get("architectures", {})
        if not isinstance(arches, dict):
            raise SpecError(f"{source}: architectures", "must be an object")
        return Profile(
            default_action=checked.default_action,
            default_errno_ret=errno_ret,
            architectures=tuple((k, _strings(v, f"{source}: architectures.{k}")) for k, v in arches.items()),
            rules=tuple(_own_rules(doc, source)),
        )
    if doc.get("archMap") and doc.get("architectures"):
        raise SpecError(source, "use either 'architectures' or 'archMap', not both")
    # the OCI parser checks defaultAction, defaultErrnoRet, architectures, flags, listenerPath
    oci = Seccomp.from_json(
        {
            k: v
            for k, v in doc.items()
            if k in ("defaultAction", "defaultErrnoRet", "architectures", "flags", "listenerPath")
        },
        source,
    )
    arch_map: list[tuple[str, tuple[str, ...]]] = []
    for i, entry in enumerate(doc.get("archMap") or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("architecture"), str):
            raise SpecError(f"{source}: archMap[{i}]", "must be an object with an architecture")
        subs = _strings(entry.get("subArchitectures"), f"{source}: archMap[{i}].subArchitectures")
        arch_map.append((entry["architecture"], (entry["architecture"], *subs)))
    return Profile(
        default_action=oci.default_action,
        default_errno_ret=oci.default_errno_ret,
        architectures=tuple(arch_map),
        fixed_architectures=oci.architectures,
        flags=oci.flags,
        listener_path=oci.listener_path,
        rules=tuple(_docker_rules(doc, source)),
    )


def load_profile(path: str) -> Profile:
    """Read a profile file (``--security-opt seccomp=FILE``)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InvalidArgument(
            f"opening seccomp profile ({path}) failed: {(e.strerror or str(e)).lower()}"
        ) from None
    try:
        doc = loads(data)
    except InvalidArgument as e:
        raise InvalidArgument(f"decoding seccomp profile ({path}) failed: {e}") from None
    return parse_profile(doc, source=path)


_default: Profile | None = None


def default_profile() -> Profile:
    """pallet's default profile (read once per process)."""
    global _default  # noqa: PLW0603 - a read-only cache of a file shipped in the package
    if _default is None:
        _default = load_profile(DEFAULT_PROFILE_PATH)
    return _default


def _scmp_arches(profile: Profile, arch: str) -> tuple[str, ...]:
    if profile.fixed_architectures:
        return profile.fixed_architectures
    mapping = dict(profile.architectures)
    if arch in mapping:
        return mapping[arch]
    native = _NATIVE_SCMP.get(arch)
    return mapping.get(native, ()) if native else ()


def resolve(
    profile: Profile,
    *,
    capabilities: Iterable[str],
    arch: str | None = None,
    kernel: tuple[int, int] | None = None,
) -> Seccomp:
    """``linux.seccomp`` for a container with these bounding ``capabilities``, on ``arch``/``kernel``
    (default: this machine's)."""
    caps = frozenset(capabilities)
    arch = arch or go_arch()
    kernel = kernel or kernel_version()
    syscalls = tuple(
        SeccompSyscall(names=rule.names, action=rule.action, errno_ret=rule.errno_ret, args=rule.args)
        for rule in profile.rules
        if rule.names and rule.applies(caps, arch, kernel)
    )
    return Seccomp(
        default_action=profile.default_action,
        default_errno_ret=profile.default_errno_ret,
        architectures=_scmp_arches(profile, arch),
        flags=profile.flags,
        listener_path=profile.listener_path,
        syscalls=syscalls,
    )
