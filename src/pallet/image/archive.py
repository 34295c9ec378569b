"""Image archives: ``docker save`` tarballs and OCI image layouts, written and read as streams.

Reading (``load``) accepts, in one pass over the tar stream (a file or stdin,
plain or compressed with gzip, zstd, bzip2 or xz):

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

from pallet.errors import InvalidArgument, NotFound
from pallet.image.compression import NONE, LayerReader, compression_of
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

__all__ = ["LoadedImage", "decompressed", "load", "save"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from pallet.image.store import ImageRecord, ImageStore, LayerRecord
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
    """One image a load added: its record, the names it was given (maybe none), and
    the names it took from other images (name, the other image's id), which docker reports."""

    image: ImageRecord
    names: tuple[Reference, ...] = ()
    replaced: tuple[tuple[Reference, Digest], ...] = ()


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


class _Decompressing:
    """A bzip2 or xz stream read decompressed, in bounded chunks (the standard library's decompressors)."""

    def __init__(self, source: Readable, kind: str) -> None:
        import bz2
        import lzma

        self._source = source
        self._make = bz2.BZ2Decompressor if kind == "bzip2" else lzma.LZMADecompressor
        self._d: bz2.BZ2Decompressor | lzma.LZMADecompressor = self._make()
        self._kind = kind

    def read(self, n: int = -1) -> bytes:
        limit = n if n > 0 else -1
        while True:
            if self._d.eof:
                rest = self._d.unused_data
                if not rest:
                    return b""
                self._d = self._make()  # concatenated streams, as bzip2 and xz tools write them
                data = self._d.decompress(rest, limit)
            elif self._d.needs_input:
                raw = self._source.read(1 << 20)
                if not raw:
                    raise InvalidArgument(f"the {self._kind} stream ends too early; the file is truncated")
                data = self._d.decompress(raw, limit)
            else:
                data = self._d.decompress(b"", limit)
            if data:
                return data


def decompressed(stream: Readable) -> Readable:
    """The tar bytes of an archive or tarball that may be gzip, zstd, bzip2 or xz compressed (sniffed)."""
    head = b""
    while len(head) < _SNIFF:
        data = stream.read(_SNIFF - len(head))
        if not data:
            break
        head += data
    if not head:
        raise InvalidArgument("the input is empty: expected a tar archive")
    source = _Prefixed(head, stream)
    if head.startswith(b"BZh"):
        return _Decompressing(source, "bzip2")
    if head.startswith(b"\xfd7zXZ\x00"):
        return _Decompressing(source, "xz")
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
    """Read the whole archive once: documents into memory, every other file into the content store."""
    scan = _Scan()
    reader = TarReader(decompressed(stream))
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


class _Pending(Record):
    """An image of the archive, checked, to be added once the whole archive is."""

    manifest: bytes
    config: bytes
    media_type: str
    index: bytes | None = None
    names: tuple[Reference, ...] = ()


def _load_docker(store: ImageStore, scan: _Scan) -> list[_Pending]:
    entries = loads(scan.document("manifest.json", "the docker-archive manifest"), "manifest.json")
    if not isinstance(entries, list):
        raise InvalidArgument("manifest.json of the archive is not a JSON array")
    loaded: list[_Pending] = []
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
            _Pending(
                manifest=dumps(manifest.to_json()),
                config=config_bytes,
                media_type=mediatypes.OCI_MANIFEST,
                index=None,
                names=names,
            )
        )
    return loaded


def _pick(index: Index, what: str) -> Descriptor:
    """The manifest of an index for this host's platform (or the only one)."""
    host = host_platform()
    candidates = [m for m in index.manifests if mediatypes.is_manifest(m.media_type)]
    for m in candidates:
        if m.platform is not None and (m.platform.os, m.platform.architecture) == (
            host.os,
            host.architecture,
        ):
            return m
    if len(candidates) == 1:
        return candidates[0]
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


