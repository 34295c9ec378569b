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
rules carrying its own comment prefix whose bridge it no longer wants. Any
other rule, chain or policy is never touched. pallet's own table still
drops what isolation forbids (a packet needs every table's accept).

They are written with ``iptables-nft-restore --noflush`` (one atomic batch)
and read with ``iptables-nft-save``, not with ``nft``: dockerd drives the
table through iptables-nft, and a native ``ct`` expression added by ``nft``
makes iptables-nft call the whole table "incompatible" and refuse to list
it — docker's own rule management would break. One read per call; called
when a network is set up, removed, and at the reconcile (dockerd recreates
``DOCKER-USER`` on start but keeps its rules), never per container run.
Without iptables-nft nothing drives such a table through iptables: nothing
to do.
"""

from __future__ import annotations

import os
import re

from pallet.errors import Unknown
from pallet.network.nft import run

__all__ = ["apply", "plan", "read", "sync"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

_DIRS = ("/usr/sbin", "/sbin", "/usr/bin")
USER_CHAIN = "DOCKER-USER"


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


def plan(saved: str, tag: str, bridges: Mapping[str, bool]) -> str:
    """The ``iptables-nft-restore --noflush`` batch that makes pallet's rules in ``saved`` (the
    ``filter`` table as ``iptables-nft-save -t filter`` prints it) what ``bridges`` (name ->
    internal) needs; "" when nothing is to change. Only lines with pallet's comment are deleted."""
    policies = dict(re.findall(r"^:(\S+) (\S+)", saved, flags=re.MULTILINE))
    if USER_CHAIN in policies:
        chain = USER_CHAIN
    elif policies.get("FORWARD") == "DROP":
        chain = "FORWARD"
    else:
        chain = ""
    prefix = f"pallet:{tag}:"
    ours = [line for line in saved.splitlines() if line.startswith("-A ") and f'"{prefix}' in line]
    wanted: list[str] = []
    if chain:
        for bridge, internal in sorted(bridges.items()):
            if not internal:
                wanted += _specs(chain, prefix + bridge, bridge)
    deletions = [f"-D {line[3:]}" for line in ours if line not in wanted]
    # -I puts each at the top: inserted in reverse, they read in order
    insertions = [f"-I {line[3:]}" for line in reversed(wanted) if line not in ours]
    if not deletions and not insertions:
        return ""
    return "*filter\n" + "".join(f"{line}\n" for line in deletions + insertions) + "COMMIT\n"


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
    """Make pallet's rules in docker's ``filter`` table what ``bridges`` needs. Idempotent."""
    saved = read()
    if saved:
        apply(plan(saved, tag, bridges))
