"""Fixtures for these tests: the busybox image store roots of the test kit."""

from pallet.testing.busybox import busybox_root, busybox_store_root

__all__ = ["busybox_root", "busybox_store_root"]
