"""Remap decisions without root: subordinate ranges, the first free range, the spec's user namespace."""

from __future__ import annotations

import pytest

from pallet.engine.spec.generate import new_spec
from pallet.engine.userns import Remap, _first_free, check_userns_mode, remap_spec_option, subordinate_ranges
from pallet.errors import InvalidArgument
from pallet.oci.runtime_spec import IDMapping, Linux

SUBUID = "alice:100000:65536\n1001:300000:1000\nbob:165536:65536\nbroken line\ncarol:x:5\n"


def test_ranges_are_found_by_name_or_uid() -> None:
    assert subordinate_ranges(SUBUID, ["alice", "1000"]) == [(100000, 65536)]
    assert subordinate_ranges(SUBUID, ["dave", "1001"]) == [(300000, 1000)]
    assert subordinate_ranges(SUBUID, ["carol"]) == []


def test_the_default_users_range_starts_past_every_range() -> None:
    assert _first_free("") == 100000
    assert _first_free(SUBUID) == 301000


def test_userns_modes() -> None:
    assert [check_userns_mode(m) for m in ("", "host", "remap")] == ["", "host", "remap"]
    with pytest.raises(InvalidArgument, match='invalid USER mode "keep-id"'):
        check_userns_mode("keep-id")


def test_the_spec_gets_a_user_namespace_and_ping_keeps_the_containers_groups() -> None:
    remap = Remap(user="u", uid_start=200000, uid_count=65536, gid_start=300000, gid_count=1000)
    spec = new_spec("rootfs")
    assert spec.linux is not None
    spec = spec.replace(linux=spec.linux.replace(sysctl={"net.ipv4.ping_group_range": "0 2147483647"}))
    linux = remap_spec_option(remap)(spec).linux
    assert isinstance(linux, Linux)
    assert "user" in [n.type for n in linux.namespaces]
    assert linux.uid_mappings == (IDMapping(container_id=0, host_id=200000, size=65536),)
    assert linux.gid_mappings == (IDMapping(container_id=0, host_id=300000, size=1000),)
    assert linux.sysctl == {"net.ipv4.ping_group_range": "0 999"}
