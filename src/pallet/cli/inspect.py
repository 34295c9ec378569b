"""``pallet inspect``: any object by name or id, as ``docker inspect`` looks it up.

Each name is tried as a container, then an image, then a volume (``--type``
keeps one kind). The first kind that knows the name answers; a name no kind
knows is ``Error: No such object: NAME`` on stderr and exit status 1, and the
others are still printed (``[]`` when none was found, as docker does). The stores are opened on first need, and the volume
store only if it exists (inspect never creates one).
"""

from __future__ import annotations

import os

from pallet.cli.output import print_inspect
from pallet.errors import NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pallet.cli.context import Context
    from pallet.cli.flags import FlagParser, Namespace
    from pallet.engine.containers.lifecycle import Engine
    from pallet.engine.volumes import VolumeStore
    from pallet.image.store import ImageStore

__all__ = ["configure_inspect"]

KINDS = ("container", "image", "volume")


class _Stores:
    """The engine and stores of one ``inspect``, opened on first use, closed together."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._engine: Engine | None = None
        self._images: ImageStore | None = None
        self._volumes: VolumeStore | None = None

    def engine(self) -> Engine:
        if self._engine is None:
            from pallet.engine.containers.lifecycle import Engine

            self._engine = Engine.open(self.ctx.root, self.ctx.run_root, leave_open=self.ctx.exits_after)
        return self._engine

    def images(self) -> ImageStore:
        if self._images is None:
            self._images = self.ctx.image_store()
        return self._images

    def volumes(self) -> VolumeStore | None:
        if self._volumes is None and os.path.isdir(os.path.join(self.ctx.root, "volumes")):
            from pallet.engine.volumes import VolumeStore

            self._volumes = VolumeStore.open(self.ctx.root)
        return self._volumes

    def close(self) -> None:
        for store in (self._engine, self._images, self._volumes):
            if store is not None:
                store.close()


def _container(stores: _Stores, name: str) -> dict[str, object]:
    from pallet.engine.containers.inspection import inspect_container

    engine = stores.engine()
    record = engine.get(name)
    return inspect_container(
        record,
        engine.document(record),
        bundle=engine.layout.bundle(record.id),
        run_dir=engine.layout.run_dir(record.id),
    )


def _image(stores: _Stores, name: str) -> dict[str, object]:
    from pallet.cli.images import inspect_image

    return inspect_image(stores.images(), name)


def _volume(stores: _Stores, name: str) -> dict[str, object]:
    store = stores.volumes()
    if store is None:
        raise NotFound(f"no such volume: {name}")
    return store.get(name).to_inspect()


_FINDERS: dict[str, Callable[[_Stores, str], dict[str, object]]] = {
    "container": _container,
    "image": _image,
    "volume": _volume,
}


def _run(ctx: Context, args: Namespace) -> int:
    kinds = (args.type,) if args.type else KINDS
    found: list[dict[str, object]] = []
    failed = False
    stores = _Stores(ctx)
    try:
        for name in args.names:
            for kind in kinds:
                try:
                    found.append(_FINDERS[kind](stores, name))
                    break
                except NotFound:
                    continue
            else:
                failed = True
                what = args.type or "object"
                ctx.err.write(f"Error: No such {what}: {name}\n")
    finally:
        stores.close()
    if found or not args.format:  # docker prints "[]" when it found nothing
        print_inspect(ctx.out, found, args.format)
    return 1 if failed else 0


def configure_inspect(parser: FlagParser) -> None:
    parser.add_argument("names", nargs="+", metavar="NAME|ID")
    parser.add_argument("-f", "--format", help="a Go template such as '{{.Id}}', or 'json'")
    parser.add_argument("--type", choices=KINDS, help="only this kind of object")
    parser.set_defaults(run=_run)
