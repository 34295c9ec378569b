"""Name resolution on a user-defined network: one small DNS server per network, aardvark-dns's shape.

Placement: the server runs in the host's network namespace and listens on
the network's gateway address, port 53 (UDP); containers get that address as
their only ``nameserver``. Docker instead answers on 127.0.0.11 inside each
container (a socket opened in every container's namespace by the daemon,
plus NAT rules there); a daemonless engine has no long-lived process to own
those sockets, and one process per network needs no rules inside
containers and no per-container set-up on the ``run`` path. Being in the
host's namespace, it forwards other names to the host's resolvers as they
are, 127.0.0.53 stubs included (docker's embedded server does the same
since it forwards from the host's namespace).

What it answers (``answer``):

- A / AAAA for a container name, a ``--network-alias`` or a 12-hex short id
  (or the full id) of a container attached to *this* network, or to another
  network the asking container is on (its address there, as docker's
  embedded server answers a container on several networks), read from the
  database on every query: a container whose endpoint row is gone is never
  answered, however recently it was removed. A known name without an
  address of the asked family gets an empty NOERROR (not forwarded).
- PTR for the address of a container on this network: its name.
- Anything else is forwarded, as received, to the upstream resolvers, one
  after another on timeout; the upstream's reply is relayed as is. The
  upstreams are the asking container's own ``--dns`` servers when it has
  some (kept with its endpoint, read on every query), asked from the
  container's network namespace (so ``--dns 127.0.0.1`` is the container's
  own loopback), as docker's embedded server forwards each container's
  names to its own servers from inside it; else the host's, from the host's
  namespace. An ``--internal`` network forwards nothing (REFUSED), as docker's.

Life cycle (``ensure_running``, ``stop``, the server's ``serve``):

- UDP and TCP (a client's retry after a truncated answer), both forwarded.
- Started detached: the launcher runs ``python -m pallet.network.resolver``,
  which binds its sockets (``IP_FREEBIND``: the bridge's address may come
  later, after a reboot), forks the server into its own session, writes the
  pid file (``<pid> <start time>``, guarding against pid reuse) and exits;
  the launcher waits for that exit, so the server is nobody's child and a
  SIGKILL of any pallet command leaves it running.
- It exits by itself once the network has no endpoint. Exit and start are
  serialised by a lock file: the server takes the lock, checks again that
  no endpoint exists, removes its pid file and exits holding the lock; a
  launcher takes the lock *after* committing its endpoint, then looks at the
  pid file. So either the server sees the new endpoint and stays, or the
  launcher sees no server and starts one.
- ``stop`` sends SIGTERM to the pid of the pid file if its start time
  matches, and removes the file.

``_socket``, not ``socket`` (which imports ``enum`` and ``selectors``): the
driver imports this module on the ``run`` path; only the server loads more.

Message codec: our own, of the few fields needed (header, one question,
A/AAAA answers with a compression pointer to the question). Forwarding
relays bytes and parses nothing. dnslib would add an import (and a
dependency) to decode what we never need to decode.
"""

from __future__ import annotations

import _socket
import os
import struct
import sys

from pallet.linux.procstat import start_time

__all__ = [
    "Query",
    "answer",
    "encode_answer",
    "ensure_running",
    "host_nameservers",
    "parse_query",
    "running_pid",
    "stop",
]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

QTYPE_A = 1
QTYPE_AAAA = 28
QTYPE_PTR = 12
QCLASS_IN = 1
RCODE_SERVFAIL = 2
RCODE_NXDOMAIN = 3
RCODE_REFUSED = 5
FORMERR = 1
_HEADER = struct.Struct("!HHHHHH")
#: seconds an answer may be cached (docker's embedded server says 600)
TTL = 600
#: seconds an upstream gets before the next is asked
UPSTREAM_TIMEOUT = 2.0
#: seconds between the server's checks that its network still has endpoints
IDLE_CHECK = 1.0


class Query:
    """The parts of a DNS query the server looks at."""

    __slots__ = ("flags", "id", "name", "qclass", "qtype", "question")

    def __init__(self, *, id: int, flags: int, name: str, qtype: int, qclass: int, question: bytes) -> None:
        self.id = id
        self.flags = flags
        self.name = name  # lowercase, no trailing dot
        self.qtype = qtype
        self.qclass = qclass
        self.question = question  # the question section's bytes, copied into the answer


