"""A small rtnetlink client: links, addresses and routes over one ``AF_NETLINK`` socket, no subprocess.

What the network layer needs and nothing more (pyroute2 does everything and
costs ~215-230 ms to import here; this module ~0.4 ms, 1.2 ms with
``pallet.errors``). An attach over it (namespace, veth into it, hairpin,
links up, address, route) takes ~2 ms where the same ``ip`` commands take
~13 ms (``tests/integration/network/measure_attach.py``). Messages are encoded and
decoded with ``struct`` as ``linux/netlink.h``, ``linux/rtnetlink.h`` and
``linux/if_link.h`` lay them out::

    nlmsghdr   u32 len, u16 type, u16 flags, u32 seq, u32 pid         (16 bytes)
    ifinfomsg  u8 family, u8 pad, u16 type, i32 index, u32 flags, u32 change
    ifaddrmsg  u8 family, u8 prefixlen, u8 flags, u8 scope, u32 index
    rtmsg      u8 family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags
    rtattr     u16 len, u16 type, payload, padded to 4 bytes; nested attributes are rtattrs

Contracts:

- A socket belongs to the network namespace it was created in, for life:
  ``Netlink.open(netns=path)`` creates it inside ``path`` (``setns`` of the
  calling thread around the ``socket`` call only), so one process can drive
  the host and a container's namespace at once without entering either.
- Every request asks for an ack and waits for it: a call returns only once
  the kernel has applied it, and a refusal is raised as the pallet error of
  its errno (``EEXIST`` -> ``AlreadyExists``, ``ENODEV``/``ENOENT``/``ESRCH``
  -> ``NotFound``, any other -> ``SystemError_``), the message naming the
  operation and the interface (and the kernel's extended-ack text).
- Addresses and routes are added with ``NLM_F_REPLACE`` (adding what is
  already there succeeds); links are created with ``NLM_F_EXCL`` (a name taken
  is ``AlreadyExists``: the caller decides whether that is its own).

``_socket``, not ``socket``: the latter imports ``enum`` and ``selectors``
(~7 ms) for nothing this module uses.
"""

from __future__ import annotations

import _socket
import struct
from errno import EADDRNOTAVAIL, EEXIST, ENODEV, ENOENT, ESRCH

from pallet.errors import AlreadyExists, NotFound, PalletError, SystemError_

__all__ = [
    "Address",
    "Link",
    "Message",
    "Netlink",
    "Route",
    "decode_attrs",
    "decode_messages",
    "encode_attrs",
    "encode_message",
]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

# message types (linux/netlink.h, linux/rtnetlink.h)
NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_SETLINK = 19
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_DELROUTE = 25
RTM_GETROUTE = 26

# nlmsghdr flags
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400

# link attributes (linux/if_link.h)
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_MASTER = 10
IFLA_PROTINFO = 12
IFLA_BRPORT_MODE = 4
AF_BRIDGE = 7
IFLA_LINKINFO = 18
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
IFF_UP = 0x1
IFF_LOWER_UP = 0x10000

# address attributes (linux/if_addr.h)
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_BROADCAST = 4
IFA_F_NODAD = 0x02

# route attributes and values (linux/rtnetlink.h)
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_TABLE = 15
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RTPROT_STATIC = 4
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RTN_UNICAST = 1

NLA_F_NESTED = 0x8000
_NLA_TYPE_MASK = 0x3FFF

_HEADER = struct.Struct("=IHHII")
_ATTR = struct.Struct("=HH")
_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_ERROR = struct.Struct("=i")
_U32 = struct.Struct("=I")

_NETLINK_ROUTE = 0
_NETLINK_NETFILTER = 12
_SOL_NETLINK = 270
_NETLINK_CAP_ACK = 10
_NETLINK_EXT_ACK = 11
NLM_F_ACK_TLVS = 0x200
NLMSGERR_ATTR_MSG = 1


def _align(n: int) -> int:
    return (n + 3) & ~3


# --- encoding and decoding: pure functions, property-tested ---------------------------------------

#: an attribute value: raw bytes, or a nested list of attributes
Attr = tuple[int, "bytes | list[Attr]"]


def encode_attrs(attrs: Sequence[Attr]) -> bytes:
    """rtattrs, each padded to 4 bytes; a list value is a nested attribute (``NLA_F_NESTED`` set)."""
    out = bytearray()
    for kind, value in attrs:
        if isinstance(value, list):
            payload = encode_attrs(value)
            kind |= NLA_F_NESTED
        else:
            payload = value
        length = _ATTR.size + len(payload)
        out += _ATTR.pack(length, kind)
        out += payload
        out += bytes(_align(length) - length)
    return bytes(out)


