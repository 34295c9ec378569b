"""The parsed Dockerfile as typed records: one class per instruction, stages, the file.

Every instruction carries docker's parser view (the fields of ``Instruction``:
what BuildKit's AST node holds) and its own typed reading of it. Values keep
variables unexpanded: the builder expands them with the environment in scope
at that step (``expansion.py``), as docker does.
"""

from __future__ import annotations

from dataclasses import dataclass

from pallet.build.dockerfile.directives import Directives
from pallet.build.dockerfile.heredocs import Heredoc

__all__ = [
    "Add",
    "Arg",
    "ArgDecl",
    "Cmd",
    "Copy",
    "Dockerfile",
    "Entrypoint",
    "Env",
    "Expose",
    "From",
    "Healthcheck",
    "Instruction",
    "Label",
    "Maintainer",
    "Mount",
    "Onbuild",
    "Run",
    "Shell",
    "Stage",
    "StopSignal",
    "User",
    "Volume",
    "Workdir",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Instruction:
    """One instruction as docker's parser gives it.

    ``command`` is the keyword in lowercase; ``line``/``end_line`` are 1-based
    and cover continuation lines and heredoc bodies; ``original`` is the logical
    line (continuations joined, escape-newline removed, no heredoc bodies);
    ``flags`` are the leading ``--name[=value]`` words as written (quotes
    removed); ``args`` are docker's argument values after the flags (see the
    package docstring for each instruction's shape); ``json`` is True for the
    exec (JSON array) form; ``heredocs`` are the bodies opened on the line.
    """

    command: str
    line: int
    end_line: int
    original: str
    flags: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    json: bool = False
    heredocs: tuple[Heredoc, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class From(Instruction):
    image: str
    stage_name: str | None = None
    platform: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Mount:
    """One ``RUN --mount``: its fields as written (variables not expanded)."""

    type: str  # bind | cache | tmpfs | secret | ssh
    target: str | None = None
    source: str | None = None
    from_: str | None = None
    readonly: bool | None = None
    id: str | None = None
    sharing: str = "shared"
    mode: str | None = None
    uid: str | None = None
    gid: str | None = None
    size: str | None = None
    required: bool = False
    env: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Run(Instruction):
    """``command``: the JSON array, or one shell-form string (heredocs already folded in by the builder)."""

    command_line: tuple[str, ...]
    mounts: tuple[Mount, ...] = ()
    network: str | None = None
    security: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Cmd(Instruction):
    command_line: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Entrypoint(Instruction):
    command_line: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Shell(Instruction):
    shell: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Env(Instruction):
    """``pairs``: (name, value) as written; values are expanded and unquoted at build time."""

    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Label(Instruction):
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ArgDecl:
    name: str
    default: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Arg(Instruction):
    decls: tuple[ArgDecl, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Expose(Instruction):
    ports: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Volume(Instruction):
    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Workdir(Instruction):
    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class User(Instruction):
    user: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StopSignal(Instruction):
    signal: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Maintainer(Instruction):
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Healthcheck(Instruction):
    """``test`` as docker's config holds it: ``("NONE",)``, ``("CMD", ...)`` or ``("CMD-SHELL", text)``."""

    test: tuple[str, ...]
    interval: int | None = None  # nanoseconds, as docker's config
    timeout: int | None = None
    start_period: int | None = None
    start_interval: int | None = None
    retries: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Onbuild(Instruction):
    """``expression``: the trigger's text as the image config stores it; ``trigger``: it parsed."""

    expression: str
    trigger: Instruction


@dataclass(frozen=True, slots=True, kw_only=True)
class Copy(Instruction):
    """COPY: ``sources`` and ``dest`` as written; a source naming one of ``heredocs`` is that inline file."""

    sources: tuple[str, ...]
    dest: str
    from_: str | None = None
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    parents: bool = False
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Add(Copy):
    checksum: str | None = None
    keep_git_dir: bool = False
    unpack: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage:
    """A build stage: its FROM and the instructions after it; ``name`` is lowercase or None."""

    index: int
    base: From
    instructions: tuple[Instruction, ...]

    @property
    def name(self) -> str | None:
        return self.base.stage_name


@dataclass(frozen=True, slots=True, kw_only=True)
class Dockerfile:
    """The whole file: directives, the ARGs before the first FROM, the stages, and every instruction in order."""

    name: str
    directives: Directives
    global_args: tuple[Arg, ...]
    stages: tuple[Stage, ...]
    instructions: tuple[Instruction, ...]

    def stage(self, ref: str) -> Stage | None:
        """A stage by name (case-insensitive) or by index, as ``--target`` and ``--from`` name it."""
        for stage in self.stages:
            if stage.name is not None and stage.name == ref.lower():
                return stage
        if ref.isdigit() and int(ref) < len(self.stages):
            return self.stages[int(ref)]
        return None
