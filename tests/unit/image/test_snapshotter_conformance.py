"""Both snapshot drivers pass the one conformance suite (``pallet.testing.snapshotters``).

Without root, what needs a real mount (an overlay to read, a deletion to
whiteout, a read-only mount to write into) is skipped; with root every check
runs against kernel mounts, unmounted after each check even when it fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pallet.image.snapshots import COPY, OVERLAY, detect_driver, open_snapshotter
from pallet.testing.snapshotters import CHECKS, SnapshotterCase


@pytest.fixture(params=[OVERLAY, COPY])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SnapshotterCase]:
    driver: str = request.param
    if driver == OVERLAY and detect_driver(tmp_path) != OVERLAY and _root():
        pytest.skip("overlayfs cannot be mounted here")
    with SnapshotterCase(tmp_path, lambda root, db: open_snapshotter(root, db, driver)) as c:
        yield c


def _root() -> bool:
    import os

    return os.geteuid() == 0


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_snapshotter_conformance(case: SnapshotterCase, check: Callable[[SnapshotterCase], None]) -> None:
    check(case)
