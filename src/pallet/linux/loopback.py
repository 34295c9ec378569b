"""The loopback interface of a new network namespace: brought up, as runc's "loopback" network does.

A new network namespace has ``lo`` down; programs expect 127.0.0.1 to work.
Two ioctls on a datagram socket (``SIOCGIFFLAGS``, ``SIOCSIFFLAGS``) are all
it takes. ``_socket`` rather than ``socket``: the latter imports ``enum``,
which the runtime's hot path avoids.
"""

from __future__ import annotations

import _socket
import fcntl
import sys

from pallet.errors import SystemError_

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def _ifreq(name: str, flags: int) -> bytes:
    """``struct ifreq``: the 16-byte name, then a 24-byte union whose first member is ``ifr_flags``."""
    return name.encode().ljust(16, b"\0") + flags.to_bytes(2, sys.byteorder) + bytes(22)


def bring_up_loopback(name: str = "lo") -> None:
    """Set ``IFF_UP`` on ``name`` in the caller's network namespace (needs CAP_NET_ADMIN there)."""
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC, 0)
    try:
        current = fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, _ifreq(name, 0))
        flags = int.from_bytes(current[16:18], sys.byteorder)
        if not flags & _IFF_UP:
            fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, _ifreq(name, flags | _IFF_UP))
    except OSError as e:
        raise SystemError_(f"bring up the {name} interface", e.errno or 0) from None
    finally:
        sock.close()
