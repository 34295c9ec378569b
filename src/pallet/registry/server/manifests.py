"""What the registry checks in a pushed manifest, and what it records about it.

The registry stores a manifest's bytes as they came (their digest is the
client's), so it only reads what it must: the media type, the descriptors
whose content must already be in the repository, and the OCI 1.1 ``subject``
that puts the manifest into its subject's referrers list.
"""

from __future__ import annotations

import json

from pallet.errors import InvalidArgument
from pallet.oci import mediatypes
from pallet.oci.digest import Digest
from pallet.registry.server.errorcodes import RegistryError

__all__ = ["MAX_MANIFEST_BYTES", "MEDIA_TYPES", "Manifest", "parse_manifest"]

#: the spec lets registries refuse bigger manifests; 4 MiB is what distribution allows
MAX_MANIFEST_BYTES = 4 << 20

MEDIA_TYPES = frozenset(
    {
        mediatypes.OCI_MANIFEST,
        mediatypes.OCI_INDEX,
        mediatypes.DOCKER_MANIFEST,
        mediatypes.DOCKER_MANIFEST_LIST,
    }
)


class Manifest:
    """The parts of a pushed manifest the registry acts on.

    ``blobs`` must be blobs of the repository, ``manifests`` manifests of it
    (an index's children); ``subject`` is the digest it refers to, if any.
    """

    __slots__ = ("annotations", "artifact_type", "blobs", "manifests", "media_type", "subject")

    def __init__(
        self,
        *,
        media_type: str,
        blobs: tuple[Digest, ...],
        manifests: tuple[Digest, ...],
        subject: Digest | None,
        artifact_type: str | None,
        annotations: dict[str, str] | None,
    ) -> None:
        self.media_type = media_type
        self.blobs = blobs
        self.manifests = manifests
        self.subject = subject
        self.artifact_type = artifact_type
        self.annotations = annotations

    def referrer(self, digest: Digest, size: int) -> dict[str, object]:
        """The descriptor that lists this manifest in its subject's referrers index."""
        descriptor: dict[str, object] = {"mediaType": self.media_type, "digest": str(digest), "size": size}
        if self.artifact_type:
            descriptor["artifactType"] = self.artifact_type
        if self.annotations:
            descriptor["annotations"] = self.annotations
        return descriptor


def _invalid(reason: str) -> RegistryError:
    return RegistryError("MANIFEST_INVALID", f"manifest invalid: {reason}", detail={"reason": reason})


def _descriptor_digest(value: object, where: str) -> tuple[Digest, dict[str, object]]:
    if not isinstance(value, dict):
        raise _invalid(f"{where} is not a descriptor object")
    text = value.get("digest")
    if not isinstance(text, str):
        raise _invalid(f"{where}.digest is missing")
    try:
        digest = Digest.parse(text)
    except InvalidArgument as exc:
        raise _invalid(f"{where}.digest: {exc}") from None
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where}.size must be a non-negative integer")
    return digest, value


def parse_manifest(data: bytes, content_type: str) -> Manifest:
    """Check a pushed manifest; ``MANIFEST_INVALID`` says what is wrong with it.

    The media type is the body's ``mediaType``, or the request's
    ``Content-Type`` when the body has none (OCI makes the field optional);
    when both are given they must agree.
    """
    try:
        doc = json.loads(data)
    except RecursionError:
        # JSON arrays or objects nested deeper than Python's recursion limit: no manifest nests so
        raise _invalid("JSON nested too deeply") from None
    except ValueError as exc:
        # not JSON, not UTF-8, or a number past Python's int-from-string limit (4300 digits)
        raise _invalid(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise _invalid("not a JSON object")
    content_type = content_type.split(";", maxsplit=1)[0].strip()
    body_type = doc.get("mediaType")
    if body_type is not None and not isinstance(body_type, str):
        raise _invalid("mediaType must be a string")
    if body_type and content_type and body_type != content_type:
        raise _invalid(f'mediaType "{body_type}" does not match Content-Type "{content_type}"')
    media_type = body_type or content_type
    if media_type not in MEDIA_TYPES:
        if doc.get("schemaVersion") == 1:
            raise RegistryError(
                "MANIFEST_INVALID", "schema 1 manifests are not supported; push schema 2 or OCI"
            )
        if "manifests" in doc:
            media_type = mediatypes.OCI_INDEX
        elif "config" in doc:
            media_type = mediatypes.OCI_MANIFEST
        else:
            raise _invalid(f'unsupported media type "{media_type}"')
    if doc.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2")

    blobs: list[Digest] = []
    children: list[Digest] = []
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise _invalid("artifactType must be a string")
    if mediatypes.is_index(media_type):
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise _invalid("manifests must be a list")
        for i, entry in enumerate(entries):
            children.append(_descriptor_digest(entry, f"manifests[{i}]")[0])
    else:
        config_digest, config = _descriptor_digest(doc.get("config"), "config")
        blobs.append(config_digest)
        if artifact_type is None and isinstance(config.get("mediaType"), str):
            artifact_type = str(config["mediaType"])
        layers = doc.get("layers", [])
        if not isinstance(layers, list):
            raise _invalid("layers must be a list")
        for i, layer in enumerate(layers):
            digest, descriptor = _descriptor_digest(layer, f"layers[{i}]")
            # foreign layers (with urls) live elsewhere; the registry does not hold them
            if not descriptor.get("urls"):
                blobs.append(digest)
    subject: Digest | None = None
    if doc.get("subject") is not None:
        subject = _descriptor_digest(doc["subject"], "subject")[0]
    annotations = doc.get("annotations")
    if annotations is not None and not (
        isinstance(annotations, dict) and all(isinstance(v, str) for v in annotations.values())
    ):
        raise _invalid("annotations must map strings to strings")
    return Manifest(
        media_type=media_type,
        blobs=tuple(blobs),
        manifests=tuple(children),
        subject=subject,
        artifact_type=artifact_type,
        annotations=annotations,
    )
