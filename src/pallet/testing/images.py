"""Images for tests: ``random_image()`` builds a small multi-layer image in memory, and
``validate_image()`` checks an image in a store the way go-containerregistry's
``validate`` does (every blob present and matching its digest, diff ids match,
config valid).
"""

from __future__ import annotations

import gzip
import io
import random
import tarfile

from pallet.image.compression import LayerReader
from pallet.oci import mediatypes
from pallet.oci.digest import Digest
from pallet.oci.image_spec import (
    ContainerConfig,
    Descriptor,
    History,
    ImageConfig,
    Manifest,
    RootFS,
    dumps,
    loads,
    parse_manifest,
)
from pallet.oci.record import Record

__all__ = ["MemoryImage", "add_to_store", "random_image", "validate_image"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.image.store import ImageRecord, ImageStore


class MemoryImage(Record):
    """An image held in memory: manifest and config bytes, and each layer's descriptor and blob."""

    manifest: bytes
    manifest_media_type: str
    config: bytes
    layers: tuple[tuple[Descriptor, bytes], ...]
    #: per layer, the files it adds (path -> content) and the paths it whites out
    files: tuple[tuple[tuple[str, bytes], ...], ...]
    deleted: tuple[tuple[str, ...], ...]

    @property
    def id(self) -> Digest:
        return Digest.of_bytes(self.config)

    @property
    def manifest_digest(self) -> Digest:
        return Digest.of_bytes(self.manifest)

    def final_files(self) -> dict[str, bytes]:
        """What the image's root filesystem holds once every layer is applied (regular files only)."""
        out: dict[str, bytes] = {}
        for added, gone in zip(self.files, self.deleted, strict=True):
            for path in gone:
                out.pop(path, None)
            out.update(added)
        return out


def _tar(files: list[tuple[str, bytes]], whiteouts: list[str], rng: random.Random) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted(
            {p.rsplit("/", 1)[0] for p, _ in files if "/" in p}
            | {p.rsplit("/", 1)[0] for p in whiteouts if "/" in p}
        )
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.mtime = 1_700_000_000
            tar.addfile(info)
        for path in whiteouts:
            parent, _, base = path.rpartition("/")
            info = tarfile.TarInfo(f"{parent}/.wh.{base}" if parent else f".wh.{base}")
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(b""))
        for path, data in files:
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = rng.choice((0o644, 0o600, 0o755))
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def random_image(
    *,
    layers: int = 3,
    files_per_layer: int = 3,
    seed: int | None = None,
    docker: bool = False,
    compressed: bool = True,
    whiteouts: bool = True,
    base: MemoryImage | None = None,
) -> MemoryImage:
    """A small random image (OCI media types, or Docker's with ``docker``) with ``layers`` layers.

    Files live in ``dir<N>/`` per layer (and ``shared/``, which later layers
    overwrite); with ``whiteouts`` each layer after the first deletes one file
    of the layer below, so whiteout handling shows.
    """
    rng = random.Random(seed)
    layer_type = (
        (mediatypes.DOCKER_LAYER if compressed else mediatypes.DOCKER_LAYER_UNCOMPRESSED)
        if docker
        else (mediatypes.OCI_LAYER_GZIP if compressed else mediatypes.OCI_LAYER)
    )
    descriptors: list[tuple[Descriptor, bytes]] = list(base.layers) if base else []
    diff_ids: list[Digest] = list(ImageConfig.from_json(loads(base.config)).rootfs.diff_ids) if base else []
    all_files: list[tuple[tuple[str, bytes], ...]] = list(base.files) if base else []
    all_deleted: list[tuple[str, ...]] = list(base.deleted) if base else []
    history: list[History] = [History(created_by=f"base layer {n}") for n in range(len(descriptors))]
    first = len(descriptors)
    for n in range(first, first + layers):
        files = [(f"dir{n}/file{j}", rng.randbytes(rng.randrange(0, 2048))) for j in range(files_per_layer)]
        files.append(("shared/which", f"layer {n}\n".encode()))
        gone = [f"dir{n - 1}/file0"] if whiteouts and n > 0 and files_per_layer > 0 and all_files[-1] else []
        tar = _tar(files, gone, rng)
        blob = gzip.compress(tar, mtime=0) if compressed else tar
        descriptors.append(
            (Descriptor(media_type=layer_type, digest=Digest.of_bytes(blob), size=len(blob)), blob)
        )
        diff_ids.append(Digest.of_bytes(tar))
        all_files.append(tuple(files))
        all_deleted.append(tuple(gone))
        history.append(History(created="2024-01-01T00:00:00Z", created_by=f"/bin/sh -c #(nop) ADD layer {n}"))
    history.append(
        History(created="2024-01-01T00:00:00Z", created_by='/bin/sh -c #(nop)  CMD ["sh"]', empty_layer=True)
    )
    config = ImageConfig(
        architecture="amd64",
        os="linux",
        created="2024-01-01T00:00:00Z",
        config=ContainerConfig(
            env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
            cmd=("sh",),
            labels={"pallet.test.seed": str(seed)},
        ),
        rootfs=RootFS(diff_ids=tuple(diff_ids)),
        history=tuple(history),
    )
    config_bytes = dumps(config.to_json())
    manifest_type = mediatypes.DOCKER_MANIFEST if docker else mediatypes.OCI_MANIFEST
    manifest = Manifest(
        media_type=manifest_type,
        config=Descriptor(
            media_type=mediatypes.DOCKER_CONFIG if docker else mediatypes.OCI_CONFIG,
            digest=Digest.of_bytes(config_bytes),
            size=len(config_bytes),
        ),
        layers=tuple(d for d, _ in descriptors),
    )
    return MemoryImage(
        manifest=dumps(manifest.to_json()),
        manifest_media_type=manifest_type,
        config=config_bytes,
        layers=tuple(descriptors),
        files=tuple(all_files),
        deleted=tuple(all_deleted),
    )


