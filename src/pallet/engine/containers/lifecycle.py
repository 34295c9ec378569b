"""The container lifecycle: create, start, stop, kill, restart, pause, rename, wait, remove, prune.

``Engine`` is the in-process engine over one root and run dir (podman's
"daemonless" shape): every method works on ``pallet.db``, the image store and
the shims directly, under the container's file lock, so concurrent ``pallet``
processes are safe. Crash safety, step by step:

- ``create`` first inserts the row as ``creating`` with this process as owner
  (the UNIQUE name index settles races), then makes files; a crash leaves a
  ``creating`` row whose owner is dead, which ``reconcile`` discards.
- ``start`` launches a detached shim; if the caller dies right after, the
  shim's pid file lets ``reconcile`` find it.
- ``remove`` marks the row ``removing`` before it deletes anything and
  deletes the row last; every step is idempotent, so a crash is finished by
  the next command.

Containers never depend on the caller: SIGKILL of any ``pallet`` process
leaves shims and containers running.
"""

from __future__ import annotations

import os
import time

from pallet.engine import events
from pallet.engine.containers import names, sharing
from pallet.engine.containers.locks import container_lock, remove_lock_file
from pallet.engine.containers.reconcile import process_start_time, reconcile, settled, shim_alive
from pallet.engine.containers.records import (
    ACTIVE_STATES,
    ContainerRecord,
    ContainerStore,
    dumps_compact,
    name_conflict,
    read_document,
    write_document,
)
from pallet.engine.db import EngineDB
from pallet.engine.layout import Layout, snapshot_key
from pallet.engine.shim import exitfile
from pallet.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound, PalletError
from pallet.linux.trees import remove_tree

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, Self

    from pallet.engine.networking import Networks
    from pallet.engine.runtimes import Runtime
    from pallet.engine.shim.launch import PendingShim
    from pallet.engine.spec.mounts import MountPoint, ResolvedMount
    from pallet.engine.spec.options import RunOptions
    from pallet.engine.spec.syntax import NetworkMode
    from pallet.engine.volumes import VolumeStore
    from pallet.image.metadata import FileLock
    from pallet.image.store import ImageStore
    from pallet.network.store import Endpoint
    from pallet.oci.image_spec import ContainerConfig

__all__ = ["DEFAULT_STOP_TIMEOUT", "Engine", "rfc3339_now"]

#: docker's default grace period of ``stop`` before SIGKILL, in seconds
DEFAULT_STOP_TIMEOUT = 10
#: how long ``rm -f`` and ``stop`` wait for a shim to exit after SIGKILL
_KILL_GRACE = 30.0
_REMOVE_VOLUMES_FLAG = "remove-volumes"
#: how often ``create`` draws a new generated name that a concurrent create took first
_NAME_ATTEMPTS = 20


def rfc3339_now() -> str:
    from pallet.engine.shim.logfile import rfc3339nano

    return rfc3339nano(time.time_ns())


def _signal_number(value: str | int | None, default: int) -> int:
    from pallet.linux.signals import parse_signal

    if value is None or value == "":
        return default
    if isinstance(value, int):
        return value
    number = parse_signal(value)
    if number is None:
        raise InvalidArgument(f"invalid signal: {value}")
    return number


