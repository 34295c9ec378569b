"""The registry integration tests import their sibling test kits (``server_process``,
``client_fixtures``) by name; under ``--import-mode=importlib`` pytest does not put
this directory on ``sys.path``, so this conftest (imported before the tests) does.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
