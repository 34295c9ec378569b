"""Running ``pallet`` in-process in tests, and a fingerprint of a store to show a command changed nothing."""

from __future__ import annotations

import io
from pathlib import Path

from pallet.cli.main import main
from pallet.image.store import ImageStore

__all__ = ["Result", "run_pallet", "store_fingerprint"]


class Result:
    """What a command returned and printed."""

    def __init__(self, code: int, out: str, err: str, data: bytes) -> None:
        self.code = code
        self.out = out
        self.err = err
        self.data = data  # what went to stdout as bytes (save without -o)

    def __repr__(self) -> str:
        return f"Result(code={self.code}, out={self.out!r}, err={self.err!r})"


def run_pallet(root: Path, *args: str, stdin: bytes = b"") -> Result:
    """``pallet --root ROOT ARGS...`` in this process, with captured output."""
    out, err, data = io.StringIO(), io.StringIO(), io.BytesIO()
    code = main(["--root", str(root), *args], out=out, err=err, stdin=io.BytesIO(stdin), stdout_binary=data)
    return Result(code, out.getvalue(), err.getvalue(), data.getvalue())


def store_fingerprint(root: Path) -> tuple[list[tuple[str, tuple[str, ...]]], set[str]]:
    """The images with their names, and the blobs: equal before and after means the store is unchanged."""
    with ImageStore.open(root) as store:
        images = sorted((str(r.id), tuple(str(n) for n in r.references)) for r in store.list_images())
        blobs = {str(d) for d, _ in store.content.walk()}
    return images, blobs
