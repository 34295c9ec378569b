"""What ``pallet info`` reports: the engine's configuration in force and what it holds.

``engine_info`` gathers it; ``EngineInfo.to_json`` gives docker's ``/info``
shape (``Containers``, ``Runtimes``, ``DefaultRuntime``, ``SecurityOptions``,
…) so ``--format '{{json .}}'`` and templates such as ``{{.DefaultRuntime}}``
work as they do with docker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.engine.containers.lifecycle import Engine

__all__ = ["EngineInfo", "RuntimeInfo", "engine_info"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeInfo:
    """One registered OCI runtime and whether its program can be found here."""

    name: str
    #: the program as registered (a name searched in PATH, or a path)
    path: str
    args: tuple[str, ...]
    #: where the program was found; ``""``: not installed
    found: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineInfo:
    containers: int
    running: int
    paused: int
    stopped: int
    images: int
    root: str
    run_root: str
    config_file: str
    runtimes: tuple[RuntimeInfo, ...]
    default_runtime: str
    #: docker's ``userns-remap`` in force ("" = off)
    userns_remap: str
    security_options: tuple[str, ...]
    cgroup_version: str
    kernel_version: str
    operating_system: str
    architecture: str
    cpus: int

    def to_json(self) -> dict[str, object]:
        return {
            "Containers": self.containers,
            "ContainersRunning": self.running,
            "ContainersPaused": self.paused,
            "ContainersStopped": self.stopped,
            "Images": self.images,
            "Driver": "overlay2",
            "DockerRootDir": self.root,
            "RunRoot": self.run_root,
            "ConfigFile": self.config_file,
            "Runtimes": {
                r.name: {"path": r.path, **({"runtimeArgs": list(r.args)} if r.args else {})}
                for r in self.runtimes
            },
            "DefaultRuntime": self.default_runtime,
            "UsernsRemap": self.userns_remap,
            "SecurityOptions": list(self.security_options),
            "CgroupVersion": self.cgroup_version,
            "KernelVersion": self.kernel_version,
            "OperatingSystem": self.operating_system,
            "Architecture": self.architecture,
            "NCPU": self.cpus,
        }


def engine_info(engine: Engine) -> EngineInfo:
    from pallet.engine.config import config_path, load_config
    from pallet.engine.runtimes import default_runtime_name, find_executable, known_runtimes

    root = engine.layout.root
    config = load_config(root)
    records = engine.list_containers(all=True)
    states = [r.state for r in records]
    running = sum(s in ("running", "restarting") for s in states)
    paused = states.count("paused")
    runtimes = tuple(
        RuntimeInfo(name=name, path=entry.path, args=entry.args, found=find_executable(entry.path) or "")
        for name, entry in sorted(known_runtimes(config).items())
    )
    security = ["name=seccomp,profile=builtin"]
    if config.userns_remap:
        security.append("name=userns")
    if os.environ.get("PALLET_ROOTLESS") == "1":
        security.append("name=rootless")
    uname = os.uname()
    return EngineInfo(
        containers=len(records),
        running=running,
        paused=paused,
        stopped=len(records) - running - paused,
        images=len(engine.images.list_images()),
        root=root,
        run_root=engine.layout.run_root,
        config_file=config.source or config_path(root),
        runtimes=runtimes,
        default_runtime=default_runtime_name(config),
        userns_remap=config.userns_remap,
        security_options=tuple(security),
        cgroup_version="2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1",
        kernel_version=uname.release,
        operating_system=_os_name(),
        architecture=uname.machine,
        cpus=os.cpu_count() or 1,
    )


def _os_name() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                if key == "PRETTY_NAME":
                    return value.strip('"')
    except OSError:
        pass
    return os.uname().sysname
