"""Fixtures for pallet-runtime integration tests: a busybox rootfs made once per session, and a
``Runtime`` per test with its own ``--root`` that force-deletes whatever the test created.

Assertions are made from inside the container: the program's output is what tests check.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pallet.oci.runtime_spec import default_spec

RUNTIME = str(Path(__file__).resolve().parents[3] / ".venv" / "bin" / "pallet-runtime")


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if not os.path.exists(RUNTIME):
        pytest.skip("run scripts/install.sh first (the pallet-runtime launcher is missing)")


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rootfs with Debian's static busybox and its applet links (made once; tests must not write to it)."""
    _need_root()
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        pytest.skip("busybox-static is not installed")
    root = tmp_path_factory.mktemp("busybox") / "rootfs"
    for d in ("bin", "etc", "dev", "proc", "sys", "tmp", "root"):
        (root / d).mkdir(parents=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", root / "bin" / applet)
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
    )
    (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (root / "tmp").chmod(0o1777)
    return root


def base_config(rootfs: Path, *args: str) -> dict[str, Any]:
    """runc's default spec running ``args`` without a terminal, in ``rootfs``."""
    config = default_spec().to_json()
    config["ociVersion"] = "1.2.0"
    config["root"] = {"path": str(rootfs)}
    config["process"]["terminal"] = False
    config["process"]["args"] = list(args) or ["true"]
    return copy.deepcopy(config)


class Result:
    def __init__(self, rc: int, out: str, err: str) -> None:
        self.rc = rc
        self.out = out
        self.err = err


class Runtime:
    """Drives ``pallet-runtime`` (or a peer's ``binary``) with a private ``--root``; remembers ids to clean up."""

    def __init__(self, tmp: Path, rootfs: Path, binary: str = RUNTIME) -> None:
        self.binary = binary
        self.tmp = tmp
        self.root = tmp / "state"
        self.rootfs = rootfs
        self.ids: list[str] = []
        self._n = 0

    def bundle(self, config: dict[str, Any], name: str = "bundle") -> Path:
        from pallet.oci.jsonfast import dumps

        bundle = self.tmp / name
        bundle.mkdir(exist_ok=True)
        (bundle / "config.json").write_text(dumps(config, indent=2))
        return bundle

    def new_id(self) -> str:
        self._n += 1
        cid = f"pallet-test-{os.getpid()}-{self._n}"
        self.ids.append(cid)
        return cid

    def __call__(self, *args: str, stdin: str | None = None, timeout: float = 30) -> Result:
        # files, not pipes: after create the container's init holds the runtime's stdio
        self._n += 1
        out_path, err_path = self.tmp / f"out.{self._n}", self.tmp / f"err.{self._n}"
        with open(out_path, "w+") as out, open(err_path, "w+") as err:
            proc = subprocess.run(
                [self.binary, "--root", str(self.root), *args],
                input=stdin if stdin is not None else "",
                stdout=out,
                stderr=err,
                text=True,
                timeout=timeout,
                check=False,
            )
        return Result(proc.returncode, out_path.read_text(), err_path.read_text())

    def run(self, config: dict[str, Any], *extra: str) -> Result:
        """``run`` ``config`` in a fresh bundle; returns the finished container's result."""
        bundle = self.bundle(config)
        return self("run", "--bundle", str(bundle), *extra, self.new_id())

    def status(self, cid: str) -> str:
        from pallet.oci.jsonfast import loads

        result = self("state", cid)
        assert result.rc == 0, result.err
        doc = loads(result.out)
        assert isinstance(doc, dict)
        return str(doc["status"])

    def wait_status(self, cid: str, wanted: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        status = self.status(cid)
        while status != wanted and time.monotonic() < deadline:
            time.sleep(0.02)
            status = self.status(cid)
        return status

    def cleanup(self) -> None:
        for cid in self.ids:
            subprocess.run(
                [self.binary, "--root", str(self.root), "delete", "--force", cid],
                capture_output=True,
                check=False,
            )


@pytest.fixture
def runtime(tmp_path: Path, busybox_rootfs: Path) -> Iterator[Runtime]:
    rt = Runtime(tmp_path, busybox_rootfs)
    try:
        yield rt
    finally:
        rt.cleanup()


@pytest.fixture(params=["pallet-runtime", "runc", "crun"])
def any_runtime(request: pytest.FixtureRequest, tmp_path: Path, busybox_rootfs: Path) -> Iterator[Runtime]:
    """pallet-runtime, then runc and crun (skipped when absent), each with its own ``--root``."""
    from pallet.testing.peers import fix_hybrid_cgroups, peer_binary

    name = request.param
    binary = RUNTIME if name == "pallet-runtime" else peer_binary(name)
    if binary is None:
        pytest.skip(f"{name} is not installed (no {name} binary on PATH)")
    if name == "crun":
        fix_hybrid_cgroups()
    rt = Runtime(tmp_path, busybox_rootfs, binary)
    try:
        yield rt
    finally:
        rt.cleanup()


def leftovers(rt: Runtime, cid: str) -> list[str]:
    """What a container left behind: its state dir, cgroup dirs, mounts mentioning it."""
    found = []
    if (rt.root / cid).exists():
        found.append(f"state dir {rt.root / cid}")
    # os.walk skips directories that vanish meanwhile (other tests' cgroups come and go)
    for top, dirs, _files in os.walk("/sys/fs/cgroup"):
        found += [os.path.join(top, d) for d in dirs if d == cid]
    with open("/proc/self/mountinfo") as f:
        found += [line.strip() for line in f if cid in line or str(rt.tmp) in line]
    return found
