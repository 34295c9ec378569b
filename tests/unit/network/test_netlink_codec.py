"""rtnetlink messages and attributes: encode then decode gives back what went in; the kernel's layout."""

from __future__ import annotations

import socket
import struct
from errno import EEXIST, ENODEV, EPERM

from hypothesis import given
from hypothesis import strategies as st

from pallet.errors import AlreadyExists, NotFound, SystemError_
from pallet.network import netlink as nl

attr_types = st.integers(min_value=0, max_value=0x3FFF)
flat_attrs = st.lists(st.tuples(attr_types, st.binary(max_size=64)), max_size=8)


@given(flat_attrs)
def test_attributes_round_trip(attrs: list[tuple[int, bytes]]) -> None:
    encoded = nl.encode_attrs(attrs)
    assert len(encoded) % 4 == 0
    assert nl.decode_attrs(encoded) == dict(attrs)


@given(st.lists(st.tuples(attr_types, flat_attrs), max_size=4))
def test_nested_attributes_decode_level_by_level(nested: list[tuple[int, list[tuple[int, bytes]]]]) -> None:
    encoded = nl.encode_attrs([(kind, list(inner)) for kind, inner in nested])
    outer = nl.decode_attrs(encoded)
    assert set(outer) == {kind for kind, _ in nested}
    for kind, inner in nested:
        if [k for k, _ in nested].count(kind) == 1:
            assert nl.decode_attrs(outer[kind]) == dict(inner)


messages = st.builds(
    nl.Message,
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.binary(max_size=200).map(lambda b: b + bytes(-len(b) % 4)),
)


@given(st.lists(messages, max_size=6))
def test_messages_of_one_datagram_round_trip(batch: list[nl.Message]) -> None:
    data = b"".join(nl.encode_message(m) for m in batch)
    assert nl.decode_messages(data) == batch


@given(st.binary(max_size=300))
def test_decoding_garbage_never_raises(data: bytes) -> None:
    nl.decode_messages(data)
    nl.decode_attrs(data)


def test_header_layout_is_the_kernels() -> None:
    data = nl.encode_message(
        nl.Message(nl.RTM_NEWLINK, nl.NLM_F_REQUEST | nl.NLM_F_ACK, 7, b"\x01\x02"), pid=0
    )
    assert struct.unpack("=IHHII", data[:16]) == (18, 16, 5, 7, 0)
    assert len(data) == 20  # padded to 4 bytes


def _link_payload(index: int, name: str, mtu: int, mac: bytes, master: int, kind: bytes) -> bytes:
    header = struct.pack("=BxHiII", 0, 1, index, nl.IFF_UP, 0)
    return header + nl.encode_attrs([
        (nl.IFLA_IFNAME, name.encode() + b"\0"),
        (nl.IFLA_MTU, struct.pack("=I", mtu)),
        (nl.IFLA_ADDRESS, mac),
        (nl.IFLA_MASTER, struct.pack("=I", master)),
        (nl.IFLA_LINKINFO, [(nl.IFLA_INFO_KIND, kind + b"\0")]),
    ])  # fmt: skip


@given(
    st.integers(1, 2**31 - 1),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=15),
    st.integers(68, 65535),
    st.binary(min_size=6, max_size=6),
    st.integers(0, 2**31 - 1),
    st.sampled_from([b"bridge", b"veth", b"dummy"]),
)
def test_link_messages_parse(index: int, name: str, mtu: int, mac: bytes, master: int, kind: bytes) -> None:
    link = nl.parse_link(_link_payload(index, name, mtu, mac, master, kind))
    assert (link.index, link.name, link.mtu, link.master, link.kind) == (
        index,
        name,
        mtu,
        master,
        kind.decode(),
    )
    assert link.mac == ":".join(f"{b:02x}" for b in mac)
    assert link.up


@given(st.ip_addresses(v=4), st.integers(0, 32), st.integers(1, 1000))
def test_address_messages_parse(address: object, prefixlen: int, index: int) -> None:
    raw = socket.inet_aton(str(address))
    payload = struct.pack("=BBBBI", socket.AF_INET, prefixlen, 0, 0, index) + nl.encode_attrs(
        [(nl.IFA_LOCAL, raw)]
    )
    parsed = nl.parse_address(payload)
    assert (parsed.address, parsed.prefixlen, parsed.index) == (str(address), prefixlen, index)


def test_errors_are_named_by_errno() -> None:
    assert isinstance(nl.error_for(EEXIST, "create bridge b"), AlreadyExists)
    assert isinstance(nl.error_for(ENODEV, "delete link x"), NotFound)
    error = nl.error_for(EPERM, "create bridge b", "kernel says no")
    assert isinstance(error, SystemError_)
    assert error.errno == EPERM
    assert str(error) == "create bridge b (kernel says no): operation not permitted"


def test_extended_ack_text_is_read() -> None:
    tlv = nl.encode_attrs([(nl.NLMSGERR_ATTR_MSG, b"Invalid MTU\0")])
    payload = struct.pack("=i", -22) + bytes(16) + tlv
    assert nl.ack_detail(nl.Message(nl.NLMSG_ERROR, nl.NLM_F_ACK_TLVS, 1, payload)) == "Invalid MTU"
