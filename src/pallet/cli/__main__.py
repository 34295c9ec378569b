"""``python -m pallet.cli``: the same as the ``pallet`` command."""

import sys

from pallet.cli.main import main

sys.exit(main())