def parse_query(data: bytes) -> Query | None:
    """The query in ``data``; None if it is not a standard query with one question (or is malformed)."""
    if len(data) < _HEADER.size:
        return None
    id, flags, qdcount, _an, _ns, _ar = _HEADER.unpack_from(data)
    if flags & 0x8000 or (flags >> 11) & 0xF or qdcount != 1:  # a response, not QUERY, or not one question
        return None
    labels = []
    offset = _HEADER.size
    while True:
        if offset >= len(data):
            return None
        length = data[offset]
        offset += 1
        if length == 0:
            break
        if length & 0xC0 or offset + length > len(data):
            return None  # no compression in a question of a query
        labels.append(data[offset : offset + length])
        offset += length
    if offset + 4 > len(data):
        return None
    qtype, qclass = struct.unpack_from("!HH", data, offset)
    try:
        name = b".".join(labels).decode("ascii").lower()
    except UnicodeDecodeError:
        return None
    return Query(
        id=id, flags=flags, name=name, qtype=qtype, qclass=qclass, question=data[_HEADER.size : offset + 4]
    )


def encode_answer(
    query: Query,
    addresses: Sequence[str] = (),
    rcode: int = 0,
    *,
    authoritative: bool = True,
    names: Sequence[str] = (),
) -> bytes:
    """The response to ``query``: its question, then one A or AAAA record per address and one PTR
    record per name."""
    flags = 0x8000 | (query.flags & 0x0100) | 0x0080 | rcode  # QR, RD copied, RA
    if authoritative:
        flags |= 0x0400
    records = []
    for address in addresses:
        family, rtype = (_socket.AF_INET6, QTYPE_AAAA) if ":" in address else (_socket.AF_INET, QTYPE_A)
        rdata = _socket.inet_pton(family, address)
        # 0xC00C: the name is the question's, at offset 12
        records.append(struct.pack("!HHHIH", 0xC00C, rtype, QCLASS_IN, TTL, len(rdata)) + rdata)
    for name in names:
        rdata = (
            b"".join(bytes([len(label)]) + label for label in name.encode("ascii").split(b".") if label)
            + b"\0"
        )
        records.append(struct.pack("!HHHIH", 0xC00C, QTYPE_PTR, QCLASS_IN, TTL, len(rdata)) + rdata)
    header = _HEADER.pack(query.id, flags, 1, len(records), 0, 0)
    return header + query.question + b"".join(records)


def reverse_address(name: str) -> str:
    """The address a reverse-lookup name stands for (``4.3.2.1.in-addr.arpa`` -> ``1.2.3.4``), "" if none."""
    if name.endswith(".in-addr.arpa"):
        parts = name[: -len(".in-addr.arpa")].split(".")
        if len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts):
            return ".".join(reversed(parts))
    elif name.endswith(".ip6.arpa"):
        nibbles = name[: -len(".ip6.arpa")].split(".")
        if len(nibbles) == 32 and all(len(n) == 1 and n in "0123456789abcdef" for n in nibbles):
            digits = "".join(reversed(nibbles))
            return _socket.inet_ntop(_socket.AF_INET6, bytes.fromhex(digits))
    return ""


def answer(
    query: Query,
    lookup: Callable[[str], list[str]],
    *,
    internal: bool,
    reverse: Callable[[str], list[str]] | None = None,
) -> bytes | None:
    """The local answer to ``query``, or None when it is to be forwarded upstream.

    ``lookup`` gives the addresses a name stands for on this network;
    ``reverse`` the names of an address on it (PTR queries, as docker answers them).
    """
    name = query.name
    if query.qclass == QCLASS_IN and query.qtype == QTYPE_PTR and reverse is not None:
        address = reverse_address(name)
        names = reverse(address) if address else []
        if names:
            return encode_answer(query, names=names)
    if query.qclass == QCLASS_IN and query.qtype in (QTYPE_A, QTYPE_AAAA) and name:
        addresses = lookup(name)
        if addresses:
            v6 = query.qtype == QTYPE_AAAA
            return encode_answer(query, [a for a in addresses if (":" in a) == v6])
    elif query.qclass == QCLASS_IN and name and lookup(name):
        return encode_answer(query, [])  # another type of a known name: no data, not forwarded
    if internal:
        return encode_answer(query, [], RCODE_REFUSED, authoritative=False)
    return None