def decode_attrs(data: bytes | memoryview) -> dict[int, bytes]:
    """rtattrs as ``{type: payload}`` (flags masked off; nested payloads are left to ``decode_attrs``).

    A truncated attribute ends the walk: the kernel never sends one, and a
    short read must not raise from deep inside a dump.
    """
    view = memoryview(data)
    attrs: dict[int, bytes] = {}
    offset = 0
    while offset + _ATTR.size <= len(view):
        length, kind = _ATTR.unpack_from(view, offset)
        if length < _ATTR.size or offset + length > len(view):
            break
        attrs[kind & _NLA_TYPE_MASK] = bytes(view[offset + _ATTR.size : offset + length])
        offset += _align(length)
    return attrs


class Message:
    """One netlink message: its type, flags, sequence number and payload (fixed header + attributes)."""

    __slots__ = ("flags", "payload", "seq", "type")

    def __init__(self, type: int, flags: int, seq: int, payload: bytes) -> None:
        self.type = type
        self.flags = flags
        self.seq = seq
        self.payload = payload

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and (self.type, self.flags, self.seq, self.payload) == (
            other.type, other.flags, other.seq, other.payload,
        )  # fmt: skip

    def __hash__(self) -> int:
        return hash((self.type, self.flags, self.seq, self.payload))

    def __repr__(self) -> str:
        return f"Message(type={self.type}, flags={self.flags:#x}, seq={self.seq}, {len(self.payload)} bytes)"


def encode_message(message: Message, pid: int = 0) -> bytes:
    """The message with its ``nlmsghdr``, padded to 4 bytes."""
    length = _HEADER.size + len(message.payload)
    return (
        _HEADER.pack(length, message.type, message.flags, message.seq, pid)
        + message.payload
        + bytes(_align(length) - length)
    )


def decode_messages(data: bytes | memoryview) -> list[Message]:
    """The messages of one datagram (the kernel packs a dump's messages several to a read)."""
    view = memoryview(data)
    out: list[Message] = []
    offset = 0
    while offset + _HEADER.size <= len(view):
        length, kind, flags, seq, _pid = _HEADER.unpack_from(view, offset)
        if length < _HEADER.size or offset + length > len(view):
            break
        out.append(Message(kind, flags, seq, bytes(view[offset + _HEADER.size : offset + length])))
        offset += _align(length)
    return out


def _ifinfo(index: int = 0, flags: int = 0, change: int = 0, family: int = 0) -> bytes:
    return _IFINFO.pack(family, 0, index, flags, change)


def _name(text: str) -> bytes:
    return text.encode() + b"\0"


def _mac(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.split(":"))


def _family_and_bytes(address: str) -> tuple[int, bytes]:
    if ":" in address:
        return _socket.AF_INET6, _socket.inet_pton(_socket.AF_INET6, address)
    return _socket.AF_INET, _socket.inet_pton(_socket.AF_INET, address)


def _text_address(family: int, raw: bytes) -> str:
    return _socket.inet_ntop(family, raw)


# --- records ------------------------------------------------------------------------------------


class Link:
    """A network interface as the kernel lists it."""

    __slots__ = ("flags", "index", "kind", "mac", "master", "mtu", "name")

    def __init__(
        self, *, index: int, name: str, flags: int, mtu: int, mac: str, master: int, kind: str
    ) -> None:
        self.index = index
        self.name = name
        self.flags = flags
        self.mtu = mtu
        self.mac = mac
        self.master = master  # 0: no master
        self.kind = kind  # "bridge", "veth", ... "" for a plain device

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)

    def __repr__(self) -> str:
        return f"Link({self.index}, {self.name!r}, kind={self.kind!r}, master={self.master})"


class Address:
    """An address on an interface: ``address/prefixlen`` on ``index``."""

    __slots__ = ("address", "family", "index", "prefixlen")

    def __init__(self, *, family: int, address: str, prefixlen: int, index: int) -> None:
        self.family = family
        self.address = address
        self.prefixlen = prefixlen
        self.index = index

    def __repr__(self) -> str:
        return f"Address({self.address}/{self.prefixlen} on {self.index})"


class Route:
    """A route of the main table: ``dst/dst_len`` (``0.0.0.0/0``: default) via ``gateway`` out of ``oif``."""

    __slots__ = ("dst", "dst_len", "family", "gateway", "oif")

    def __init__(self, *, family: int, dst: str, dst_len: int, gateway: str, oif: int) -> None:
        self.family = family
        self.dst = dst
        self.dst_len = dst_len
        self.gateway = gateway
        self.oif = oif

    def __repr__(self) -> str:
        via = f" via {self.gateway}" if self.gateway else ""
        return f"Route({self.dst}/{self.dst_len}{via} dev {self.oif})"


