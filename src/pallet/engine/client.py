"""``pallet.Client``: the engine as a Python library, shaped like the docker SDK for Python.

::

    import pallet
    client = pallet.Client(root="/var/lib/pallet")
    client.containers.run("busybox", ["echo", "hi"])            # b"hi\\n"
    c = client.containers.run("busybox", "sleep 60", detach=True)
    c.exec_run(["cat", "/etc/hostname"]).output
    c.stop(); c.remove()
    client.images.list(); client.volumes.create("data")

Each call opens the engine's databases, works, and closes them, so a client
may live long and be used from several threads (one call at a time per
thread). Errors are ``pallet.errors`` categories; ``run`` raises
``ContainerError`` (with the exit status and stderr) when the container's
command fails, as the docker SDK does.
"""

from __future__ import annotations

import os
from pathlib import Path

from pallet.errors import UNKNOWN, InvalidArgument, PalletError
from pallet.oci.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from typing import Any

    from pallet.engine.service import ContainerRecord, RunOptions, Service
    from pallet.image.store import ImageRecord
    from pallet.oci.image_spec import Healthcheck

__all__ = [
    "Client",
    "Container",
    "ContainerCollection",
    "ContainerError",
    "ExecResult",
    "Image",
    "ImageCollection",
    "VolumeCollection",
]

DEFAULT_ROOT = "/var/lib/pallet"
DEFAULT_RUN_ROOT = "/run/pallet"


class ContainerError(PalletError):
    """The container's command exited non-zero (``containers.run`` without ``detach``)."""

    category = UNKNOWN  # the command's own failure, told in its stderr

    def __init__(self, container: Container, exit_status: int, command: Sequence[str], stderr: bytes) -> None:
        text = stderr.decode("utf-8", "replace").strip()
        super().__init__(
            f"Command '{' '.join(command)}' in image '{container.image_name}' returned non-zero exit status "
            f"{exit_status}" + (f": {text}" if text else "")
        )
        self.container = container
        self.exit_status = exit_status
        self.stderr = stderr


class ExecResult(Record):
    """What ``Container.exec_run`` returns (the docker SDK's ``(exit_code, output)`` pair)."""

    exit_code: int | None
    output: bytes


# --- containers -------------------------------------------------------------------------------


