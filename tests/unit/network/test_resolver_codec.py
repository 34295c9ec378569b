"""The resolver: its DNS codec, what it answers itself, and forwarding through its loop (no root)."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pallet.network import resolver


def query(name: str, qtype: int = resolver.QTYPE_A, qid: int = 0x1234) -> bytes:
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p)
    return header + labels + b"\0" + struct.pack("!HH", qtype, 1)


def answers(data: bytes) -> tuple[int, list[str]]:
    """rcode and the A/AAAA addresses of a response we encoded (names compressed to the question)."""
    _qid, flags, _qd, an, _ns, _ar = struct.unpack_from("!HHHHHH", data)
    offset = 12
    while data[offset]:
        offset += data[offset] + 1
    offset += 5
    out = []
    for _ in range(an):
        _ptr, rtype, _cls, _ttl, length = struct.unpack_from("!HHHIH", data, offset)
        offset += 12
        rdata = data[offset : offset + length]
        offset += length
        out.append(
            socket.inet_ntop(socket.AF_INET6 if rtype == resolver.QTYPE_AAAA else socket.AF_INET, rdata)
        )
    return flags & 0xF, out


TABLE = {"web": ["10.5.0.2"], "both": ["10.5.0.3", "fd00::3"], "web.1": ["10.5.0.4"]}


def lookup(name: str) -> list[str]:
    return TABLE.get(name, [])


@given(
    st.lists(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20),
        min_size=1,
        max_size=4,
    ),
    st.integers(0, 0xFFFF),
)
def test_queries_parse_back(labels: list[str], qid: int) -> None:
    parsed = resolver.parse_query(query(".".join(labels), qid=qid))
    assert parsed is not None
    assert (parsed.name, parsed.id, parsed.qtype) == (".".join(labels), qid, resolver.QTYPE_A)


@given(st.binary(max_size=100))
def test_garbage_is_ignored_never_raised(data: bytes) -> None:
    resolver.parse_query(data)


def test_names_on_the_network_are_answered_by_family() -> None:
    q = resolver.parse_query(query("WEB"))
    assert q is not None
    assert answers(resolver.answer(q, lookup, internal=False) or b"") == (0, ["10.5.0.2"])
    q6 = resolver.parse_query(query("both", resolver.QTYPE_AAAA))
    assert q6 is not None
    assert answers(resolver.answer(q6, lookup, internal=False) or b"") == (0, ["fd00::3"])
    dotted = resolver.parse_query(query("web.1"))  # docker's names may hold dots
    assert dotted is not None
    assert answers(resolver.answer(dotted, lookup, internal=False) or b"") == (0, ["10.5.0.4"])
    no_v6 = resolver.parse_query(query("web", resolver.QTYPE_AAAA))
    assert no_v6 is not None
    assert answers(resolver.answer(no_v6, lookup, internal=False) or b"") == (0, [])  # NODATA, not forwarded


def test_other_names_are_forwarded_except_on_internal_networks() -> None:
    q = resolver.parse_query(query("example.org"))
    assert q is not None
    assert resolver.answer(q, lookup, internal=False) is None
    assert answers(resolver.answer(q, lookup, internal=True) or b"")[0] == resolver.RCODE_REFUSED


def test_host_nameservers_keep_loopback_stubs() -> None:
    text = "# c\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\nsearch x\nnameserver 10.0.0.1\n"
    assert resolver.host_nameservers(text) == ["127.0.0.53", "fe80::1", "10.0.0.1"]


@pytest.fixture
def upstream() -> Iterator[tuple[str, int]]:
    """A fake upstream on 127.0.0.1 answering every A query with 192.0.2.99."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    stop = threading.Event()

    def run() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                data, client = sock.recvfrom(512)
            except TimeoutError:
                continue
            q = resolver.parse_query(data)
            if q is not None:
                sock.sendto(resolver.encode_answer(q, ["192.0.2.99"], authoritative=False), client)

    thread = threading.Thread(target=run)
    thread.start()
    yield sock.getsockname()
    stop.set()
    thread.join()
    sock.close()