def host_nameservers(resolv_conf: str) -> list[str]:
    """The ``nameserver`` addresses of a resolv.conf, in order (loopback ones included: the server runs
    in the host's namespace and reaches them)."""
    out = []
    for line in resolv_conf.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            out.append(words[1].split("%", 1)[0])
    return out


def _upstream(text: str) -> tuple[str, int]:
    """``ip``, ``ip:port`` or ``[ip6]:port``."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
        return host, int(port or 53)
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, 53


# --- the server ---------------------------------------------------------------------------------


#: a client's own servers and the network namespace file to ask them from ("": the server's own)
Route = tuple["Sequence[tuple[str, int]]", str]


class _Pending:
    __slots__ = ("client", "data", "deadline", "next", "sock", "upstreams")

    def __init__(
        self,
        sock: _socket.socket,
        client: tuple[str, int],
        data: bytes,
        upstreams: Sequence[tuple[str, int]],
    ) -> None:
        self.sock = sock
        self.client = client
        self.data = data
        self.upstreams = upstreams
        self.deadline = 0.0
        self.next = 0


def _upstreams_for(
    upstreams: Sequence[tuple[str, int]],
    upstreams_from: Callable[[str], Route] | None,
    client: tuple[str, int],
) -> Route:
    """Where one client's query goes, and the namespace to send it from: its container's own
    servers from its namespace if it has some, else ``upstreams`` from the server's."""
    if upstreams_from is None:
        return upstreams, ""
    try:
        own, where = upstreams_from(client[0])
    except Exception:  # noqa: BLE001 - a database hiccup: the network's servers will do
        return upstreams, ""
    return (own, where) if own else (upstreams, "")


def _open(family: int, kind: int, netns_path: str) -> _socket.socket:
    """A socket in the network namespace at ``netns_path`` ("": this process's); it stays there."""
    if not netns_path:
        return _socket.socket(family, kind | _socket.SOCK_CLOEXEC)
    from pallet.network.netns import entered

    with entered(netns_path):
        return _socket.socket(family, kind | _socket.SOCK_CLOEXEC)


def serve(
    listener: _socket.socket,
    lookup: Callable[[str], list[str]],
    *,
    upstreams: Sequence[tuple[str, int]],
    internal: bool,
    keep_going: Callable[[], bool],
    tcp: _socket.socket | None = None,
    reverse: Callable[[str], list[str]] | None = None,
    lookup_from: Callable[[str, str], list[str]] | None = None,
    upstreams_from: Callable[[str], Route] | None = None,
) -> None:
    """Answer queries on ``listener`` (UDP) and ``tcp`` (a listening socket) until ``keep_going()``
    (asked when idle) says False. ``lookup_from(name, client_address)``, when given, is asked
    instead of ``lookup``: a name may stand for something else for one container (docker's links).
    ``upstreams_from(client_address)``, when given, names the servers a client's forwarded queries
    go to (its container's ``--dns``) and the namespace file to ask them from; ``upstreams`` (from
    this process's namespace) when it names none.

    UDP queries are handled in this loop, forwarded without blocking; each
    TCP connection (what a client retries with after a truncated answer)
    gets a thread of its own, so a slow upstream holds up only it.
    ``lookup`` must be safe to call from those threads.
    """
    import selectors
    import time

    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, None)
    if tcp is not None:
        selector.register(tcp, selectors.EVENT_READ, None)
    pending: dict[_socket.socket, _Pending] = {}

    def forward(item: _Pending) -> bool:
        while item.next < len(item.upstreams):
            host, port = item.upstreams[item.next]
            item.next += 1
            try:
                item.sock.sendto(item.data, (host, port))
            except OSError:
                continue
            item.deadline = time.monotonic() + UPSTREAM_TIMEOUT
            return True
        return False

    def fail(item: _Pending) -> None:
        query = parse_query(item.data)
        if query is not None:
            listener.sendto(encode_answer(query, [], RCODE_SERVFAIL, authoritative=False), item.client)
        selector.unregister(item.sock)
        item.sock.close()
        del pending[item.sock]

    last_check = time.monotonic()
    while True:
        now = time.monotonic()
        timeout = IDLE_CHECK
        if pending:
            timeout = max(0.0, min(IDLE_CHECK, min(p.deadline for p in pending.values()) - now))
        events = selector.select(timeout)
        for key, _ in events:
            sock = key.fileobj
            if sock is tcp:
                _accept(
                    tcp, lookup, upstreams, internal, reverse, lookup_from=lookup_from,
                    upstreams_from=upstreams_from,
                )  # fmt: skip
                continue
            if sock is listener:
                try:
                    data, client = listener.recvfrom(4096)
                except OSError:
                    continue
                query = parse_query(data)
                if query is None:
                    continue
                try:
                    local = answer(
                        query, _for_client(lookup, lookup_from, client), internal=internal, reverse=reverse
                    )
                except Exception:  # noqa: BLE001 - a database hiccup must not end the server
                    local = encode_answer(query, [], RCODE_SERVFAIL, authoritative=False)
                if local is not None:
                    listener.sendto(local, client)
                    continue
                chosen, where = _upstreams_for(upstreams, upstreams_from, client)
                family = _socket.AF_INET6 if chosen and ":" in chosen[0][0] else _socket.AF_INET
                try:
                    up = _open(family, _socket.SOCK_DGRAM, where)
                except Exception:  # noqa: BLE001 - the client's namespace is gone: it is gone too
                    listener.sendto(encode_answer(query, [], RCODE_SERVFAIL, authoritative=False), client)
                    continue
                item = _Pending(up, client, data, chosen)
                pending[up] = item
                selector.register(up, selectors.EVENT_READ, None)
                if not forward(item):
                    fail(item)
            else:
                item = pending[sock]  # type: ignore[index]
                try:
                    reply, _ = item.sock.recvfrom(65535)
                except OSError:
                    continue
                if reply[:2] != item.data[:2]:
                    continue  # not the answer to this query
                listener.sendto(reply, item.client)
                selector.unregister(item.sock)
                item.sock.close()
                del pending[item.sock]
        now = time.monotonic()
        for item in [p for p in pending.values() if p.deadline <= now]:
            if not forward(item):
                fail(item)
        if now - last_check >= IDLE_CHECK or not events:
            last_check = now
            if not pending and not keep_going():
                return


