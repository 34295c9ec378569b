"""JSON for the hot path: ``loads`` and ``dumps`` over the C accelerators in ``_json``.

``import json`` pulls in ``json.decoder`` and ``json.encoder``, which import
``re`` (~10 ms on this VM). ``pallet-runtime`` reads config.json and writes its
state on every call, so this module drives the same C scanner and encoder that
the standard library uses, without the Python wrappers around them.

Contract: for every input the standard library accepts, ``loads`` returns an
equal value and ``dumps`` returns the same text as ``json.dumps`` with the same
``indent`` (other options are not offered). Where the standard library raises
``ValueError`` on input, ``loads`` raises ``InvalidArgument`` naming the line,
column and character offset of the problem. Only that error path imports
``json.decoder`` (the C scanner takes its exception class from it).
"""

from __future__ import annotations

import _json

from pallet.errors import InvalidArgument

__all__ = ["dumps", "loads"]

_INF = float("inf")
_CONSTANTS = {"NaN": float("nan"), "Infinity": _INF, "-Infinity": -_INF}
_WHITESPACE = " \t\n\r"
# types.MappingProxyType, without importing types (~0.3 ms on the runtime's hot path)
_MappingProxyType = type(type.__dict__)


class _ScannerContext:
    """The attributes ``_json.make_scanner`` reads (what ``json.JSONDecoder`` has)."""

    __slots__ = (
        "memo",
        "object_hook",
        "object_pairs_hook",
        "parse_constant",
        "parse_float",
        "parse_int",
        "strict",
    )

    def __init__(self) -> None:
        self.strict = True
        self.object_hook = None
        self.object_pairs_hook = None
        # float and int themselves: the C scanner takes its fast path for them
        self.parse_float = float
        self.parse_int = int
        self.parse_constant = _CONSTANTS.__getitem__
        self.memo: dict[str, str] = {}


# typeshed types the context as a scanner, which is what json.JSONDecoder passes itself
_scan_once = _json.make_scanner(_ScannerContext())  # type: ignore[arg-type]


