"""What a container takes from other containers, as docker's ``HostConfig`` asks.

- ``--pid container:NAME`` / ``--ipc container:NAME``: the pid or ipc namespace
  of that running container, named in config.json as ``/proc/PID/ns/KIND``;
  the path is written at create when the container runs, and again before
  every start (its pid changes when it restarts).
- ``--ipc shareable``: a /dev/shm of its own that others may join: a tmpfs
  the engine mounts on the host (``<container dir>/shm``, docker's
  ``ShmPath``), bound at /dev/shm; a container joining it binds the same.
  It stays mounted while the container exists (``release`` unmounts it).
- ``--volumes-from NAME[:ro|:rw]``: that container's volumes and binds at the
  same paths (``:ro`` makes them read-only; ``:rw`` keeps each one's own
  mode); the user's own mounts win at the same path.
- ``--link NAME:ALIAS``: docker's legacy links. On the default bridge the
  linked container's address under the alias, its hostname and name in
  ``/etc/hosts`` and docker's variables (``ALIAS_NAME``, ``ALIAS_PORT_*``,
  ``ALIAS_ENV_*``) in the process's environment; with ``none`` the link is
  only recorded; on a user network they are the endpoint's links (the
  network's resolver answers the alias), not this module's. ``HostConfig.Links`` shows
  ``/child:/parent/alias``; ``remove_link`` (``DELETE
  /containers/parent/alias?link=1``) takes one away.

``resolve`` reads the other containers before the container is made;
``record`` writes what was decided into its document; ``before_start``
checks and refreshes it before each start. Callers hold the container's
lock; the other containers are only read.
"""

from __future__ import annotations

import os

from pallet.engine.shim import joins
from pallet.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from pallet.oci.record import EMPTY, Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    from pallet.engine.containers.lifecycle import Engine
    from pallet.engine.containers.records import ContainerRecord
    from pallet.engine.spec.options import RunOptions
    from pallet.engine.spec.syntax import MountSpec

__all__ = [
    "Link",
    "Shared",
    "before_start",
    "link_env",
    "mount_shm",
    "needed",
    "record",
    "release",
    "remove_link",
    "resolve",
    "shm_dir",
]

#: variables of a linked container that docker does not pass on (added by builds, not the app's)
_NOT_LINKED = frozenset(("HOME", "PATH"))


class Link(Record):
    """One legacy link: the linked (child) container, the alias, and what the parent gets."""

    child_id: str
    child_name: str
    alias: str
    #: the ``/etc/hosts`` line ("" when the child has no address on the parent's network)
    hosts: str = ""
    env: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "ChildId": self.child_id, "ChildName": self.child_name, "Alias": self.alias, "Hosts": self.hosts,
            "Env": list(self.env),
        }  # fmt: skip


class Shared(Record):
    """What ``resolve`` decided for a new container."""

    #: the options, the ``--volumes-from`` mounts merged into ``mounts.specs``
    options: RunOptions
    #: ``pid``/``ipc`` -> the namespace path of the running container joined
    joined: Mapping[str, str] = EMPTY
    #: ``pid``/``ipc`` -> the id of the container joined (``PalletJoins``: its shim rejoins it
    #: before a restart, ``shim/joins.py``)
    joined_ids: Mapping[str, str] = EMPTY
    #: the host directory bound at /dev/shm ("" for a private one or none)
    shm: str = ""
    links: tuple[Link, ...] = ()

    @property
    def linked_env(self) -> tuple[str, ...]:
        return tuple(e for link in self.links for e in link.env)


def needed(options: RunOptions) -> bool:
    """Whether the options take anything from other containers or share a /dev/shm (else the run
    path need not import this module)."""
    ns = options.namespaces
    return bool(
        options.mounts.volumes_from
        or options.network.links
        or ns.joined(ns.pid)
        or ns.joined(ns.ipc)
        or ns.ipc in ("shareable", "host")
    )


def shm_dir(engine: Engine, container_id: str) -> str:
    """Where a shareable container's /dev/shm tmpfs is mounted on the host."""
    return os.path.join(engine.layout.container_dir(container_id), "shm")