def _for_client(
    lookup: Callable[[str], list[str]],
    lookup_from: Callable[[str, str], list[str]] | None,
    client: tuple[str, int],
) -> Callable[[str], list[str]]:
    """The lookup for one client's query: ``lookup_from`` with the client's address, if there is one."""
    if lookup_from is None:
        return lookup
    return lambda name: lookup_from(name, client[0])


def _accept(
    tcp: _socket.socket,
    lookup: Callable[[str], list[str]],
    upstreams: Sequence[tuple[str, int]],
    internal: bool,
    reverse: Callable[[str], list[str]] | None,
    *,
    lookup_from: Callable[[str, str], list[str]] | None = None,
    upstreams_from: Callable[[str], Route] | None = None,
) -> None:
    import threading

    try:
        fd, client = tcp._accept()  # type: ignore[attr-defined]  # _socket's accept: a descriptor and an address
    except OSError:
        return
    conn = _socket.socket(fileno=fd)
    chosen, where = _upstreams_for(upstreams, upstreams_from, client)
    threading.Thread(
        target=_serve_tcp,
        args=(conn, _for_client(lookup, lookup_from, client), chosen, internal, reverse),
        kwargs={"where": where},
        daemon=True,
    ).start()


def _read_message(conn: _socket.socket) -> bytes:
    """One length-prefixed DNS message from a TCP stream (RFC 1035 4.2.2)."""
    data = b""
    while len(data) < 2 or len(data) < 2 + int.from_bytes(data[:2], "big"):
        chunk = conn.recv(65537)
        if not chunk:
            raise OSError("connection closed mid-message")
        data += chunk
    return data[2 : 2 + int.from_bytes(data[:2], "big")]


def _forward_tcp(data: bytes, upstreams: Sequence[tuple[str, int]], where: str = "") -> bytes | None:
    for host, port in upstreams:
        family = _socket.AF_INET6 if ":" in host else _socket.AF_INET
        try:
            up = _open(family, _socket.SOCK_STREAM, where)
        except Exception:  # noqa: BLE001 - the client's namespace is gone
            return None
        try:
            up.settimeout(UPSTREAM_TIMEOUT)
            up.connect((host, port))
            up.sendall(len(data).to_bytes(2, "big") + data)
            return _read_message(up)
        except OSError:
            continue
        finally:
            up.close()
    return None


