"""The test kit's leak check (``pallet.testing.hostnet.HostNet.leftovers``): what it pins on a test,
and what it leaves to other programs, on snapshots made by hand (no root, no kernel)."""

from __future__ import annotations

from pallet.testing.hostnet import HostNet, pallet_veth


def mine(kind: str, name: str) -> bool:
    """A test that made the bridge ``pa1`` and the table ``inet pallet-aa``, and runs under /tmp/t1."""
    if kind == "link":
        return name == "pa1"
    if kind == "orphan":
        return pallet_veth(name)
    if kind == "nft":
        return name == "inet pallet-aa"
    return "/tmp/t1" in name


BEFORE = HostNet(
    links={"lo": "", "eth0": "", "pa1": "", "vethdeadbeef001": "other0"},
    netns=frozenset({"x"}),
    tables={"inet pallet-aa": "chains\n", "ip filter": "docker\n"},
    processes={1: "init", 50: "dockerd"},
)


def test_an_unchanged_host_has_no_leftovers() -> None:
    assert BEFORE.leftovers(BEFORE, mine) == ([], [])


def test_what_the_test_made_is_its_own_and_the_rest_is_others() -> None:
    after = HostNet(
        links={
            "lo": "",
            "eth0": "",
            "pa1": "",
            "veth0123456789a": "pa1",  # on the test's bridge
            "vethfedcba98765": "",  # a pallet veth whose bridge went
            "docker9": "",  # someone else's
        },
        netns=frozenset({"x", "y"}),
        tables={"inet pallet-aa": "chains\nports\n", "ip filter": "docker\nmore\n"},
        processes={1: "init", 50: "dockerd", 77: "httpd -f [root /tmp/t1/root/overlay]", 78: "sleep 9"},
    )
    ours, others = after.leftovers(BEFORE, mine)
    assert ours == [
        "link veth0123456789a added",
        "link vethfedcba98765 added",
        "nft table inet pallet-aa changed",
        "process 77 'httpd -f [root /tmp/t1/root/overlay]'",
    ]
    assert others == [
        "link docker9 added",
        "link vethdeadbeef001 removed",
        "netns y added",
        "nft table ip filter changed",
        "process 78 'sleep 9'",
    ]


def test_pallet_veth_names() -> None:
    assert pallet_veth("veth0123456789a")
    assert not pallet_veth("veth1234567")  # docker's: 7 hex
    assert not pallet_veth("veth0123456789ab")