def resolve(
    engine: Engine,
    options: RunOptions,
    *,
    container_id: str,
    name: str,
    running: bool,
    warn: Callable[[str], None],
) -> Shared:
    """Read what ``options`` take from other containers, for the new container ``container_id``
    called ``name``. ``running``: the joined containers must run now (``run`` starts it at once);
    else a stopped one is joined at start. ``NotFound``/``InvalidArgument`` with docker's words
    for a container that is not there."""
    ns = options.namespaces
    joined: dict[str, str] = {}
    joined_ids: dict[str, str] = {}
    for kind, mode in (("pid", ns.pid), ("ipc", ns.ipc)):
        target_name = ns.joined(mode)
        if target_name:
            target = _other(engine, target_name)
            joined_ids[kind] = target.id
            if target.state in ("running", "paused") and target.pid > 0:
                joined[kind] = f"/proc/{target.pid}/ns/{kind}"
            elif running:
                raise _not_running(kind, target)
    shm = ""
    if ns.ipc == "shareable":
        shm = shm_dir(engine, container_id)
    elif ns.ipc == "host":
        shm = "/dev/shm"
    elif ns.joined(ns.ipc):
        donor = _other(engine, ns.joined(ns.ipc))
        shm = str(engine.document(donor).get("ShmPath") or "")
        if not shm and running:  # a create is made, as dockerd's; its start is refused
            raise _non_shareable(donor)
    if options.mounts.volumes_from:
        specs = _volumes_from(engine, options.mounts.volumes_from, options.mounts.specs, warn)
        options = options.replace(mounts=options.mounts.replace(specs=specs))
    # on a user network dockerd leaves HostConfig.Links alone: the endpoint's links (which docker's
    # CLI copies them into) make the aliases there
    user_network = options.network.mode.kind == "network"
    links = (
        ()
        if user_network
        else tuple(_link(engine, options, text, parent=name) for text in options.network.links)
    )
    if running:
        for link in links:
            if engine.get(link.child_id).state not in ("running", "paused"):
                raise _not_linkable(link, name)
    return Shared(options=options, joined=joined, joined_ids=joined_ids, shm=shm, links=links)


def _other(engine: Engine, ref: str) -> ContainerRecord:
    try:
        return engine.get(ref)
    except NotFound:
        raise NotFound(f"No such container: {ref}") from None


def _not_running(kind: str, target: ContainerRecord) -> FailedPrecondition:
    return joins.not_running(kind, target.id)


def _non_shareable(donor: ContainerRecord) -> InvalidArgument:
    """dockerd's refusal to join the ipc namespace of a container whose /dev/shm is its own (a
    shareable donor, or one sharing another's, has a ``ShmPath``)."""
    return InvalidArgument(
        f"can't join IPC of container {donor.id}: non-shareable IPC (hint: use IpcMode:shareable for the "
        "donor container)"
    )


def _volumes_from(
    engine: Engine, texts: Sequence[str], own: Sequence[MountSpec], warn: Callable[[str], None]
) -> tuple[MountSpec, ...]:
    """The mount requests of ``--volumes-from`` (a later container wins at a path), then ``own``
    (which wins over them all). The binds taken are judged as the user's own are."""
    from pallet.engine.spec.options import RunOptions
    from pallet.engine.spec.security import warnings_for
    from pallet.engine.spec.syntax import MountSpec, parse_volumes_from

    taken: dict[str, MountSpec] = {}
    for text in texts:
        ref, mode = parse_volumes_from(text)
        try:
            source = engine.get(ref)
        except NotFound:
            raise InvalidArgument(f"No such container: {ref}") from None
        for point in engine.document(source).get("Mounts") or ():
            kind, target = point.get("Type"), str(point.get("Destination") or "")
            read_only = not point.get("RW", True) or mode == "ro"
            if kind == "volume":
                spec = MountSpec(
                    type="volume", source=str(point.get("Name") or ""), target=target,
                    read_only=read_only, volume_nocopy=True,
                )  # fmt: skip
            elif kind == "bind":
                spec = MountSpec(
                    type="bind", source=str(point.get("Source") or ""), target=target,
                    read_only=read_only, propagation=str(point.get("Propagation") or ""),
                )  # fmt: skip
            elif kind == "tmpfs":
                spec = MountSpec(type="tmpfs", target=target, read_only=read_only)
            else:
                continue
            taken[target] = spec
    mine = {os.path.normpath(spec.target) for spec in own}
    shared = tuple(spec for target, spec in taken.items() if os.path.normpath(target) not in mine)
    for warning in warnings_for(RunOptions(), shared):
        warn(f"{warning} (from --volumes-from)")
    return (*shared, *own)


