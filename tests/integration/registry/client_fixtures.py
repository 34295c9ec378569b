"""Test kit for the registry-client integration tests.

- ``DockerRegistry``: Debian's ``docker-registry`` (distribution 2.8) on
  127.0.0.1 with htpasswd (bcrypt) auth and a temp storage dir; stopped by pid.
- ``make_layout``: an OCI image layout made here from Debian's static busybox
  plus files that exercise modes, owners, symlinks, hardlinks and a whiteout.
- ``tree``: a comparable description of a directory tree (names, types, modes,
  owners, content hashes, link targets), mtimes left out.
- ``pallet``: run the ``pallet`` CLI in-process, returning (code, stdout, stderr).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from pallet.cli.main import main

USER, PASSWORD = "pallet", "s3cret-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DockerRegistry:
    """A ``docker-registry serve`` child on 127.0.0.1 with htpasswd auth; ``stop()`` kills it by pid."""

    def __init__(self, workdir: Path) -> None:
        import bcrypt

        workdir.mkdir(parents=True, exist_ok=True)
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
        (workdir / "htpasswd").write_text(f"{USER}:{hashed}\n")
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        (workdir / "config.yml").write_text(
            f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {workdir / "storage"}
  delete:
    enabled: true
http:
  addr: {self.host}
auth:
  htpasswd:
    realm: pallet-test
    path: {workdir / "htpasswd"}
"""
        )
        self.log = workdir / "registry.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                ["docker-registry", "serve", str(workdir / "config.yml")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
                break
            except urllib.error.HTTPError as e:
                if e.code == 401:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"docker-registry did not start: {self.log.read_text()[-2000:]}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _add(
    tar: tarfile.TarFile,
    name: str,
    kind: bytes,
    *,
    data: bytes = b"",
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    link: str = "",
) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.mtime = 1577836800
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def _layer(build: object) -> tuple[bytes, str]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        build(tar)  # type: ignore[operator]
    plain = raw.getvalue()
    return gzip.compress(plain, compresslevel=6, mtime=0), "sha256:" + hashlib.sha256(plain).hexdigest()


def make_layout(layout: Path, *, payload: bytes = b"") -> None:
    """An OCI layout ``layout:latest`` with two layers (busybox tree; changes incl. a whiteout)."""
    busybox = Path(shutil.which("busybox") or "/bin/busybox").read_bytes()

    def base(tar: tarfile.TarFile) -> None:
        for d, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("root", 0o700), ("home", 0o755)):
            _add(tar, d, tarfile.DIRTYPE, mode=mode)
        _add(tar, "bin/busybox", tarfile.REGTYPE, data=busybox, mode=0o755)
        for applet in ("sh", "ls", "cat"):
            _add(tar, f"bin/{applet}", tarfile.SYMTYPE, link="busybox", mode=0o777)
        _add(tar, "etc/passwd", tarfile.REGTYPE, data=b"root:x:0:0:root:/root:/bin/sh\n")
        _add(tar, "etc/gone", tarfile.REGTYPE, data=b"removed by the next layer\n")
        _add(tar, "home/user", tarfile.DIRTYPE, mode=0o750, uid=1000, gid=1000)
        _add(tar, "home/user/notes", tarfile.REGTYPE, data=b"mine\n", mode=0o600, uid=1000, gid=1000)
        _add(tar, "bin/suid", tarfile.REGTYPE, data=b"#!/bin/sh\n", mode=0o4755)

    def changes(tar: tarfile.TarFile) -> None:
        _add(tar, "etc", tarfile.DIRTYPE, mode=0o755)
        _add(tar, "etc/.wh.gone", tarfile.REGTYPE)
        _add(tar, "etc/hostname", tarfile.REGTYPE, data=b"pallet\n")
        _add(tar, "etc/hostname.link", tarfile.LNKTYPE, link="etc/hostname")
        _add(tar, "data", tarfile.DIRTYPE, mode=0o755)
        _add(tar, "data/payload", tarfile.REGTYPE, data=payload)

    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes, media_type: str) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    descs, diff_ids = [], []
    for build in (base, changes):
        blob, diff_id = _layer(build)
        descs.append(put(blob, "application/vnd.oci.image.layer.v1.tar+gzip"))
        diff_ids.append(diff_id)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2020-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    cfg = put(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": cfg,
        "layers": descs,
    }
    man = put(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    man["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [man]}))
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))


def tree(root: Path) -> dict[str, tuple[object, ...]]:
    """path -> (type, mode, uid, gid, sha256 or link target) for everything under ``root``."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISREG(st.st_mode):
                what: object = hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                what = os.readlink(path)
            else:
                what = ""
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, what)
    return out


def pallet(*argv: str, stdin: bytes = b"") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err, stdin=io.BytesIO(stdin), stdout_binary=io.BytesIO())
    return code, out.getvalue(), err.getvalue()


def skopeo(*argv: str) -> None:
    done = subprocess.run(["skopeo", *argv], capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(argv)} failed: {done.stderr}")


def umoci_rootfs(layout: Path, bundle: Path) -> Path:
    """Unpack ``layout:latest`` with umoci (as root) and return its rootfs."""
    done = subprocess.run(
        ["umoci", "unpack", "--image", f"{layout}:latest", str(bundle)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"umoci unpack failed: {done.stderr}")
    return bundle / "rootfs"
