"""The OCI image spec and Docker's v2 schema2 as typed records: descriptors, platforms,
manifests, indexes (manifest lists) and image configs.

Each record reads and writes the exact JSON key spellings of its format
(``mediaType``, ``os.version``, ``ExposedPorts``, ``diff_ids``) via
``from_json``/``to_json``. Bad input raises ``SpecError`` carrying the JSON path
of the offending field (``layers[1].digest: ...``). Keys a record does not model
are kept in ``extra`` and written back, and so is an explicit ``null`` (Docker
writes ``"Cmd": null``), so a parsed document serialises back to the same JSON
value. Bytes are not promised to be identical (key order, spacing): the content
store always keeps the original bytes, so digests never depend on re-encoding.
"""

from __future__ import annotations

import types

from pallet.errors import InvalidArgument, SpecError, Unsupported
from pallet.oci import jsonfast, mediatypes
from pallet.oci.digest import Digest
from pallet.oci.record import EMPTY, Record

__all__ = [
    "ContainerConfig",
    "Descriptor",
    "Healthcheck",
    "History",
    "ImageConfig",
    "Index",
    "Manifest",
    "Platform",
    "RootFS",
    "chain_ids",
    "dumps",
    "loads",
    "parse_manifest",
]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Self

    JSON = dict[str, Any]

_NO_EXTRA: Mapping[str, Any] = EMPTY


# --- reading helpers: each one names the JSON path it complains about -------------------------


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _object(value: object, path: str) -> JSON:
    if not isinstance(value, dict):
        raise SpecError(path, f"expected a JSON object, got {_kind(value)}")
    return value


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _str(doc: JSON, key: str, path: str, *, required: bool = False) -> str | None:
    value = doc.get(key)
    if value is None:
        if required:
            raise SpecError(_at(path, key), "required field is missing")
        return None
    if not isinstance(value, str):
        raise SpecError(_at(path, key), f"expected a string, got {_kind(value)}")
    return value


def _required_str(doc: JSON, key: str, path: str) -> str:
    value = _str(doc, key, path, required=True)
    assert value is not None  # _str raised otherwise
    return value