def _link(engine: Engine, options: RunOptions, text: str, *, parent: str) -> Link:
    """One ``NAME:ALIAS`` link of the new container ``parent``: docker's checks, and what it gets."""
    ref, _, alias = text.partition(":")
    try:
        child = engine.get(ref)
    except NotFound:
        raise InvalidArgument(f"could not get container for {ref}: No such container: {ref}") from None
    doc = engine.document(child)
    host = doc.get("HostConfig") or {}
    while str(host.get("NetworkMode") or "").startswith("container:"):  # linked through the one it joins
        ref = str(host["NetworkMode"]).partition(":")[2]
        try:
            child = engine.get(ref)
        except NotFound:
            raise InvalidArgument(f"could not get container for {ref}: No such container: {ref}") from None
        doc = engine.document(child)
        host = doc.get("HostConfig") or {}
    if host.get("NetworkMode") == "host":
        raise InvalidArgument(
            "conflicting options: host type networking can't be used with links. This would result in "
            "undefined behavior"
        )
    mode = options.network.mode
    if not mode.on_bridge:
        return Link(child_id=child.id, child_name=child.name, alias=alias)
    address = _address(engine, child.id, mode.network_name)
    if not address:
        raise InvalidArgument(
            f"Cannot link to /{child.name}, as it does not belong to the {mode.network_name} network"
        )
    config = doc.get("Config") or {}
    names = [alias, str(config.get("Hostname") or child.id[:12])]
    if alias != child.name:
        names.append(child.name)
    env: tuple[str, ...] = ()
    if mode.network_name == "bridge":  # docker's variables come with the default bridge only
        env = link_env(
            alias,
            f"/{parent}/{alias}",
            address,
            tuple(config.get("ExposedPorts") or ()),
            config.get("Env") or (),
        )
    return Link(
        child_id=child.id, child_name=child.name, alias=alias, hosts=f"{address}\t{' '.join(names)}", env=env
    )


def _address(engine: Engine, container_id: str, network_name: str) -> str:
    """The container's IPv4 address on ``network_name`` ("" if it has none there)."""
    network = engine.networks.default() if network_name == "bridge" else engine.networks.find(network_name)
    for endpoint in engine.networks.endpoints(container_id):
        if endpoint.network_id == network.id and endpoint.ip:
            return str(endpoint.ip).partition("/")[0]
    return ""