def _archived(store: ImageStore, digest: Digest, what: str) -> bytes:
    if not store.content.has(digest):
        raise InvalidArgument(f"{what}: blob {digest} is not in the archive; the archive is incomplete")
    return store.content.read_bytes(digest)


def _load_oci(
    store: ImageStore, scan: _Scan, docker_tags: dict[str, tuple[Reference, ...]]
) -> list[_Pending]:
    index = Index.from_json(loads(scan.document("index.json", "the OCI layout index"), "index.json"))
    loaded: dict[str, _Pending] = {}  # by image id: an image listed once per name is loaded once
    for i, descriptor in enumerate(index.manifests):
        what = f"index.json manifests[{i}]"
        data = _archived(store, descriptor.digest, what)
        parsed = parse_manifest(data, descriptor.media_type)
        nested: bytes | None = None
        chosen = descriptor
        if isinstance(parsed, Index):
            nested = data
            chosen = _pick(parsed, what)
            data = _archived(store, chosen.digest, what)
            parsed = parse_manifest(data, chosen.media_type)
        assert isinstance(parsed, Manifest)
        config = _archived(store, parsed.config.digest, f"{what} config")
        for n, layer in enumerate(parsed.layers):
            _archived(store, layer.digest, f"{what} layers[{n}]")
        image_id = parsed.config.digest
        names = _oci_names(descriptor) + docker_tags.get(image_id, ())
        previous = loaded.get(image_id)
        if previous is not None:
            names = previous.names + names
        loaded[image_id] = _Pending(
            manifest=data,
            config=config,
            media_type=chosen.media_type,
            index=nested,
            names=tuple(dict.fromkeys(names)),
        )
    return list(loaded.values())


def _add(store: ImageStore, pending: _Pending) -> LoadedImage:
    """Add a checked image; names taken from another image are reported in ``replaced``."""
    replaced = []
    for name in pending.names:
        try:
            old = store.resolve(str(name))
        except NotFound:
            continue
        if old.id != Digest.of_bytes(pending.config):
            replaced.append((name, old.id))
    names = pending.names
    record = store.add_image(
        pending.manifest,
        pending.config,
        manifest_media_type=pending.media_type,
        index=pending.index,
        ref=names[0] if names else None,
    )
    for name in names[1:]:
        store.tag(record.id, name)
    return LoadedImage(image=store.get(record.id), names=names, replaced=tuple(replaced))


