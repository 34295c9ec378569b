"""``pallet inspect``: any object by name or id, as ``docker inspect`` looks it up.

Each name is tried as a container, then an image, a network, a volume
(docker's order; ``--type`` keeps one kind). The first kind that knows the name answers; a name no kind
knows is ``Error: No such object: NAME`` on stderr and exit status 1, and the
others are still printed (``[]`` when none was found, as docker does). The stores are opened on first need, and the volume
store only if it exists (inspect never creates one).
"""

from __future__ import annotations

from pallet.cli.output import print_inspect
from pallet.errors import NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pallet.cli.context import Context
    from pallet.cli.flags import FlagParser, Namespace
    from pallet.engine.service import Service
    from pallet.image.store import ImageStore

__all__ = ["configure_inspect"]

KINDS = ("container", "image", "network", "volume")


class _Stores:
    """The engine and image store of one ``inspect``, opened on first use, closed together."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._service: Service | None = None
        self._images: ImageStore | None = None

    def service(self) -> Service:
        if self._service is None:
            from pallet.engine.service import Service

            self._service = Service.open(self.ctx.root, self.ctx.run_root, leave_open=self.ctx.exits_after)
        return self._service

    def images(self) -> ImageStore:
        if self._images is None:
            self._images = self.ctx.image_store()
        return self._images

    def close(self) -> None:
        for store in (self._service, self._images):
            if store is not None:
                store.close()


def _container(stores: _Stores, name: str) -> dict[str, object]:
    return stores.service().inspect(name)


def _image(stores: _Stores, name: str) -> dict[str, object]:
    from pallet.engine.service import inspect_image

    return inspect_image(stores.images(), name)


def _network(stores: _Stores, name: str) -> dict[str, object]:
    return stores.service().network_inspect(name)


def _volume(stores: _Stores, name: str) -> dict[str, object]:
    return stores.service().volume(name).to_inspect()


_FINDERS: dict[str, Callable[[_Stores, str], dict[str, object]]] = {
    "container": _container,
    "image": _image,
    "network": _network,
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
