"""What a build is asked to do: ``BuildRequest`` (docker's ``build`` options as values) and its result."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pallet.errors import InvalidArgument, Unsupported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.registry.client.credentials import Credentials

__all__ = ["SUPPORTED_PLATFORM", "BuildRequest", "BuildResult", "Output", "check_platform", "parse_output"]

SUPPORTED_PLATFORM = "linux/amd64"


@dataclass(frozen=True, slots=True, kw_only=True)
class Output:
    """``-o type=local,dest=DIR`` or ``-o type=tar,dest=FILE`` (``-`` is stdout)."""

    type: str
    dest: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildRequest:
    context: str
    dockerfile: str | None = None
    tags: tuple[str, ...] = ()
    target: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    platform: str | None = None
    quiet: bool = False
    progress: str = "auto"  # auto | plain | tty
    outputs: tuple[Output, ...] = ()
    network: str = "default"
    pull: bool = False
    no_cache: bool = False
    cache_from: tuple[str, ...] = ()
    secrets: Mapping[str, str] = field(default_factory=dict)  # id -> file
    extra_hosts: tuple[str, ...] = ()  # docker's --add-host NAME:IP, in every RUN's /etc/hosts
    #: docker's legacy builder (the API's /build): every step, metadata ones too, is a cache hit or
    #: not, and with ``cache_from`` only what those images were built from is (no local cache)
    legacy: bool = False
    #: credentials per registry (``host[:port]``) for the base images a build pulls (the API's
    #: ``X-Registry-Config``); a registry without any here uses the root's ``pallet login``
    registry_auth: Mapping[str, Credentials] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildResult:
    image_id: str
    tags: tuple[str, ...] = ()
    cached_steps: int = 0
    run_steps: int = 0


def check_platform(platform: str) -> None:
    """Only linux/amd64 builds run here; anything else is ``Unsupported`` with a clear reason."""
    normal = platform.strip().lower()
    if normal in ("linux/amd64", "linux/x86_64", "linux/amd64/v1"):
        return
    raise Unsupported(
        f'pallet builds linux/amd64 images only: platform "{platform}" would need emulation, which is not available'
    )


def parse_output(text: str) -> Output:
    """docker's ``-o`` value: ``type=local,dest=DIR``, ``type=tar,dest=FILE``, or a bare ``DIR`` (local)."""
    if "=" not in text:
        return Output(type="local", dest=text)
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, has_value, value = part.partition("=")
        if not has_value:
            raise InvalidArgument(f"invalid output {text!r}: {part!r} is not KEY=VALUE")
        fields[key.strip()] = value.strip()
    kind = fields.pop("type", "local")
    dest = fields.pop("dest", "")
    if kind not in ("local", "tar"):
        raise Unsupported(f'output type "{kind}" is not supported; use type=local or type=tar')
    if not dest:
        raise InvalidArgument(f"invalid output {text!r}: dest= is required")
    if fields:
        raise InvalidArgument(f"invalid output {text!r}: unknown key {next(iter(fields))!r}")
    return Output(type=kind, dest=dest)
