"""Image archives: ``docker save`` tarballs and OCI image layouts, written and read as streams.

Reading (``load``) accepts, in one pass over the tar stream (a file or stdin,
plain, gzip or zstd):

- docker-archive, both layouts ``docker save`` has written: the classic one
  (``<id>/layer.tar``, ``<config-hex>.json``, ``manifest.json``,
  ``repositories``; skopeo adds ``<hex>.tar`` layers and symlinks) and the
  docker 25+ one (``blobs/sha256/<hex>`` plus ``manifest.json`` and
  ``index.json``);
- OCI image layout archives (``oci-layout``, ``index.json``,
  ``blobs/sha256/...``), naming images by the ``io.containerd.image.name``
  annotation, or by ``org.opencontainers.image.ref.name`` when that holds a full
  reference.

Every regular file except the small metadata documents goes straight into the
content store as it streams past (``ContentStore.ingest``: a blob is complete
and verified or absent), so no layer is ever held in memory, and members may
come in any order (``manifest.json`` is often last). Images are added only
once the whole archive has been read and checked, each in one transaction;
the load holds a store lease throughout, so a concurrent gc cannot take blobs
that are not referenced yet. A load killed at any point leaves the store as it
was, plus unreferenced blobs that gc removes and temp files the next command
removes.

Writing (``save``) produces the docker 25+ layout, which docker, podman, skopeo
(``docker-archive:`` and ``oci-archive:``) and containerd all read: layers as
uncompressed tars named by their diff id (decompressed through an anonymous
temp file when stored compressed, since a tar member's size comes first),
an OCI manifest per image, ``index.json`` with name annotations,
``manifest.json`` and ``repositories``.
"""

from __future__ import annotations

import json
import posixpath

from pallet.errors import InvalidArgument, NotFound, Unsupported
from pallet.image.compression import NONE, LayerReader
from pallet.image.platforms import host_platform
from pallet.image.tarstream import DIR, LNK, REG, SYM, TarEntry, TarReader, TarWriter
from pallet.oci import mediatypes
from pallet.oci.digest import Digest
from pallet.oci.image_spec import (
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    dumps,
    loads,
    parse_manifest,
)
from pallet.oci.record import Record
from pallet.oci.reference import DEFAULT_DOMAIN, Reference, parse

