"""Streaming tar: a reader that accepts what Go's ``archive/tar`` accepts, and a writer.

Image layers are read by Go code in every engine (containerd, dockerd, podman),
so "valid" means "Go reads it". Python's ``tarfile`` is stricter in some places
and looser in others, hence this module:

* the end-of-archive blocks may be missing, and so may the padding after the
  last file's data (umoci 0.4.7 writes such layers): EOF at an entry boundary
  ends the archive; EOF inside a header or inside file data is an error;
* USTAR, GNU and V7 headers; checksums signed or unsigned; numeric fields in
  octal (space/NUL padded) or base-256;
* PAX extended headers (``path``, ``linkpath``, ``size``, ``uid``, ``gid``,
  ``uname``, ``gname``, ``mtime`` with a fraction, ``SCHILY.xattr.*``); PAX
  global headers are parsed and *not* applied to later entries, as in Go
  (engines ignore them);
* GNU long names and link names (``L``/``K``); sparse files in the old GNU
  format (``S``) and in PAX formats 0.0, 0.1 and 1.0.

Memory is bounded: an entry's data is read through the reader in chunks
(``TarReader.chunks``/``read``), never whole. The writer emits USTAR headers and
adds a PAX header only when a value does not fit (long or non-ASCII names,
large ids or sizes, sub-second mtimes, xattrs).
"""

from __future__ import annotations

import os

from pallet.errors import Conflict, InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Protocol

    class Readable(Protocol):
        def read(self, n: int, /) -> bytes: ...

    class Writable(Protocol):
        def write(self, data: bytes | bytearray | memoryview, /) -> object: ...


__all__ = [
    "BLK",
    "CHR",
    "DIR",
    "FIFO",
    "LNK",
    "REG",
    "SYM",
    "TarEntry",
    "TarReader",
    "TarWriter",
    "check_header",
]

BLOCK = 512
CHUNK = 1 << 20
REG, LNK, SYM, CHR, BLK, DIR, FIFO = "0", "1", "2", "3", "4", "5", "6"
_ZERO_BLOCK = bytes(BLOCK)
_GLOBAL, _PAX, _LONGNAME, _LONGLINK, _GNUSPARSE = "g", "x", "L", "K", "S"
# '7' (contiguous) is a regular file everywhere; '\0' is the pre-POSIX regular file.
_TYPE_ALIASES = {"\0": REG, "7": REG}
_HEADER_ONLY = frozenset((LNK, SYM, CHR, BLK, DIR, FIFO))


class TarEntry:
    """One member of a tar stream.

    ``size`` is the file's logical size; ``sparse`` (for sparse files) lists the
    ``(offset, length)`` fragments whose data follow, in order, in the stream.
    ``mtime_ns`` keeps PAX sub-second precision. ``xattrs`` come from
    ``SCHILY.xattr.*`` records, values as raw bytes.
    """

    __slots__ = (
        "devmajor",
        "devminor",
        "gid",
        "gname",
        "linkname",
        "mode",
        "mtime_ns",
        "name",
        "size",
        "sparse",
        "type",
        "uid",
        "uname",
        "xattrs",
    )

    def __init__(
        self,
        name: str,
        type: str = REG,
        *,
        mode: int = 0o644,
        uid: int = 0,
        gid: int = 0,
        size: int = 0,
        mtime_ns: int = 0,
        linkname: str = "",
        uname: str = "",
        gname: str = "",
        devmajor: int = 0,
        devminor: int = 0,
        xattrs: dict[str, bytes] | None = None,
        sparse: tuple[tuple[int, int], ...] | None = None,
    ) -> None:
        self.name = name
        self.type = type
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.mtime_ns = mtime_ns
        self.linkname = linkname
        self.uname = uname
        self.gname = gname
        self.devmajor = devmajor
        self.devminor = devminor
        self.xattrs = xattrs if xattrs is not None else {}
        self.sparse = sparse

    def __repr__(self) -> str:
        return f"TarEntry({self.name!r}, type={self.type!r}, size={self.size}, mode={self.mode:o})"


# --- reading --------------------------------------------------------------------------


def _corrupt(problem: str) -> InvalidArgument:
    return InvalidArgument(f"layer tar is corrupt: {problem}; the blob is damaged or not a tar stream")