def parse_link(payload: bytes) -> Link:
    _family, _type, index, flags, _change = _IFINFO.unpack_from(payload)
    attrs = decode_attrs(payload[_IFINFO.size :])
    kind = ""
    if IFLA_LINKINFO in attrs:
        info = decode_attrs(attrs[IFLA_LINKINFO])
        kind = info.get(IFLA_INFO_KIND, b"").rstrip(b"\0").decode()
    mtu = attrs.get(IFLA_MTU)
    master = attrs.get(IFLA_MASTER)
    return Link(
        index=index,
        name=attrs.get(IFLA_IFNAME, b"").rstrip(b"\0").decode(),
        flags=flags,
        mtu=_U32.unpack(mtu)[0] if mtu else 0,
        mac=":".join(f"{b:02x}" for b in attrs.get(IFLA_ADDRESS, b"")),
        master=_U32.unpack(master)[0] if master else 0,
        kind=kind,
    )


def parse_address(payload: bytes) -> Address:
    family, prefixlen, _flags, _scope, index = _IFADDR.unpack_from(payload)
    attrs = decode_attrs(payload[_IFADDR.size :])
    raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS, b"")
    return Address(family=family, address=_text_address(family, raw), prefixlen=prefixlen, index=index)


def parse_route(payload: bytes) -> Route:
    family, dst_len, _src_len, _tos, _table, _proto, _scope, _type, _flags = _RTMSG.unpack_from(payload)
    attrs = decode_attrs(payload[_RTMSG.size :])
    unspecified = "::" if family == _socket.AF_INET6 else "0.0.0.0"
    oif = attrs.get(RTA_OIF)
    return Route(
        family=family,
        dst=_text_address(family, attrs[RTA_DST]) if RTA_DST in attrs else unspecified,
        dst_len=dst_len,
        gateway=_text_address(family, attrs[RTA_GATEWAY]) if RTA_GATEWAY in attrs else "",
        oif=_U32.unpack(oif)[0] if oif else 0,
    )


def error_for(errno: int, what: str, detail: str = "") -> PalletError:
    """The pallet error of a netlink refusal of ``what``; ``detail`` is the kernel's extended ack text."""
    if detail:
        what = f"{what} ({detail})"
    if errno == EEXIST:
        return AlreadyExists(f"{what}: already exists")
    if errno in (ENODEV, ENOENT, ESRCH):
        return NotFound(f"{what}: no such device")
    return SystemError_(what, errno)


def ack_detail(message: Message) -> str:
    """The kernel's text in an error message's extended ack (``NETLINK_CAP_ACK``: the request's header only)."""
    if not message.flags & NLM_F_ACK_TLVS:
        return ""
    tlvs = decode_attrs(message.payload[_ERROR.size + _HEADER.size :])
    return tlvs.get(NLMSGERR_ATTR_MSG, b"").rstrip(b"\0").decode(errors="replace")


# --- the socket ---------------------------------------------------------------------------------


