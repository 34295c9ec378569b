"""``RUN --mount``: cache, bind, tmpfs and secret mounts as the step container's binds and tmpfs.

- ``type=cache``: a directory kept across builds under
  ``<root>/build/mounts/cache/<id>`` (``id`` defaults to the target), made
  with ``mode``/``uid``/``gid``; ``builder prune`` removes them.
- ``type=bind``: a path of the context (the default) or of a stage or image
  (``from=``), read-only unless ``rw``; writes to an ``rw`` bind land in a
  private copy and are discarded, as docker's are.
- ``type=tmpfs``: a tmpfs (``size=``).
- ``type=secret``: the file ``--secret id=ID,src=FILE`` gave, read-only at
  ``/run/secrets/ID`` (or ``target=``), or in an environment variable
  (``env=``); it is never part of a layer (its mount point is removed before
  the commit) nor of the history.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile

from pallet.errors import InvalidArgument, NotFound, Unsupported
from pallet.linux.openat2 import open_in_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pallet.build.builder import _Build
    from pallet.build.dockerfile import Mount

__all__ = ["cache_mounts_dir", "run_mounts"]


def cache_mounts_dir(root: str) -> str:
    return os.path.join(root, "build", "mounts", "cache")


def _real_path(root_fd: int, rel: str, what: str) -> str:
    try:
        fd = open_in_root(root_fd, rel.lstrip("/") or ".", os.O_PATH | os.O_CLOEXEC)
    except OSError:
        raise NotFound(f"{what}: no such file or directory") from None
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def run_mounts(
    build: _Build, mounts: list[Mount], line: int
) -> tuple[list[tuple[str, str, bool]], dict[str, str], dict[str, str], Callable[[], None]]:
    """(binds (source, target, read-only), tmpfs targets, extra environment, cleanup) of one RUN."""
    binds: list[tuple[str, str, bool]] = []
    tmpfs: dict[str, str] = {}
    env: dict[str, str] = {}
    stack = contextlib.ExitStack()
    where = f"{build.context.dockerfile_name}:{line}"
    try:
        for mount in mounts:
            if mount.type == "cache":
                assert mount.target is not None
                ident = mount.id or mount.target
                path = os.path.join(
                    cache_mounts_dir(build.root), hashlib.sha256(ident.encode()).hexdigest()[:32]
                )
                if not os.path.isdir(path):
                    os.makedirs(path, exist_ok=True)
                    os.chmod(path, int(mount.mode, 8) if mount.mode else 0o755)
                    os.chown(path, int(mount.uid or 0), int(mount.gid or 0))
                binds.append((path, mount.target, bool(mount.readonly)))
            elif mount.type == "bind":
                assert mount.target is not None
                source = mount.source or "/"
                if mount.from_:
                    tree = build._source_tree(mount.from_, stack, line)
                    path = _real_path(tree.root_fd, source, f"{where}: bind source {source}")
                else:
                    build.context.tree.clean(source)
                    path = _real_path(build.context.root_fd, source, f"{where}: bind source {source}")
                read_only = mount.readonly if mount.readonly is not None else True
                if not read_only:
                    copy = tempfile.mkdtemp(prefix="bind-", dir=os.path.join(build.root, "build", "tmp"))
                    stack.callback(shutil.rmtree, copy, True)
                    target = os.path.join(copy, "data")
                    if os.path.isdir(path):
                        shutil.copytree(path, target, symlinks=True)
                    else:
                        shutil.copy2(path, target)
                    path = target
                binds.append((path, mount.target, read_only))
            elif mount.type == "tmpfs":
                assert mount.target is not None
                tmpfs[mount.target] = f"size={mount.size}" if mount.size else ""
            elif mount.type == "secret":
                ident = mount.id or (os.path.basename(mount.target) if mount.target else "")
                if not ident:
                    raise InvalidArgument(f"{where}: a secret mount needs id= or target=")
                secret = build.request.secrets.get(ident)
                if secret is None:
                    if mount.required:
                        raise NotFound(
                            f"{where}: secret {ident} not found; pass it with --secret id={ident},src=FILE"
                        )
                    continue
                if mount.env:
                    with open(secret, "rb") as f:
                        env[mount.env] = f.read().decode("utf-8", "replace")
                    if not mount.target:
                        continue
                binds.append((os.path.abspath(secret), mount.target or f"/run/secrets/{ident}", True))
            else:
                raise Unsupported(f"{where}: --mount=type={mount.type} is not supported by this builder")
    except BaseException:
        stack.close()
        raise
    return binds, tmpfs, env, stack.close