def _num(field: bytes) -> int:
    """A numeric header field: octal padded with spaces/NULs, or base-256 (first bit set)."""
    if field and field[0] & 0x80:
        if field[0] == 0xFF:
            return int.from_bytes(field, "big", signed=True)
        return int.from_bytes(bytes((field[0] & 0x7F,)) + field[1:], "big")
    text = field.strip(b" \x00")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise _corrupt(f"bad numeric field {field!r}") from None


def _signed_sum(block: bytes) -> int:
    """The checksum as some old tars computed it, with signed chars."""
    total = sum(b - 256 if b >= 0x80 else b for b in block)
    return total - sum(b - 256 if b >= 0x80 else b for b in block[148:156]) + 8 * 32


def _check_checksum(block: bytes) -> None:
    chksum = _num(block[148:156])
    if chksum != sum(block) - sum(block[148:156]) + 8 * 32 and chksum != _signed_sum(block):
        raise _corrupt("header checksum mismatch")


def check_header(block: bytes) -> None:
    """``InvalidArgument`` unless ``block`` (one 512-byte block) is a tar header or the end marker:
    a check of an archive's first block alone, which may be a PAX or GNU header whose data follows."""
    if len(block) != BLOCK:
        raise _corrupt("unexpected end of data inside a header")
    if block != _ZERO_BLOCK:
        _check_checksum(block)


def _str(field: bytes) -> str:
    end = field.find(b"\0")
    return os.fsdecode(field if end < 0 else field[:end])


def _parse_pax(data: bytes) -> tuple[dict[str, bytes], list[int]]:
    """PAX records ``"<len> <key>=<value>\\n"``; GNU 0.0 sparse offset/numbytes pairs kept in order."""
    records: dict[str, bytes] = {}
    sparse: list[int] = []
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # trailing NUL padding
            break
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise _corrupt("bad PAX record length") from None
        end = pos + length
        if space < 0 or length <= 0 or end > len(data) or data[end - 1] != 0x0A:
            raise _corrupt("bad PAX record")
        key, eq, value = data[space + 1 : end - 1].partition(b"=")
        if not eq:
            raise _corrupt("PAX record without '='")
        name = key.decode("utf-8", "surrogateescape")
        if name in ("GNU.sparse.offset", "GNU.sparse.numbytes"):
            try:
                sparse.append(int(value))
            except ValueError:
                raise _corrupt(f"bad {name}") from None
        else:
            records[name] = value
        pos = end
    return records, sparse


def _pax_time(value: bytes) -> int:
    text = value.decode("ascii", "replace")
    sign = -1 if text.startswith("-") else 1
    whole, _, frac = text.lstrip("+-").partition(".")
    try:
        seconds = int(whole or "0")
        nanos = int((frac + "000000000")[:9]) if frac else 0
    except ValueError:
        raise _corrupt(f"bad PAX time {text!r}") from None
    return sign * (seconds * 1_000_000_000 + nanos)


def _pax_int(records: dict[str, bytes], key: str, default: int) -> int:
    value = records.get(key)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise _corrupt(f"bad PAX {key} {value!r}") from None


def _checked_map(pairs: list[int], size: int) -> tuple[tuple[int, int], ...]:
    if len(pairs) % 2:
        raise _corrupt("odd number of sparse map values")
    frags = tuple((pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2))
    end = 0
    for off, length in frags:
        if off < end or length < 0 or off + length > size:
            raise _corrupt("sparse map out of order or beyond the file size")
        end = off + length
    return frags


