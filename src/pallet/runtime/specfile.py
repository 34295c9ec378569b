"""``spec`` (write runc's default config.json) and ``features`` (what this runtime supports)."""

from __future__ import annotations

import os

from pallet.errors import AlreadyExists
from pallet.oci.jsonfast import dumps


def write_default_spec(bundle: str, rootless: bool) -> None:
    """Write ``config.json`` in ``bundle``; refuses to overwrite one (as runc does)."""
    from pallet.oci.runtime_spec import SPEC_VERSION, default_spec

    path = os.path.join(bundle, "config.json")
    doc = default_spec(rootless=rootless).to_json()
    doc["ociVersion"] = SPEC_VERSION
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        raise AlreadyExists("File config.json exists. Remove it first") from None
    with os.fdopen(fd, "w") as out:
        out.write(dumps(doc, indent=2))


def features_json() -> str:
    from pallet.oci.runtime_spec import runtime_features
    from pallet.runtime import seccomp

    return dumps(runtime_features(seccomp=seccomp.features()), indent=4)
