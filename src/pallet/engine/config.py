"""The root's configuration file, ``<root>/config.toml``: what docker's ``daemon.json`` is to dockerd.

One reader for every part of the engine that is configured per root (DESIGN.md,
"Configuration and events"). Absent file = defaults. The keys are docker's
``daemon.json`` keys, in TOML::

    default-runtime = "runsc"
    userns-remap = "default"            # or "user", "user:group", "" (off)
    insecure-registries = ["127.0.0.1:5000"]

    [runtimes.runsc]
    path = "/usr/bin/runsc"
    runtimeArgs = ["--platform=systrap"]

    [[default-address-pools]]
    base = "172.80.0.0/16"
    size = 24

A value of the wrong type is an ``InvalidArgument`` naming the file and the
key; unknown keys are ignored (a newer pallet's file stays readable by an
older one). Command-line flags override what is read here.

``pallet run`` reads this file: ``tomllib`` (which imports ``re``, ``typing``
and ``datetime``) parses it only when it changed, and its document is kept
beside it as JSON (``.config.toml.json``, holding the TOML text it came from,
so a cache hit is exact); the records are ``Record`` (no ``dataclasses``).
"""

from __future__ import annotations

import os

from pallet.errors import InvalidArgument
from pallet.oci.record import MappingProxy, Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["AddressPool", "EngineConfig", "RuntimeEntry", "config_path", "load_config", "parse_config"]

CONFIG_FILE = "config.toml"
_CACHE_FILE = ".config.toml.json"


class RuntimeEntry(Record):
    """An OCI runtime registered by name: the program and the global arguments put before each verb."""

    path: str
    args: tuple[str, ...] = ()


class AddressPool(Record):
    """One of docker's ``default-address-pools``: networks of prefix ``size`` are cut from ``base``."""

    base: str
    size: int


class EngineConfig(Record):
    runtimes: Mapping[str, RuntimeEntry] = MappingProxy({})
    #: ``""``: pallet's own default (``pallet-runtime``)
    default_runtime: str = ""
    #: docker's ``userns-remap``: ``""`` off, ``"default"`` the ``pallet`` user's ranges, ``user[:group]``
    userns_remap: str = ""
    address_pools: tuple[AddressPool, ...] = ()
    insecure_registries: tuple[str, ...] = ()
    #: the file it was read from ("" when there was none)
    source: str = ""


def config_path(root: str) -> str:
    return os.path.join(root, CONFIG_FILE)


def load_config(root: str) -> EngineConfig:
    """``<root>/config.toml`` read and checked; defaults when the file does not exist."""
    path = config_path(root)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return EngineConfig()
    except OSError as e:
        raise InvalidArgument(f"read {path}: {(e.strerror or str(e)).lower()}") from None
    return parse_config(raw, path=path)


def _cached_document(raw: bytes, cache: str) -> dict[str, object] | None:
    from pallet.oci.jsonfast import loads

    try:
        with open(cache, "rb") as f:
            kept = loads(f.read())
    except (OSError, InvalidArgument):
        return None
    if not isinstance(kept, dict) or kept.get("toml") != raw.decode("utf-8", "replace"):
        return None
    doc = kept.get("document")
    return doc if isinstance(doc, dict) else None


def _keep_document(raw: bytes, doc: dict[str, object], cache: str) -> None:
    from pallet.linux.atomicfile import write_atomic
    from pallet.oci.jsonfast import dumps

    try:
        text = dumps({"toml": raw.decode("utf-8"), "document": doc})
        write_atomic(cache, text.encode(), mode=0o600, durable=False)
    except (OSError, ValueError, TypeError, InvalidArgument):
        pass  # a value JSON cannot hold (a TOML date), or a read-only root: parse each time


def parse_config(raw: bytes, *, path: str) -> EngineConfig:
    cache = os.path.join(os.path.dirname(path), _CACHE_FILE)
    doc = _cached_document(raw, cache)
    if doc is None:
        import tomllib  # only when the file changed: it imports re, typing and datetime

        try:
            doc = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise InvalidArgument(f"{path}: not valid TOML: {e}") from None
        config = _config(doc, path)
        _check_pool_networks(config.address_pools, path)
        _keep_document(raw, doc, cache)  # only a document that passed every check is kept
        return config
    return _config(doc, path)


def _config(doc: dict[str, object], path: str) -> EngineConfig:
    return EngineConfig(
        runtimes=_runtimes(doc.get("runtimes", {}), path),
        default_runtime=_string(doc, "default-runtime", path),
        userns_remap=_string(doc, "userns-remap", path),
        address_pools=_pools(doc.get("default-address-pools", []), path),
        insecure_registries=_strings(doc, "insecure-registries", path),
        source=path,
    )


def _check_pool_networks(pools: tuple[AddressPool, ...], path: str) -> None:
    """Each pool a network with a size inside it (``ipaddress`` imports ``re``: a changed file only)."""
    if not pools:
        return
    import ipaddress

    for pool in pools:
        try:
            network = ipaddress.ip_network(pool.base)
        except ValueError:
            raise InvalidArgument(
                f'{path}: address pool base "{pool.base}" is not a network (CIDR)'
            ) from None
        if not network.prefixlen <= pool.size <= network.max_prefixlen:
            raise InvalidArgument(
                f"{path}: address pool {pool.base}: size {pool.size} must be between {network.prefixlen} "
                f"and {network.max_prefixlen}"
            )


def _string(doc: dict[str, object], key: str, path: str) -> str:
    value = doc.get(key, "")
    if not isinstance(value, str):
        raise InvalidArgument(f'{path}: "{key}" must be a string')
    return value


def _strings(doc: dict[str, object], key: str, path: str) -> tuple[str, ...]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f'{path}: "{key}" must be a list of strings')
    return tuple(value)


def _runtimes(value: object, path: str) -> Mapping[str, RuntimeEntry]:
    if not isinstance(value, dict):
        raise InvalidArgument(f'{path}: "runtimes" must be a table of name -> {{path, runtimeArgs}}')
    entries = {}
    for name, entry in value.items():
        where = f'{path}: runtime "{name}"'
        if not isinstance(entry, dict):
            raise InvalidArgument(f"{where} must be a table with a path")
        program = entry.get("path")
        if not isinstance(program, str) or not program:
            raise InvalidArgument(f'{where} needs a "path"')
        args = entry.get("runtimeArgs", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise InvalidArgument(f'{where}: "runtimeArgs" must be a list of strings')
        entries[str(name)] = RuntimeEntry(path=program, args=tuple(args))
    return MappingProxy(entries)


def _pools(value: object, path: str) -> tuple[AddressPool, ...]:
    """The pools' shape (their networks: ``_check_pool_networks``)."""
    if not isinstance(value, list):
        raise InvalidArgument(f'{path}: "default-address-pools" must be a list of {{base, size}} tables')
    pools = []
    for item in value:
        base = item.get("base") if isinstance(item, dict) else None
        size = item.get("size") if isinstance(item, dict) else None
        if not isinstance(base, str) or not isinstance(size, int) or isinstance(size, bool):
            raise InvalidArgument(f'{path}: each of "default-address-pools" needs a base (CIDR) and a size')
        pools.append(AddressPool(base=base, size=size))
    return tuple(pools)
