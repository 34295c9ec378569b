"""Which platform an image is for: this host's, or one a user names with ``--platform``."""

from __future__ import annotations

import os

from pallet.errors import InvalidArgument, Unsupported
from pallet.oci.image_spec import Platform

__all__ = ["host_platform", "parse_platform"]

#: ``uname -m`` -> GOARCH, the names OCI platforms use
_ARCHES = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}


def host_platform() -> Platform:
    """This machine's platform in OCI terms (``linux/amd64``)."""
    machine = os.uname().machine
    return Platform(architecture=_ARCHES.get(machine, machine), os="linux")


def parse_platform(text: str) -> Platform:
    """``os/arch[/variant]`` as ``--platform`` takes it; only linux images are made."""
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidArgument(f'invalid platform "{text}"; use OS/ARCH[/VARIANT], e.g. linux/amd64')
    if parts[0] != "linux":
        raise Unsupported(f'platform "{text}": pallet makes linux images only')
    return Platform(os=parts[0], architecture=parts[1], variant=parts[2] if len(parts) == 3 else None)