def _command(value: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        import shlex

        return tuple(shlex.split(value))
    return tuple(value)


def _environment(value: Mapping[str, str] | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, dict):
        return tuple(f"{k}={v}" for k, v in value.items())
    return tuple(value)


def _volume_specs(value: Mapping[str, Any] | Sequence[str] | None) -> tuple[Any, ...]:
    """The docker SDK's ``volumes``: ``["name:/path:ro"]`` or ``{"name": {"bind": "/path", "mode": "ro"}}``."""
    from pallet.engine.spec.syntax import parse_volume

    if value is None:
        return ()
    if isinstance(value, dict):
        texts = [f"{src}:{spec['bind']}:{spec.get('mode', 'rw')}" for src, spec in value.items()]
    else:
        texts = list(value)
    return tuple(parse_volume(t) for t in texts)


def run_options(**kwargs: Any) -> RunOptions:
    """``RunOptions`` from the docker SDK's keyword arguments (the ones pallet supports); they
    check themselves as they are made."""
    from pallet.engine.spec import options as o
    from pallet.engine.spec import syntax as s

    def size(value: int | str | None, what: str) -> int | None:
        if value is None or isinstance(value, int):
            return value
        try:
            return s.parse_bytes(value)
        except InvalidArgument as e:
            raise InvalidArgument(f"{what}: {e.message}") from None

    known = {
        "name", "command", "entrypoint", "environment", "working_dir", "user", "hostname", "domainname",
        "labels", "read_only", "init", "stop_signal", "stop_timeout", "mem_limit", "memswap_limit",
        "nano_cpus", "cpu_shares", "cpuset_cpus", "pids_limit", "cap_add", "cap_drop", "security_opt",
        "privileged", "shm_size", "sysctls", "tmpfs", "restart_policy", "runtime", "network_mode",
        "volumes", "tty", "stdin_open", "auto_remove", "group_add", "healthcheck",
    }  # fmt: skip
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise InvalidArgument(f"unsupported container option(s): {', '.join(unknown)}")
    restart = kwargs.get("restart_policy") or {}
    labels = kwargs.get("labels") or {}
    if isinstance(labels, list):
        labels = dict.fromkeys(labels, "")
    return o.RunOptions(
        name=kwargs.get("name"),
        labels=dict(labels),
        restart=s.RestartPolicy(
            name=restart.get("Name", "no") or "no", max_retries=int(restart.get("MaximumRetryCount", 0))
        ),
        auto_remove=bool(kwargs.get("auto_remove")),
        runtime=kwargs.get("runtime") or "",
        process=o.ProcessOptions(
            cmd=_command(kwargs.get("command")) or None,
            entrypoint=_command(kwargs.get("entrypoint")),
            env=_environment(kwargs.get("environment")),
            workdir=kwargs.get("working_dir") or "",
            user=str(kwargs.get("user") or ""),
            group_add=tuple(str(g) for g in kwargs.get("group_add") or ()),
            tty=bool(kwargs.get("tty")),
            interactive=bool(kwargs.get("stdin_open")),
            init=bool(kwargs.get("init")),
            stop_signal=s.parse_signal(kwargs["stop_signal"]) if kwargs.get("stop_signal") else "",
            stop_timeout=kwargs.get("stop_timeout"),
        ),
        resources=o.ResourceOptions(
            memory=size(kwargs.get("mem_limit"), "mem_limit"),
            memory_swap=size(kwargs.get("memswap_limit"), "memswap_limit"),
            cpus=kwargs.get("nano_cpus"),
            cpu_shares=kwargs.get("cpu_shares"),
            cpuset_cpus=kwargs.get("cpuset_cpus") or "",
            pids_limit=kwargs.get("pids_limit"),
            shm_size=size(kwargs.get("shm_size"), "shm_size"),
        ),
        security=o.security_options(
            kwargs.get("security_opt") or (),
            privileged=bool(kwargs.get("privileged")),
            cap_add=tuple(kwargs.get("cap_add") or ()),
            cap_drop=tuple(kwargs.get("cap_drop") or ()),
            read_only=bool(kwargs.get("read_only")),
            sysctls=dict(kwargs.get("sysctls") or {}),
        ),
        network=o.NetworkOptions(
            mode=s.parse_network(kwargs.get("network_mode") or ""),
            hostname=kwargs.get("hostname") or "",
            domainname=kwargs.get("domainname") or "",
        ),
        mounts=o.MountOptions(
            specs=_volume_specs(kwargs.get("volumes")), tmpfs=dict(kwargs.get("tmpfs") or {})
        ),
        healthcheck=_healthcheck(kwargs.get("healthcheck")),
    )


def _healthcheck(value: Mapping[str, Any] | None) -> Healthcheck | None:
    """The SDK's ``healthcheck`` dict (``test``: a shell command or docker's list; durations in ns)."""
    if value is None:
        return None
    from pallet.oci.image_spec import Healthcheck

    def get(*names: str) -> Any:  # the SDK takes snake_case or docker's own keys
        return next((value[n] for n in names if value.get(n) is not None), None)

    test = get("test", "Test")
    return Healthcheck(
        test=("CMD-SHELL", test) if isinstance(test, str) else tuple(test) if test else None,
        interval=get("interval", "Interval"),
        timeout=get("timeout", "Timeout"),
        start_period=get("start_period", "StartPeriod"),
        start_interval=get("start_interval", "StartInterval"),
        retries=get("retries", "Retries"),
    )


class Container:
    """One container; ``attrs`` is what ``inspect`` shows, refreshed by ``reload()``."""

    def __init__(self, client: Client, attrs: dict[str, Any]) -> None:
        self.client = client
        self.attrs = attrs

    def __repr__(self) -> str:
        return f"<Container: {self.short_id}>"

    @property
    def id(self) -> str:
        return str(self.attrs["Id"])

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def name(self) -> str:
        return str(self.attrs["Name"]).lstrip("/")

    @property
    def status(self) -> str:
        return str(self.attrs["State"]["Status"])

    @property
    def health(self) -> str:
        """The healthcheck's status (``starting``, ``healthy``, ``unhealthy``), ``unknown`` without one."""
        return str((self.attrs["State"].get("Health") or {}).get("Status") or "unknown")

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.attrs.get("Config", {}).get("Labels") or {})

    @property
    def image_name(self) -> str:
        return str(self.attrs.get("Config", {}).get("Image", ""))

    @property
    def image(self) -> Image:
        return self.client.images.get(str(self.attrs["Image"]))

    def reload(self) -> None:
        self.attrs = self.client.containers.get(self.id).attrs

    def start(self) -> None:
        with self.client._service() as service:
            service.start(self.id)
        self.reload()

    def stop(self, timeout: int | None = None) -> None:
        with self.client._service() as service:
            service.stop(self.id, timeout=timeout)
        self.reload()

    def restart(self, timeout: int | None = None) -> None:
        with self.client._service() as service:
            service.restart(self.id, timeout=timeout)
        self.reload()

    def kill(self, signal: str | int | None = None) -> None:
        with self.client._service() as service:
            service.kill(self.id, signal)
        self.reload()

    def pause(self) -> None:
        with self.client._service() as service:
            service.pause(self.id)
        self.reload()

    def unpause(self) -> None:
        with self.client._service() as service:
            service.unpause(self.id)
        self.reload()

    def rename(self, name: str) -> None:
        with self.client._service() as service:
            service.rename(self.id, name)
        self.reload()

    def remove(self, *, force: bool = False, v: bool = False) -> None:
        with self.client._service() as service:
            service.remove(self.id, force=force, volumes=v)

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Block until the container stops: ``{"StatusCode": N, "Error": None}``."""
        with self.client._service() as service:
            code = service.wait(self.id, timeout=timeout)
        return {"StatusCode": code, "Error": None}

    def logs(
        self, *, stdout: bool = True, stderr: bool = True, timestamps: bool = False, tail: int | str = "all"
    ) -> bytes:
        """The container's output so far (both streams interleaved, in order)."""
        return b"".join(self._log_chunks(stdout=stdout, stderr=stderr, timestamps=timestamps, tail=tail))

    def _log_chunks(
        self, *, stdout: bool, stderr: bool, timestamps: bool, tail: int | str
    ) -> Iterator[bytes]:
        from pallet.engine.service import format_log_entry

        with self.client._service() as service:
            entries = service.logs(
                self.id, tail=None if tail == "all" else int(tail), stdout=stdout, stderr=stderr
            )
            for entry in entries:
                yield format_log_entry(entry, timestamps)

    def exec_run(
        self,
        cmd: str | Sequence[str],
        *,
        environment: Mapping[str, str] | Sequence[str] | None = None,
        workdir: str | None = None,
        user: str = "",
        detach: bool = False,
        tty: bool = False,
        stdout: bool = True,
        stderr: bool = True,
    ) -> ExecResult:
        """Run ``cmd`` in the container; its exit code and output (``exit_code`` None when detached)."""
        from pallet.engine.service import exec_request

        request = exec_request(
            cmd=_command(cmd) or (),
            tty=tty,
            detach=detach,
            env=_environment(environment),
            workdir=workdir or "",
            user=user,
        )
        with self.client._service() as service:
            if detach:
                service.exec(self.id, request)
                return ExecResult(exit_code=None, output=b"")
            code, output = service.exec_output(self.id, request, stdout=stdout, stderr=stderr)
            return ExecResult(exit_code=code, output=output)