class TarReader:
    """Iterate the entries of a tar stream; read each entry's data before asking for the next.

    ``source.read(n)`` may return fewer than ``n`` bytes; ``b""`` means EOF.
    Iteration stops at the end-of-archive marker or at EOF between entries.
    Unread data of an entry is skipped when the next entry is requested.
    """

    def __init__(self, source: Readable, chunk: int = CHUNK) -> None:
        self._src = source
        self._chunk = chunk
        self._buf = b""
        self._pos = 0
        self._left = 0  # data bytes of the current entry not yet read
        self._pad = 0  # padding after them
        self._eof = False

    # -- buffer ------------------------------------------------------------------------
    def _fill(self, n: int) -> int:
        """Make at least ``n`` bytes available if the stream has them; return how many are."""
        avail = len(self._buf) - self._pos
        if avail >= n or self._eof:
            return avail
        parts = [self._buf[self._pos :]] if avail else []
        while avail < n:
            data = self._src.read(max(self._chunk, n - avail))
            if not data:
                self._eof = True
                break
            parts.append(data)
            avail += len(data)
        # one part: keep it as is (no copy; the common case for file data)
        self._buf = parts[0] if len(parts) == 1 else b"".join(parts)
        self._pos = 0
        return avail

    def _take(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or fewer at EOF."""
        self._fill(n)
        data = self._buf[self._pos : self._pos + n]
        self._pos += len(data)
        return data

    def _skip(self, n: int) -> int:
        """Skip up to ``n`` bytes; return how many were skipped."""
        done = 0
        while done < n:
            avail = len(self._buf) - self._pos
            if not avail:
                avail = self._fill(min(n - done, self._chunk))
                if not avail:
                    break
            k = min(avail, n - done)
            self._pos += k
            done += k
        return done

    # -- entry data ----------------------------------------------------------------------
    def chunks(self) -> Iterator[bytes | memoryview]:
        """The current entry's remaining data, in chunks of at most ``chunk`` bytes."""
        while self._left:
            avail = len(self._buf) - self._pos
            if not avail:
                avail = self._fill(1)
                if not avail:
                    raise _corrupt("unexpected end of data inside a file")
            k = min(avail, self._left, self._chunk)
            start = self._pos
            self._pos += k
            self._left -= k
            yield memoryview(self._buf)[start : start + k]

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all, if negative) of the current entry's data."""
        n = self._left if n < 0 else min(n, self._left)
        data = self._take(n)
        if len(data) < n:
            raise _corrupt("unexpected end of data inside a file")
        self._left -= n
        return data

    def _finish_entry(self) -> bool:
        """Skip what is left of the current entry; False if the stream ended in the padding."""
        if self._left:
            if self._skip(self._left) < self._left:
                raise _corrupt("unexpected end of data inside a file")
            self._left = 0
        # Go reads the padding with tryReadFull: a short read there is a clean end.
        pad, self._pad = self._pad, 0
        return self._skip(pad) == pad

    # -- headers -------------------------------------------------------------------------
    def _block(self) -> bytes | None:
        block = self._take(BLOCK)
        if not block:
            return None
        if len(block) < BLOCK:
            raise _corrupt("unexpected end of data inside a header")
        return block

    def _special_data(self, size: int) -> bytes:
        if size > (1 << 24):
            raise _corrupt(f"extended header of {size} bytes is too large")
        data = self._take(size)
        if len(data) < size:
            raise _corrupt("unexpected end of data inside an extended header")
        self._skip(-size % BLOCK)
        return data

    def __iter__(self) -> Iterator[TarEntry]:
        while True:
            entry = self._next()
            if entry is None:
                return
            yield entry

    def _next(self) -> TarEntry | None:
        if not self._finish_entry():
            return None
        pax: dict[str, bytes] = {}
        pax_sparse: list[int] = []
        long_name: bytes | None = None
        long_link: bytes | None = None
        while True:
            block = self._block()
            if block is None:
                return None
            if block == _ZERO_BLOCK:
                second = self._block()
                if second is None or second == _ZERO_BLOCK:
                    return None
                raise _corrupt("a zero block followed by a non-zero block")
            _check_checksum(block)
            kind = chr(block[156])
            size = _num(block[124:136])
            if size < 0:
                raise _corrupt("negative size")
            if kind == _PAX:
                records, pairs = _parse_pax(self._special_data(size))
                pax.update(records)
                pax_sparse.extend(pairs)
                continue
            if kind == _GLOBAL:
                self._special_data(size)  # parsed out of the stream, not applied (as Go does)
                continue
            if kind == _LONGNAME:
                long_name = self._special_data(size).split(b"\0", 1)[0]
                continue
            if kind == _LONGLINK:
                long_link = self._special_data(size).split(b"\0", 1)[0]
                continue
            return self._entry(
                block, kind=kind, pax=pax, pax_sparse=pax_sparse, long_name=long_name, long_link=long_link
            )

    def _entry(
        self,
        block: bytes,
        *,
        kind: str,
        pax: dict[str, bytes],
        pax_sparse: list[int],
        long_name: bytes | None,
        long_link: bytes | None,
    ) -> TarEntry:
        magic = block[257:265]
        ustar = magic[:6] == b"ustar\x00"
        gnu = magic == b"ustar  \x00"
        if long_name is not None:
            name = os.fsdecode(long_name)
        elif ustar and block[345] and block[345:500] != bytes(155):
            name = _str(block[345:500]) + "/" + _str(block[0:100])
        else:
            name = _str(block[0:100])
        linkname = os.fsdecode(long_link) if long_link is not None else _str(block[157:257])
        kind = _TYPE_ALIASES.get(kind, kind)
        if kind == REG and block[156] == 0 and name.endswith("/"):
            kind = DIR  # pre-POSIX archives mark directories with a trailing slash
        entry = TarEntry(
            name,
            kind,
            mode=_num(block[100:108]) & 0o7777,
            uid=_num(block[108:116]),
            gid=_num(block[116:124]),
            size=_num(block[124:136]),
            mtime_ns=_num(block[136:148]) * 1_000_000_000,
            linkname=linkname,
        )
        if ustar or gnu:  # V7 headers end at the link name
            entry.uname = _str(block[265:297])
            entry.gname = _str(block[297:329])
            if ustar or kind in (CHR, BLK):  # GNU reuses the fields of other entries
                entry.devmajor = _num(block[329:337])
                entry.devminor = _num(block[337:345])
        if pax:
            self._apply_pax(entry, pax)
        if entry.type in _HEADER_ONLY:
            # As in Go, these carry no data whatever the size field says.
            entry.size = 0
            return entry
        self._left = entry.size
        self._pad = -entry.size % BLOCK
        if kind == _GNUSPARSE:
            self._old_gnu_sparse(entry, block)
        elif "GNU.sparse.major" in pax or "GNU.sparse.map" in pax or pax_sparse or "GNU.sparse.size" in pax:
            self._pax_sparse(entry, pax, pax_sparse)
        return entry

    @staticmethod
    def _apply_pax(entry: TarEntry, pax: dict[str, bytes]) -> None:
        for key, value in pax.items():
            if key == "path":
                entry.name = value.decode("utf-8", "surrogateescape")
            elif key == "linkpath":
                entry.linkname = value.decode("utf-8", "surrogateescape")
            elif key == "size":
                entry.size = _pax_int(pax, key, entry.size)
            elif key == "uid":
                entry.uid = _pax_int(pax, key, entry.uid)
            elif key == "gid":
                entry.gid = _pax_int(pax, key, entry.gid)
            elif key == "uname":
                entry.uname = value.decode("utf-8", "surrogateescape")
            elif key == "gname":
                entry.gname = value.decode("utf-8", "surrogateescape")
            elif key == "mtime":
                entry.mtime_ns = _pax_time(value)
            elif key.startswith("SCHILY.xattr."):
                entry.xattrs[key[13:]] = value
        if entry.size < 0:
            raise _corrupt("negative size")

    def _old_gnu_sparse(self, entry: TarEntry, block: bytes) -> None:
        pairs: list[int] = []

        def collect(area: bytes, count: int) -> None:
            for i in range(count):
                field = area[i * 24 : i * 24 + 24]
                if field[:12].strip(b"\x00") == b"":
                    return
                pairs.extend((_num(field[:12]), _num(field[12:])))

        collect(block[386:482], 4)
        extended = block[482]
        while extended:
            ext = self._block()
            if ext is None:
                raise _corrupt("unexpected end of data inside a sparse header")
            collect(ext[:504], 21)
            extended = ext[504]
        stored = entry.size
        entry.type = REG
        entry.size = _num(block[483:495])
        entry.sparse = _checked_map(pairs, entry.size)
        if sum(n for _, n in entry.sparse) != stored:
            raise _corrupt("sparse map does not match the stored data size")

    def _pax_sparse(self, entry: TarEntry, pax: dict[str, bytes], pax_sparse: list[int]) -> None:
        """Set ``entry.sparse`` (and read the 1.0 format's map, which leads the data)."""
        stored = entry.size
        if "GNU.sparse.name" in pax:
            entry.name = pax["GNU.sparse.name"].decode("utf-8", "surrogateescape")
        major = pax.get("GNU.sparse.major")
        if major == b"1":
            real = _pax_int(pax, "GNU.sparse.realsize", 0)
            # The map leads the data: decimal numbers, one a line, padded to a block.
            numbers: list[int] = []
            text = b""
            consumed = 0
            want = -1
            while want < 0 or len(numbers) < want:
                while b"\n" not in text:
                    if consumed >= stored:
                        raise _corrupt("sparse map runs past the entry's data")
                    text += self.read(BLOCK)
                    consumed += BLOCK
                line, _, text = text.partition(b"\n")
                try:
                    value = int(line)
                except ValueError:
                    raise _corrupt("bad number in a sparse map") from None
                if want < 0:
                    want = 2 * value
                else:
                    numbers.append(value)
            entry.size = real
            entry.sparse = _checked_map(numbers, real)
            if sum(n for _, n in entry.sparse) != stored - consumed:
                raise _corrupt("sparse map does not match the stored data size")
            return
        if "GNU.sparse.map" in pax:
            raw = pax["GNU.sparse.map"].decode("ascii", "replace")
            try:
                pairs = [int(x) for x in raw.split(",")] if raw else []
            except ValueError:
                raise _corrupt("bad GNU.sparse.map") from None
        else:
            pairs = pax_sparse
        entry.size = _pax_int(pax, "GNU.sparse.size", entry.size)
        entry.sparse = _checked_map(pairs, entry.size)
        if sum(n for _, n in entry.sparse) != stored:
            raise _corrupt("sparse map does not match the stored data size")