def add_to_store(store: ImageStore, image: MemoryImage, ref: str | None = None) -> ImageRecord:
    """Ingest the image's layer blobs and add it, as ``pallet load`` does (under a lease)."""
    with store.lease():
        for descriptor, blob in image.layers:
            store.content.ingest(io.BytesIO(blob), descriptor)
        return store.add_image(
            image.manifest, image.config, manifest_media_type=image.manifest_media_type, ref=ref
        )


def validate_image(store: ImageStore, image: str) -> None:
    """Check an image in ``store``; raises ``AssertionError`` naming the first problem found."""
    record = store.resolve(image)
    manifest_bytes = store.content.read_bytes(record.manifest_digest)  # verifies the digest
    parsed = parse_manifest(manifest_bytes, record.manifest_media_type)
    assert isinstance(parsed, Manifest), f"{record.manifest_digest} is not an image manifest"
    assert parsed.config.digest == record.id, (
        f"manifest config {parsed.config.digest} is not the image id {record.id}"
    )
    config_bytes = store.content.read_bytes(record.id)
    assert len(config_bytes) == parsed.config.size, "config size differs from its descriptor"
    config = ImageConfig.from_json(loads(config_bytes, "image config"))
    diff_ids = config.rootfs.diff_ids
    assert len(diff_ids) == len(parsed.layers), f"{len(diff_ids)} diff ids for {len(parsed.layers)} layers"
    for i, (layer, diff_id) in enumerate(zip(parsed.layers, diff_ids, strict=True)):
        assert store.content.has(layer.digest), f"layers[{i}]: blob {layer.digest} missing"
        assert store.content.size(layer.digest) == layer.size, f"layers[{i}]: size differs from the manifest"
        with store.content.open(layer.digest) as blob:
            reader = LayerReader(blob, layer.media_type)
            try:
                reader.finish()
            finally:
                reader.close()
        assert reader.digest == layer.digest, (
            f"layers[{i}]: blob hashes to {reader.digest}, not {layer.digest}"
        )
        assert reader.diff_id == diff_id, (
            f"layers[{i}]: uncompressed tar is {reader.diff_id}, config says {diff_id}"
        )
    recorded = [layer.diff_id for layer in store.layers(record.id)]
    assert recorded == list(diff_ids), "the store's layer records disagree with the config"