def _serve_tcp(
    conn: _socket.socket,
    lookup: Callable[[str], list[str]],
    upstreams: Sequence[tuple[str, int]],
    internal: bool,
    reverse: Callable[[str], list[str]] | None,
    *,
    where: str = "",
) -> None:
    try:
        conn.settimeout(UPSTREAM_TIMEOUT * (len(upstreams) + 1))
        data = _read_message(conn)
        query = parse_query(data)
        if query is None:
            return
        try:
            reply = answer(query, lookup, internal=internal, reverse=reverse)
        except Exception:  # noqa: BLE001 - a database hiccup must not end the server
            reply = encode_answer(query, [], RCODE_SERVFAIL, authoritative=False)
        if reply is None:
            reply = _forward_tcp(data, upstreams, where) or encode_answer(
                query, [], RCODE_SERVFAIL, authoritative=False
            )
        conn.sendall(len(reply).to_bytes(2, "big") + reply)
    except OSError:
        pass
    finally:
        conn.close()


# --- files and processes ------------------------------------------------------------------------


def _paths(run_dir: str, network_id: str) -> tuple[str, str]:
    base = os.path.join(run_dir, "resolvers", network_id[:12])
    return base + ".pid", base + ".lock"


def running_pid(run_dir: str, network_id: str) -> int:
    """The pid of the network's resolver if it runs (its pid file names a live process with that start
    time); else 0."""
    pidfile, _ = _paths(run_dir, network_id)
    try:
        with open(pidfile) as f:
            pid_text, _, start_text = f.read().partition(" ")
        pid, start = int(pid_text), int(start_text)
    except (OSError, ValueError):
        return 0
    return pid if start and start_time(pid) == start else 0


class _Lock:
    __slots__ = ("_fd",)

    def __init__(self, path: str) -> None:
        import fcntl

        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        os.close(self._fd)


def ensure_running(
    run_dir: str,
    db_path: str,
    network_id: str,
    listen: str,
    *,
    upstreams: Sequence[str],
    internal: bool = False,
    port: int = 53,
    python: str = sys.executable,
) -> int:
    """Start the network's resolver unless it runs; its pid. Call after committing the endpoint."""
    pidfile, lockfile = _paths(run_dir, network_id)
    lock = _Lock(lockfile)
    try:
        pid = running_pid(run_dir, network_id)
        if pid:
            return pid
        argv = [python, "-m", "pallet.network.resolver", "--db", db_path, "--network", network_id,
                "--listen", listen, "--port", str(port), "--pidfile", pidfile, "--lock", lockfile]  # fmt: skip
        for upstream in upstreams:
            argv += ["--upstream", upstream]
        if internal:
            argv.append("--internal")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_package_root(), env.get("PYTHONPATH", "")) if p)
        code, words = _spawn_and_wait(argv, env)
        if code != 0:
            from pallet.errors import Unavailable

            raise Unavailable(f"cannot start the name server of the network on {listen}:{port}: "
                              f"{words or f'exit status {code}'}")  # fmt: skip
        return running_pid(run_dir, network_id)
    finally:
        lock.release()