def link_env(
    alias: str, link_name: str, address: str, exposed: Sequence[str], child_env: Sequence[str]
) -> tuple[str, ...]:
    """docker's variables of a legacy link: ``ALIAS_PORT`` (the lowest exposed port, tcp first),
    for each exposed port ``ALIAS_PORT_<N>_<PROTO>`` and its ``_ADDR``/``_PORT``/``_PROTO`` (a run
    of three or more consecutive ports also as ``_START``/``_END``), ``ALIAS_NAME`` (the link's
    name, ``/parent/alias``) and ``ALIAS_ENV_<NAME>`` for the linked container's variables."""
    prefix = alias.upper().replace("-", "_")
    ports: list[tuple[int, str]] = []
    for key in exposed:
        number, _, proto = key.partition("/")
        if number.isdigit():
            ports.append((int(number), (proto or "tcp").lower()))
    ports.sort(key=lambda p: (p[0], p[1] != "tcp"))
    out: list[str] = []
    if ports:
        out.append(f"{prefix}_PORT={ports[0][1]}://{address}:{ports[0][0]}")
    start = 0
    while start < len(ports):
        end = start
        while end + 1 < len(ports) and ports[end + 1] == (ports[end][0] + 1, ports[start][1]):
            end += 1
        if end - start >= 2:
            first, proto = ports[start]
            last = ports[end][0]
            key = f"{prefix}_PORT_{first}_{proto.upper()}"
            out += [
                f"{key}_START={proto}://{address}:{first}",
                f"{key}_ADDR={address}",
                f"{key}_PROTO={proto}",
                f"{key}_PORT_START={first}",
                f"{key}_END={proto}://{address}:{last}",
                f"{key}_PORT_END={last}",
            ]
        start = end + 1
    for port, proto in ports:
        key = f"{prefix}_PORT_{port}_{proto.upper()}"
        out += [f"{key}={proto}://{address}:{port}", f"{key}_ADDR={address}", f"{key}_PORT={port}"]
        out.append(f"{key}_PROTO={proto}")
    out.append(f"{prefix}_NAME={link_name}")
    for entry in child_env:
        name, sep, value = str(entry).partition("=")
        if sep and name not in _NOT_LINKED:
            out.append(f"{prefix}_ENV_{name}={value}")
    return tuple(dict.fromkeys(out))  # a run's _ADDR and _PROTO are its first port's too


def mount_shm(path: str, size: int) -> None:
    """Mount the tmpfs of a shareable /dev/shm at ``path`` (made if missing) unless it is mounted."""
    from pallet.image.snapshots import is_mounted
    from pallet.linux import flags
    from pallet.linux.libc import Libc

    os.makedirs(path, mode=0o700, exist_ok=True)
    if not is_mounted(path):
        Libc().mount(
            "shm", path, "tmpfs", flags.MS_NOSUID | flags.MS_NODEV | flags.MS_NOEXEC, f"mode=1777,size={size}"
        )


def record(doc: dict[str, Any], shared: Shared, *, parent: str) -> None:
    """Write into the new container's document what ``resolve`` decided: ``ShmPath`` (what a
    container joining its ipc namespace binds), ``HostConfig.Links`` (docker's
    ``/child:/parent/alias``) and the links themselves (``PalletLinks``, for starts and
    ``remove_link``)."""
    if shared.shm:
        doc["ShmPath"] = shared.shm
    if shared.joined_ids:
        doc["PalletJoins"] = dict(shared.joined_ids)
    if shared.links:
        doc["HostConfig"]["Links"] = [f"/{link.child_name}:/{parent}/{link.alias}" for link in shared.links]
        doc["PalletLinks"] = [link.to_json() for link in shared.links]


def append_hosts(hosts_path: str, links: Sequence[Link]) -> None:
    """Add the links' lines to the container's own ``/etc/hosts`` file."""
    lines = "".join(f"{link.hosts}\n" for link in links if link.hosts)
    if lines and hosts_path:
        with open(hosts_path, "a") as f:
            f.write(lines)


def before_start(engine: Engine, record_: ContainerRecord, doc: Mapping[str, Any]) -> None:
    """Before a start: the linked containers must run (docker's words; a link to one removed since
    went with it, as docker's), a shareable /dev/shm is mounted, and the namespaces of the
    containers joined are those of their current inits."""
    current = dict(doc)  # what _drop_link writes back, one link less each time
    for link in list(doc.get("PalletLinks") or ()):
        try:
            child = engine.get(str(link["ChildId"]))
        except NotFound:
            _drop_link(engine, record_, current, link)
            continue
        if child.state not in ("running", "paused"):
            raise _not_linkable(
                Link(
                    child_id=str(link["ChildId"]), child_name=str(link["ChildName"]), alias=str(link["Alias"])
                ),
                record_.name,
            )
    host = doc.get("HostConfig") or {}
    if host.get("IpcMode") == "shareable":
        resources = (doc.get("PalletOptions") or {}).get("resources") or {}
        mount_shm(shm_dir(engine, record_.id), int(resources.get("shm_size") or 64 * 1024 * 1024))
    paths: dict[str, str] = {}
    for kind, key in (("pid", "PidMode"), ("ipc", "IpcMode")):
        mode = str(host.get(key) or "")
        if mode.startswith("container:"):
            target = _other(engine, mode.partition(":")[2])
            if target.state not in ("running", "paused") or target.pid <= 0:
                raise _not_running(kind, target)
            if kind == "ipc" and not engine.document(target).get("ShmPath"):
                raise _non_shareable(target)
            paths[kind] = f"/proc/{target.pid}/ns/{kind}"
    joins.set_namespace_paths(os.path.join(engine.layout.bundle(record_.id), "config.json"), paths)