def test_the_loop_answers_locally_and_relays_upstream(upstream: tuple[str, int]) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    served = {"n": 0}

    def keep_going() -> bool:
        return served["n"] < 2

    thread = threading.Thread(
        target=resolver.serve,
        args=(listener, lookup),
        kwargs={"upstreams": [("127.0.0.1", 1), upstream], "internal": False, "keep_going": keep_going},
    )
    thread.start()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(10)
    try:
        client.sendto(query("web"), listener.getsockname())
        assert answers(client.recv(512)) == (0, ["10.5.0.2"])
        served["n"] += 1
        client.sendto(query("example.org", qid=7), listener.getsockname())
        reply = client.recv(512)
        assert struct.unpack_from("!H", reply)[0] == 7
        assert answers(reply) == (0, ["192.0.2.99"])  # the first upstream refused; the second answered
        served["n"] += 1
    finally:
        served["n"] = 2
        thread.join()
        client.close()
        listener.close()


def _tcp_ask(address: tuple[str, int], data: bytes) -> bytes:
    with socket.create_connection(address, timeout=10) as conn:
        conn.sendall(len(data).to_bytes(2, "big") + data)
        reply = b""
        while len(reply) < 2 or len(reply) < 2 + int.from_bytes(reply[:2], "big"):
            chunk = conn.recv(4096)
            assert chunk
            reply += chunk
    return reply[2:]


def test_tcp_queries_are_answered_and_forwarded_over_tcp() -> None:
    upstream = socket.socket()
    upstream.bind(("127.0.0.1", 0))
    upstream.listen()

    def fake_upstream() -> None:
        conn, _ = upstream.accept()
        with conn:
            data = conn.recv(4096)
            q = resolver.parse_query(data[2:])
            assert q is not None
            reply = resolver.encode_answer(q, ["192.0.2.55"], authoritative=False)
            conn.sendall(len(reply).to_bytes(2, "big") + reply)

    upstream_thread = threading.Thread(target=fake_upstream)
    upstream_thread.start()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    done = threading.Event()
    thread = threading.Thread(
        target=resolver.serve,
        args=(udp, lookup),
        kwargs={
            "upstreams": [upstream.getsockname()], "internal": False, "keep_going": lambda: not done.is_set(),
            "tcp": tcp,
        },
    )  # fmt: skip
    thread.start()
    try:
        assert answers(_tcp_ask(tcp.getsockname(), query("web"))) == (0, ["10.5.0.2"])
        assert answers(_tcp_ask(tcp.getsockname(), query("big.example", qid=9))) == (0, ["192.0.2.55"])
    finally:
        done.set()
        thread.join()
        upstream_thread.join()
        for s in (udp, tcp, upstream):
            s.close()


def test_reverse_lookups_name_containers_and_leave_others_upstream() -> None:
    def reverse(address: str) -> list[str]:
        return {"10.5.0.2": ["web"], "fd00::3": ["both"]}.get(address, [])

    assert resolver.reverse_address("2.0.5.10.in-addr.arpa") == "10.5.0.2"
    assert resolver.reverse_address("3.0.0.0." + "0." * 26 + "d.f.ip6.arpa") == "fd00::3"
    assert resolver.reverse_address("x.in-addr.arpa") == ""
    q = resolver.parse_query(query("2.0.5.10.in-addr.arpa", resolver.QTYPE_PTR))
    assert q is not None
    reply = resolver.answer(q, lookup, internal=False, reverse=reverse)
    assert reply is not None
    assert reply.endswith(b"\x03web\x00")
    assert struct.unpack_from("!H", reply, 6)[0] == 1  # one answer
    other = resolver.parse_query(query("9.9.9.10.in-addr.arpa", resolver.QTYPE_PTR))
    assert other is not None
    assert resolver.answer(other, lookup, internal=False, reverse=reverse) is None
