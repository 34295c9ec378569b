"""``GET /distribution/{name}/json``: what a registry holds for a reference, without pulling it.

docker's ``DistributionInspect``: the descriptor of the manifest or index the
reference resolves to (``mediaType``, ``digest``, ``size``) and the platforms
it serves: an index's manifests' platforms, or, for a single manifest, the
os and architecture of its image config (fetched: a manifest does not say).
Credentials as for a pull: ``X-Registry-Auth``, else the service's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pallet.api.messages import Json, Request, Response
from pallet.api.routing import RouteTable

if TYPE_CHECKING:
    from pallet.oci.image_spec import Platform

__all__ = ["ROUTES"]

ROUTES = RouteTable()

#: an image config is small; a larger "config" is not read
_CONFIG_MAX = 4 << 20


def _platform(platform: Platform) -> dict[str, Any]:
    """docker's ``ocispec.Platform`` JSON: the fields that are set."""
    out: dict[str, Any] = {"architecture": platform.architecture, "os": platform.os}
    if platform.os_version:
        out["os.version"] = platform.os_version
    if platform.os_features:
        out["os.features"] = list(platform.os_features)
    if platform.variant:
        out["variant"] = platform.variant
    return out


@ROUTES.route("GET", "/distribution/{name*}/json")
def inspect_distribution(request: Request) -> Response:
    from pallet.api.routes.images import _credentials, _transport
    from pallet.oci.digest import Digest
    from pallet.oci.image_spec import ImageConfig, Index, loads, parse_manifest
    from pallet.oci.reference import parse
    from pallet.registry.client.errors import DigestMismatch
    from pallet.registry.client.repository import Registry, Repository

    reference = parse(request.params["name"])
    transport = _transport(request)
    try:
        registry = Registry(transport, reference.domain, _credentials(request, reference.domain))
        repository = Repository(registry, reference.path)
        what = f"manifest for {reference.familiar_string()}"
        data, media_type, digest = repository.get_manifest(
            reference.digest or reference.tag or "latest", what=what
        )
        parsed = parse_manifest(data, media_type or None)
        if isinstance(parsed, Index):
            platforms = [_platform(m.platform) for m in parsed.manifests if m.platform is not None]
        else:
            config = parsed.config
            if config.size > _CONFIG_MAX:
                raise DigestMismatch(
                    f"the image config of {reference.familiar_string()} is too large to read"
                )
            response, _ = repository.open_blob(str(config.digest))
            try:
                blob = response.read(config.size + 1, decode_content=False)
            finally:
                response.release_conn()
            if Digest.of_bytes(blob, config.digest.algorithm) != config.digest:
                raise DigestMismatch(f"digest mismatch: the image config {config.digest} arrived changed")
            image = ImageConfig.from_json(loads(blob, "image config"))
            platforms = [{"architecture": image.architecture, "os": image.os}]
            if image.variant:
                platforms[0]["variant"] = image.variant
    finally:
        transport.close()
    return Json({
        "Descriptor": {"mediaType": media_type or parsed.media_type or "", "digest": str(digest), "size": len(data)},
        "Platforms": platforms,
    })  # fmt: skip