__all__ = ["LoadedImage", "load", "save"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from pallet.image.store import ImageRecord, ImageStore
    from pallet.image.tarstream import Readable, Writable

    #: called with (what, digest, size) as each blob is read or written: what is "blob" or "layer"
    Progress = Callable[[str, Digest, int], None]

#: members read into memory (small JSON documents); everything else is ingested as a blob
_DOCUMENTS = frozenset({"manifest.json", "repositories", "index.json", "oci-layout"})
_DOCUMENT_MAX = 16 << 20
_ANNOTATION_NAME = "io.containerd.image.name"
_ANNOTATION_REF = "org.opencontainers.image.ref.name"
_SNIFF = 8


class LoadedImage(Record):
    """One image a load added: its record and the names it was given (maybe none)."""

    image: ImageRecord
    names: tuple[Reference, ...] = ()


# --- reading --------------------------------------------------------------------------------------


class _Prefixed:
    """A stream with some bytes already read from it put back in front."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self._head = head
        self._rest = rest

    def read(self, n: int = -1) -> bytes:
        if self._head:
            data = self._head if n < 0 else self._head[:n]
            self._head = self._head[len(data) :]
            return data
        return self._rest.read(n)


def _plain(stream: Readable) -> Readable:
    """The archive's tar bytes: gzip and zstd archives (``docker save | gzip``) are decompressed."""
    head = b""
    while len(head) < _SNIFF:
        data = stream.read(_SNIFF - len(head))
        if not data:
            break
        head += data
    if not head:
        raise InvalidArgument(
            "the archive is empty; give a tar file made by `pallet save`, `docker save` or skopeo"
        )
    if head.startswith((b"BZh", b"\xfd7zXZ")):
        raise Unsupported("bzip2 and xz archives are not supported; decompress the archive first")
    source = _Prefixed(head, stream)
    if head.startswith((b"\x1f\x8b", b"\x28\xb5\x2f\xfd")):
        return LayerReader(source, mediatypes.OCI_LAYER_GZIP)
    return source


def _clean(name: str) -> str:
    path = posixpath.normpath("/" + name).lstrip("/")
    return "" if path == "." else path


class _Scan:
    """What one pass over an archive found: documents, blobs by member path, links."""

    def __init__(self) -> None:
        self.documents: dict[str, bytes] = {}
        self.blobs: dict[str, Descriptor] = {}
        self.links: dict[str, str] = {}

    def blob(self, path: str, what: str) -> Descriptor:
        """The blob stored for member ``path``, following symlinks and hard links."""
        seen: set[str] = set()
        path = _clean(path)
        while path in self.links and path not in seen:
            seen.add(path)
            path = self.links[path]
        found = self.blobs.get(path)
        if found is None:
            raise InvalidArgument(
                f'the archive has no file "{path}" (named as {what}); the archive is incomplete'
            )
        return found

    def document(self, path: str, what: str) -> bytes:
        path = _clean(path)
        if path in self.documents:
            return self.documents[path]
        raise InvalidArgument(f'the archive has no file "{path}" ({what}); the archive is incomplete')


def _scan(store: ImageStore, stream: Readable, progress: Progress | None) -> _Scan:
    scan = _Scan()
    reader = TarReader(_plain(stream))
    for entry in reader:
        name = _clean(entry.name)
        if not name or entry.type == DIR:
            continue
        if entry.type == SYM:
            target = (
                entry.linkname
                if entry.linkname.startswith("/")
                else posixpath.join(posixpath.dirname(name), entry.linkname)
            )
            scan.links[name] = _clean(target)
        elif entry.type == LNK:
            scan.links[name] = _clean(entry.linkname)
        elif entry.type != REG:
            continue
        elif name in _DOCUMENTS or name.endswith(("/json", "/VERSION")):
            if entry.size > _DOCUMENT_MAX:
                raise InvalidArgument(
                    f'"{name}" in the archive is {entry.size} bytes: too large for a metadata file'
                )
            scan.documents[name] = reader.read()
        else:
            expected: str | None = None
            parts = name.split("/")
            if len(parts) == 3 and parts[0] == "blobs":
                try:
                    expected = Digest.parse(f"{parts[1]}:{parts[2]}")
                except InvalidArgument:
                    expected = None
            descriptor = store.content.ingest(reader, expected)  # type: ignore[arg-type]
            scan.blobs[name] = descriptor
            if progress is not None:
                progress("blob", descriptor.digest, descriptor.size)
    if not scan.documents and not scan.blobs:
        raise InvalidArgument("the archive holds no image: no manifest.json and no index.json")
    return scan


def _layer_descriptor(store: ImageStore, blob: Descriptor, diff_id: Digest, what: str) -> Descriptor:
    """An OCI layer descriptor for an archive's layer blob, its diff id checked against the config."""
    with store.content.open(blob.digest) as f:
        reader = LayerReader(f, mediatypes.OCI_LAYER)
        try:
            compression = reader.compression
            if compression == NONE:
                found: str = blob.digest
            else:
                reader.finish()
                found = reader.diff_id
        finally:
            reader.close()
    if found != diff_id:
        raise InvalidArgument(
            f"{what} does not match the image config: it unpacks to {found}, the config says {diff_id}; "
            "the archive is corrupt"
        )
    media_type = {
        "gzip": mediatypes.OCI_LAYER_GZIP,
        "zstd": mediatypes.OCI_LAYER_ZSTD,
    }.get(compression, mediatypes.OCI_LAYER)
    return Descriptor(media_type=media_type, digest=blob.digest, size=blob.size)


def _docker_name(text: str, what: str) -> Reference:
    try:
        ref = parse(text)
    except InvalidArgument as e:
        raise InvalidArgument(f'{what}: bad image name "{text}": {e}') from None
    if ref.digest is not None:
        raise InvalidArgument(f'{what}: "{text}" names a digest; archive image names must be tags')
    return ref


def _load_docker(store: ImageStore, scan: _Scan) -> list[LoadedImage]:
    entries = loads(scan.document("manifest.json", "the docker-archive manifest"), "manifest.json")
    if not isinstance(entries, list):
        raise InvalidArgument("manifest.json of the archive is not a JSON array")
    loaded: list[LoadedImage] = []
    for i, item in enumerate(entries):
        what = f"manifest.json[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("Config"), str):
            raise InvalidArgument(f"{what}: expected an object with Config, RepoTags and Layers")
        config_blob = scan.blob(item["Config"], f"{what}.Config")
        config_bytes = store.content.read_bytes(config_blob.digest)
        config = ImageConfig.from_json(loads(config_bytes, f"{what}.Config"))
        layer_paths = item.get("Layers") or []
        if not isinstance(layer_paths, list) or len(layer_paths) != len(config.rootfs.diff_ids):
            raise InvalidArgument(
                f"{what}: {len(layer_paths) if isinstance(layer_paths, list) else 'no'} layers listed, "
                f"but the image config has {len(config.rootfs.diff_ids)} diff ids"
            )
        layers = tuple(
            _layer_descriptor(store, scan.blob(path, f"{what}.Layers[{n}]"), diff_id, f"layer {path}")
            for n, (path, diff_id) in enumerate(zip(layer_paths, config.rootfs.diff_ids, strict=True))
        )
        manifest = Manifest(
            media_type=mediatypes.OCI_MANIFEST,
            config=Descriptor(
                media_type=mediatypes.OCI_CONFIG, digest=config_blob.digest, size=config_blob.size
            ),
            layers=layers,
        )
        names = tuple(_docker_name(t, f"{what}.RepoTags") for t in item.get("RepoTags") or ())
        loaded.append(
            _add(
                store,
                manifest=dumps(manifest.to_json()),
                config=config_bytes,
                media_type=mediatypes.OCI_MANIFEST,
                index=None,
                names=names,
            )
        )
    return loaded


def _pick(store: ImageStore, index: Index, what: str) -> tuple[Descriptor, bytes]:
    """The manifest of an index for this host's platform (or the only one)."""
    host = host_platform()
    candidates = [m for m in index.manifests if mediatypes.is_manifest(m.media_type)]
    for m in candidates:
        if m.platform is not None and (m.platform.os, m.platform.architecture) == (
            host.os,
            host.architecture,
        ):
            return m, store.content.read_bytes(m.digest)
    if len(candidates) == 1:
        return candidates[0], store.content.read_bytes(candidates[0].digest)
    raise NotFound(f"{what}: no image for {host} in the archive's index")


def _oci_names(descriptor: Descriptor) -> tuple[Reference, ...]:
    for key in (_ANNOTATION_NAME, _ANNOTATION_REF):
        text = descriptor.annotations.get(key)
        if text and ("/" in text or ":" in text or key == _ANNOTATION_NAME):
            try:
                ref = parse(text)
            except InvalidArgument:
                continue
            if ref.digest is None:
                return (ref,)
    return ()


def _load_oci(
    store: ImageStore, scan: _Scan, docker_tags: dict[str, tuple[Reference, ...]]
) -> list[LoadedImage]:
    index = Index.from_json(loads(scan.document("index.json", "the OCI layout index"), "index.json"))
    loaded: list[LoadedImage] = []
    seen: dict[str, int] = {}
    for i, descriptor in enumerate(index.manifests):
        what = f"index.json manifests[{i}]"
        if not store.content.has(descriptor.digest):
            raise InvalidArgument(
                f"{what}: blob {descriptor.digest} is not in the archive; the archive is incomplete"
            )
        data = store.content.read_bytes(descriptor.digest)
        parsed = parse_manifest(data, descriptor.media_type)
        nested: bytes | None = None
        chosen = descriptor
        if isinstance(parsed, Index):
            nested = data
            chosen, data = _pick(store, parsed, what)
            parsed = parse_manifest(data, chosen.media_type)
        assert isinstance(parsed, Manifest)
        config_bytes = store.content.read_bytes(parsed.config.digest)
        names = _oci_names(descriptor) + docker_tags.get(parsed.config.digest, ())
        image = _add(
            store,
            manifest=data,
            config=config_bytes,
            media_type=chosen.media_type,
            index=nested,
            names=tuple(dict.fromkeys(names)),
        )
        if image.image.id in seen:  # the same image listed once per name: report it once
            previous = loaded[seen[image.image.id]]
            loaded[seen[image.image.id]] = previous.replace(
                names=tuple(dict.fromkeys(previous.names + image.names))
            )
        else:
            seen[image.image.id] = len(loaded)
            loaded.append(image)
    return loaded


def _add(
    store: ImageStore,
    *,
    manifest: bytes,
    config: bytes,
    media_type: str,
    index: bytes | None,
    names: tuple[Reference, ...],
) -> LoadedImage:
    record = store.add_image(
        manifest, config, manifest_media_type=media_type, index=index, ref=names[0] if names else None
    )
    for name in names[1:]:
        store.tag(record.id, name)
    return LoadedImage(image=store.get(record.id), names=names)


def load(store: ImageStore, stream: Readable, *, progress: Progress | None = None) -> list[LoadedImage]:
    """Load every image of a docker-archive or OCI layout archive read from ``stream``.

    Returns the images added (or found already present), with their names.
    Raises ``InvalidArgument`` naming the member at fault for a corrupt or
    incomplete archive; nothing is tagged then.
    """
    with store.lease():
        scan = _scan(store, stream, progress)
        docker_tags: dict[str, tuple[Reference, ...]] = {}
        if "index.json" in scan.documents:
            if "manifest.json" in scan.documents:  # docker 25+: tags are in manifest.json as well
                for item in loads(scan.documents["manifest.json"], "manifest.json") or ():
                    if isinstance(item, dict) and isinstance(item.get("Config"), str):
                        config = scan.blob(item["Config"], "manifest.json Config").digest
                        docker_tags[config] = tuple(
                            _docker_name(t, "manifest.json RepoTags") for t in item.get("RepoTags") or ()
                        )
            return _load_oci(store, scan, docker_tags)
        if "manifest.json" in scan.documents:
            return _load_docker(store, scan)
        raise InvalidArgument(
            "the archive holds neither manifest.json (docker-archive) nor index.json (OCI layout); "
            "give a tar file made by `pallet save`, `docker save` or skopeo"
        )


# --- writing --------------------------------------------------------------------------------------


class _Selected(Record):
    record: ImageRecord
    tags: tuple[Reference, ...] = ()


def _select(store: ImageStore, names: Iterable[str]) -> list[_Selected]:
    chosen: dict[str, _Selected] = {}
    for name in names:
        record = store.resolve(name)
        tags: tuple[Reference, ...] = ()
        if not name.startswith("sha256:") and not (
            len(name) >= 4 and all(c in "0123456789abcdef" for c in name)
        ):
            ref = parse(name).canonical()
            if ref.digest is None and ref in record.references:
                tags = (ref,)
        previous = chosen.get(record.id)
        merged = tuple(dict.fromkeys((previous.tags if previous else ()) + tags))
        chosen[record.id] = _Selected(record=record, tags=merged)
    return list(chosen.values())


def _repo_tag(ref: Reference) -> str:
    return ref.familiar_string()


def _full_name(ref: Reference) -> str:
    name = ref.name if ref.domain != DEFAULT_DOMAIN else f"{DEFAULT_DOMAIN}/{ref.path}"
    return f"{name}:{ref.tag}"


class _Member:
    """Writes archive members; mtime 0 so the same images always make the same archive."""

    def __init__(self, out: Writable) -> None:
        self.tar = TarWriter(out)
        self.written: set[str] = set()

    def directory(self, name: str) -> None:
        self.tar.add(TarEntry(name, DIR, mode=0o755))

    def data(self, name: str, data: bytes) -> None:
        import io

        self.tar.add(TarEntry(name, REG, mode=0o644, size=len(data)), io.BytesIO(data))
        self.written.add(name)

    def stream(self, name: str, size: int, source: Readable) -> None:
        self.tar.add(TarEntry(name, REG, mode=0o644, size=size), source)
        self.written.add(name)


def _write_layer(store: ImageStore, member: _Member, blob: Descriptor, diff_id: Digest, scratch: str) -> int:
    """Write one layer as ``blobs/sha256/<diff id hex>``, uncompressed; returns its size."""
    name = f"blobs/sha256/{diff_id.hex}"
    with store.content.open(blob.digest) as f:
        reader = LayerReader(f, blob.media_type)
        try:
            if reader.compression == NONE:
                if blob.digest != diff_id:
                    raise InvalidArgument(f"layer {blob.digest} is not the diff id {diff_id} its image names")
                if name not in member.written:
                    member.stream(name, blob.size, reader)
                return blob.size
            if name in member.written:
                reader.finish()
                return reader.size
            import tempfile

            # a tar member's size precedes its data: spool the uncompressed layer to an anonymous file
            with tempfile.TemporaryFile(dir=scratch) as spool:
                while chunk := reader.read(1 << 20):
                    spool.write(chunk)
                reader.finish()
                if reader.diff_id != diff_id:
                    raise InvalidArgument(
                        f"layer {blob.digest} unpacks to {reader.diff_id}, but its image says {diff_id}; "
                        "the image is corrupt: remove it and load or pull it again"
                    )
                size = spool.tell()
                spool.seek(0)
                member.stream(name, size, spool)
                return size
        finally:
            reader.close()


def save(store: ImageStore, names: Iterable[str], out: Writable, *, progress: Progress | None = None) -> None:
    """Write the images ``names`` (ids or references) to ``out`` as one docker-archive / OCI layout tar.

    Names given as ``repo:tag`` are recorded in the archive; images given by id
    are saved without a name, as docker does.
    """
    selected = _select(store, names)
    if not selected:
        raise InvalidArgument("no image to save; name at least one image")
    member = _Member(out)
    member.data("oci-layout", dumps({"imageLayoutVersion": "1.0.0"}))
    member.directory("blobs/")
    member.directory("blobs/sha256/")
    index_entries: list[dict[str, object]] = []
    docker_entries: list[dict[str, object]] = []
    repositories: dict[str, dict[str, str]] = {}
    for item in selected:
        record = item.record
        config_bytes = store.content.read_bytes(record.id)
        config = ImageConfig.from_json(loads(config_bytes, "image config"))
        layers = store.layers(record.id)
        descriptors = []
        for layer in layers:
            size = _write_layer(store, member, layer.blob, layer.diff_id, str(store.root))
            descriptors.append(Descriptor(media_type=mediatypes.OCI_LAYER, digest=layer.diff_id, size=size))
            if progress is not None:
                progress("layer", layer.diff_id, size)
        config_name = f"blobs/sha256/{record.id.hex}"
        if config_name not in member.written:
            member.data(config_name, config_bytes)
        manifest = Manifest(
            media_type=mediatypes.OCI_MANIFEST,
            config=Descriptor(media_type=mediatypes.OCI_CONFIG, digest=record.id, size=len(config_bytes)),
            layers=tuple(descriptors),
        )
        manifest_bytes = dumps(manifest.to_json())
        manifest_digest = Digest.of_bytes(manifest_bytes)
        if f"blobs/sha256/{manifest_digest.hex}" not in member.written:
            member.data(f"blobs/sha256/{manifest_digest.hex}", manifest_bytes)
        base = {
            "mediaType": mediatypes.OCI_MANIFEST,
            "digest": str(manifest_digest),
            "size": len(manifest_bytes),
        }
        platform = config.platform.to_json()
        for tag in item.tags:
            annotations = {_ANNOTATION_NAME: _full_name(tag), _ANNOTATION_REF: tag.tag or "latest"}
            index_entries.append({**base, "annotations": annotations, "platform": platform})
            repositories.setdefault(tag.familiar_name(), {})[tag.tag or "latest"] = (
                layers[-1].diff_id.hex if layers else record.id.hex
            )
        if not item.tags:
            index_entries.append({**base, "platform": platform})
        docker_entries.append(
            {
                "Config": config_name,
                "RepoTags": [_repo_tag(t) for t in item.tags] or None,
                "Layers": [f"blobs/sha256/{d.digest.hex}" for d in descriptors],
            }
        )
    index = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": index_entries}
    member.data("index.json", json.dumps(index).encode())
    member.data("manifest.json", json.dumps(docker_entries).encode())
    if repositories:
        member.data("repositories", json.dumps(repositories).encode())
    member.tar.close()