def load(store: ImageStore, stream: Readable, *, progress: Progress | None = None) -> list[LoadedImage]:
    """Load every image of a docker-archive or OCI layout archive read from ``stream``.

    Returns the images added (or found already present), with their names.
    Raises ``InvalidArgument`` naming the member at fault for a corrupt or
    incomplete archive; no image is added or tagged then.
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
            pending = _load_oci(store, scan, docker_tags)
        elif "manifest.json" in scan.documents:
            pending = _load_docker(store, scan)
        else:
            raise InvalidArgument(
                "the archive holds neither manifest.json (docker-archive) nor index.json (OCI layout); "
                "give a tar file made by `pallet save`, `docker save` or skopeo"
            )
        # every image of the archive is checked before the first one is added
        return [_add(store, item) for item in pending]


# --- writing --------------------------------------------------------------------------------------


class _Selected(Record):
    record: ImageRecord
    tags: tuple[Reference, ...] = ()


def _select(store: ImageStore, names: Iterable[str]) -> list[_Selected]:
    """The images to save, each once, with the tags they were named by.

    As ``docker save``: ``repo:tag`` saves that tag; a bare repository name saves
    every tag of that repository; an image named by id is saved without a name.
    """
    chosen: dict[str, _Selected] = {}

    def add(record: ImageRecord, tags: tuple[Reference, ...]) -> None:
        previous = chosen.get(record.id)
        merged = tuple(dict.fromkeys((previous.tags if previous else ()) + tags))
        chosen[record.id] = _Selected(record=record, tags=merged)

    for name in names:
        try:
            bare = parse(name, default_tag=False)
        except InvalidArgument:
            bare = None  # an id such as sha256:<hex>
        if bare is not None and bare.tag is None and bare.digest is None:
            found = False
            for record in store.list_images():
                tags = tuple(r for r in record.references if r.name == bare.name and r.tag is not None)
                if tags:
                    add(record, tags)
                    found = True
            if found:
                continue
        record = store.resolve(name)
        ref = bare.canonical() if bare is not None else None
        add(record, (ref,) if ref is not None and ref.digest is None and ref in record.references else ())
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
        #: members written so far, with their sizes
        self.sizes: dict[str, int] = {}

    def directory(self, name: str) -> None:
        self.tar.add(TarEntry(name, DIR, mode=0o755))

    def data(self, name: str, data: bytes) -> None:
        import io

        self.tar.add(TarEntry(name, REG, mode=0o644, size=len(data)), io.BytesIO(data))
        self.sizes[name] = len(data)

    def stream(self, name: str, size: int, source: Readable) -> None:
        self.tar.add(TarEntry(name, REG, mode=0o644, size=size), source)
        self.sizes[name] = size


def _write_layer(store: ImageStore, member: _Member, layer: LayerRecord, scratch: str) -> int:
    """Write one layer as ``blobs/sha256/<diff id hex>``, uncompressed, once per archive; returns its size.

    A plain blob is copied as is (verified as it is read). A compressed one is
    decompressed, its diff id checked; a tar member's size comes before its
    data, so it goes through an anonymous temp file unless the store knows the
    uncompressed size from an earlier unpack.
    """
    blob, diff_id = layer.blob, layer.diff_id
    name = f"blobs/sha256/{diff_id.hex}"
    if name in member.sizes:
        return member.sizes[name]
    if compression_of(blob.media_type) == NONE and blob.digest == diff_id:
        with store.content.open(blob.digest, verify=True) as f:
            member.stream(name, blob.size, f)
        return blob.size
    with store.content.open(blob.digest) as f:
        reader = LayerReader(f, blob.media_type)
        try:
            if layer.uncompressed_size is not None:
                size = layer.uncompressed_size
                member.stream(name, size, reader)
                reader.finish()
            else:
                import tempfile

                with tempfile.TemporaryFile(dir=scratch) as spool:
                    while chunk := reader.read(1 << 20):
                        spool.write(chunk)
                    reader.finish()
                    size = spool.tell()
                    if reader.diff_id == diff_id:
                        spool.seek(0)
                        member.stream(name, size, spool)
        finally:
            reader.close()
    if reader.diff_id != diff_id or reader.size != size:
        raise InvalidArgument(
            f"layer {blob.digest} unpacks to {reader.diff_id} ({reader.size} bytes), but its image says {diff_id} "
            f"({size} bytes); the image is corrupt: remove it and load or pull it again"
        )
    return size


def save(store: ImageStore, names: Iterable[str], out: Writable, *, progress: Progress | None = None) -> None:
    """Write the images ``names`` (ids or references) to ``out`` as one docker-archive / OCI layout tar.

    Which names are recorded in the archive follows ``docker save`` (see ``_select``).
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
            size = _write_layer(store, member, layer, str(store.root))
            descriptors.append(Descriptor(media_type=mediatypes.OCI_LAYER, digest=layer.diff_id, size=size))
            if progress is not None:
                progress("layer", layer.diff_id, size)
        config_name = f"blobs/sha256/{record.id.hex}"
        if config_name not in member.sizes:
            member.data(config_name, config_bytes)
        manifest = Manifest(
            media_type=mediatypes.OCI_MANIFEST,
            config=Descriptor(media_type=mediatypes.OCI_CONFIG, digest=record.id, size=len(config_bytes)),
            layers=tuple(descriptors),
        )
        manifest_bytes = dumps(manifest.to_json())
        manifest_digest = Digest.of_bytes(manifest_bytes)
        if f"blobs/sha256/{manifest_digest.hex}" not in member.sizes:
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