def _decode_bytes(data: bytes | bytearray) -> str:
    # The encodings RFC 4627 allows, recognised the way json.loads does: a BOM,
    # or the pattern of zero bytes in the first four.
    if data.startswith((b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")):
        encoding = "utf-32"
    elif data.startswith((b"\xfe\xff", b"\xff\xfe")):
        encoding = "utf-16"
    elif data.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    elif len(data) >= 4 and not data[0]:
        encoding = "utf-16-be" if data[1] else "utf-32-be"
    elif len(data) >= 4 and not data[1]:
        encoding = "utf-16-le" if data[2] or data[3] else "utf-32-le"
    elif len(data) == 2 and not data[0]:
        encoding = "utf-16-be"
    elif len(data) == 2 and not data[1]:
        encoding = "utf-16-le"
    else:
        encoding = "utf-8"
    try:
        return bytes(data).decode(encoding, "surrogatepass")
    except UnicodeDecodeError as exc:
        raise InvalidArgument(f"invalid JSON: not valid {encoding} text at byte {exc.start}") from None


def _syntax_error(text: str, pos: int, problem: str) -> InvalidArgument:
    line = text.count("\n", 0, pos) + 1
    column = pos - text.rfind("\n", 0, pos)
    return InvalidArgument(f"invalid JSON: {problem} at line {line} column {column} (char {pos})")


def loads(data: bytes | bytearray | str) -> object:
    """Parse one JSON document (RFC 8259, plus NaN/Infinity like ``json.loads``).

    Raises ``InvalidArgument`` for anything that is not exactly one JSON value
    surrounded by optional whitespace.
    """
    text = data if isinstance(data, str) else _decode_bytes(data)
    if text.startswith("\ufeff"):
        raise _syntax_error(text, 0, "unexpected UTF-8 BOM (decode the bytes, or pass bytes)")
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan_once(text, start)
    except StopIteration as stop:
        raise _syntax_error(text, stop.value, "expecting value") from None
    except RecursionError:
        raise InvalidArgument("invalid JSON: nested too deeply") from None
    except SystemError:
        # Python 3.11's scanner builds its error from json.decoder.JSONDecodeError
        # found in sys.modules only, and fails without an exception when that
        # module is not loaded. Load it (on this error path only) and rescan.
        import sys

        if "json.decoder" in sys.modules:
            raise
        import json.decoder  # noqa: F401

        return loads(text)
    except ValueError as exc:
        # json.decoder.JSONDecodeError (has msg and pos), or int() refusing a
        # number with more digits than sys.get_int_max_str_digits() allows
        pos = getattr(exc, "pos", None)
        if isinstance(pos, int):
            msg = str(getattr(exc, "msg", exc)).removesuffix(" at")
            raise _syntax_error(text, pos, msg[:1].lower() + msg[1:]) from None
        raise InvalidArgument(f"invalid JSON: {exc}") from None
    rest = text[end:].lstrip(_WHITESPACE)
    if rest:
        raise _syntax_error(text, len(text) - len(rest), "extra data")
    return value


def _default(obj: object) -> object:
    # read-only mappings (Record fields default to EMPTY) encode as objects
    if isinstance(obj, _MappingProxyType):
        return dict(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _float_text(value: float) -> str:
    if value != value:  # noqa: PLR0124 - NaN is the only float unequal to itself
        return "NaN"
    if value == _INF:
        return "Infinity"
    if value == -_INF:
        return "-Infinity"
    return float.__repr__(value)


# Same arguments as json.JSONEncoder passes for dumps(obj) with no options:
# circular-reference markers, default, ASCII string escaping, no indent,
# separators ", " and ": ", unsorted, no skipkeys, NaN allowed.
_encode_compact = _json.make_encoder(
    {}, _default, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True
)


def dumps(obj: object, *, indent: int | None = None) -> str:
    """Serialise ``obj`` exactly as ``json.dumps(obj, indent=indent)`` would.

    Dicts, lists, tuples, read-only mappings, str, int, float, bool and None are
    accepted; anything else raises ``TypeError`` (a programming error, not
    input), and a container that contains itself raises ``ValueError``.
    """
    if indent is None:
        return "".join(_encode_compact(obj, 0))
    chunks: list[str] = []
    _encode_indented(obj, chunks, " " * indent, "\n", set())
    return "".join(chunks)


def _key_text(key: object) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, float):
        return _float_text(key)
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return int.__repr__(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _encode_indented(obj: object, out: list[str], step: str, newline: str, active: set[int]) -> None:
    # The layout of json.dumps(indent=N): one item per line, "," after items,
    # ": " after keys, empty containers as [] and {}.
    if isinstance(obj, str):
        out.append(_json.encode_basestring_ascii(obj))
    elif obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, int):
        out.append(int.__repr__(obj))
    elif isinstance(obj, float):
        out.append(_float_text(obj))
    elif isinstance(obj, (list, tuple, dict, _MappingProxyType)):
        if not obj:
            out.append("{}" if isinstance(obj, (dict, _MappingProxyType)) else "[]")
            return
        if id(obj) in active:
            raise ValueError("Circular reference detected")
        active.add(id(obj))
        inner = newline + step
        if isinstance(obj, (list, tuple)):
            out.append("[")
            for i, item in enumerate(obj):
                out.append("," + inner if i else inner)
                _encode_indented(item, out, step, inner, active)
            out.append(newline + "]")
        else:
            out.append("{")
            for i, (key, value) in enumerate(obj.items()):
                out.append("," + inner if i else inner)
                out.append(_json.encode_basestring_ascii(_key_text(key)))
                out.append(": ")
                _encode_indented(value, out, step, inner, active)
            out.append(newline + "}")
        active.discard(id(obj))
    else:
        _encode_indented(_default(obj), out, step, newline, active)
