"""Every corpus case builds with ``pallet build`` to the image buildah builds from the same context.

Each case (tests/integration/build/corpus/<case>, described in ``corpus_kit``)
is built by buildah (the reference, once per session) and by the real
``pallet build`` CLI on a private root; both images are saved as archives and
compared with ``pallet.testing.imagecompare`` (config fields, history length
and empty layers, the final root filesystem), after the case's written-down
corrections where buildah differs from docker. A case that must fail fails in
both, and pallet names the failing step (and the RUN's exit code), tags
nothing and leaves no container or mount behind.

Where a dockerd already runs (never started here), ``docker build`` with its
legacy builder is a third reference for the cases that builder can build
(no heredocs, RUN mounts or ``--chmod``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import corpus_kit
import pytest

from pallet.testing.imagecompare import compare, read_archive

pytestmark = [pytest.mark.root, pytest.mark.slow]

CASES = corpus_kit.names()


def _mounts_under(*roots: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p.startswith(tuple(str(r) for r in roots))]


def pallet_build(
    env: corpus_kit.PalletLike, case: corpus_kit.Case, context: Path
) -> subprocess.CompletedProcess[str]:
    """Build ``case`` (its parent first, if any) with the pallet CLI; the last build's result."""
    if case.parent is not None:
        parent = env.pallet(
            *case.pallet_args(context, dockerfile=case.parent.dockerfile, tag=case.parent.tag), timeout=300
        )
        assert parent.returncode == 0, (
            f"parent build failed ({parent.returncode}):\n{parent.stdout}{parent.stderr}"
        )
    return env.pallet(*case.pallet_args(context), timeout=300)


@pytest.mark.parametrize("name", CASES)
def test_case_builds_as_buildah_builds_it(
    name: str, build_env: corpus_kit.PalletLike, reference: corpus_kit.Reference, tmp_path: Path
) -> None:
    case = corpus_kit.load(name)
    expected = reference.build(case)
    context = case.stage(tmp_path / "context")
    done = pallet_build(build_env, case, context)
    output = done.stdout + done.stderr

    if case.fail is not None:
        assert expected.returncode != 0, f"buildah built a case that must fail:\n{expected.output}"
        assert done.returncode != 0, f"pallet build succeeded where it must fail:\n{output}"
        assert case.fail.step in output, f"the error does not name {case.fail.step!r}:\n{output}"
        if case.fail.exit_code is not None:
            code = case.fail.exit_code
            said = re.search(rf"(exit code:? {code}\b|non-zero code: {code}\b|exit status {code}\b)", output)
            assert said, f"the error does not give the exit code {code}:\n{output}"
        tagged = build_env.pallet("image", "inspect", case.tag)
        assert tagged.returncode != 0, f"{case.tag} was tagged by a failed build"
        assert build_env.container_ids() == [], "a failed build left containers"
        assert _mounts_under(build_env.root, build_env.run_root) == [], "a failed build left mounts"
        return

    assert expected.archive is not None, f"buildah could not build the case:\n{expected.output}"
    assert done.returncode == 0, f"pallet build failed ({done.returncode}):\n{output}"
    ours_archive = tmp_path / "pallet.tar"
    build_env.ok("save", "-o", str(ours_archive), case.tag)
    ours = read_archive(ours_archive)
    theirs = case.corrections.apply(read_archive(expected.archive))
    problems = compare(ours, theirs, ignore=case.corrections.ignore)
    assert problems == [], f"{name}: pallet's image differs from buildah's:\n" + "\n".join(problems)
    assert build_env.container_ids() == [], "the build left containers"


# --- docker's legacy builder, where a dockerd already runs ----------------------------------------------

_LEGACY_UNSUPPORTED = re.compile(r"<<|--mount=|--chmod=|^\s*#\s*syntax=", re.MULTILINE | re.IGNORECASE)


_BUSYBOX_WORD = re.compile(r"(?<![/\w.-])busybox(?::latest)?(?![\w/.:-])")


@pytest.fixture(scope="module")
def docker_busybox(busybox_store_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test store's busybox loaded into the running dockerd under a name of this run only (the
    dockerd's own ``busybox`` stays as it is); removed at the end."""
    if not corpus_kit.dockerd_running():
        pytest.skip("no dockerd runs here (the tests never start one)")
    name = f"pallet-corpus-{os.getpid()}-busybox:latest"
    work = tmp_path_factory.mktemp("docker-base")
    root = work / "root"
    shutil.copytree(busybox_store_root, root, symlinks=True)
    pallet = [corpus_kit.PALLET, "--root", str(root)]
    subprocess.run([*pallet, "tag", "busybox:latest", name], check=True, capture_output=True)
    subprocess.run([*pallet, "save", "-o", str(work / "base.tar"), name], check=True, capture_output=True)
    subprocess.run(["docker", "load", "-q", "-i", str(work / "base.tar")], check=True, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["docker", "rmi", "-f", name], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)


def _for_docker(context: Path, base: str, dockerfiles: list[str]) -> None:
    """Point the case's Dockerfiles at the dockerd's copy of busybox (FROM, ARG defaults, --from)."""
    for name in dockerfiles:
        path = context / name
        path.write_text(_BUSYBOX_WORD.sub(base, path.read_text()))


@pytest.mark.parametrize("name", CASES)
def test_case_builds_as_docker_legacy_builder_builds_it(
    name: str, build_env: corpus_kit.PalletLike, docker_busybox: str, tmp_path: Path
) -> None:
    case = corpus_kit.load(name)
    dockerfiles = [case.dockerfile] + ([case.parent.dockerfile] if case.parent else [])
    if case.fail or any(_LEGACY_UNSUPPORTED.search((case.source / d).read_text()) for d in dockerfiles):
        pytest.skip(
            "the legacy builder cannot build this case (heredocs, RUN mounts, --chmod) or it must fail"
        )
    context = case.stage(tmp_path / "context")
    _for_docker(context, docker_busybox, dockerfiles)
    tag = f"pallet-corpus-{os.getpid()}-{name.replace('_', '-')}:1"
    made = [tag]
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    try:
        if case.parent is not None:
            made.append(case.parent.tag)
            subprocess.run(
                [
                    "docker",
                    "build",
                    "-q",
                    "-t",
                    case.parent.tag,
                    "-f",
                    str(context / case.parent.dockerfile),
                    str(context),
                ],
                check=True,
                capture_output=True,
                env=env,
            )
        args = ["docker", "build", "-q", "-t", tag, "-f", str(context / case.dockerfile)]
        for key, value in case.build_args.items():
            args += ["--build-arg", f"{key}={value}"]
        if case.target:
            args += ["--target", case.target]
        subprocess.run([*args, str(context)], check=True, capture_output=True, env=env)
        theirs_archive = tmp_path / "docker.tar"
        subprocess.run(["docker", "save", "-o", str(theirs_archive), tag], check=True, capture_output=True)
        done = pallet_build(build_env, case, case.stage(tmp_path / "context-pallet"))
        assert done.returncode == 0, f"pallet build failed:\n{done.stdout}{done.stderr}"
        ours_archive = tmp_path / "pallet.tar"
        build_env.ok("save", "-o", str(ours_archive), case.tag)
        problems = compare(
            read_archive(ours_archive), read_archive(theirs_archive), ignore=case.corrections.ignore
        )
        assert problems == [], f"{name}: pallet's image differs from docker's:\n" + "\n".join(problems)
    finally:
        subprocess.run(["docker", "rmi", "-f", *made], capture_output=True, check=False)
