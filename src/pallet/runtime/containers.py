"""The runtime's state directory: ``<root>/<id>/`` with ``state.json``, ``exec.fifo`` and a lock.

Contracts:
- a container exists exactly when its directory exists; ``claim`` creates it
  atomically (``mkdir``), so two ``create`` calls for one id cannot both win;
- ``state.json`` is replaced atomically (temp file + rename), readers never see half a file;
- every command that changes a container holds its lock (``flock`` on the
  directory), and re-checks that the directory still exists once it has it.

``state.json`` holds a ``SavedState`` (``savedstate``): the OCI state fields
plus what later commands need and cannot recompute.
"""

from __future__ import annotations

import fcntl
import os

from pallet.errors import AlreadyExists, InvalidArgument, NotFound, SpecError, SystemError_
from pallet.linux import procstat
from pallet.linux.atomicfile import write_atomic
from pallet.oci.jsonfast import dumps, loads
from pallet.runtime.savedstate import SavedState

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from pallet.oci.runtime_spec import Spec

_ID_PUNCTUATION = frozenset("_+-.")


def validate_id(container_id: str) -> None:
    """runc's rule: ``^[\\w+-\\.]+$`` and not ``.``/``..``; raises ``InvalidArgument``."""
    if not container_id:
        raise InvalidArgument("container id cannot be empty")
    if container_id in (".", "..") or not all(c.isalnum() or c in _ID_PUNCTUATION for c in container_id):
        raise InvalidArgument(f"invalid container id format: {container_id}")
    if not container_id.isascii():
        raise InvalidArgument(f"invalid container id format: {container_id}")


class ContainerDir:
    """One container's state directory under the runtime root."""

    def __init__(self, root: str, container_id: str) -> None:
        validate_id(container_id)
        self.id = container_id
        self.path = os.path.join(root, container_id)
        self.state_path = os.path.join(self.path, "state.json")
        self.fifo_path = os.path.join(self.path, "exec.fifo")
        self.config_path = os.path.join(self.path, "config.json")
        self._lock_fd = -1

    def exists(self) -> bool:
        return os.path.isdir(self.path)

    def claim(self) -> None:
        """Create the directory; ``AlreadyExists`` if the id is taken."""
        root = os.path.dirname(self.path)
        try:
            os.makedirs(root, mode=0o711, exist_ok=True)
            os.mkdir(self.path, 0o711)
        except FileExistsError:
            raise AlreadyExists("container with given ID already exists") from None
        except OSError as e:
            raise SystemError_(f"create state directory {self.path}", e.errno or 0) from None

    def lock(self) -> None:
        """Take the container's lock (blocking); ``NotFound`` if it vanished meanwhile."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise self.not_found() from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._lock_fd = fd
        if not self.exists():
            raise self.not_found()

    def unlock(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def not_found(self) -> NotFound:
        return NotFound(f'container "{self.id}" does not exist')

    def load(self) -> SavedState:
        """The saved state; ``NotFound`` if the container does not exist.

        Before ``create`` first saves it, a ``creating`` state with only the id.
        ``InvalidArgument`` if the file is not a state (``delete --force`` still removes the container).
        """
        try:
            with open(self.state_path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            if not self.exists():
                raise self.not_found() from None
            return SavedState(id=self.id)
        try:
            value = loads(data)
            if not isinstance(value, dict):
                raise SpecError("", "not a JSON object")
            return SavedState.from_json(value, default_id=self.id)
        except InvalidArgument as e:
            raise InvalidArgument(f"{self.state_path}: {e}; delete the container with --force") from None

    def save(self, state: SavedState) -> None:
        """Replace ``state.json`` atomically."""
        write_atomic(self.state_path, dumps(state.to_json()).encode(), durable=False)

    def save_config(self, data: bytes) -> None:
        """Keep the container's config.json as it was at create (``config.json`` here)."""
        with open(self.config_path, "wb") as f:
            f.write(data)

    def load_config(self) -> Spec:
        """The config.json saved at create."""
        from pallet.oci.runtime_spec import load_spec

        try:
            with open(self.config_path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise NotFound(
                f'container "{self.id}" has no saved config; it was created by another runtime'
            ) from None
        return load_spec(data, source=self.config_path)

    def remove(self) -> None:
        """Remove the directory and everything in it (idempotent)."""
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return
        for name in names:
            try:  # noqa: SIM105 - contextlib costs ~7 ms at start
                os.unlink(os.path.join(self.path, name))
            except FileNotFoundError:
                pass
        try:  # noqa: SIM105 - contextlib costs ~7 ms at start
            os.rmdir(self.path)
        except FileNotFoundError:
            pass


def status_of(cdir: ContainerDir, state: SavedState) -> str:
    """``creating``, ``created``, ``running``, ``paused`` or ``stopped``, from the process itself, not the file.

    The init is alive while its pid runs with the recorded start time (a zombie
    or a reused pid counts as stopped); it is ``created`` while it is still
    blocked on the exec FIFO, which ``start`` removes.
    """
    if state.status == "creating":
        return "creating"
    if not state.pid or not state.init_start or not procstat.is_alive(state.pid, state.init_start):
        return "stopped"
    if os.path.exists(cdir.fifo_path):
        return "created"
    return "paused" if _frozen(state.cgroups) else "running"


def _frozen(paths: Mapping[str, str]) -> bool:
    """Whether the container's freezer (v1 ``freezer.state``, v2 ``cgroup.events``) says frozen."""
    for name, path in paths.items():
        if name == "":
            file, wanted = os.path.join(path, "cgroup.events"), "frozen 1"
        elif "freezer" in name.split(","):
            file, wanted = os.path.join(path, "freezer.state"), "FROZEN"
        else:
            continue
        try:
            with open(file) as f:
                return wanted in f.read().splitlines()
        except OSError:
            return False
    return False


def write_pid_file(path: str, pid: int) -> None:
    """The pid as decimal digits, no newline (containerd parses it untrimmed), written atomically."""
    write_atomic(os.path.abspath(path), str(pid).encode(), durable=False)
