"""``python -m pallet.cli``: the same as the ``pallet`` command."""

from pallet.cli.main import run

run()