class ContainerCollection:
    """``client.containers``."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def _wrap(self, service: Service, record: ContainerRecord) -> Container:
        return Container(self.client, service.inspect(record))

    def create(self, image: str, command: str | Sequence[str] | None = None, **kwargs: Any) -> Container:
        """Create (not start) a container, as ``pallet create``."""
        options = run_options(command=command, **kwargs)
        with self.client._service() as service:
            return self._wrap(service, service.create(image, options))

    def run(
        self,
        image: str,
        command: str | Sequence[str] | None = None,
        *,
        detach: bool = False,
        remove: bool = False,
        stdout: bool = True,
        stderr: bool = False,
        **kwargs: Any,
    ) -> Container | bytes:
        """Run a container: with ``detach`` the ``Container``, else its logs once it exits.

        Without ``detach``, a non-zero exit raises ``ContainerError``;
        ``remove`` removes the container after it exited (``--rm``).
        """
        if detach and remove:
            kwargs["auto_remove"] = True
        container = self.create(image, command, **kwargs)
        with self.client._service() as service:
            service.start(container.id)
            if detach:
                return self._wrap(service, service.get(container.id))
            code = service.wait(container.id)
            container.reload()
            out = container.logs(stdout=stdout, stderr=stderr)
            err = container.logs(stdout=False, stderr=True) if code != 0 else b""
            if remove:
                service.remove(container.id, force=True, volumes=True)
        if code != 0:
            raise ContainerError(container, code, container.attrs.get("Args", []), err)
        return out

    def get(self, container_id: str) -> Container:
        with self.client._service() as service:
            return self._wrap(service, service.get(container_id))

    def list(self, *, all: bool = False, filters: Mapping[str, Any] | None = None) -> list[Container]:
        """Containers, newest first (``all``: stopped ones too), with docker's filters (``id``, ``name``,
        ``label``, ``status``, ``exited``, ``ancestor``, ``before``, ``since``, ``volume``, ``network``)."""
        with self.client._service() as service:
            return [
                self._wrap(service, record) for record in service.ps(all=all, filters=dict(filters or {}))
            ]

    def prune(self) -> dict[str, Any]:
        with self.client._service() as service:
            removed, freed = service.prune_containers()
        return {"ContainersDeleted": removed, "SpaceReclaimed": freed}


# --- images -----------------------------------------------------------------------------------


class Image:
    """One image: ``id``, ``tags``, ``attrs`` (the image config and the store's record)."""

    def __init__(self, record: ImageRecord, config: dict[str, Any]) -> None:
        self.record = record
        self.attrs = {
            "Id": str(record.id),
            "RepoTags": self.tags_of(record),
            "Created": record.created,
            "Size": record.size,
            "Config": config.get("config") or {},
            "Architecture": record.platform.architecture,
            "Os": record.platform.os,
        }

    def __repr__(self) -> str:
        return f"<Image: {', '.join(self.tags) or self.short_id}>"

    @property
    def id(self) -> str:
        return str(self.record.id)

    @property
    def short_id(self) -> str:
        return self.id[:19]

    @property
    def tags(self) -> list[str]:
        return self.tags_of(self.record)

    @staticmethod
    def tags_of(record: ImageRecord) -> list[str]:
        return [r.familiar_string() for r in record.references if r.tag]


class ImageCollection:
    """``client.images`` (over the image store)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def _wrap(self, record: ImageRecord) -> Image:
        from pallet.image.store import ImageStore

        with ImageStore.open(self.client.root) as store:
            return Image(record, store.config(str(record.id)).to_json())

    def list(self) -> list[Image]:
        from pallet.image.store import ImageStore

        with ImageStore.open(self.client.root) as store:
            return [Image(r, store.config(str(r.id)).to_json()) for r in store.list_images()]

    def get(self, name: str) -> Image:
        from pallet.image.store import ImageStore

        with ImageStore.open(self.client.root) as store:
            record = store.resolve(name)
            return Image(record, store.config(str(record.id)).to_json())

    def remove(self, image: str, *, force: bool = False) -> None:
        from pallet.image.store import ImageStore

        with ImageStore.open(self.client.root) as store:
            store.remove_image(image, force=force)


# --- volumes ----------------------------------------------------------------------------------


class VolumeCollection:
    """``client.volumes``: volumes as their inspect dicts."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def create(
        self, name: str | None = None, *, labels: Mapping[str, str] | None = None
    ) -> dict[str, object]:
        with self.client._service() as service:
            return service.create_volume(name, labels=labels).to_inspect()

    def get(self, name: str) -> dict[str, object]:
        with self.client._service() as service:
            return service.volume(name).to_inspect()

    def list(self) -> list[dict[str, object]]:
        with self.client._service() as service:
            return [v.to_inspect() for v in service.volumes()]

    def remove(self, name: str, *, force: bool = False) -> None:
        with self.client._service() as service:
            service.remove_volume(name, force=force)


# --- the client -------------------------------------------------------------------------------


class Client:
    """The engine under ``root`` (images, containers, volumes) and ``run_root`` (runtime state).

    Defaults: ``$PALLET_ROOT`` or /var/lib/pallet, ``$PALLET_RUN`` or /run/pallet, as the CLI.
    """

    def __init__(
        self, root: str | os.PathLike[str] | None = None, run_root: str | os.PathLike[str] | None = None
    ) -> None:
        self.root = Path(root or os.environ.get("PALLET_ROOT") or DEFAULT_ROOT)
        self.run_root = Path(run_root or os.environ.get("PALLET_RUN") or DEFAULT_RUN_ROOT)
        self.containers = ContainerCollection(self)
        self.images = ImageCollection(self)
        self.volumes = VolumeCollection(self)

    def _service(self) -> Service:
        from pallet.engine.service import Service

        return Service.open(self.root, self.run_root)

    def close(self) -> None:
        """Nothing stays open between calls; kept for the docker SDK's shape."""

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