def _int(doc: JSON, key: str, path: str, *, required: bool = False) -> int | None:
    value = doc.get(key)
    if value is None:
        if required:
            raise SpecError(_at(path, key), "required field is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(_at(path, key), f"expected an integer, got {_kind(value)}")
    return value


def _bool(doc: JSON, key: str, path: str) -> bool | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise SpecError(_at(path, key), f"expected true or false, got {_kind(value)}")
    return value


def _strs(doc: JSON, key: str, path: str) -> tuple[str, ...] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise SpecError(_at(path, key), f"expected an array of strings, got {_kind(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise SpecError(f"{_at(path, key)}[{i}]", f"expected a string, got {_kind(item)}")
    return tuple(value)


def _str_map(doc: JSON, key: str, path: str) -> Mapping[str, str]:
    value = doc.get(key)
    if value is None:
        return EMPTY
    obj = _object(value, _at(path, key))
    for k, v in obj.items():
        if not isinstance(v, str):
            raise SpecError(f"{_at(path, key)}.{k}", f"expected a string, got {_kind(v)}")
    return types.MappingProxyType(dict(obj))


def _key_set(doc: JSON, key: str, path: str) -> tuple[str, ...] | None:
    """A Go ``map[string]struct{}`` such as ExposedPorts or Volumes: only the keys matter."""
    value = doc.get(key)
    if value is None:
        return None
    return tuple(_object(value, _at(path, key)))


def _digest(doc: JSON, key: str, path: str) -> Digest:
    text = _required_str(doc, key, path)
    try:
        return Digest.parse(text)
    except InvalidArgument as e:
        raise SpecError(_at(path, key), str(e)) from None


def _extra(doc: JSON, known: frozenset[str]) -> Mapping[str, Any]:
    """Keys the record does not model, and known keys set to an explicit null (kept to write back)."""
    extra = {k: v for k, v in doc.items() if k not in known or v is None}
    return types.MappingProxyType(extra) if extra else _NO_EXTRA


def _put(out: JSON, key: str, value: object) -> None:
    if value is not None:
        out[key] = value


def _list(items: Any, path: str) -> list[Any]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise SpecError(path, f"expected an array, got {_kind(items)}")
    return items


# --- descriptors --------------------------------------------------------------------------------


class Platform(Record):
    """The platform an image runs on (``platform`` of an index entry, or the config's own fields)."""

    architecture: str
    os: str
    os_version: str | None = None
    os_features: tuple[str, ...] | None = None
    variant: str | None = None
    features: tuple[str, ...] | None = None

    @classmethod
    def from_json(cls, value: object, path: str = "platform") -> Self:
        doc = _object(value, path)
        arch = _required_str(doc, "architecture", path)
        os_ = _required_str(doc, "os", path)
        return cls(
            architecture=arch,
            os=os_,
            os_version=_str(doc, "os.version", path),
            os_features=_strs(doc, "os.features", path),
            variant=_str(doc, "variant", path),
            features=_strs(doc, "features", path),
        )

    def to_json(self) -> JSON:
        out: JSON = {"architecture": self.architecture, "os": self.os}
        _put(out, "os.version", self.os_version)
        _put(out, "os.features", list(self.os_features) if self.os_features is not None else None)
        _put(out, "variant", self.variant)
        _put(out, "features", list(self.features) if self.features is not None else None)
        return out

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


class Descriptor(Record):
    """A typed pointer to content: media type, digest and size (and optional extras)."""

    media_type: str
    digest: Digest
    size: int
    urls: tuple[str, ...] | None = None
    annotations: Mapping[str, str] = EMPTY
    platform: Platform | None = None
    artifact_type: str | None = None
    #: base64 of the content itself, when embedded
    data: str | None = None

    @classmethod
    def from_json(cls, value: object, path: str = "") -> Self:
        doc = _object(value, path)
        media_type = _required_str(doc, "mediaType", path)
        size = _int(doc, "size", path, required=True)
        assert size is not None
        if size < 0:
            raise SpecError(_at(path, "size"), f"must not be negative, got {size}")
        platform = doc.get("platform")
        return cls(
            media_type=media_type,
            digest=_digest(doc, "digest", path),
            size=size,
            urls=_strs(doc, "urls", path),
            annotations=_str_map(doc, "annotations", path),
            platform=Platform.from_json(platform, _at(path, "platform")) if platform is not None else None,
            artifact_type=_str(doc, "artifactType", path),
            data=_str(doc, "data", path),
        )

    def to_json(self) -> JSON:
        out: JSON = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        _put(out, "urls", list(self.urls) if self.urls is not None else None)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        _put(out, "platform", self.platform.to_json() if self.platform else None)
        _put(out, "artifactType", self.artifact_type)
        _put(out, "data", self.data)
        return out


def _schema_version(doc: JSON, path: str) -> int:
    version = _int(doc, "schemaVersion", path, required=True)
    if version == 1:
        raise Unsupported(
            "docker schema1 manifests are not supported; push or pull the image with a current tool"
        )
    if version != 2:
        raise SpecError(_at(path, "schemaVersion"), f"unsupported schema version {version}; expected 2")
    return version


def _check_media_type(found: str | None, allowed: frozenset[str], path: str) -> None:
    if found is not None and found not in allowed:
        raise SpecError(
            _at(path, "mediaType"), f'unexpected media type "{found}"; expected one of {sorted(allowed)}'
        )


class Manifest(Record):
    """An image manifest (OCI ``image.manifest.v1`` or Docker ``manifest.v2``)."""

    schema_version: int = 2
    media_type: str | None = None
    config: Descriptor
    layers: tuple[Descriptor, ...] = ()
    annotations: Mapping[str, str] = EMPTY
    subject: Descriptor | None = None
    artifact_type: str | None = None
    extra: Mapping[str, Any] = _NO_EXTRA

    _KNOWN = frozenset(
        {"schemaVersion", "mediaType", "config", "layers", "annotations", "subject", "artifactType"}
    )

    @classmethod
    def from_json(cls, value: object, path: str = "") -> Self:
        doc = _object(value, path)
        version = _schema_version(doc, path)
        media_type = _str(doc, "mediaType", path)
        _check_media_type(media_type, frozenset({mediatypes.OCI_MANIFEST, mediatypes.DOCKER_MANIFEST}), path)
        if "manifests" in doc and "layers" not in doc:
            raise SpecError(_at(path, "manifests"), "this is an index (manifest list), not an image manifest")
        if "config" not in doc:
            raise SpecError(_at(path, "config"), "required field is missing")
        subject = doc.get("subject")
        return cls(
            schema_version=version,
            media_type=media_type,
            config=Descriptor.from_json(doc["config"], _at(path, "config")),
            layers=tuple(
                Descriptor.from_json(item, f"{_at(path, 'layers')}[{i}]")
                for i, item in enumerate(_list(doc.get("layers"), _at(path, "layers")))
            ),
            annotations=_str_map(doc, "annotations", path),
            subject=Descriptor.from_json(subject, _at(path, "subject")) if subject is not None else None,
            artifact_type=_str(doc, "artifactType", path),
            extra=_extra(doc, cls._KNOWN),
        )

    def to_json(self) -> JSON:
        out: JSON = dict(self.extra)
        out["schemaVersion"] = self.schema_version
        _put(out, "mediaType", self.media_type)
        _put(out, "artifactType", self.artifact_type)
        out["config"] = self.config.to_json()
        out["layers"] = [layer.to_json() for layer in self.layers]
        _put(out, "subject", self.subject.to_json() if self.subject else None)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


class Index(Record):
    """A list of manifests (OCI ``image.index.v1`` or Docker ``manifest.list.v2``)."""

    schema_version: int = 2
    media_type: str | None = None
    manifests: tuple[Descriptor, ...] = ()
    annotations: Mapping[str, str] = EMPTY
    subject: Descriptor | None = None
    artifact_type: str | None = None
    extra: Mapping[str, Any] = _NO_EXTRA

    _KNOWN = frozenset({"schemaVersion", "mediaType", "manifests", "annotations", "subject", "artifactType"})

    @classmethod
    def from_json(cls, value: object, path: str = "") -> Self:
        doc = _object(value, path)
        version = _schema_version(doc, path)
        media_type = _str(doc, "mediaType", path)
        _check_media_type(
            media_type, frozenset({mediatypes.OCI_INDEX, mediatypes.DOCKER_MANIFEST_LIST}), path
        )
        if "manifests" not in doc:
            raise SpecError(_at(path, "manifests"), "required field is missing")
        subject = doc.get("subject")
        return cls(
            schema_version=version,
            media_type=media_type,
            manifests=tuple(
                Descriptor.from_json(item, f"{_at(path, 'manifests')}[{i}]")
                for i, item in enumerate(_list(doc.get("manifests"), _at(path, "manifests")))
            ),
            annotations=_str_map(doc, "annotations", path),
            subject=Descriptor.from_json(subject, _at(path, "subject")) if subject is not None else None,
            artifact_type=_str(doc, "artifactType", path),
            extra=_extra(doc, cls._KNOWN),
        )

    def to_json(self) -> JSON:
        out: JSON = dict(self.extra)
        out["schemaVersion"] = self.schema_version
        _put(out, "mediaType", self.media_type)
        _put(out, "artifactType", self.artifact_type)
        out["manifests"] = [m.to_json() for m in self.manifests]
        _put(out, "subject", self.subject.to_json() if self.subject else None)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


# --- image config -------------------------------------------------------------------------------


class Healthcheck(Record):
    """Docker's ``Healthcheck``; durations are nanoseconds, as Docker writes them."""

    test: tuple[str, ...] | None = None
    interval: int | None = None
    timeout: int | None = None
    start_period: int | None = None
    start_interval: int | None = None
    retries: int | None = None

    @classmethod
    def from_json(cls, value: object, path: str) -> Self:
        doc = _object(value, path)
        return cls(
            test=_strs(doc, "Test", path),
            interval=_int(doc, "Interval", path),
            timeout=_int(doc, "Timeout", path),
            start_period=_int(doc, "StartPeriod", path),
            start_interval=_int(doc, "StartInterval", path),
            retries=_int(doc, "Retries", path),
        )

    def to_json(self) -> JSON:
        out: JSON = {}
        _put(out, "Test", list(self.test) if self.test is not None else None)
        _put(out, "Interval", self.interval)
        _put(out, "Timeout", self.timeout)
        _put(out, "StartPeriod", self.start_period)
        _put(out, "StartInterval", self.start_interval)
        _put(out, "Retries", self.retries)
        return out


class ContainerConfig(Record):
    """The ``config`` object of an image config: how to run a container from the image."""

    user: str | None = None
    exposed_ports: tuple[str, ...] | None = None
    env: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    volumes: tuple[str, ...] | None = None
    working_dir: str | None = None
    labels: Mapping[str, str] = EMPTY
    stop_signal: str | None = None
    args_escaped: bool | None = None
    healthcheck: Healthcheck | None = None
    on_build: tuple[str, ...] | None = None
    shell: tuple[str, ...] | None = None
    stop_timeout: int | None = None
    #: keys not modelled here (Docker's Hostname, AttachStdin, ...), and explicit nulls
    extra: Mapping[str, Any] = _NO_EXTRA

    _KNOWN = frozenset(
        {
            "User",
            "ExposedPorts",
            "Env",
            "Entrypoint",
            "Cmd",
            "Volumes",
            "WorkingDir",
            "Labels",
            "StopSignal",
            "ArgsEscaped",
            "Healthcheck",
            "OnBuild",
            "Shell",
            "StopTimeout",
        }
    )

    @classmethod
    def from_json(cls, value: object, path: str = "config") -> Self:
        doc = _object(value, path)
        health = doc.get("Healthcheck")
        return cls(
            user=_str(doc, "User", path),
            exposed_ports=_key_set(doc, "ExposedPorts", path),
            env=_strs(doc, "Env", path),
            entrypoint=_strs(doc, "Entrypoint", path),
            cmd=_strs(doc, "Cmd", path),
            volumes=_key_set(doc, "Volumes", path),
            working_dir=_str(doc, "WorkingDir", path),
            labels=_str_map(doc, "Labels", path),
            stop_signal=_str(doc, "StopSignal", path),
            args_escaped=_bool(doc, "ArgsEscaped", path),
            healthcheck=Healthcheck.from_json(health, _at(path, "Healthcheck"))
            if health is not None
            else None,
            on_build=_strs(doc, "OnBuild", path),
            shell=_strs(doc, "Shell", path),
            stop_timeout=_int(doc, "StopTimeout", path),
            extra=_extra(doc, cls._KNOWN),
        )

    def to_json(self) -> JSON:
        out: JSON = dict(self.extra)

        def seq(v: tuple[str, ...] | None) -> list[str] | None:
            return list(v) if v is not None else None

        def key_set(v: tuple[str, ...] | None) -> dict[str, object] | None:
            return {k: {} for k in v} if v is not None else None

        _put(out, "User", self.user)
        _put(out, "ExposedPorts", key_set(self.exposed_ports))
        _put(out, "Env", seq(self.env))
        _put(out, "Entrypoint", seq(self.entrypoint))
        _put(out, "Cmd", seq(self.cmd))
        _put(out, "Volumes", key_set(self.volumes))
        _put(out, "WorkingDir", self.working_dir)
        if self.labels:
            out["Labels"] = dict(self.labels)
        _put(out, "StopSignal", self.stop_signal)
        _put(out, "ArgsEscaped", self.args_escaped)
        _put(out, "Healthcheck", self.healthcheck.to_json() if self.healthcheck else None)
        _put(out, "OnBuild", seq(self.on_build))
        _put(out, "Shell", seq(self.shell))
        _put(out, "StopTimeout", self.stop_timeout)
        return out


class RootFS(Record):
    """``rootfs``: the uncompressed digests (diff ids) of the layers, bottom first."""

    type: str = "layers"
    diff_ids: tuple[Digest, ...] = ()

    @classmethod
    def from_json(cls, value: object, path: str = "rootfs") -> Self:
        doc = _object(value, path)
        kind = _str(doc, "type", path, required=True)
        if kind != "layers":
            raise SpecError(_at(path, "type"), f'must be "layers", got "{kind}"')
        ids = []
        for i, item in enumerate(_list(doc.get("diff_ids"), _at(path, "diff_ids"))):
            item_path = f"{_at(path, 'diff_ids')}[{i}]"
            if not isinstance(item, str):
                raise SpecError(item_path, f"expected a digest string, got {_kind(item)}")
            try:
                ids.append(Digest.parse(item))
            except InvalidArgument as e:
                raise SpecError(item_path, str(e)) from None
        return cls(type=kind, diff_ids=tuple(ids))

    def to_json(self) -> JSON:
        return {"type": self.type, "diff_ids": [str(d) for d in self.diff_ids]}


class History(Record):
    """One ``history`` entry: how a layer (or an empty, metadata-only step) was made."""

    created: str | None = None
    created_by: str | None = None
    author: str | None = None
    comment: str | None = None
    empty_layer: bool | None = None

    @classmethod
    def from_json(cls, value: object, path: str) -> Self:
        doc = _object(value, path)
        return cls(
            created=_str(doc, "created", path),
            created_by=_str(doc, "created_by", path),
            author=_str(doc, "author", path),
            comment=_str(doc, "comment", path),
            empty_layer=_bool(doc, "empty_layer", path),
        )

    def to_json(self) -> JSON:
        out: JSON = {}
        _put(out, "created", self.created)
        _put(out, "created_by", self.created_by)
        _put(out, "author", self.author)
        _put(out, "comment", self.comment)
        _put(out, "empty_layer", self.empty_layer)
        return out


class ImageConfig(Record):
    """An image config (OCI ``image.config.v1`` or Docker ``container.image.v1``); its digest is the image id."""

    architecture: str
    os: str
    os_version: str | None = None
    os_features: tuple[str, ...] | None = None
    variant: str | None = None
    created: str | None = None
    author: str | None = None
    config: ContainerConfig | None = None
    rootfs: RootFS = RootFS()
    history: tuple[History, ...] = ()
    #: keys not modelled here (Docker's container_config, docker_version, ...), and explicit nulls
    extra: Mapping[str, Any] = _NO_EXTRA

    _KNOWN = frozenset(
        {
            "architecture",
            "os",
            "os.version",
            "os.features",
            "variant",
            "created",
            "author",
            "config",
            "rootfs",
            "history",
        }
    )

    @classmethod
    def from_json(cls, value: object, path: str = "") -> Self:
        doc = _object(value, path)
        arch = _required_str(doc, "architecture", path)
        os_ = _required_str(doc, "os", path)
        if "rootfs" not in doc:
            raise SpecError(_at(path, "rootfs"), "required field is missing")
        config = doc.get("config")
        return cls(
            architecture=arch,
            os=os_,
            os_version=_str(doc, "os.version", path),
            os_features=_strs(doc, "os.features", path),
            variant=_str(doc, "variant", path),
            created=_str(doc, "created", path),
            author=_str(doc, "author", path),
            config=ContainerConfig.from_json(config, _at(path, "config")) if config is not None else None,
            rootfs=RootFS.from_json(doc["rootfs"], _at(path, "rootfs")),
            history=tuple(
                History.from_json(item, f"{_at(path, 'history')}[{i}]")
                for i, item in enumerate(_list(doc.get("history"), _at(path, "history")))
            ),
            extra=_extra(doc, cls._KNOWN),
        )

    def to_json(self) -> JSON:
        out: JSON = dict(self.extra)
        _put(out, "created", self.created)
        _put(out, "author", self.author)
        out["architecture"] = self.architecture
        out["os"] = self.os
        _put(out, "os.version", self.os_version)
        _put(out, "os.features", list(self.os_features) if self.os_features is not None else None)
        _put(out, "variant", self.variant)
        _put(out, "config", self.config.to_json() if self.config else None)
        out["rootfs"] = self.rootfs.to_json()
        if self.history:
            out["history"] = [h.to_json() for h in self.history]
        return out

    @property
    def platform(self) -> Platform:
        return Platform(
            architecture=self.architecture,
            os=self.os,
            os_version=self.os_version,
            os_features=self.os_features,
            variant=self.variant,
        )


# --- bytes --------------------------------------------------------------------------------------


def loads(data: bytes | str, what: str = "document") -> Any:
    """Parse JSON, turning a syntax error into ``SpecError`` naming ``what`` was being read."""
    try:
        # jsonfast: the same values as json.loads without importing json (and re) on `pallet run`
        return jsonfast.loads(data)
    except InvalidArgument:
        pass
    # Bad input only: let json say what is wrong, in the words this error has always had.
    import json

    try:
        return json.loads(data)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise SpecError("", f"{what} is not valid JSON: {e}") from None


def dumps(doc: JSON) -> bytes:
    """Compact JSON bytes of a document (what pallet writes for manifests and configs it makes)."""
    import json  # only when pallet makes an image (import, commit, build), never on `pallet run`

    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def parse_manifest(data: bytes, media_type: str | None = None) -> Manifest | Index:
    """Parse manifest or index bytes; ``media_type`` (from the descriptor or HTTP header) decides when given.

    Without it the document's own ``mediaType``, then its shape (``manifests``
    vs ``layers``), tells which it is.
    """
    doc = _object(loads(data, "manifest"), "")
    if media_type in (mediatypes.DOCKER_MANIFEST_V1, mediatypes.DOCKER_MANIFEST_V1_SIGNED):
        raise Unsupported(
            "docker schema1 manifests are not supported; push or pull the image with a current tool"
        )
    kind = media_type or doc.get("mediaType")
    if isinstance(kind, str) and mediatypes.is_index(kind):
        return Index.from_json(doc)
    if isinstance(kind, str) and mediatypes.is_manifest(kind):
        found = doc.get("mediaType")
        if media_type and found is not None and found != media_type:
            raise SpecError("mediaType", f'document says "{found}" but it was served as "{media_type}"')
        return Manifest.from_json(doc)
    if kind is not None and media_type is not None:
        raise Unsupported(f'unsupported manifest media type "{kind}"')
    if "manifests" in doc:
        return Index.from_json(doc)
    return Manifest.from_json(doc)


def chain_ids(diff_ids: tuple[Digest, ...] | list[Digest]) -> tuple[Digest, ...]:
    """The chain id of each layer: the first is its diff id, then ``sha256(parent + " " + diff_id)``.

    A chain id names a layer *together with everything under it*, which is
    what an unpacked snapshot is.
    """
    out: list[Digest] = []
    for diff_id in diff_ids:
        out.append(diff_id if not out else Digest.of_bytes(f"{out[-1]} {diff_id}".encode()))
    return tuple(out)
