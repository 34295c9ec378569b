"""Test roots and their networks: a pool of subnets of their own, and removal of all they made.

Every container an engine test runs is on its root's default network, whose
bridge (``pallet-<tag>``), nftables table (``pallet-<tag>``) and subnet are
the host's: a fixture must remove them, even when the test failed.

- ``use_test_pools(root)`` writes ``<root>/config.toml`` so the root's
  networks take /24s of 10.240.0.0/14 (checked against the host's routes
  by the driver), leaving docker's pools to the host's own engines.
- ``remove_networks(root, run_root)`` removes every endpoint, namespace
  file, veth, resolver, bridge and the nftables table of the root (what
  ``rm -f`` of its containers and ``network rm`` of its networks do, forced).
  Idempotent; a root that never made a network is left alone.
"""

from __future__ import annotations

import os

__all__ = ["TEST_POOLS", "remove_networks", "use_test_pools"]

#: the root configuration that keeps test roots' networks out of docker's default pools
TEST_POOLS = '[[default-address-pools]]\nbase = "10.240.0.0/14"\nsize = 24\n'


def use_test_pools(root: str | os.PathLike[str]) -> None:
    """Make the test root's networks take their subnets from ``TEST_POOLS`` (keeps other keys)."""
    path = os.path.join(os.fspath(root), "config.toml")
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    if "default-address-pools" not in text:
        with open(path, "w") as f:
            f.write(TEST_POOLS + ("\n" + text if text else ""))


def remove_networks(root: str | os.PathLike[str], run_root: str | os.PathLike[str] | None) -> None:
    """Remove what the root's networks hold in the kernel and the run dir (see the module docstring).

    ``run_root`` None (a fixture that does not know it): the kernel's part only (endpoints' veths,
    bridges, the table); the run dir's namespace files and resolvers are its owner's to remove.
    """
    root = os.fspath(root)
    run_root = os.fspath(run_root) if run_root is not None else os.path.join(root, ".gone-run-dir")
    from pallet.network.driver import root_tag

    if not os.path.exists(os.path.join(root, "pallet.db")):
        _remove_by_name(root_tag(root))
        return
    from pallet.database import Database
    from pallet.network import resolver
    from pallet.network.driver import Driver

    db = Database.at(root)
    try:
        if db.version("network"):
            run_dir = os.path.join(run_root, "network")
            driver = Driver(db, run_dir=run_dir, tag=root_tag(root))
            driver.reconcile([])
            for network in driver.store.networks():
                driver.remove_network(network.id)
            for short in resolver.resolver_networks(run_dir):
                resolver.stop(run_dir, short)
    finally:
        db.close()
    _remove_by_name(root_tag(root))


def _remove_by_name(tag: str) -> None:
    """What the root's names alone find in the kernel, whatever its database says (a test that rewrote
    the database, as the old-layout tests do, leaves rows that no longer name them): the default
    network's bridge, the nftables table, and its accept rules in docker's filter table."""
    from pallet.network import forward_policy, nft
    from pallet.network.netlink import Netlink

    with Netlink.open() as nl:
        nl.delete_link(f"pallet-{tag[:8]}")
    nft.apply(nft.table_remove_batch(nft.table_name(tag)))
    forward_policy.sync(tag, {})
