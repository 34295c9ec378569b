"""forward_policy.plan: pallet's rules in docker's filter table, computed from iptables-nft-save's text."""

from __future__ import annotations

from pallet.network.forward_policy import plan

DOCKER = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A DOCKER-USER -i eth9 -j DROP
-A DOCKER-USER -o br1 -m comment --comment "pallet:other:br1" -j ACCEPT
COMMIT
"""


#: the interfaces that exist: br1 and b (this root's), another root's bridge "br2"
LINKS = {"br1", "b", "br2"}


def ours(chain: str, bridge: str, tag: str = "t") -> list[str]:
    tail = f'-m comment --comment "pallet:{tag}:{bridge}" -j ACCEPT'
    return [
        f"-A {chain} -i {bridge} {tail}",
        f"-A {chain} -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED {tail}",
        f"-A {chain} -o {bridge} -m conntrack --ctstate DNAT {tail}",
    ]


def with_lines(saved: str, lines: list[str]) -> str:
    return saved.replace("COMMIT\n", "".join(f"{line}\n" for line in lines) + "COMMIT\n")


def test_nothing_without_a_drop_policy_or_docker_user() -> None:
    plain = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
    assert plan(plain, "t", {"br1": False}, LINKS) == ""


def test_docker_user_gets_three_accepts_per_bridge_in_order() -> None:
    batch = plan(DOCKER, "t", {"br1": False}, LINKS)
    lines = batch.splitlines()
    assert lines[0] == "*filter"
    assert lines[-1] == "COMMIT"
    # inserted at the top one by one, in reverse: they then read in the order of ours()
    assert lines[1:-1] == [line.replace("-A ", "-I ", 1) for line in reversed(ours("DOCKER-USER", "br1"))]


def test_an_internal_network_gets_no_accept() -> None:
    assert plan(DOCKER, "t", {"br1": True}, LINKS) == ""


def test_only_a_drop_policy_puts_them_at_the_top_of_forward() -> None:
    saved = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
    assert all(
        line.startswith("-I FORWARD ") for line in plan(saved, "t", {"b": False}, LINKS).splitlines()[1:-1]
    )


def test_present_rules_change_nothing_and_stale_ones_go_but_never_others() -> None:
    current = with_lines(DOCKER, ours("DOCKER-USER", "br1") + ours("DOCKER-USER", "gone"))
    batch = plan(current, "t", {"br1": False}, LINKS)
    assert batch.splitlines()[1:-1] == [line.replace("-A ", "-D ", 1) for line in ours("DOCKER-USER", "gone")]
    assert plan(with_lines(DOCKER, ours("DOCKER-USER", "br1")), "t", {"br1": False}, LINKS) == ""
    # another root's rules and docker's are left alone even when nothing of ours is wanted
    assert "other" not in plan(current, "t", {}, LINKS)
    assert "eth9" not in plan(current, "t", {}, LINKS)


def test_an_incomplete_set_is_completed() -> None:
    current = with_lines(DOCKER, ours("DOCKER-USER", "br1")[:1])
    lines = plan(current, "t", {"br1": False}, LINKS).splitlines()[1:-1]
    assert len(lines) == 2
    assert all(line.startswith("-I DOCKER-USER -o br1") for line in lines)


def test_another_roots_rules_go_only_once_their_bridge_is_gone() -> None:
    current = with_lines(DOCKER, ours("DOCKER-USER", "br2", tag="other") + ours("DOCKER-USER", "x", "gone"))
    lines = plan(current, "t", {}, LINKS).splitlines()[1:-1]
    assert lines == [line.replace("-A ", "-D ", 1) for line in ours("DOCKER-USER", "x", "gone")]
