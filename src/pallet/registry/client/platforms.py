"""Choosing one image from an index / manifest list by platform (``--platform os/arch[/variant]``).

Names are normalised as containerd's platform matcher does: ``x86_64`` is
``amd64``, ``aarch64`` is ``arm64`` (variant ``v8`` when absent), ``arm``
without a variant is ``v7``. With no variant asked for, the architecture's
baseline variant is preferred (``amd64``/``v1``, ``arm64``/``v8``), then any other.
"""

from __future__ import annotations

import os

from pallet.errors import InvalidArgument
from pallet.oci.image_spec import Platform
from pallet.registry.client.errors import ManifestUnknown

__all__ = ["choose", "host_platform", "parse_platform"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.oci.image_spec import Descriptor, Index

_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "armhf": "arm",
    "armel": "arm",
    "i386": "386",
    "i686": "386",
}
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7", "amd64": "v1"}


def _normalize(os_name: str, arch: str, variant: str | None) -> tuple[str, str, str | None]:
    os_name = os_name.lower()
    arch = arch.lower()
    if arch.startswith("armv") and arch[4:5].isdigit():  # armv7l, armv6l
        variant = variant or f"v{arch[4]}"
        arch = "arm"
    arch = _ARCH_ALIASES.get(arch, arch)
    if variant is not None:
        variant = variant.lower()
        if arch == "arm64" and variant == "8":
            variant = "v8"
    return os_name, arch, variant


def host_platform() -> Platform:
    """The platform this machine runs: ``linux/amd64`` here."""
    uname = os.uname()
    os_name, arch, variant = _normalize(uname.sysname, uname.machine, None)
    return Platform(os=os_name, architecture=arch, variant=variant)


def parse_platform(text: str) -> Platform:
    """``os/arch[/variant]`` as ``--platform`` takes it (``linux/arm64/v8``, ``linux/amd64``)."""
    parts = text.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidArgument(f'invalid platform "{text}": expected os/arch[/variant], e.g. linux/amd64')
    os_name, arch, variant = _normalize(parts[0], parts[1], parts[2] if len(parts) == 3 else None)
    return Platform(os=os_name, architecture=arch, variant=variant)


def _matches(want: Platform, have: Platform) -> bool:
    w_os, w_arch, w_var = _normalize(want.os, want.architecture, want.variant)
    h_os, h_arch, h_var = _normalize(have.os, have.architecture, have.variant)
    if (w_os, w_arch) != (h_os, h_arch):
        return False
    if w_var is None:
        return True
    return w_var == (h_var or _DEFAULT_VARIANT.get(h_arch))


def choose(index: Index, want: Platform, *, what: str) -> Descriptor:
    """The manifest of ``index`` for ``want``; ``ManifestUnknown`` listing what the index offers."""
    candidates = [d for d in index.manifests if d.platform is not None and _matches(want, d.platform)]
    if not candidates:
        offered = sorted({str(d.platform) for d in index.manifests if d.platform is not None})
        raise ManifestUnknown(
            f"{what}: no matching manifest for {want} in the manifest list entries"
            f" (it has {', '.join(offered) or 'no platforms'}); choose one with --platform"
        )

    def plain(d: Descriptor) -> bool:
        assert d.platform is not None
        return d.platform.variant in (None, _DEFAULT_VARIANT.get(d.platform.architecture))

    # with no variant asked, the architecture's baseline (amd64 v1, arm64 v8) runs on any such host:
    # prefer it over e.g. amd64/v3, which needs a newer CPU
    if want.variant is None:
        return next((d for d in candidates if plain(d)), candidates[0])
    return candidates[0]
