"""Accept pallet's forwarded traffic in docker's ``ip filter`` table, by docker's own sanctioned way.

In nftables a packet must be accepted by every base chain at a hook. When
dockerd enables forwarding it sets the iptables(-nft) ``FORWARD`` policy to
DROP, so pallet's own accept (in ``inet pallet-<tag>``) is not enough: its
containers lose outbound NAT and published ports whenever docker runs.
Docker documents ``DOCKER-USER`` as the chain for rules of others, evaluated
before its own; podman's netavark uses it the same way. So, when
``ip filter`` has a ``DOCKER-USER`` chain, or a ``FORWARD`` chain with a
DROP policy (then at its top), pallet inserts per bridge of a non-internal
network (an internal one must stay without a way out)::

    -i <bridge> -j ACCEPT                                   what leaves the bridge
    -o <bridge> -m conntrack --ctstate RELATED,ESTABLISHED  its answers
    -o <bridge> -m conntrack --ctstate DNAT                 published ports

each with the comment ``pallet:<tag>:<bridge>``, and removes exactly the
rules carrying its own comment whose bridge it no longer wants, and those of
any root whose bridge no longer exists (a root deleted without ``network
rm``). Any other rule, chain or policy is never touched. pallet's own table still
drops what isolation forbids (a packet needs every table's accept).

They are written with ``iptables-nft-restore --noflush`` (one atomic batch)
and read with ``iptables-nft-save``, not with ``nft``: dockerd drives the
table through iptables-nft, and a native ``ct`` expression added by ``nft``
makes iptables-nft call the whole table "incompatible" and refuse to list
it — docker's own rule management would break. One read per call; called
when a network is set up, removed, and at the reconcile (dockerd recreates
``DOCKER-USER`` on start but keeps its rules). Per container run only
``target`` is asked (two nfnetlink round trips, no process): the driver
syncs again when it differs from what the network was set up with, so a
dockerd started after pallet is followed.
Without iptables-nft nothing drives such a table through iptables: nothing
to do.
"""

from __future__ import annotations

import os
import struct

from pallet.errors import NotFound, Unknown
from pallet.network.netlink import Netlink, decode_attrs, encode_attrs
from pallet.network.nft import run

__all__ = ["apply", "plan", "read", "sync", "target"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

_DIRS = ("/usr/sbin", "/sbin", "/usr/bin")
USER_CHAIN = "DOCKER-USER"
PREFIX = "pallet:"


# nfnetlink (linux/netfilter/nfnetlink.h, nf_tables.h)
_NFGENMSG = struct.Struct("=BBH")  # family, version, resource id
_GETCHAIN = (10 << 8) | 4  # NFNL_SUBSYS_NFTABLES, NFT_MSG_GETCHAIN
_NFPROTO_IPV4 = 2
_CHAIN_TABLE, _CHAIN_NAME, _CHAIN_POLICY = 1, 3, 5
_NF_DROP = 0


def _tool(name: str) -> str:
    for directory in _DIRS:
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK):
            return path
    return ""


def _specs(chain: str, comment: str, bridge: str) -> list[str]:
    """A bridge's rules as ``iptables-nft-save`` prints them (so what is there compares equal)."""
    tail = f'-m comment --comment "{comment}" -j ACCEPT'
    return [
        f"-A {chain} -i {bridge} {tail}",
        f"-A {chain} -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED {tail}",
        f"-A {chain} -o {bridge} -m conntrack --ctstate DNAT {tail}",
    ]


