"""--platform parsing and the choice of a manifest from an index."""

from __future__ import annotations

import pytest

from pallet.errors import InvalidArgument
from pallet.oci import mediatypes
from pallet.oci.digest import Digest
from pallet.oci.image_spec import Descriptor, Index, Platform
from pallet.registry.client.errors import ManifestUnknown
from pallet.registry.client.platforms import choose, parse_platform


def _index(*platforms: tuple[str, str, str | None]) -> Index:
    return Index(
        manifests=tuple(
            Descriptor(
                media_type=mediatypes.OCI_MANIFEST,
                digest=Digest.of_bytes(f"{i}".encode()),
                size=1,
                platform=Platform(os=os_, architecture=arch, variant=variant),
            )
            for i, (os_, arch, variant) in enumerate(platforms)
        )
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", Platform(os="linux", architecture="amd64")),
        ("linux/x86_64", Platform(os="linux", architecture="amd64")),
        ("linux/aarch64", Platform(os="linux", architecture="arm64")),
        ("linux/arm64/v8", Platform(os="linux", architecture="arm64", variant="v8")),
        ("Linux/ARM/v7", Platform(os="linux", architecture="arm", variant="v7")),
    ],
)
def test_platform_text_is_normalised_like_containerd(text: str, expected: Platform) -> None:
    assert parse_platform(text) == expected


@pytest.mark.parametrize("text", ["linux", "linux/", "a/b/c/d", ""])
def test_malformed_platform_is_invalid_argument(text: str) -> None:
    with pytest.raises(InvalidArgument, match="os/arch"):
        parse_platform(text)


def test_baseline_variant_is_preferred_when_none_is_asked() -> None:
    index = _index(("linux", "amd64", "v3"), ("linux", "amd64", None), ("linux", "arm64", "v8"))
    chosen = choose(index, Platform(os="linux", architecture="amd64"), what="img")
    assert chosen.platform is not None
    assert chosen.platform.variant is None


def test_arm64_without_variant_matches_a_v8_request() -> None:
    index = _index(("linux", "arm", "v7"), ("linux", "arm64", None))
    chosen = choose(index, parse_platform("linux/arm64/v8"), what="img")
    assert chosen.platform is not None
    assert chosen.platform.architecture == "arm64"


def test_exact_variant_is_required_when_asked() -> None:
    index = _index(("linux", "arm", "v6"))
    with pytest.raises(ManifestUnknown, match="linux/arm/v6"):
        choose(index, parse_platform("linux/arm/v7"), what="img")
