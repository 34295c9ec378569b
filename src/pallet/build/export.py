"""``-o``: the built image's filesystem exported as a directory (``type=local``) or a tar (``type=tar``).

The filesystem is the engine's export of a container made from the image
(``Service.export``, what ``pallet export`` writes); a directory gets it
unpacked with the same extraction ``pallet cp`` uses (never outside
``dest``); ``dest=-`` writes the tar to stdout.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import cast

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

    from pallet.build.builder import _Build
    from pallet.build.request import Output
    from pallet.build.state import StageImage

__all__ = ["export"]


def export(build: _Build, image: StageImage, output: Output) -> None:
    from pallet.build.builder import _plain_options
    from pallet.engine.filesystem.cp import extract

    record = build.steps.create(str(image.image_id), _plain_options(image))
    try:
        if output.type == "tar":
            if output.dest == "-":
                build.steps.service.export(record.id, sys.stdout.buffer)
                sys.stdout.buffer.flush()
                return
            directory = os.path.dirname(os.path.abspath(output.dest))
            with tempfile.NamedTemporaryFile(dir=directory, delete=False, prefix=".pallet-export-") as f:
                temp = f.name
                try:
                    build.steps.service.export(record.id, cast("BinaryIO", f))
                    f.flush()
                    os.fsync(f.fileno())
                except BaseException:
                    os.unlink(temp)
                    raise
            os.replace(temp, output.dest)
            return
        os.makedirs(output.dest, exist_ok=True)
        with tempfile.TemporaryFile() as tar:
            build.steps.service.export(record.id, tar)
            tar.seek(0)
            fd = os.open(output.dest, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                extract(fd, tar, owner=None)
            finally:
                os.close(fd)
    finally:
        build.steps.remove(record)
