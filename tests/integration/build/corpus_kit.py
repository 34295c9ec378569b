"""The build corpus: one directory per case under ``corpus/``, and how to build a case with pallet and buildah.

A case is a build context: a ``Dockerfile`` and the files it copies, maybe a
``.dockerignore``, and an optional ``case.toml`` that says how to build it:

- ``dockerfile``: the Dockerfile's path in the case, when not ``Dockerfile``
  (passed as ``-f``);
- ``reference_dockerfile``: the file buildah builds instead (buildah 1.28
  predates heredocs: an equivalent Dockerfile without them, so the result can
  still be compared);
- ``build_args`` (a table), ``target``, and ``secrets`` (id -> a file of the
  case, passed as ``--secret id=ID,src=FILE``);
- ``parent = { dockerfile = ..., tag = ... }``: an image built first from the
  same context and tagged, which the case's ``FROM`` names (ONBUILD);
- ``[reference]``: where buildah is known to differ from docker, with a
  comment saying how: ``config`` (fields docker writes instead), ``absent``
  (paths buildah leaves that docker does not), ``rootfs_dirs`` (directories
  docker makes that buildah does not, ``"MODE UID:GID"``), ``files`` (the
  text docker's build writes to a file where buildah's differs) and ``ignore``
  (paths the builders of docker themselves disagree on, left out on both sides);
- ``[fail]``: the build must fail; ``step`` is text the error names (the
  failing command, the missing path) and ``exit_code`` the failing RUN's
  status, when there is one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pallet.testing.buildah import Buildah
from pallet.testing.imagecompare import ImageView, amend

CORPUS = Path(__file__).resolve().parent / "corpus"
VENV_BIN = Path(__file__).resolve().parents[3] / ".venv" / "bin"
PALLET = str(VENV_BIN / "pallet")


class PalletLike(Protocol):
    """What the tests use of the engine tests' ``PalletEnv``."""

    root: Path
    run_root: Path

    def pallet(
        self, *args: str, input: bytes | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]: ...

    def ok(self, *args: str) -> str: ...

    def container_ids(self) -> list[str]: ...

    def argv(self, *args: str) -> list[str]: ...

    def leftovers(self, ids: list[str]) -> dict[str, list[str]]: ...

    def cleanup(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    step: str
    exit_code: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Parent:
    dockerfile: str
    tag: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Corrections:
    config: dict[str, Any] = field(default_factory=dict)
    absent: tuple[str, ...] = ()
    rootfs_dirs: dict[str, str] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=dict)

    def apply(self, view: ImageView) -> ImageView:
        files = {path: text.encode() for path, text in self.files.items()}
        return amend(view, config=self.config, absent=self.absent, dirs=self.rootfs_dirs, files=files)


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    name: str
    dockerfile: str = "Dockerfile"
    reference_dockerfile: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    secrets: dict[str, str] = field(default_factory=dict)
    parent: Parent | None = None
    fail: Failure | None = None
    corrections: Corrections = field(default_factory=Corrections)

    @property
    def source(self) -> Path:
        return CORPUS / self.name

    @property
    def tag(self) -> str:
        return f"corpus/{self.name.replace('_', '-')}:1"

    def stage(self, dest: Path) -> Path:
        """A private copy of the context (symlinks kept), so a build never writes into the tree."""
        shutil.copytree(self.source, dest, symlinks=True)
        return dest

    def pallet_args(
        self, context: Path, *, dockerfile: str | None = None, tag: str | None = None
    ) -> list[str]:
        """``build`` arguments for this case, as a user types them."""
        args = ["build", "-t", tag or self.tag]
        name = dockerfile or self.dockerfile
        if name != "Dockerfile":
            args += ["-f", str(context / name)]
        for key, value in self.build_args.items():
            args += ["--build-arg", f"{key}={value}"]
        if self.target and dockerfile is None:
            args += ["--target", self.target]
        for key, path in self.secrets.items():
            args += ["--secret", f"id={key},src={context / path}"]
        return [*args, str(context)]


def load(name: str) -> Case:
    spec_file = CORPUS / name / "case.toml"
    spec = tomllib.loads(spec_file.read_text()) if spec_file.exists() else {}
    parent = spec.get("parent")
    fail = spec.get("fail")
    ref = spec.get("reference", {})
    return Case(
        name=name,
        dockerfile=spec.get("dockerfile", "Dockerfile"),
        reference_dockerfile=spec.get("reference_dockerfile"),
        build_args=dict(spec.get("build_args", {})),
        target=spec.get("target"),
        secrets=dict(spec.get("secrets", {})),
        parent=Parent(**parent) if parent else None,
        fail=Failure(**fail) if fail else None,
        corrections=Corrections(
            config=ref.get("config", {}),
            absent=tuple(ref.get("absent", ())),
            rootfs_dirs=ref.get("rootfs_dirs", {}),
            ignore=tuple(ref.get("ignore", ())),
            files=ref.get("files", {}),
        ),
    )


def names() -> list[str]:
    return sorted(p.name for p in CORPUS.iterdir() if p.is_dir())


def pallet_ready() -> str | None:
    """Why pallet builds cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    if not os.access(PALLET, os.X_OK):
        return "run scripts/install.sh first (the pallet launcher is missing)"
    return None


def buildah_ready() -> str | None:
    """Why buildah cannot be the reference here, or None."""
    if shutil.which("buildah") is None:
        return "buildah missing (apt-get install buildah)"
    if os.geteuid() != 0:
        return "needs root"
    return None


def dockerd_running() -> bool:
    """A dockerd already serving (never started by the tests)."""
    if shutil.which("docker") is None:
        return False
    done = subprocess.run(
        ["docker", "info", "--format", "{{.ID}}"], capture_output=True, timeout=20, check=False
    )
    return done.returncode == 0


@dataclass(frozen=True, slots=True)
class Built:
    """One reference build: the image archive, or the failed build's output."""

    archive: Path | None
    output: str
    returncode: int


class Reference:
    """buildah building corpus cases, each once per session."""

    def __init__(self, buildah: Buildah, work: Path) -> None:
        self.buildah = buildah
        self.work = work
        self._done: dict[str, Built] = {}

    def build(self, case: Case) -> Built:
        if case.name not in self._done:
            self._done[case.name] = self._build(case)
        return self._done[case.name]

    def _build(self, case: Case) -> Built:
        context = case.stage(self.work / "contexts" / case.name)
        if case.parent is not None:
            done = self.buildah.bud(
                context,
                case.parent.tag,
                dockerfile=context / case.parent.dockerfile,
                build_args=case.build_args,
            )
            if done.returncode != 0:
                return Built(None, f"parent: {done.stdout}{done.stderr}", done.returncode)
        dockerfile = case.reference_dockerfile or case.dockerfile
        done = self.buildah.bud(
            context,
            case.tag,
            dockerfile=context / dockerfile,
            build_args=case.build_args,
            target=case.target,
            secrets={key: context / path for key, path in case.secrets.items()},
        )
        if done.returncode != 0:
            return Built(None, done.stdout + done.stderr, done.returncode)
        archive = self.buildah.save(case.tag, self.work / "images" / f"{case.name}.tar")
        return Built(archive, done.stdout + done.stderr, 0)
