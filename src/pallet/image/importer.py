"""``pallet import``: a root filesystem tarball becomes a single-layer image.

As ``docker import`` does it: the tarball (plain, gzip, zstd, bzip2 or xz) is the one
layer, stored uncompressed (so its digest is its diff id and ``save`` copies it
as is); the config gets the ``--change`` lines (see ``changes``), the platform,
a creation time and a history entry whose comment is the message, by default
``Imported from <source>``. The tarball is streamed into the content store,
never held in memory, and checked to start with a tar header before anything
is stored.
"""

from __future__ import annotations

import time

from pallet.errors import InvalidArgument
from pallet.image.archive import decompressed
from pallet.image.changes import apply_changes
from pallet.image.compression import LayerReader
from pallet.image.platforms import host_platform
from pallet.image.tarstream import check_header
from pallet.oci import mediatypes
from pallet.oci.digest import Digest
from pallet.oci.image_spec import ContainerConfig, Descriptor, History, ImageConfig, Manifest, RootFS, dumps

__all__ = ["import_tarball"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from pallet.image.store import ImageRecord, ImageStore
    from pallet.image.tarstream import Readable
    from pallet.oci.image_spec import Platform
    from pallet.oci.reference import Reference

_BLOCK = 512


def _now() -> str:
    ns = time.time_ns()
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


class _Checked:
    """The decompressed tarball, whose first block must be a tar header (or the end marker)."""

    def __init__(self, source: LayerReader, what: str) -> None:
        head = b""
        while len(head) < _BLOCK:
            data = source.read(_BLOCK - len(head))
            if not data:
                break
            head += data
        try:
            if len(head) < _BLOCK:
                raise InvalidArgument("shorter than one tar header")
            # the header block alone: a PAX or GNU long-name header's data lies beyond it
            check_header(head)
        except InvalidArgument as e:
            raise InvalidArgument(
                f"{what} is not a tar archive ({e}); give a root filesystem tarball"
            ) from None
        self._head = head
        self._source = source

    def read(self, n: int = -1) -> bytes:
        if self._head:
            data, self._head = self._head, b""
            return data
        return self._source.read(n)


def import_tarball(
    store: ImageStore,
    stream: Readable,
    *,
    source: str = "-",
    ref: Reference | str | None = None,
    changes: Sequence[str] = (),
    message: str | None = None,
    platform: Platform | None = None,
) -> ImageRecord:
    """Make a single-layer image from the tarball read from ``stream``; tag it ``ref`` if given.

    ``source`` names the input in the default history comment. ``--change``
    lines are checked before anything is read.
    """
    run_config = apply_changes(ContainerConfig(), changes)
    platform = platform or host_platform()
    with store.lease():
        reader = LayerReader(decompressed(stream), mediatypes.OCI_LAYER)
        try:
            layer = store.content.ingest(_Checked(reader, source), media_type=mediatypes.OCI_LAYER)  # type: ignore[arg-type]
            reader.finish()
        finally:
            reader.close()
        diff_id = Digest(reader.diff_id)
        if layer.digest != diff_id:  # the stored blob is the uncompressed tar: the two must agree
            raise InvalidArgument(f"{source}: the tarball changed while it was read; import it again")
        created = _now()
        comment = message if message is not None else f"Imported from {source}"
        config = ImageConfig(
            architecture=platform.architecture,
            os=platform.os,
            variant=platform.variant,
            created=created,
            config=run_config,
            rootfs=RootFS(diff_ids=(diff_id,)),
            history=(History(created=created, comment=comment),),
            extra={"comment": comment} if comment else {},
        )
        config_bytes = dumps(config.to_json())
        manifest = Manifest(
            media_type=mediatypes.OCI_MANIFEST,
            config=Descriptor(
                media_type=mediatypes.OCI_CONFIG, digest=Digest.of_bytes(config_bytes), size=len(config_bytes)
            ),
            layers=(layer,),
        )
        return store.add_image(
            dumps(manifest.to_json()), config_bytes, manifest_media_type=mediatypes.OCI_MANIFEST, ref=ref
        )
