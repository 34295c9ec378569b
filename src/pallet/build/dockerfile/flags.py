"""Instruction flags (``--from=``, ``--mount=``, ``--interval=`` …): which instruction takes which, and their values.

BuildKit's ``BFlags`` rules: every flag word starts with ``--``; a string flag
needs ``=value`` and may appear once; a list flag may repeat; a bool flag is
``--name`` or ``--name=true|false``; anything else is ``unknown flag``.
Errors are ``FlagError`` with docker's words; the parser adds the line.
"""

from __future__ import annotations

from enum import Enum

from pallet.build.dockerfile.instructions import Mount
from pallet.engine import durations
from pallet.errors import InvalidArgument

__all__ = ["FlagError", "FlagKind", "parse_duration", "parse_flags", "parse_mount"]


class FlagError(ValueError):
    """A flag the instruction does not take, or a value it cannot have."""


class FlagKind(Enum):
    STRING = "string"
    LIST = "list"
    BOOL = "bool"


_S, _L, _B = FlagKind.STRING, FlagKind.LIST, FlagKind.BOOL

#: the flags each instruction takes (docker's Dockerfile reference)
FLAGS: dict[str, dict[str, FlagKind]] = {
    "from": {"platform": _S},
    "run": {"mount": _L, "network": _S, "security": _S},
    "copy": {"from": _S, "chown": _S, "chmod": _S, "link": _B, "parents": _B, "exclude": _L},
    "add": {
        "chown": _S,
        "chmod": _S,
        "link": _B,
        "checksum": _S,
        "keep-git-dir": _B,
        "exclude": _L,
        "unpack": _B,
    },
    "healthcheck": {"interval": _S, "timeout": _S, "start-period": _S, "start-interval": _S, "retries": _S},
}


def parse_flags(command: str, words: tuple[str, ...]) -> dict[str, str | list[str] | bool]:
    """The flags given to ``command``: string flags as str, list flags as list, bool flags as bool."""
    known = FLAGS.get(command, {})
    values: dict[str, str | list[str] | bool] = {}
    for word in words:
        if not word.startswith("--"):
            raise FlagError(f"arg should start with -- : {word}")
        name, has_value, value = word[2:].partition("=")
        kind = known.get(name)
        if kind is None:
            raise FlagError(f"unknown flag: {name}")
        if kind is FlagKind.BOOL:
            if not has_value:
                values[name] = True
            elif value.lower() in ("true", "false", "1", "0", "t", "f"):
                values[name] = value.lower() in ("true", "1", "t")
            else:
                raise FlagError(f"expecting boolean value for flag {name}, not: {value}")
            continue
        if not has_value:
            raise FlagError(f"missing a value on flag: {name}")
        if kind is FlagKind.LIST:
            current = values.setdefault(name, [])
            assert isinstance(current, list)
            current.append(value)
            continue
        if name in values:
            raise FlagError(f"duplicate flag specified: {name}")
        values[name] = value
    return values


def parse_duration(text: str) -> int:
    """A Go duration (``30s``, ``1m30s``, ``500ms``) in nanoseconds, as BuildKit reads HEALTHCHECK's."""
    try:
        return durations.parse_duration(text)
    except InvalidArgument as error:
        raise FlagError(str(error)) from None


_MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
_SHARING = ("shared", "private", "locked")


def _mount_bool(key: str, value: str | None) -> bool:
    if value is None:
        return True
    lowered = value.lower()
    if lowered in ("true", "1", "t"):
        return True
    if lowered in ("false", "0", "f"):
        return False
    raise FlagError(f"invalid value for {key}: {value}")


def parse_mount(text: str) -> Mount:
    """One ``--mount=`` value: comma-separated ``key=value`` fields (type defaults to bind)."""
    fields: dict[str, str | None] = {}
    for part in text.split(","):
        if not part:
            continue
        key, has_value, text_value = part.partition("=")
        fields[key.strip().lower()] = text_value if has_value else None
    kind = fields.pop("type", None) or "bind"
    if kind not in _MOUNT_TYPES:
        raise FlagError(f"unsupported mount type {kind!r}")
    target: str | None = None
    source = from_ = ident = mode = uid = gid = size = env = target
    readonly: bool | None = None
    sharing = "shared"
    required = False
    for key, value in fields.items():
        if key in ("target", "dst", "destination"):
            target = value
        elif key in ("source", "src"):
            source = value
        elif key == "from":
            from_ = value
        elif key in ("readonly", "ro"):
            readonly = _mount_bool(key, value)
        elif key in ("readwrite", "rw"):
            readonly = not _mount_bool(key, value)
        elif key == "id":
            ident = value
        elif key == "sharing":
            if value is None or value not in _SHARING:
                raise FlagError(f"unsupported sharing value {value!r}")
            sharing = value
        elif key == "mode":
            mode = value
        elif key == "uid":
            uid = value
        elif key == "gid":
            gid = value
        elif key == "size":
            size = value
        elif key == "required":
            required = _mount_bool(key, value)
        elif key == "env":
            env = value
        else:
            raise FlagError(f"unexpected key '{key}' in '{part_of(text, key)}'")
    if kind in ("bind", "cache", "tmpfs") and not target:
        raise FlagError("mount target must be specified")
    return Mount(
        type=kind,
        target=target,
        source=source,
        from_=from_,
        readonly=readonly,
        id=ident,
        sharing=sharing,
        mode=mode,
        uid=uid,
        gid=gid,
        size=size,
        required=required,
        env=env,
    )


def part_of(text: str, key: str) -> str:
    """The field of a mount text that starts with ``key``, for error messages."""
    for part in text.split(","):
        if part.strip().lower().partition("=")[0] == key:
            return part
    return text