def _poll(done: Callable[[], bool], timeout: float | None) -> bool:
    """Call ``done`` with a growing pause (5 ms to 100 ms) until it is true or ``timeout`` seconds pass."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.005
    while True:
        if done():
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


class Engine:
    """Containers under one root and run dir. Open with ``Engine.open``; use as a context manager."""

    def __init__(self, root: str, run_root: str, *, leave_open: bool = False) -> None:
        self.layout = Layout(root, run_root)
        self._leave_open = leave_open
        self.db = EngineDB(root)
        self.containers = ContainerStore(self.db)
        self._images: ImageStore | None = None
        self._volumes: VolumeStore | None = None
        self._networks: Networks | None = None
        self._runtimes: dict[str, Runtime] = {}

    @classmethod
    def open(
        cls, root: str | os.PathLike[str], run_root: str | os.PathLike[str], *, leave_open: bool = False
    ) -> Self:
        """The engine of ``root`` and ``run_root``.

        ``leave_open``: the caller ends its process (``os._exit``) right after,
        so ``close`` leaves the databases to the exit: closing the last
        connection would checkpoint SQLite's WAL (~8 ms), which a later writer
        does as well; SQLite is made to be left that way.
        """
        return cls(os.fspath(root), os.fspath(run_root), leave_open=leave_open)

    def close(self) -> None:
        if self._leave_open:
            return
        if self._images is not None:
            self._images.close()
        if self._volumes is not None:
            self._volumes.close()
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def images(self) -> ImageStore:
        if self._images is None:
            from pallet.image.store import ImageStore

            self._images = ImageStore.open(self.layout.root, db=self.db)
        return self._images

    @property
    def volumes(self) -> VolumeStore:
        if self._volumes is None:
            from pallet.engine.volumes import VolumeStore

            self._volumes = VolumeStore.open(self.layout.root, db=self.db)
        return self._volumes

    @property
    def networks(self) -> Networks:
        if self._networks is None:
            from pallet.engine.networking import Networks

            self._networks = Networks(self.db, root=self.layout.root, run_root=self.layout.run_root)
        return self._networks

    def _idmap_scratch(self, container_id: str) -> str:
        """Where a remapped rootfs's idmapped layers are attached while its overlay is mounted."""
        return os.path.join(self.layout.run_root, "idmap", container_id[:12])

    def lock(self, container_id: str) -> FileLock:
        return container_lock(self.layout.run_root, container_id)

    def runtime(self, name: str | None) -> Runtime:
        """The OCI runtime called ``name`` (None: the configured default), with its ``--root`` here.

        Looked up once per engine object and name (it reads the config file and searches PATH).
        """
        from pallet.engine.runtimes import select_runtime

        found = self._runtimes.get(name or "")
        if found is None:
            found = select_runtime(name or None, root=self.layout.root, run_root=self.layout.run_root)
            self._runtimes[name or ""] = found
        return found

    # --- looking up -------------------------------------------------------------------------

    def get(self, ref: str) -> ContainerRecord:
        """The container ``ref`` names (id, name or unique id prefix), reconciled with reality."""
        record = self.containers.get(ref)
        with self.lock(record.id).held():
            current = reconcile(self, self._reread(record))
        if current is None:
            raise NotFound(f"No such container: {ref}")
        return current

    def list_containers(self, *, all: bool = True) -> list[ContainerRecord]:
        """Every container (``all=False``: running ones only), newest first, reconciled.

        One query reads every row; a row its shim's files confirm (``reconcile.settled``) is listed as
        it is, the others are reconciled under their lock. A container whose lock another command
        holds is listed as its row says.
        """
        out: list[ContainerRecord] = []
        for record in self.containers.list():
            if settled(record, self.layout.run_dir(record.id)):
                if all or record.state in ACTIVE_STATES:
                    out.append(record)
                continue
            lock = self.lock(record.id)
            current: ContainerRecord | None = record
            if lock.acquire(blocking=False):
                try:
                    current = reconcile(self, self._reread(record))
                except NotFound:
                    current = None
                finally:
                    lock.release()
            if current is None:
                continue
            if current.state == "creating":
                current = current.replace(state="created")
            if all or current.state in ACTIVE_STATES:
                out.append(current)
        return out

    def document(self, record: ContainerRecord) -> dict[str, Any]:
        """The container's ``container.json`` (docker's inspect shape of what was decided at create)."""
        return read_document(self.layout.document(record.id))

    def _reread(self, record: ContainerRecord) -> ContainerRecord:
        """The row as it is now (another process may have changed it before we got the lock)."""
        return self.containers.by_id(record.id)

    # --- create -----------------------------------------------------------------------------

    def create(
        self,
        image: str,
        options: RunOptions,
        *,
        warn: Callable[[str], None] | None = None,
        container_id: str | None = None,
        start_with: PendingShim | None = None,
        exit_command: bool = True,
    ) -> ContainerRecord:
        """Make a container from ``image`` with ``options``: rootfs, volumes, config.json, records.

        ``warn`` gets notes for the user (an ignored ``z`` relabel flag, ...).
        ``container_id`` (from ``names.new_id``) is for a caller that needs
        the id first, to ``prelaunch`` the shim; by default a new one.
        ``start_with`` (that shim) also starts it, as ``pallet run`` does: the
        runtime creates the container as soon as its bundle is written, while
        ``container.json`` is written here; ``exit_command`` as for ``start``.
        If the start fails, the container stays created and the error is raised.
        ``NotFound`` for an unknown image (docker's words), ``Conflict`` for a
        taken name; either way nothing is left behind.
        """
        from pallet.image import owners

        name = names.validate_name(options.name) if options.name else None
        if name is not None:
            taken = self.containers.find(name)
            if taken is not None and taken.name == name:
                raise name_conflict(name, taken.id)
        try:
            image_record = self.images.resolve(image)
        except NotFound:
            from pallet.oci.reference import parse

            try:
                familiar = parse(image).familiar_string()
            except InvalidArgument:
                familiar = image
            raise NotFound(
                f"Unable to find image '{familiar}' locally; pull it, load it or import it first"
            ) from None
        runtime = self.runtime(options.runtime)
        if options.resources.memory_swappiness is not None:
            options = _swappiness_in_force(options, warn)
        image_config = self.images.config(image_record.id).config
        labels = dict(image_config.labels) if image_config is not None else {}
        labels.update(options.labels)
        container_id = container_id or names.new_id()
        record = ContainerRecord(
            id=container_id,
            name=name or names.generate_name(self.containers.name_taken),
            image_id=str(image_record.id),
            image=image,
            created=time.time(),
            state="creating",
            owner=owners.owner_tag(),
            runtime=runtime.name,
            labels=labels,
        )
        mode = options.network.mode
        joined = self._joined(mode.name) if mode.kind == "container" else None
        if mode.on_bridge:  # found (the default one made) before the insert: an unknown one leaves nothing
            from pallet.engine.containers.attachments import attachments

            self.networks.check_attachments(attachments(options.network, ()))
        elif mode.is_host and (options.network.publish or options.network.publish_all) and warn:
            warn("WARNING: Published ports are discarded when using host network mode")
        endpoints: list[Endpoint] = []
        for attempt in range(_NAME_ATTEMPTS):
            inserted = False
            try:
                # the container and its endpoints (addresses, host ports) in one transaction
                with self.db.transaction():
                    self.containers.insert(record)
                    inserted = True
                    if mode.on_bridge:
                        endpoints = self._allocate(record, options, image_config)
                break
            except Conflict:
                # a generated name taken by a concurrent create in the meantime: draw another
                if inserted or name is not None or attempt == _NAME_ATTEMPTS - 1:
                    raise
                record = record.replace(name=names.generate_name(self.containers.name_taken))
        with self.lock(container_id).held():
            try:
                shared = None
                if sharing.needed(options):
                    shared = sharing.resolve(
                        self, options, container_id=container_id, name=record.name,
                        running=start_with is not None, warn=warn or (lambda _: None),
                    )  # fmt: skip
                document = self._make_bundle(
                    record,
                    image_record.id,
                    options,
                    warn or (lambda _: None),
                    endpoints=endpoints,
                    joined=joined,
                    shared=shared,
                )
                if start_with is None:
                    write_document(self.layout.document(container_id), document)
                record = self.containers.update(container_id, state="created", owner=None)
            except BaseException:
                self.discard(self.containers.by_id(container_id), remove_volumes=True)
                raise
            self.event(record, "create")
            if start_with is None:
                return record
            if start_with.attached:  # a foreground run: dockerd's attach comes between create and start
                self.event(record, "attach")
            # "created" is recorded first: a caller killed from here on leaves a container that
            # reconcile adopts (its shim runs it), never one it discards
            if mode.on_bridge:
                self.networks.resume(container_id)
            pending = self._launch_shim(record, document, shim=start_with, exit_command=exit_command)
            write_document(self.layout.document(container_id), document)
            return self._started(record, pending)

    def _joined(self, ref: str) -> ContainerRecord:
        """The running container whose network ``container:REF`` joins; docker's words otherwise."""
        try:
            target = self.get(ref)
        except NotFound:
            raise NotFound(f"No such container: {ref}") from None
        if target.state not in ("running", "paused") or target.pid <= 0:
            raise FailedPrecondition(f"cannot join network of a non running container: {target.id}")
        return target

    def _joined_namespace(self, target: ContainerRecord) -> str:
        """The network namespace of a running container: the engine's file, else its init's."""
        path = self.networks.netns_path(target.id)
        return path if os.path.exists(path) else f"/proc/{target.pid}/ns/net"

    def _allocate(
        self, record: ContainerRecord, options: RunOptions, image_config: ContainerConfig | None
    ) -> list[Endpoint]:
        """The container's endpoints: on the network its mode names, with its published ports, then
        on its other networks; the caller's transaction records them with the container."""
        from pallet.engine.containers.attachments import attachments, port_mappings

        networks = self.networks
        exposed = (
            *(image_config.exposed_ports or () if image_config is not None else ()),
            *options.network.exposed(),
        )
        ports = (
            port_mappings(options.network, exposed, networks.held_ports())
            if options.network.ports() or options.network.publish_all
            else []
        )
        return networks.allocate(
            record.id, record.name, attachments(options.network, ports), dns=options.network.dns
        )

    def _network_files(
        self,
        record: ContainerRecord,
        options: RunOptions,
        endpoints: list[Endpoint],
        joined: ContainerRecord | None,
        hostname: str,
    ) -> tuple[str, dict[str, str]]:
        """The network namespace the container joins ("" for a new one) and its /etc files."""
        network = options.network
        if joined is not None:  # the other container's namespace and files, as docker shares them
            files = {
                f"/etc/{name}": os.path.join(self.layout.container_dir(joined.id), name)
                for name in ("hostname", "hosts", "resolv.conf")
            }
            return self._joined_namespace(joined), {k: v for k, v in files.items() if os.path.exists(v)}
        from pallet.engine.containers.attachments import network_files

        resolver = host_gateway = ""
        namespace = ""
        if network.mode.on_bridge:
            namespace = self.networks.netns_path(record.id)
            for endpoint in endpoints:  # the first user network's resolver answers for all of them
                attached = self.networks.find(endpoint.network_id)
                if attached.dns:
                    resolver = attached.gateway
                    break
        if any(h.endswith("host-gateway") for h in network.extra_hosts):
            host_gateway = self.networks.default().gateway
        files = network_files(
            self.layout.container_dir(record.id), network, hostname=hostname, endpoints=endpoints,
            resolver=resolver, host_gateway=host_gateway, durable=not options.auto_remove,
        )  # fmt: skip
        return namespace, files

    def _make_bundle(
        self,
        record: ContainerRecord,
        image_id: str,
        options: RunOptions,
        warn: Callable[[str], None],
        *,
        endpoints: list[Endpoint] | None = None,
        joined: ContainerRecord | None = None,
        shared: sharing.Shared | None = None,
    ) -> dict[str, Any]:
        """Snapshot + rootfs mount + volumes + /etc files + config.json; returns the container document.

        ``shared``: what the options take from other containers (``sharing.resolve``)."""
        if shared is not None:
            options = shared.options  # with the --volumes-from mounts
        from pallet.engine.spec.generate import build_spec, container_hostname
        from pallet.engine.userns import (
            container_remap,
            give_volume_to_root,
            let_root_traverse,
            mount_snapshot,
            remap_spec_option,
        )

        images = self.images
        config = images.config(image_id)
        container_dir = self.layout.container_dir(record.id)
        rootfs = self.layout.rootfs(record.id)
        os.makedirs(rootfs)
        os.chmod(container_dir, 0o710)
        images.set_in_use(image_id, record.id)
        remap = container_remap(options.security.userns, self.layout.root)
        if remap is not None:
            let_root_traverse(self.layout.root, container_dir, remap)
        top = images.unpack(image_id)
        mounts = images.snapshots.prepare(snapshot_key(record.id), top)
        if options.auto_remove:
            # a --rm container's writable layer never outlives it: overlayfs need not sync it
            # to disk (an unmount waits for a journal commit otherwise), as podman does
            mounts = [
                m.replace(options=(*m.options, "volatile")) if m.type == "overlay" else m for m in mounts
            ]
        mount_snapshot(mounts, rootfs, remap, self._idmap_scratch(record.id))
        image_volumes = config.config.volumes if config.config is not None else None
        resolved: tuple[ResolvedMount, ...] = ()
        points: tuple[MountPoint, ...] = ()
        if options.mounts.specs or image_volumes:  # else neither the mounts module nor the volume store
            from pallet.engine.spec.mounts import resolve_mounts

            driver = options.mounts.volume_driver
            plan = resolve_mounts(
                tuple(
                    m.replace(volume_driver=driver)
                    if driver and m.type == "volume" and not m.volume_driver
                    else m
                    for m in options.mounts.specs
                ),
                volumes=self.volumes,
                container_id=record.id,
                image_volumes=image_volumes or (),
                rootfs=rootfs,
                create_host_path=[m.create_source for m in options.mounts.specs],
            )
            for note in plan.notes:
                warn(note)
            resolved, points = plan.mounts, plan.points
            if remap is not None:
                for name in plan.volumes:
                    give_volume_to_root(self.volumes.data_path(name), remap)
        if joined is not None:
            hostname = str(self.document(joined).get("Config", {}).get("Hostname") or joined.id[:12])
        else:
            hostname = container_hostname(
                options.network, container_id=record.id, host_hostname=os.uname().nodename
            )
        namespace, hosts_files = self._network_files(record, options, endpoints or [], joined, hostname)
        if shared is not None:
            sharing.append_hosts(hosts_files.get("/etc/hosts", ""), shared.links)
            if options.namespaces.ipc == "shareable":
                sharing.mount_shm(shared.shm, options.resources.shm_size or 64 * 1024 * 1024)
        spec = build_spec(
            container_id=record.id,
            image_config=config.config,
            options=options,
            rootfs=rootfs,
            mounts=resolved,
            hosts_files=hosts_files,
            network_namespace=namespace,
            hostname=hostname,
            joined_namespaces=shared.joined if shared is not None else {},
            shm=shared.shm if shared is not None else "",
            linked_env=shared.linked_env if shared is not None else (),
        )
        if os.environ.get("PALLET_ROOTLESS") == "1":  # rootless.is_rootless() for a process inside
            from pallet.engine.rootless import rootless_spec_option

            spec = rootless_spec_option()(spec)
        if remap is not None:  # after: its ping range is the container's own
            spec = remap_spec_option(remap)(spec)
        doc = spec.to_json()
        # the runtime resolves a relative root.path against the bundle: keep the bundle movable
        root = doc.get("root")
        if isinstance(root, dict):
            root["path"] = "rootfs"
        from pallet.engine.runtimes import precompiled_seccomp

        linux = doc.get("linux")
        ready = precompiled_seccomp(
            self.runtime(options.runtime),
            spec.linux.seccomp if spec.linux is not None else None,
            profile_json=linux.get("seccomp") if isinstance(linux, dict) else None,
            cache_dir=os.path.join(self.layout.root, "seccomp"),
        )
        if ready:
            annotations = doc.get("annotations")
            doc["annotations"] = {**(annotations if isinstance(annotations, dict) else {}), **ready}
        with open(os.path.join(self.layout.bundle(record.id), "config.json"), "w") as f:
            f.write(dumps_compact(doc))  # compact, and without importing json
        from pallet.engine.containers.inspection import container_document

        document = container_document(
            record=record,
            options=options,
            image_config=config.config,
            spec=spec,
            mounts=points,
            driver=images.snapshots.driver,
            log_path=self.layout.log_path(record.id),
            hosts_files=hosts_files if joined is None else {},
        )
        if shared is not None:
            sharing.record(document, shared, parent=record.name)
        return document

    # --- start ------------------------------------------------------------------------------

    def start(
        self,
        ref: str,
        *,
        start_on_attach: bool = False,
        exit_command: bool = True,
        shim: PendingShim | None = None,
    ) -> ContainerRecord:
        """Start a created or exited container under a new shim; a running one is left alone.

        ``shim`` is one ``prelaunch``-ed for this container's ``shim.json``
        (used, or left for the caller to cancel if the container does not start).

        With ``start_on_attach`` the shim waits for the first attach client
        before it starts the process, so that client misses no output. A
        ``--rm`` container is removed by the shim's exit command once it is
        gone for good, unless ``exit_command`` is False (a foreground ``run
        --rm`` removes it itself, after reading its exit code).
        """
        from pallet.engine.userns import mount_snapshot, remap_of_bundle
        from pallet.image import snapshots

        record = self.containers.get(ref)
        with self.lock(record.id).held():
            current = reconcile(self, self._reread(record))
            if current is None:
                raise NotFound(f"No such container: {ref}")
            record = current
            if record.state == "paused":
                raise FailedPrecondition(
                    f"cannot start a paused container {record.name}, try unpause instead"
                )
            if record.state in ACTIVE_STATES:
                return record
            if record.state not in ("created", "exited", "dead"):
                raise FailedPrecondition(f"container {record.name} is {record.state}; it cannot be started")
            self._await_shim_exit(record)  # the last run's shim must not touch the next run's files
            doc = self.document(record)
            runtime = self.runtime(record.runtime)
            rootfs = self.layout.rootfs(record.id)
            if not snapshots.is_mounted(rootfs):  # after a reboot, or a crash between create steps
                mount_snapshot(
                    self.images.snapshots.mounts(snapshot_key(record.id)),
                    rootfs,
                    remap_of_bundle(self.layout.bundle(record.id)),
                    self._idmap_scratch(record.id),
                )
            if _runtime_has_state(runtime, record.id):  # what a killed shim left
                _quietly(runtime.delete, record.id, force=True)
            remove_tree(self.layout.run_dir(record.id), ignore_errors=True)
            if _takes_from_others(doc):
                sharing.before_start(self, record, doc)
            self._network_up(record, doc)
            pending = self._launch_shim(
                record, doc, shim=shim, exit_command=exit_command, start_on_attach=start_on_attach
            )
            return self._started(record, pending)

    def _network_up(self, record: ContainerRecord, doc: Mapping[str, Any]) -> None:
        """Before a start: the container's namespace and endpoints (a bridge mode), or the namespace
        of the container it joins now (its init may have changed since the create)."""
        mode = _network_mode(doc)
        if mode.on_bridge:
            self.networks.resume(record.id)
        elif mode.kind == "container":
            from pallet.oci.jsonfast import loads

            namespace = self._joined_namespace(self._joined(mode.name))
            path = os.path.join(self.layout.bundle(record.id), "config.json")
            with open(path) as f:
                config = loads(f.read())
            assert isinstance(config, dict)
            for entry in config.get("linux", {}).get("namespaces", []):
                if entry.get("type") == "network":
                    entry["path"] = namespace
            with open(path, "w") as f:
                f.write(dumps_compact(config))

    def _launch_shim(
        self,
        record: ContainerRecord,
        doc: Mapping[str, Any],
        *,
        shim: PendingShim | None,
        exit_command: bool,
        start_on_attach: bool = False,
    ) -> PendingShim:
        """Write ``shim.json`` and let a shim go (``shim``, or a new one); ``result()`` is the caller's.

        The caller holds the container's lock; the run dir is new or empty.
        """
        from pallet.engine.runtimes import create_args
        from pallet.engine.shim.config import ShimConfig, save
        from pallet.engine.shim.launch import prelaunch

        host = doc.get("HostConfig", {})
        cfg = doc.get("Config", {})
        runtime = self.runtime(record.runtime)
        run_dir = self.layout.run_dir(record.id)
        os.makedirs(run_dir, exist_ok=True)
        restart = host.get("RestartPolicy", {})
        log_config = host.get("LogConfig", {}).get("Config", {})
        log_driver = host.get("LogConfig", {}).get("Type")
        auto_remove = bool(host.get("AutoRemove"))
        health = _health_settings(cfg.get("Healthcheck"), cfg.get("Shell"))
        shim_config = ShimConfig(
            id=record.id,
            bundle=self.layout.bundle(record.id),
            runtime_name=runtime.name,
            runtime_path=runtime.path,
            runtime_root=runtime.root,
            runtime_args=create_args(runtime, self.layout.bundle(record.id)),
            run_dir=run_dir,
            # the "none" driver keeps nothing: the shim writes (never rotates) its records into /dev/null
            log_path=self.layout.log_path(record.id) if log_driver != "none" else os.devnull,
            log_max_size=_log_size(log_config.get("max-size")),
            log_max_file=int(log_config.get("max-file") or 1),
            tty=bool(cfg.get("Tty")),
            open_stdin=bool(cfg.get("OpenStdin")),
            restart_name=restart.get("Name") or "no",
            restart_max_retries=int(restart.get("MaximumRetryCount") or 0),
            stop_signal=_signal_number(cfg.get("StopSignal"), 15),
            auto_remove=auto_remove,
            exit_command=self._exit_command(record.id) if auto_remove and exit_command else (),
            start_on_attach=start_on_attach,
            events_root=self.layout.root,
            event_attributes=events.container_attributes(record.name, record.image, record.labels),
            **health,
        )
        config_path = self.layout.shim_config(record.id)
        save(shim_config, config_path)
        # docker's connect and mount events precede the start; the shim records their end after the die
        attached = self.attachments(record, doc)
        events.write_attachments(run_dir, attached)
        events.record_attached(self.layout.root, record.id, attached)
        if shim is None or shim.config_path != config_path:
            shim = prelaunch(config_path, run_root=self.layout.run_root)
        shim.release()
        return shim

    def event(self, record: ContainerRecord, action: str, **extra: str) -> None:
        """Record container event ``action`` of ``record`` with docker's attributes (``events.append``)."""
        attributes = events.container_attributes(record.name, record.image, record.labels)
        events.append(self.layout.root, "container", action, record.id, {**attributes, **extra})

    def attachments(self, record: ContainerRecord, doc: Mapping[str, Any]) -> events.Attachments:
        """What the events of the container's run name: its attributes, the networks of its
        endpoints (a bridge mode) and its volumes (``doc``: its ``container.json``)."""
        networks = []
        mode = _network_mode(doc)
        if mode.on_bridge and self.db.version("network"):
            for endpoint in self.networks.endpoints(record.id):
                network = self.networks.find(endpoint.network_id)
                networks.append((network.id, network.name, "bridge"))
        elif mode.kind in ("host", "none"):  # dockerd's predefined networks, of driver host and null
            predefined = self.networks.predefined(mode.kind)
            networks.append((predefined.id, predefined.name, predefined.driver))
        volumes = [
            (str(m.get("Name")), str(m.get("Destination")), str(m.get("Driver") or "local"),
             str(m.get("Propagation") or ""), bool(m.get("RW")))
            for m in doc.get("Mounts") or ()
            if m.get("Type") == "volume"
        ]  # fmt: skip
        attributes = events.container_attributes(record.name, record.image, record.labels)
        return events.Attachments(attributes, networks, volumes)

    def refresh_attachments(self, record: ContainerRecord) -> None:
        """After a rename or a network connect/disconnect: the running container's ``events.json``
        rewritten, so its shim's next events name it as it is now. The caller holds its lock."""
        run_dir = self.layout.run_dir(record.id)
        if os.path.exists(os.path.join(run_dir, events.ATTACHMENTS_FILE)):
            events.write_attachments(run_dir, self.attachments(record, self.document(record)))

    def _started(self, record: ContainerRecord, pending: PendingShim) -> ContainerRecord:
        try:
            started = pending.result()
        except BaseException:
            # no start after the connect and mount events: their end, as dockerd's cleanup records it
            attached = events.read_attachments(self.layout.run_dir(record.id))
            if attached is not None:
                events.record_detached(self.layout.root, record.id, attached)
            raise
        self.event(record, "start")
        return self.containers.update(
            record.id,
            state="running",
            pid=started.container_pid,
            shim_pid=started.pid,
            shim_start=process_start_time(started.pid) or 0,
            started_at=rfc3339_now(),
            exit_code=None,
            finished_at=None,
            oom_killed=False,
            restart_count=0,
        )

    def _exit_command(self, container_id: str) -> tuple[str, ...]:
        """What the shim runs once a ``--rm`` container is gone for good: ``pallet rm -f -v``."""
        import sys

        return (
            sys.executable,
            "-I",
            "-m",
            "pallet.cli",
            "--root",
            self.layout.root,
            "--run-root",
            self.layout.run_root,
            "rm",
            "-f",
            "-v",
            container_id,
        )

    # --- stop, kill, restart, pause ---------------------------------------------------------

    def stop(self, ref: str, *, timeout: int | None = None, signal: str | None = None) -> ContainerRecord:
        """Stop a container: its stop signal, then SIGKILL after ``timeout`` seconds. Idempotent.

        The shim is told first (``stopped-by-user``), so no restart policy
        brings the container back.
        """
        record = self.containers.get(ref)
        with self.lock(record.id).held():
            current = reconcile(self, self._reread(record))
            if current is None:
                raise NotFound(f"No such container: {ref}")
            if current.state not in ACTIVE_STATES:
                return current
            doc = self.document(current)
            cfg = doc.get("Config", {})
            if timeout is None:
                found = cfg.get("StopTimeout")
                timeout = int(found) if found is not None else DEFAULT_STOP_TIMEOUT
            stop_signal = _signal_number(signal or cfg.get("StopSignal"), 15)
            stopped = self._stop_locked(current, stop_signal, timeout)
            self.event(stopped, "stop")
            return stopped

    def _stop_locked(self, record: ContainerRecord, stop_signal: int, timeout: float) -> ContainerRecord:
        """Stop signal, ``timeout`` seconds (negative: no limit), then SIGKILL until the container is gone.

        The signals go even to a ``restarting`` container: its shim may be
        starting it again at this very moment, and the flag set first tells it
        not to do that any more.
        """
        run_dir = self.layout.run_dir(record.id)
        os.makedirs(run_dir, exist_ok=True)
        exitfile.mark_stopped_by_user(run_dir)
        runtime = self.runtime(record.runtime)
        gone = False
        if timeout != 0:
            self.event(record, "kill", signal=str(stop_signal))
            self._signal(runtime, record, stop_signal)
            gone = _poll(lambda: self._gone(record), None if timeout < 0 else timeout)
        deadline = time.monotonic() + _KILL_GRACE
        if not gone:
            self.event(record, "kill", signal="9")
        while not gone:
            self._signal(runtime, record, 9)
            gone = _poll(lambda: self._gone(record), 1.0)
            if not gone and time.monotonic() > deadline:
                self._kill_shim(record)
                break
        current = reconcile(self, self._reread(record))
        if current is None:
            raise NotFound(f"No such container: {record.id}")
        return current

    def _signal(self, runtime: Runtime, record: ContainerRecord, signal: int) -> None:
        """Signal the container's init; a paused container is resumed so the signal is acted on."""
        _quietly(runtime.kill, record.id, signal)
        if record.state == "paused":
            _quietly(runtime.resume, record.id)

    def _gone(self, record: ContainerRecord) -> bool:
        """The container's shim has exited (and with it the container), or never ran."""
        if record.shim_pid > 0:
            return not shim_alive(record)
        return record.pid <= 0 or process_start_time(record.pid) is None

    def _await_shim_exit(self, record: ContainerRecord) -> None:
        """Let the shim of an exited container finish (runtime delete, last log lines) before its
        files are reused or removed; one that hangs is killed."""
        if shim_alive(record) and not _wait_exit(record.shim_pid, record.shim_start, _KILL_GRACE):
            self._kill_shim(record)

    def _kill_shim(self, record: ContainerRecord) -> None:
        """Last resort when a shim does not exit: SIGKILL it, by pid checked against its start time."""
        if shim_alive(record):
            try:
                os.kill(record.shim_pid, 9)
            except ProcessLookupError:
                return
            _poll(lambda: not shim_alive(record), 5.0)

    def kill(self, ref: str, signal: str | None = None) -> ContainerRecord:
        """Send ``signal`` (default SIGKILL) to the container's init. ``FailedPrecondition`` if not running."""
        record = self.containers.get(ref)
        with self.lock(record.id).held():
            current = reconcile(self, self._reread(record))
            if current is None:
                raise NotFound(f"No such container: {ref}")
            if current.state not in ("running", "paused"):
                raise FailedPrecondition(
                    f"cannot kill container: {ref}: container {current.id} is not running"
                )
            number = _signal_number(signal, 9)
            cfg = self.document(current).get("Config", {})
            # docker: the stop signal (and SIGKILL) count as a manual stop: no restart policy applies
            if number in (9, _signal_number(cfg.get("StopSignal"), 15)):
                run_dir = self.layout.run_dir(current.id)
                os.makedirs(run_dir, exist_ok=True)
                exitfile.mark_stopped_by_user(run_dir)
            runtime = self.runtime(current.runtime)
            self.event(current, "kill", signal=str(number))
            if number == 9:  # a frozen process dies only once thawed
                self._signal(runtime, current, number)
            else:  # any other signal waits, as on docker, until the container is unpaused
                _quietly(runtime.kill, current.id, number)
            if number == 9:
                _poll(lambda: self._gone(current), _KILL_GRACE)
                after = reconcile(self, self._reread(current))
                return after if after is not None else current
            return current

    def restart(self, ref: str, *, timeout: int | None = None) -> ContainerRecord:
        self.stop(ref, timeout=timeout)
        record = self.start(ref)
        self.event(record, "restart")
        return record

    def pause(self, ref: str) -> ContainerRecord:
        record = self.get(ref)
        with self.lock(record.id).held():
            record = self._reread(record)
            if record.state == "paused":
                raise FailedPrecondition(f"container {record.id} is already paused")
            if record.state != "running":
                raise FailedPrecondition(f"container {record.id} is not running")
            self.runtime(record.runtime).pause(record.id)
            self.event(record, "pause")
            return self.containers.update(record.id, state="paused")

    def unpause(self, ref: str) -> ContainerRecord:
        record = self.get(ref)
        with self.lock(record.id).held():
            record = self._reread(record)
            if record.state != "paused":
                raise FailedPrecondition(f"container {record.id} is not paused")
            self.runtime(record.runtime).resume(record.id)
            self.event(record, "unpause")
            return self.containers.update(record.id, state="running")

    def rename(self, ref: str, new_name: str) -> ContainerRecord:
        bare = names.validate_name(new_name)
        record = self.get(ref)
        if record.name == bare:
            raise InvalidArgument("Renaming a container with the same name as its current name")
        with self.lock(record.id).held():
            self.containers.rename(record.id, bare)
            doc = self.document(record)
            if doc:
                doc["Name"] = "/" + bare
                write_document(self.layout.document(record.id), doc)
            renamed = self.containers.by_id(record.id)
            self.refresh_attachments(renamed)
        self.event(renamed, "rename", oldName="/" + record.name)
        return renamed

    def wait(self, ref: str, *, timeout: float | None = None) -> int:
        """Block until the container is not running; its exit code. ``Unavailable`` on ``timeout``."""
        record = self.get(ref)
        final: list[ContainerRecord] = []
        seen_exit: list[int] = []
        run_dir = self.layout.run_dir(record.id)
        if record.state in ("running", "paused") and record.shim_pid > 0 and self.auto_remove(record):
            # a --rm container's shim never restarts it and exits right after exit.json is written;
            # the removal it then starts takes the run dir away: read it the moment the shim is gone
            if not _wait_exit(record.shim_pid, record.shim_start, -1 if timeout is None else timeout):
                from pallet.errors import Unavailable

                raise Unavailable(f"container {record.short_id} still runs after {timeout} seconds")
            status = exitfile.read_exit(run_dir)
            if status is not None:
                return status.exit_code

        def stopped() -> bool:
            # a --rm container may be removed by its exit command between two polls: the exit
            # file, read first, keeps its status
            last = exitfile.read_exit(run_dir)
            if last is not None:
                seen_exit[:] = [last.exit_code]
            try:
                current = self.get(record.id)
            except NotFound:
                return True
            final[:] = [current]
            return current.state not in ("running", "paused")

        if not _poll(stopped, timeout):
            from pallet.errors import Unavailable

            raise Unavailable(f"container {record.short_id} still runs after {timeout} seconds")
        last = final[0] if final else record
        if last.state in ("running", "paused") and seen_exit:  # removed before we saw it exit
            return seen_exit[0]
        return last.exit_code if last.exit_code is not None else 0

    # --- remove -----------------------------------------------------------------------------

    def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> str:
        """Remove a container and everything it owns; its id. A running one only with ``force``."""
        record = self.containers.get(ref)
        with self.lock(record.id).held():
            current = reconcile(self, self._reread(record))
            if current is None:
                return record.id
            if current.state in ACTIVE_STATES:
                if not force:
                    raise Conflict(
                        f'cannot remove container "/{current.name}": container is {current.state}: '
                        "stop the container before removing or force remove"
                    )
                current = self._stop_locked(current, 9, 0)
            self.discard(current, remove_volumes=volumes)
            self.event(current, "destroy")
        return record.id

    def discard(self, record: ContainerRecord, *, remove_volumes: bool) -> None:
        """Delete a container that does not run: runtime state, rootfs, snapshot, volumes, files, row.

        Idempotent, and safe to interrupt: the row is marked ``removing`` first
        and deleted last, so the next command finishes the job. The caller
        holds the container's lock.
        """
        from pallet.engine.userns import release_scratch
        from pallet.image import snapshots

        container_dir = self.layout.container_dir(record.id)
        if record.state != "removing":
            if remove_volumes and os.path.isdir(container_dir):
                with open(os.path.join(container_dir, _REMOVE_VOLUMES_FLAG), "w"):
                    pass
            record = self.containers.update(record.id, state="removing", owner=None)
        # the container has exited: its shim may still be deleting the runtime's state and closing
        # its files, but it no longer uses the rootfs, which goes meanwhile
        snapshots.unmount(self.layout.rootfs(record.id))
        release_scratch(self._idmap_scratch(record.id))  # a remapped create killed part-way
        snaps = self.images.snapshots
        if snaps.stat(snapshot_key(record.id)) is not None:
            snaps.remove(snapshot_key(record.id))
        self.images.release(record.image_id, record.id)
        if self._may_use_networks(record):
            self.networks.release(record.id)
        if self._may_use_volumes(record):
            self.volumes.release(record.id, remove_anonymous=remove_volumes)
        sharing.release(self, record.id)  # a shareable /dev/shm, mounted in the directory
        remove_tree(container_dir, ignore_errors=True)
        # the rest is the shim's until it exits (the runtime's state, the run dir's files)
        self._await_shim_exit(record)
        try:
            runtime = self.runtime(record.runtime)
        except PalletError:
            pass  # an unknown runtime (the config changed) has nothing of ours to delete
        else:
            if _runtime_has_state(runtime, record.id):  # the shim deletes it; a killed shim did not
                _quietly(runtime.delete, record.id, force=True)
        remove_tree(self.layout.run_dir(record.id), ignore_errors=True)
        self.containers.delete(record.id)
        remove_lock_file(self.layout.run_root, record.id)

    def _may_use_networks(self, record: ContainerRecord) -> bool:
        """Whether the container may hold endpoints or a namespace file: its mode is a bridge one, or
        it has no document (a create that crashed half-way). Spares the driver's import otherwise."""
        if not self.db.version("network"):
            return False  # no network was ever made on this root
        doc = self.document(record)
        return not doc or _network_mode(doc).on_bridge

    def _may_use_volumes(self, record: ContainerRecord) -> bool:
        """Whether the container may hold volumes: its document lists one, or it has no document
        (a create that crashed half-way). Spares opening the volume store on every ``rm``."""
        if not os.path.exists(os.path.join(self.layout.root, "volumes")):
            return False  # the volume store was never opened here: no volume was ever made
        doc = self.document(record)
        return not doc or any(m.get("Type") == "volume" for m in doc.get("Mounts") or ())

    # --- hooks for reconcile ----------------------------------------------------------------

    def removing_volumes(self, record: ContainerRecord) -> bool:
        """Whether an interrupted removal was asked to remove anonymous volumes (``rm -v``)."""
        return os.path.exists(os.path.join(self.layout.container_dir(record.id), _REMOVE_VOLUMES_FLAG))

    def runtime_knows(self, record: ContainerRecord) -> bool:
        """Whether the OCI runtime still has state for the container (it runs without its shim)."""
        try:
            state = self.runtime(record.runtime).state(record.id)
        except PalletError:
            return False
        return state.get("status") in ("running", "paused", "created")

    def after_exit(self, record: ContainerRecord) -> None:
        """Clean what a dead shim could not: the runtime's state of the container; and take its network
        down (namespace, veths, port rules; its addresses and ports stay its own until it is removed),
        unless it is about to be removed (``--rm``)."""
        if self._may_use_networks(record) and not self.auto_remove(record):
            self.networks.suspend(record.id)
        try:
            runtime = self.runtime(record.runtime)
        except PalletError:
            return  # the runtime is gone from the config: nothing to clean
        if _runtime_has_state(runtime, record.id):
            _quietly(runtime.delete, record.id, force=True)

    def reconcile_networks(self) -> None:
        """After a crashed create or remove: what the network driver holds for containers that are
        gone (endpoints, namespace files, veths, rules, resolvers), removed. The containers are read
        under the driver's lock, so a create racing with this keeps what it holds."""
        if not self.db.version("network"):
            return
        active = "', '".join(sorted(ACTIVE_STATES | {"creating", "created"}))

        def existing() -> list[str]:
            return [str(r[0]) for r in self.db.query("SELECT id FROM containers")]

        def up() -> list[str]:
            return [
                str(r[0]) for r in self.db.query(f"SELECT id FROM containers WHERE state IN ('{active}')")
            ]

        self.networks.reconcile(existing, up)

    def auto_remove(self, record: ContainerRecord) -> bool:
        """Whether the container was created with ``--rm``."""
        host: Mapping[str, Any] = self.document(record).get("HostConfig", {})
        return bool(host.get("AutoRemove"))