def plan(saved: str, tag: str, bridges: Mapping[str, bool], links: Collection[str]) -> str:
    """The ``iptables-nft-restore --noflush`` batch that makes pallet's rules in ``saved`` (the
    ``filter`` table as ``iptables-nft-save -t filter`` prints it) what ``bridges`` (name ->
    internal) needs; "" when nothing is to change. Only rules with pallet's comment are deleted:
    this root's that ``bridges`` does not want, and any root's whose bridge is not among ``links``
    (a root removed without ``network rm``: its bridge is gone, the rule could only ever match a
    namesake made later)."""
    # ":CHAIN POLICY [packets:bytes]" lines; no ``re``: the network's set-up is on the run path
    policies = dict(line[1:].split()[:2] for line in saved.splitlines() if line.startswith(":"))
    if USER_CHAIN in policies:
        chain = USER_CHAIN
    elif policies.get("FORWARD") == "DROP":
        chain = "FORWARD"
    else:
        chain = ""
    wanted: list[str] = []
    if chain:
        for bridge, internal in sorted(bridges.items()):
            if not internal:
                wanted += _specs(chain, f"{PREFIX}{tag}:{bridge}", bridge)
    ours, stale = [], []
    for line in saved.splitlines():
        comment = line.partition(f'--comment "{PREFIX}')[2].partition('"')[0]  # "<tag>:<bridge>"
        if not line.startswith("-A ") or ":" not in comment:
            continue
        owner, _, bridge = comment.partition(":")
        if owner == tag:
            ours.append(line)
        elif bridge not in links:
            stale.append(line)
    deletions = [f"-D {line[3:]}" for line in ours if line not in wanted]
    deletions += [f"-D {line[3:]}" for line in stale]
    # -I puts each at the top: inserted in reverse, they read in order
    insertions = [f"-I {line[3:]}" for line in reversed(wanted) if line not in ours]
    if not deletions and not insertions:
        return ""
    return "*filter\n" + "".join(f"{line}\n" for line in deletions + insertions) + "COMMIT\n"


def target() -> str:
    """The chain pallet's rules belong in now, asked of the kernel: ``DOCKER-USER`` when it exists,
    ``FORWARD`` when ``ip filter FORWARD`` drops by policy, else ""."""

    def policy(nl: Netlink, chain: str) -> int | None:
        """The chain's policy (-1 for a chain without a hook), None when it does not exist."""
        payload = _NFGENMSG.pack(_NFPROTO_IPV4, 0, 0) + encode_attrs(
            [(_CHAIN_TABLE, b"filter\0"), (_CHAIN_NAME, chain.encode() + b"\0")]
        )
        try:
            answers = nl.request(_GETCHAIN, 0, payload, f"ip filter chain {chain}")
        except NotFound:
            return None
        for answer in answers:
            attrs = decode_attrs(answer.payload[_NFGENMSG.size :])
            if _CHAIN_POLICY in attrs:
                return int(struct.unpack(">I", attrs[_CHAIN_POLICY])[0])
            return -1
        return None

    with Netlink.netfilter() as nl:
        if policy(nl, USER_CHAIN) is not None:
            return USER_CHAIN
        return "FORWARD" if policy(nl, "FORWARD") == _NF_DROP else ""


def read() -> str:
    """The ``filter`` table as ``iptables-nft-save`` prints it; "" without iptables-nft."""
    save = _tool("iptables-nft-save")
    if not save:
        return ""
    code, out, err = run([save, "-t", "filter"], b"")
    if code != 0:
        raise Unknown(f"iptables-nft-save could not list the filter table: {err}")
    return out


def apply(batch: str) -> None:
    """Run ``batch`` as one ``iptables-nft-restore --noflush`` transaction."""
    if not batch:
        return
    restore = _tool("iptables-nft-restore")
    if not restore:
        raise Unknown("iptables-nft-restore is not installed: cannot accept pallet's traffic in FORWARD")
    code, _, err = run([restore, "--noflush", "-w"], batch.encode())
    if code != 0:
        raise Unknown(f"iptables-nft-restore refused pallet's rules for docker's DOCKER-USER chain: {err}")


def sync(tag: str, bridges: Mapping[str, bool]) -> None:
    """Make pallet's rules in docker's ``filter`` table what ``bridges`` needs. Idempotent.

    Another root (or dockerd) may change the table between the read and the
    batch, so a refused batch is planned again from a new read, a few times.
    """
    for attempt in range(3):
        saved = read()
        if not saved:
            return
        with Netlink.open() as nl:
            links = {link.name for link in nl.links()}
        try:
            apply(plan(saved, tag, bridges, links))
            return
        except Unknown:
            if attempt == 2:
                raise