def _not_linkable(link: Link, parent: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"Cannot link to a non running container: /{link.child_name} AS /{parent}/{link.alias}"
    )


def remove_link(engine: Engine, name: str) -> None:
    """Take the legacy link ``/parent/alias`` away from its parent (docker's ``rm --link``): its
    ``HostConfig.Links`` entry, its ``/etc/hosts`` line, and its variables from the next start."""
    full = "/" + name.strip("/")
    parent_name, _, alias = full.rpartition("/")
    if not parent_name:
        raise Conflict("Conflict, cannot remove the default link name of the container")
    try:
        parent = engine.containers.get(parent_name.lstrip("/"))
    except NotFound:
        raise NotFound(f"No such container: {name}") from None
    with engine.lock(parent.id).held():
        doc = engine.document(parent)
        links = [link for link in doc.get("PalletLinks") or () if link.get("Alias") == alias]
        if not links:
            raise NotFound(f"No such container: {name}")
        _drop_link(engine, parent, doc, links[0])


def _drop_link(engine: Engine, parent: ContainerRecord, doc: dict[str, Any], link: Mapping[str, Any]) -> None:
    """Take ``link`` out of ``parent``'s document (written back), config.json and /etc/hosts; the
    caller holds the parent's lock."""
    from pallet.engine.containers.records import write_document

    doc["PalletLinks"] = [other for other in doc.get("PalletLinks") or () if other != link]
    entry = f"/{link['ChildName']}:/{parent.name}/{link['Alias']}"
    host = dict(doc.get("HostConfig") or {})
    host["Links"] = [e for e in host.get("Links") or () if e != entry] or None
    doc["HostConfig"] = host
    _forget_env(os.path.join(engine.layout.bundle(parent.id), "config.json"), link.get("Env") or ())
    hosts = str(doc.get("HostsPath") or "")
    if link.get("Hosts") and hosts:
        _drop_line(hosts, str(link["Hosts"]))
    write_document(engine.layout.document(parent.id), doc)


def _forget_env(config_path: str, env: Sequence[str]) -> None:
    """Remove a link's variables from config.json (they go with the next start)."""
    from pallet.engine.containers.records import dumps_compact
    from pallet.oci.jsonfast import loads

    if not env:
        return
    with open(config_path) as f:
        config = loads(f.read())
    assert isinstance(config, dict)
    gone = set(env)
    process = config.get("process") or {}
    process["env"] = [e for e in process.get("env") or () if e not in gone]
    with open(config_path, "w") as f:
        f.write(dumps_compact(config))


def _drop_line(path: str, line: str) -> None:
    try:
        with open(path) as f:
            lines = f.read().splitlines(keepends=True)
    except FileNotFoundError:
        return
    kept = [existing for existing in lines if existing.rstrip("\n") != line]
    with open(path, "w") as f:  # rewritten in place: the running container has it bind-mounted
        f.write("".join(kept))


def release(engine: Engine, container_id: str) -> None:
    """Unmount a shareable container's /dev/shm tmpfs, before its directory goes. Idempotent."""
    from pallet.image.snapshots import unmount

    path = shm_dir(engine, container_id)
    if os.path.isdir(path):
        unmount(path)