# --- writing --------------------------------------------------------------------------

_OCTAL_MAX = {8: 0o7777777, 12: 0o77777777777}


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\x00" % (width - 1, value)


def _base256(value: int, width: int) -> bytes:
    raw = bytearray(value.to_bytes(width, "big", signed=True))
    if value >= 0:
        raw[0] |= 0x80
    return bytes(raw)


def _field(text: str, width: int) -> bytes:
    raw = os.fsencode(text)
    return raw[:width].ljust(width, b"\0")


def _pax_time_text(ns: int) -> bytes:
    """``[-]seconds[.fraction]``: the sign applies to the whole value, as PAX readers expect."""
    seconds, nanos = divmod(abs(ns), 1_000_000_000)
    frac = f".{nanos:09d}".rstrip("0") if nanos else ""
    return f"{'-' if ns < 0 else ''}{seconds}{frac}".encode()


def _pax_record(key: str, value: bytes) -> bytes:
    body = b" " + key.encode("utf-8", "surrogateescape") + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return str(n).encode() + body


def _fits(text: str, width: int) -> bool:
    return text.isascii() and len(text) <= width


def _split_name(name: str) -> tuple[str, str] | None:
    """USTAR (prefix, name) for ``name``, or None if it needs PAX."""
    if _fits(name, 100):
        return "", name
    if not name.isascii() or len(name) > 256:
        return None
    cut = name.rfind("/", 0, 156)
    while cut > 0:
        if len(name) - cut - 1 <= 100 and cut <= 155:
            return name[:cut], name[cut + 1 :]
        cut = name.rfind("/", 0, cut)
    return None


