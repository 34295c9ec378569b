"""nftables batches: only pallet's table is named, removals are exact and idempotent, chains precede maps."""

from __future__ import annotations

import re

from pallet.network import nft
from pallet.network.store import PortMapping

T = "pallet-test1"
NET = nft.NetworkRules(id="0123456789abcdef", bridge="br-x", subnet="10.5.0.0/24")
INTERNAL = nft.NetworkRules(id="fedcba9876543210", bridge="br-y", subnet="10.6.0.0/24", internal=True)
PORTS = nft.PortRules(
    id="aaaabbbbccccdddd",
    ip="10.5.0.2",
    ports=[
        PortMapping(host_port=8080, container_port=80),
        PortMapping(host_ip="127.0.0.1", host_port=5353, container_port=53, protocol="udp"),
    ],
)


def commands(batch: str) -> list[str]:
    return [line for line in batch.splitlines() if line]


def every_batch() -> list[str]:
    return [
        nft.table_batch(T), nft.table_remove_batch(T), nft.network_add_batch(T, NET),
        nft.network_remove_batch(T, NET), nft.ports_add_batch(T, PORTS), nft.ports_remove_batch(T, PORTS),
        nft.rebuild_batch(T, [NET, INTERNAL], [PORTS]),
    ]  # fmt: skip


def test_every_command_names_pallets_table_and_nothing_is_flushed_but_its_chains() -> None:
    for batch in every_batch():
        for line in commands(batch):
            assert re.match(
                r"^(add|delete|flush) (table|chain|map|set|rule|element) inet pallet-test1\b", line
            ), line
            assert not line.startswith(("flush ruleset", "flush table")), line


def test_chains_come_before_maps_in_a_composed_batch() -> None:
    lines = commands(nft.compose(nft.table_batch(T), nft.network_add_batch(T, NET)))
    first_map = min(i for i, line in enumerate(lines) if line.startswith("add map"))
    last_chain = max(i for i, line in enumerate(lines) if line.startswith("add chain"))
    assert last_chain < first_map
    assert lines.index('add rule inet pallet-test1 n-0123456789ab-from oifname "br-x" accept') < lines.index(
        "add rule inet pallet-test1 n-0123456789ab-from accept"
    )


def test_a_network_masquerades_out_and_isolates_other_bridges() -> None:
    batch = nft.network_add_batch(T, NET)
    assert 'add rule inet pallet-test1 n-0123456789ab-out oifname != "br-x" masquerade' in batch
    assert "add rule inet pallet-test1 n-0123456789ab-from oifname @bridges drop" in batch
    assert "add element inet pallet-test1 from_subnet { 10.5.0.0/24 : jump n-0123456789ab-out }" in batch


def test_an_internal_network_has_no_masquerade_and_drops_what_leaves() -> None:
    batch = nft.network_add_batch(T, INTERNAL)
    assert "from_subnet" not in batch
    assert "masquerade\n" not in batch.replace("127.0.0.0/8, 10.6.0.0/24 } masquerade", "")
    assert "add rule inet pallet-test1 n-fedcba987654-from drop" in batch


def test_published_ports_dnat_by_key_and_removal_deletes_exactly_those_keys() -> None:
    added = nft.ports_add_batch(T, PORTS)
    assert "add rule inet pallet-test1 c-aaaabbbbcccc tcp dport 8080 dnat ip to 10.5.0.2:80" in added
    assert (
        "add rule inet pallet-test1 c-aaaabbbbcccc ip daddr 127.0.0.1 udp dport 5353 dnat ip to 10.5.0.2:53"
        in added
    )
    assert "add element inet pallet-test1 ports { 0.0.0.0/0 . tcp . 8080 : jump c-aaaabbbbcccc }" in added
    removed = commands(nft.ports_remove_batch(T, PORTS))
    assert "delete element inet pallet-test1 ports { 0.0.0.0/0 . tcp . 8080 }" in removed
    assert "delete element inet pallet-test1 ports { 127.0.0.1 . udp . 5353 }" in removed
    assert removed[-1] == "delete chain inet pallet-test1 c-aaaabbbbcccc"
    # idempotent: each deleted element is added first in the same transaction
    for i, line in enumerate(removed):
        if line.startswith("delete element"):
            assert removed[i - 1].startswith("add element")


def test_no_ports_no_batch_and_the_last_network_takes_the_table() -> None:
    assert nft.ports_add_batch(T, nft.PortRules(id="a" * 12, ip="10.5.0.2", ports=[])) == ""
    assert nft.rebuild_batch(T, [], []) == "add table inet pallet-test1\ndelete table inet pallet-test1\n"


def test_a_dual_stack_network_masquerades_its_ipv6_subnet_too() -> None:
    dual = nft.NetworkRules(id="0123456789abcdef", bridge="br-x", subnet="10.5.0.0/24", subnet6="fd00:5::/64")
    batch = nft.network_add_batch(T, dual)
    assert "add element inet pallet-test1 from_subnet6 { fd00:5::/64 : jump n-0123456789ab-out }" in batch
    assert "add rule inet pallet-test1 postrouting ip6 saddr vmap @from_subnet6" in nft.table_batch(T)
    internal = nft.NetworkRules(
        id="0123456789abcdef", bridge="br-x", subnet="10.5.0.0/24", subnet6="fd00:5::/64", internal=True
    )
    assert "from_subnet6" not in nft.network_add_batch(T, internal)