def _takes_from_others(doc: Mapping[str, Any]) -> bool:
    """Whether a start must check or refresh what the container takes from others (``sharing``)."""
    host = doc.get("HostConfig") or {}
    ipc, pid = str(host.get("IpcMode") or ""), str(host.get("PidMode") or "")
    return bool(doc.get("PalletLinks")) or ipc == "shareable" or "container:" in (ipc[:10], pid[:10])


def _swappiness_in_force(options: RunOptions, warn: Callable[[str], None] | None) -> RunOptions:
    """The options without a swappiness where cgroup v2 has none: docker's warning, and it is dropped."""
    from pallet.engine.spec.generate import host_facts

    if not host_facts().cgroup_v2:
        return options
    if warn is not None:
        warn(
            "Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. "
            "Memory swappiness discarded."
        )
    return options.replace(resources=options.resources.replace(memory_swappiness=None))


def _network_mode(doc: Mapping[str, Any]) -> NetworkMode:
    """The container's network mode, from its document's ``HostConfig.NetworkMode``."""
    from pallet.engine.spec.syntax import parse_network

    return parse_network(str(doc.get("HostConfig", {}).get("NetworkMode") or ""))


def _wait_exit(pid: int, start: int, timeout: float) -> bool:
    """Wait until process ``pid`` (started at ``start``, clock ticks) has exited; False on ``timeout``
    seconds (negative: no limit).

    A pidfd wakes us the moment it exits (a shim is not our child: no waitpid),
    instead of polling /proc.
    """
    import select

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except OSError:  # no pidfd (old kernel): poll /proc
        return _poll(lambda: process_start_time(pid) != start, timeout if timeout >= 0 else None)
    try:
        if process_start_time(pid) != start:  # the pid was reused: ours is gone
            return True
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(int(timeout * 1000) if timeout >= 0 else None))
    finally:
        os.close(fd)


