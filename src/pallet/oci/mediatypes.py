"""Media types of the OCI image spec and of Docker's v2 schema2, and their classification.

Docker and OCI name the same things differently (a Docker "manifest list" is an
OCI "index"); the ``is_*`` functions let the rest of pallet ask what a
descriptor points to without caring which family wrote it.
"""

from __future__ import annotations

__all__ = [
    "DOCKER_CONFIG",
    "DOCKER_FOREIGN_LAYER",
    "DOCKER_LAYER",
    "DOCKER_LAYER_UNCOMPRESSED",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "DOCKER_MANIFEST_V1",
    "DOCKER_MANIFEST_V1_SIGNED",
    "DOCKER_PLUGIN_CONFIG",
    "OCI_CONFIG",
    "OCI_EMPTY",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_LAYER_GZIP",
    "OCI_LAYER_NONDIST",
    "OCI_LAYER_NONDIST_GZIP",
    "OCI_LAYER_NONDIST_ZSTD",
    "OCI_LAYER_ZSTD",
    "OCI_LAYOUT_HEADER",
    "OCI_MANIFEST",
    "is_config",
    "is_foreign_layer",
    "is_index",
    "is_layer",
    "is_manifest",
    "layer_compression",
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYOUT_HEADER = "application/vnd.oci.layout.header.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
# "non-distributable" layers: deprecated by the spec, still met in the wild
OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDIST_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_PLUGIN_CONFIG = "application/vnd.docker.plugin.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_UNCOMPRESSED = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
# schema1: refused with a clear error, never stored
DOCKER_MANIFEST_V1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_MANIFEST_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

_MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
_INDEXES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
_CONFIGS = frozenset({OCI_CONFIG, DOCKER_CONFIG})
# media type -> compression ("" for a plain tar)
_LAYERS = {
    OCI_LAYER: "",
    OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_ZSTD: "zstd",
    OCI_LAYER_NONDIST: "",
    OCI_LAYER_NONDIST_GZIP: "gzip",
    OCI_LAYER_NONDIST_ZSTD: "zstd",
    DOCKER_LAYER: "gzip",
    DOCKER_LAYER_UNCOMPRESSED: "",
    DOCKER_FOREIGN_LAYER: "gzip",
}
_FOREIGN = frozenset(
    {OCI_LAYER_NONDIST, OCI_LAYER_NONDIST_GZIP, OCI_LAYER_NONDIST_ZSTD, DOCKER_FOREIGN_LAYER}
)


def is_manifest(media_type: str) -> bool:
    """An image manifest (OCI or Docker schema2)."""
    return media_type in _MANIFESTS


def is_index(media_type: str) -> bool:
    """A list of manifests (OCI index or Docker manifest list)."""
    return media_type in _INDEXES


def is_config(media_type: str) -> bool:
    """An image config (OCI or Docker)."""
    return media_type in _CONFIGS


def is_layer(media_type: str) -> bool:
    """A filesystem layer pallet can apply (any compression, foreign ones included)."""
    return media_type in _LAYERS


def is_foreign_layer(media_type: str) -> bool:
    """A layer that registries may refuse to host (fetched from ``urls`` instead)."""
    return media_type in _FOREIGN


def layer_compression(media_type: str) -> str:
    """``"gzip"``, ``"zstd"`` or ``""`` (plain tar) for a layer media type.

    Raises ``Unsupported`` for anything that is not a known layer type.
    """
    try:
        return _LAYERS[media_type]
    except KeyError:
        from pallet.errors import Unsupported

        raise Unsupported(f'unsupported layer media type "{media_type}"') from None
