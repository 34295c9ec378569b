"""Fixtures for these tests: the busybox image store roots of the test kit, and the API service.

``api`` is the API tests' fixture (``tests/integration/api/conftest.py``,
loaded by path: test directories are not packages): ``pallet system
service`` on a private root holding ``busybox:latest``, removed with
everything it made at the end.
"""

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from pallet.testing.busybox import busybox_root, busybox_store_root

_spec = importlib.util.spec_from_file_location(
    "api_fixtures", Path(__file__).resolve().parents[1] / "integration" / "api" / "conftest.py"
)
assert _spec is not None
assert _spec.loader is not None
_api_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_api_fixtures)
api = _api_fixtures.api
ApiService = _api_fixtures.ApiService

__all__ = ["ApiService", "api", "api_kit", "busybox_root", "busybox_store_root"]


@pytest.fixture(scope="session")
def api_kit() -> ModuleType:
    """The API tests' fixture module (``ApiService``, ``PalletEnv``), for fixtures of a wider scope."""
    return _api_fixtures