class TarWriter:
    """Write tar entries to ``out``: USTAR headers, PAX records where values do not fit.

    ``add`` writes one entry; for a regular file the data come from ``data``
    (a readable binary file), exactly ``entry.size`` bytes. ``close`` writes the
    end-of-archive blocks (it does not close ``out``).
    """

    def __init__(self, out: Writable, chunk: int = CHUNK) -> None:
        self._out = out
        self._buf = bytearray(chunk)

    def _header(self, entry: TarEntry, name: str, kind: str, size: int) -> bytes:
        pax: list[bytes] = []
        split = _split_name(name)
        if split is None:
            pax.append(_pax_record("path", os.fsencode(name)))
            split = ("", os.fsencode(name)[:100].decode("ascii", "replace"))
        if entry.linkname and not _fits(entry.linkname, 100):
            pax.append(_pax_record("linkpath", os.fsencode(entry.linkname)))
        seconds, nanos = divmod(entry.mtime_ns, 1_000_000_000)
        if nanos or not 0 <= seconds <= _OCTAL_MAX[12]:
            pax.append(_pax_record("mtime", _pax_time_text(entry.mtime_ns)))
        numeric = {}
        for key, value, width in (("uid", entry.uid, 8), ("gid", entry.gid, 8), ("size", size, 12)):
            if 0 <= value <= _OCTAL_MAX[width]:
                numeric[key] = _octal(value, width)
            else:
                pax.append(_pax_record(key, str(value).encode()))
                numeric[key] = _octal(0, width)
        for key, text in (("uname", entry.uname), ("gname", entry.gname)):
            if text and not _fits(text, 32):
                pax.append(_pax_record(key, text.encode("utf-8", "surrogateescape")))
        for key in sorted(entry.xattrs):
            if "=" in key or "\0" in key:
                raise InvalidArgument(
                    f"{entry.name!r}: xattr name {key!r} cannot be stored in a tar (PAX keys exclude '=')"
                )
            pax.append(_pax_record("SCHILY.xattr." + key, entry.xattrs[key]))
        mtime = _octal(max(0, min(seconds, _OCTAL_MAX[12])), 12)
        out = b""
        if pax:
            data = b"".join(pax)
            head = self._ustar(
                name="PaxHeaders/" + split[1][:80], prefix="", kind=_PAX, mode=0o644,
                uid=_octal(0, 8), gid=_octal(0, 8), size=_octal(len(data), 12), mtime=mtime,
                linkname="", uname="", gname="", devmajor=0, devminor=0,
            )  # fmt: skip
            out = head + data + bytes(-len(data) % BLOCK)
        return out + self._ustar(
            name=split[1], prefix=split[0], kind=kind, mode=entry.mode,
            uid=numeric["uid"], gid=numeric["gid"], size=numeric["size"], mtime=mtime,
            linkname=entry.linkname, uname=entry.uname if _fits(entry.uname, 32) else "",
            gname=entry.gname if _fits(entry.gname, 32) else "", devmajor=entry.devmajor, devminor=entry.devminor,
        )  # fmt: skip

    @staticmethod
    def _ustar(
        *,
        name: str,
        prefix: str,
        kind: str,
        mode: int,
        uid: bytes,
        gid: bytes,
        size: bytes,
        mtime: bytes,
        linkname: str,
        uname: str,
        gname: str,
        devmajor: int,
        devminor: int,
    ) -> bytes:
        dev = b"".join(
            _octal(v, 8) if 0 <= v <= _OCTAL_MAX[8] else _base256(v, 8) for v in (devmajor, devminor)
        )
        head = b"".join(
            (
                _field(name, 100), _octal(mode & 0o7777, 8), uid, gid, size, mtime, b" " * 8,
                kind.encode(), _field(linkname, 100), b"ustar\x0000", _field(uname, 32), _field(gname, 32),
                dev, _field(prefix, 155), bytes(12),
            )
        )  # fmt: skip
        chksum = b"%06o\x00 " % sum(head)
        return head[:148] + chksum + head[156:]

    def add(self, entry: TarEntry, data: Readable | None = None) -> None:
        """Append ``entry``; a regular file's ``entry.size`` bytes are copied from ``data``."""
        size = entry.size if entry.type == REG else 0
        self._out.write(self._header(entry, entry.name, entry.type, size))
        if not size:
            return
        if data is None:
            raise InvalidArgument(f"tar entry {entry.name!r}: {size} bytes of data expected, none given")
        left = size
        buf = self._buf
        view = memoryview(buf)
        readinto = getattr(data, "readinto", None)
        while left:
            want = min(left, len(buf))
            if readinto is not None:
                n = readinto(view[:want])
                chunk: bytes | memoryview = view[:n]
            else:
                chunk = data.read(want)
                n = len(chunk)
            if not n:
                raise Conflict(f"{entry.name!r} shrank while it was archived ({size - left} of {size} bytes)")
            self._out.write(chunk)
            left -= n
        self._out.write(bytes(-size % BLOCK))

    def close(self) -> None:
        """Write the end-of-archive marker (two zero blocks)."""
        self._out.write(_ZERO_BLOCK * 2)