class Netlink:
    """An rtnetlink socket in one network namespace. Not thread-safe; close it (or use ``with``)."""

    def __init__(self, sock: _socket.socket) -> None:
        self._sock = sock
        self._seq = 0
        self._names: dict[str, int] = {}

    @classmethod
    def open(cls, netns: str | None = None) -> Netlink:
        """A socket in the caller's network namespace, or in the one bound at ``netns`` (a path)."""
        if netns is None:
            return cls(_open_socket())
        from pallet.network.netns import entered

        with entered(netns):
            return cls(_open_socket())

    @classmethod
    def netfilter(cls) -> Netlink:
        """An nfnetlink socket (nftables' own queries, ``forward_policy``) in the caller's namespace."""
        return cls(_open_socket(_NETLINK_NETFILTER))

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # the exchange

    def request(self, type: int, flags: int, payload: bytes, what: str) -> list[Message]:
        """Send one request and return its answers (a dump's messages, or none for an ack)."""
        self._seq += 1
        seq = self._seq
        self._sock.send(encode_message(Message(type, flags | NLM_F_REQUEST | NLM_F_ACK, seq, payload)))
        answers: list[Message] = []
        while True:
            data = self._sock.recv(65536)
            for message in decode_messages(data):
                if message.seq != seq:
                    continue  # a stale answer of an interrupted request
                if message.type == NLMSG_ERROR:
                    errno = -_ERROR.unpack_from(message.payload)[0]
                    if errno:
                        raise error_for(errno, what, ack_detail(message))
                    return answers  # the ack
                if message.type == NLMSG_DONE:
                    return answers
                answers.append(message)

    # links

    def links(self) -> list[Link]:
        return [parse_link(m.payload) for m in self.request(RTM_GETLINK, NLM_F_DUMP, _ifinfo(), "list links")]

    def link(self, name: str) -> Link:
        """The interface called ``name``; ``NotFound`` if there is none."""
        attrs = encode_attrs([(IFLA_IFNAME, _name(name))])
        answers = self.request(RTM_GETLINK, 0, _ifinfo() + attrs, f"link {name}")
        link = parse_link(answers[0].payload)
        self._names[name] = link.index
        return link

    def index(self, name: str) -> int:
        index = self._names.get(name)
        return index if index is not None else self.link(name).index

    def add_bridge(self, name: str, *, mtu: int = 0, mac: str = "", up: bool = True) -> None:
        attrs: list[Attr] = [(IFLA_IFNAME, _name(name)), (IFLA_LINKINFO, [(IFLA_INFO_KIND, b"bridge")])]
        if mtu:
            attrs.append((IFLA_MTU, _U32.pack(mtu)))
        if mac:
            attrs.append((IFLA_ADDRESS, _mac(mac)))
        flags = IFF_UP if up else 0
        payload = _ifinfo(flags=flags, change=flags) + encode_attrs(attrs)
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, payload, f"create bridge {name}")

    def add_veth(
        self,
        name: str,
        peer: str,
        *,
        peer_netns_fd: int = -1,
        peer_mac: str = "",
        mtu: int = 0,
        master: str = "",
        up: bool = True,
    ) -> None:
        """A veth pair: ``name`` here (enslaved to ``master``, up unless ``up`` is false), ``peer``
        created directly in the namespace open at ``peer_netns_fd`` (-1: here too), down.

        The peer cannot be brought up in the same request (the kernel answers
        ``ENOTCONN``): its namespace's own socket does that, with its address.
        """
        flags = IFF_UP if up else 0
        peer_attrs: list[Attr] = [(IFLA_IFNAME, _name(peer))]
        if peer_netns_fd >= 0:
            peer_attrs.append((IFLA_NET_NS_FD, _U32.pack(peer_netns_fd)))
        if peer_mac:
            peer_attrs.append((IFLA_ADDRESS, _mac(peer_mac)))
        if mtu:
            peer_attrs.append((IFLA_MTU, _U32.pack(mtu)))
        peer_payload = _ifinfo() + encode_attrs(peer_attrs)
        attrs: list[Attr] = [(IFLA_IFNAME, _name(name))]
        if mtu:
            attrs.append((IFLA_MTU, _U32.pack(mtu)))
        if master:
            attrs.append((IFLA_MASTER, _U32.pack(self.index(master))))
        # the peer is a raw ifinfomsg with its own attributes inside VETH_INFO_PEER
        attrs.append(
            (IFLA_LINKINFO, [(IFLA_INFO_KIND, b"veth"), (IFLA_INFO_DATA, [(VETH_INFO_PEER, peer_payload)])])
        )
        payload = _ifinfo(flags=flags, change=flags) + encode_attrs(attrs)
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, payload, f"create veth {name}")

    def set_link(
        self, name: str, *, up: bool | None = None, mtu: int = 0, mac: str = "", master: str | None = None
    ) -> None:
        """Change ``name``: up or down, MTU, MAC, master (``""``: none)."""
        attrs: list[Attr] = []
        if mtu:
            attrs.append((IFLA_MTU, _U32.pack(mtu)))
        if mac:
            attrs.append((IFLA_ADDRESS, _mac(mac)))
        if master is not None:
            attrs.append((IFLA_MASTER, _U32.pack(self.index(master) if master else 0)))
        flags = IFF_UP if up else 0
        change = IFF_UP if up is not None else 0
        payload = _ifinfo(index=self.index(name), flags=flags, change=change) + encode_attrs(attrs)
        self.request(RTM_NEWLINK, 0, payload, f"set link {name}")

    def set_hairpin(self, name: str, on: bool = True) -> None:
        """Hairpin mode of the bridge port ``name``: the bridge may send a frame back out of the port it
        came in by — what a container needs to reach its own published port through the host's address
        (br_netfilter DNATs it while bridging). ``bridge link set dev NAME hairpin on``."""
        attrs = encode_attrs([(IFLA_PROTINFO, [(IFLA_BRPORT_MODE, bytes([int(on)]))])])
        payload = _ifinfo(index=self.index(name), family=AF_BRIDGE) + attrs
        self.request(RTM_SETLINK, 0, payload, f"set hairpin mode of {name}")

    def delete_link(self, name: str) -> bool:
        """Remove ``name``; False if there was none (idempotent). A veth takes its peer with it."""
        payload = _ifinfo() + encode_attrs([(IFLA_IFNAME, _name(name))])
        self._names.pop(name, None)
        try:
            self.request(RTM_DELLINK, 0, payload, f"delete link {name}")
        except NotFound:
            return False
        return True

    # addresses

    def addresses(self, family: int = 0) -> list[Address]:
        payload = _IFADDR.pack(family, 0, 0, 0, 0)
        return [
            parse_address(m.payload) for m in self.request(RTM_GETADDR, NLM_F_DUMP, payload, "list addresses")
        ]

    def add_address(self, name: str, address: str, prefixlen: int, *, nodad: bool = False) -> None:
        """``address/prefixlen`` on ``name`` (with its broadcast for IPv4); already there is fine.

        ``nodad``: an IPv6 address usable at once, without duplicate address
        detection (IPAM already made it unique on the network; DAD would hold
        it "tentative" for a second or more).
        """
        family, raw = _family_and_bytes(address)
        attrs: list[Attr] = [(IFA_LOCAL, raw), (IFA_ADDRESS, raw)]
        if family == _socket.AF_INET and prefixlen < 31:
            host_bits = (1 << (32 - prefixlen)) - 1
            attrs.append((IFA_BROADCAST, (int.from_bytes(raw, "big") | host_bits).to_bytes(4, "big")))
        flags = IFA_F_NODAD if nodad else 0
        payload = _IFADDR.pack(family, prefixlen, flags, RT_SCOPE_UNIVERSE, self.index(name)) + encode_attrs(
            attrs
        )
        self.request(
            RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, payload, f"add address {address}/{prefixlen} to {name}"
        )

    def delete_address(self, name: str, address: str, prefixlen: int) -> bool:
        family, raw = _family_and_bytes(address)
        payload = _IFADDR.pack(family, prefixlen, 0, 0, self.index(name)) + encode_attrs([(IFA_LOCAL, raw)])
        try:
            self.request(RTM_DELADDR, 0, payload, f"delete address {address} from {name}")
        except NotFound:
            return False
        except SystemError_ as e:
            if e.errno == EADDRNOTAVAIL:  # not there
                return False
            raise
        return True

    # routes

    def routes(self, family: int = _socket.AF_INET) -> list[Route]:
        """The routes of the main table."""
        payload = _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
        out = []
        for m in self.request(RTM_GETROUTE, NLM_F_DUMP, payload, "list routes"):
            table = m.payload[4]
            attrs = decode_attrs(m.payload[_RTMSG.size :])
            if RTA_TABLE in attrs:
                table = _U32.unpack(attrs[RTA_TABLE])[0]
            if table == RT_TABLE_MAIN:
                out.append(parse_route(m.payload))
        return out

    def add_route(self, dst: str, dst_len: int, *, gateway: str = "", device: str = "") -> None:
        """A route of the main table; ``dst_len`` 0 is the default route. Already there is fine."""
        family, raw = _family_and_bytes(dst)
        attrs: list[Attr] = []
        if dst_len:
            attrs.append((RTA_DST, raw))
        if gateway:
            attrs.append((RTA_GATEWAY, _family_and_bytes(gateway)[1]))
        if device:
            attrs.append((RTA_OIF, _U32.pack(self.index(device))))
        scope = RT_SCOPE_UNIVERSE if gateway else RT_SCOPE_LINK
        header = _RTMSG.pack(family, dst_len, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, scope, RTN_UNICAST, 0)
        what = f"add route {dst}/{dst_len}" + (f" via {gateway}" if gateway else "")
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, header + encode_attrs(attrs), what)

    def default_route(self, gateway: str, device: str = "") -> None:
        self.add_route("::" if ":" in gateway else "0.0.0.0", 0, gateway=gateway, device=device)


def _open_socket(protocol: int = _NETLINK_ROUTE) -> _socket.socket:
    sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, protocol)
    try:
        sock.setsockopt(_SOL_NETLINK, _NETLINK_CAP_ACK, 1)
        sock.setsockopt(_SOL_NETLINK, _NETLINK_EXT_ACK, 1)
        sock.bind((0, 0))
    except OSError:
        sock.close()
        raise
    return sock
