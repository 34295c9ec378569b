"""Guards for the host the whole suite runs on."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

import pytest


def _dev_null() -> tuple[int, int, int, int]:
    st = os.stat("/dev/null")
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), st.st_rdev


@pytest.fixture(autouse=True, scope="session")
def host_dev_null_stays_the_hosts() -> Iterator[None]:
    """A runtime that hands a process's stdio to its user (crun 1.8's exec) or makes device nodes in a
    /dev bound from the host changes the host's own /dev/null: the suite fails if anything did."""
    before = _dev_null()
    yield
    after = _dev_null()
    assert after == before, f"the host's /dev/null changed during the tests: {before} -> {after}"