def _runtime_has_state(runtime: Runtime, container_id: str) -> bool:
    """Whether the runtime keeps state for the container: runc, crun and pallet-runtime keep ``<root>/<id>/``.

    Checked first because a runtime call costs a process start on every run.
    """
    return os.path.isdir(os.path.join(runtime.root, container_id))


def _quietly(call: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    """Run a runtime verb whose target may be gone already (kill, delete, resume): that is not an error."""
    try:
        call(*args, **kwargs)
    except (NotFound, FailedPrecondition):
        return


def _health_settings(doc: object, shell: object) -> dict[str, Any]:
    """The shim's healthcheck fields for ``Config.Healthcheck`` of ``container.json`` (none: {});
    ``shell``: ``Config.Shell``, the image's SHELL, which runs a ``CMD-SHELL`` test."""
    if not isinstance(doc, dict):
        return {}
    from pallet.engine.healthcheck import settings
    from pallet.oci.image_spec import Healthcheck

    hc = Healthcheck.from_json(doc, "Config.Healthcheck")
    if isinstance(shell, list) and shell and all(isinstance(s, str) for s in shell):
        found = settings(hc, tuple(shell))
    else:
        found = settings(hc)
    if found is None:
        return {}
    return {
        "health_argv": found.argv,
        "health_interval": found.interval,
        "health_timeout": found.timeout,
        "health_start_period": found.start_period,
        "health_start_interval": found.start_interval,
        "health_retries": found.retries,
    }


def _log_size(value: object) -> int:
    if value in (None, "", "-1"):
        return 0
    from pallet.engine.spec.syntax import parse_bytes

    return parse_bytes(str(value))
