"""``--change`` instructions of ``pallet import`` (and later ``commit``): Dockerfile
lines that edit an image's run config.

Accepted, as ``docker import --change`` accepts them: ``CMD``, ``ENTRYPOINT``
(JSON or shell form), ``ENV`` and ``LABEL`` (``k=v ...`` or the legacy
``k v``), ``EXPOSE``, ``VOLUME`` (JSON or words), ``WORKDIR``, ``USER`` and
``STOPSIGNAL``. Pure: no I/O.
"""

from __future__ import annotations

import json
import shlex
import types

from pallet.errors import InvalidArgument
from pallet.oci.image_spec import ContainerConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["INSTRUCTIONS", "apply_changes"]

INSTRUCTIONS = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")


def _json_list(value: str) -> list[str] | None:
    if not value.startswith("["):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None  # Docker falls back to the shell form too
    if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
        return parsed
    return None


def _command(value: str) -> tuple[str, ...]:
    as_json = _json_list(value)
    return tuple(as_json) if as_json is not None else ("/bin/sh", "-c", value)


def _pairs(instruction: str, value: str) -> list[tuple[str, str]]:
    try:
        words = shlex.split(value)
    except ValueError as e:
        raise InvalidArgument(f"--change {instruction} {value}: {e}") from None
    if not words:
        raise InvalidArgument(f"--change {instruction} needs at least one argument")
    if "=" not in words[0]:
        # legacy form: `ENV key the rest is the value`
        key, _, rest = value.strip().partition(" ")
        return [(key, rest.strip())]
    pairs = []
    for word in words:
        key, sep, val = word.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"--change {instruction}: {word!r} is not KEY=VALUE")
        pairs.append((key, val))
    return pairs


def _with_env(env: tuple[str, ...] | None, key: str, value: str) -> tuple[str, ...]:
    kept = [e for e in env or () if e.partition("=")[0] != key]
    return (*kept, f"{key}={value}")


def _port(word: str) -> str:
    port, _, proto = word.partition("/")
    proto = proto or "tcp"
    first, _, last = port.partition("-")
    if not first.isdigit() or (last and not last.isdigit()) or proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"--change EXPOSE: invalid port {word!r}; use PORT[/tcp|udp|sctp]")
    return f"{port}/{proto}"


def apply_changes(config: ContainerConfig, changes: Iterable[str]) -> ContainerConfig:
    """``config`` with each ``--change`` line applied in order.

    Raises ``InvalidArgument`` naming the line for an unknown instruction or a
    malformed argument.
    """
    for line in changes:
        instruction, _, value = line.strip().partition(" ")
        instruction, value = instruction.upper(), value.strip()
        if instruction not in INSTRUCTIONS:
            raise InvalidArgument(
                f"--change {line!r}: {instruction or 'empty'} is not an instruction pallet import accepts "
                f"({', '.join(INSTRUCTIONS)})"
            )
        if not value:
            raise InvalidArgument(f"--change {instruction} needs an argument")
        if instruction == "CMD":
            config = config.replace(cmd=_command(value))
        elif instruction == "ENTRYPOINT":
            config = config.replace(entrypoint=_command(value))
        elif instruction == "ENV":
            env = config.env
            for key, val in _pairs(instruction, value):
                env = _with_env(env, key, val)
            config = config.replace(env=env)
        elif instruction == "LABEL":
            labels = dict(config.labels)
            labels.update(_pairs(instruction, value))
            config = config.replace(labels=types.MappingProxyType(labels))
        elif instruction == "EXPOSE":
            ports = dict.fromkeys(config.exposed_ports or ())
            ports.update(dict.fromkeys(_port(w) for w in value.split()))
            config = config.replace(exposed_ports=tuple(ports))
        elif instruction == "VOLUME":
            paths = _json_list(value) or value.split()
            volumes = dict.fromkeys(config.volumes or ())
            volumes.update(dict.fromkeys(paths))
            config = config.replace(volumes=tuple(volumes))
        elif instruction == "WORKDIR":
            config = config.replace(working_dir=value)
        elif instruction == "USER":
            config = config.replace(user=value)
        else:  # STOPSIGNAL
            config = config.replace(stop_signal=value)
    return config
