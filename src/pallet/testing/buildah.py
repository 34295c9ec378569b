"""buildah as a reference builder for tests: a private store in a temp dir, images in and out as archives.

``Buildah(work)`` keeps everything under ``work``: its storage (``--root``,
``--runroot``) and its temp files (``TMPDIR``, where ``RUN --mount=type=cache``
keeps its caches). The storage driver is overlay, docker's own (overlay2): a
RUN that writes to one of several hard links copies that file up alone, as
under docker; vfs would copy the whole tree and keep the links.
Images go in with ``load`` (a ``docker save``-shaped archive, as ``pallet
save`` writes) and out with ``save`` (``docker-archive:``, which keeps docker's
config fields; see ``pallet.testing.imagecompare``). Builds run with
``--format docker`` (the OCI format has no Healthcheck, Shell, OnBuild or
StopSignal), ``--layers`` (a layer per filesystem step, as docker makes them),
``--pull=never`` (every base image is local) and chroot isolation (no runtime
or network setup). ``close`` removes containers, unmounts what is still
mounted under ``work`` and deletes it; idempotent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["BUILDAH", "Buildah"]

BUILDAH = "/usr/bin/buildah"


class Buildah:
    """A buildah with its own store under ``work``."""

    def __init__(self, work: Path) -> None:
        self.work = work
        (work / "tmp").mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "TMPDIR": str(work / "tmp")}

    def argv(self, *args: str) -> list[str]:
        return [
            BUILDAH,
            "--root",
            str(self.work / "root"),
            "--runroot",
            str(self.work / "runroot"),
            "--storage-driver",
            "overlay",
            *args,
        ]

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``buildah ARGS`` on this store; output as text, never raises on failure."""
        return subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            env=self.env,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        if done.returncode != 0:
            raise AssertionError(f"buildah {' '.join(args)} failed ({done.returncode}): {done.stderr}")
        return done.stdout

    def load(self, archive: Path, *names: str) -> None:
        """Add the image of a ``docker save``-shaped archive under every one of ``names``."""
        image = self.ok("pull", "-q", f"docker-archive:{archive}").strip().splitlines()[-1]
        for name in names:
            self.ok("tag", image, name)

    def bud(
        self,
        context: Path,
        tag: str,
        *,
        dockerfile: Path | None = None,
        build_args: dict[str, str] | None = None,
        target: str | None = None,
        secrets: dict[str, Path] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``buildah bud`` the way docker builds (see the module docstring); the result, not raised."""
        args = ["bud", "--format", "docker", "--layers", "--pull=never", "--isolation", "chroot", "-t", tag]
        if dockerfile is not None:
            args += ["-f", str(dockerfile)]
        for key, value in (build_args or {}).items():
            args += ["--build-arg", f"{key}={value}"]
        if target:
            args += ["--target", target]
        for key, path in (secrets or {}).items():
            args += ["--secret", f"id={key},src={path}"]
        return self.run(*args, str(context))

    def save(self, image: str, dest: Path) -> Path:
        """Write ``image`` to ``dest`` as a ``docker save``-shaped archive."""
        dest.unlink(missing_ok=True)
        self.ok("push", "-q", image, f"docker-archive:{dest}:{image}")
        return dest

    def close(self) -> None:
        if not self.work.exists():
            return
        for args in (("rm", "--all"), ("rmi", "--all", "--force")):
            try:
                self.run(*args, timeout=120)
            except subprocess.TimeoutExpired:
                continue  # what it leaves mounted is unmounted below, then removed
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
        for point in reversed(points):
            if point.startswith(str(self.work) + "/"):
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        shutil.rmtree(self.work, ignore_errors=True)