def _spawn_and_wait(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run the launcher half of the server in a new session and wait for it: its status and stderr.

    ``posix_spawn``, not ``subprocess`` (whose imports the ``run`` path
    avoids); the server closes every descriptor it inherited beyond its
    stdio first thing (``_main``), so nothing of the caller's stays open in a
    long-lived process.
    """
    stderr = os.memfd_create("pallet-resolver-stderr", 0)
    try:
        pid = os.posix_spawn(
            argv[0],
            argv,
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_DUP2, stderr, 2),
                (os.POSIX_SPAWN_CLOSE, stderr),
            ],
            setsid=True,
        )
        _, status = os.waitpid(pid, 0)
        os.lseek(stderr, 0, os.SEEK_SET)
        words = os.read(stderr, 65536).decode(errors="replace").strip()
    finally:
        os.close(stderr)
    return os.waitstatus_to_exitcode(status), words


def _package_root() -> str:
    """The directory ``pallet`` is imported from (``src``), for the server's ``-m``."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def stop(run_dir: str, network_id: str) -> bool:
    """Stop the network's resolver (SIGTERM by its verified pid) and remove its files. Idempotent."""
    import signal

    pidfile, lockfile = _paths(run_dir, network_id)
    pid = running_pid(run_dir, network_id)
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pid = 0
    for path in (pidfile, lockfile):
        try:  # noqa: SIM105 - contextlib: an import for one line
            os.unlink(path)
        except FileNotFoundError:
            pass
    return bool(pid)


def resolver_networks(run_dir: str) -> list[str]:
    """The short network ids that have a resolver pid file."""
    try:
        names = os.listdir(os.path.join(run_dir, "resolvers"))
    except FileNotFoundError:
        return []
    return sorted(n[: -len(".pid")] for n in names if n.endswith(".pid"))


# --- the program --------------------------------------------------------------------------------


def _main(argv: Sequence[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="pallet-resolver")
    parser.add_argument("--db", required=True)
    parser.add_argument("--network", required=True)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("--pidfile", required=True)
    parser.add_argument("--lock", required=True)
    parser.add_argument("--upstream", action="append", default=[])
    parser.add_argument("--internal", action="store_true")
    args = parser.parse_args(argv)
    os.closerange(3, 1 << 20)  # whatever the launcher's process left inheritable (close_range: one call)

    family = _socket.AF_INET6 if ":" in args.listen else _socket.AF_INET
    listener = _socket.socket(family, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    listener.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
    listener.setsockopt(_socket.SOL_IP, 15, 1)  # IP_FREEBIND: the bridge's address may not be there yet
    tcp = _socket.socket(family, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    tcp.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
    tcp.setsockopt(_socket.SOL_IP, 15, 1)
    try:
        listener.bind((args.listen, args.port))
        tcp.bind((args.listen, args.port))
        tcp.listen(16)
    except OSError as e:
        print(f"bind {args.listen}:{args.port}: {e.strerror}", file=sys.stderr)
        return 1
    upstreams = [_upstream(u) for u in args.upstream]

    pid = os.fork()
    if pid:
        from pallet.linux.atomicfile import write_atomic

        write_atomic(args.pidfile, f"{pid} {start_time(pid)}".encode(), mode=0o644, durable=False)
        return 0
    # the server: its own session already (start_new_session), stdio on /dev/null
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    import signal

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    import sqlite3
    import threading

    from pallet.network.store import (
        CLIENT_CONFIG_SQL,
        PEER_NETWORKS_SQL,
        RESOLVE_SQL,
        client_nameservers,
        matching,
    )

    # one connection for the loop and the TCP threads, used under a lock
    conn = sqlite3.connect(
        f"file:{args.db}?mode=ro", uri=True, timeout=5, isolation_level=None, check_same_thread=False
    )
    db_lock = threading.Lock()
    network_id = args.network

    def rows(network: str = network_id) -> list[tuple[str, str, str, str, str, str]]:
        with db_lock:
            return conn.execute(RESOLVE_SQL, (network,)).fetchall()

    def lookup(name: str) -> list[str]:
        return matching(rows(), name)

    def lookup_from(name: str, client: str) -> list[str]:
        found = matching(rows(), name, client=client)
        if found:
            return found
        with db_lock:  # the client's container's other networks: their names too (store.resolve's rule)
            others = conn.execute(PEER_NETWORKS_SQL, (network_id, client, client, network_id)).fetchall()
        for (other,) in others:
            found = matching(rows(other), name)
            if found:
                return found
        return []

    def upstreams_from(client: str) -> Route:
        with db_lock:  # the asking container's own --dns servers, kept with its endpoint, and its namespace
            row = conn.execute(CLIENT_CONFIG_SQL, (network_id, client, client)).fetchone()
        return ([_upstream(a) for a in client_nameservers(row[0])], row[1]) if row else ([], "")

    def reverse(address: str) -> list[str]:
        return [row[2] for row in rows() if address in (row[0], row[1])]

    def keep_going() -> bool:
        try:
            if rows():
                return True
        except sqlite3.Error:
            return True  # busy or briefly unreadable: ask again later
        lock = _Lock(args.lock)  # held until exit: a launcher waits, then finds no pid file
        try:
            if rows():
                lock.release()
                return True
        except sqlite3.Error:
            lock.release()
            return True
        try:  # noqa: SIM105
            os.unlink(args.pidfile)
        except FileNotFoundError:
            pass
        return False

    serve(
        listener, lookup, upstreams=upstreams, internal=args.internal, keep_going=keep_going, tcp=tcp,
        reverse=reverse, lookup_from=lookup_from, upstreams_from=upstreams_from,
    )  # fmt: skip
    os._exit(0)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
