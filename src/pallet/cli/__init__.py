"""The `pallet` command: docker's verbs and flags, daemonless."""
