"""``Record``: the base of pallet's spec objects, a frozen keyword-only record.

It behaves like ``@dataclass(frozen=True, kw_only=True)`` and type checkers see
it as exactly that (PEP 681 ``dataclass_transform``). It exists because
``import dataclasses`` costs ~30 ms on this VM (it pulls in ``inspect``, ``re``
and ``enum``) and each dataclass compiles its methods with ``exec``: too slow
for ``pallet-runtime``, which must start in a few milliseconds and reads
config.json through these classes.

Contract: fields are the class annotations (``ClassVar`` and ``_private`` names
excluded), in definition order, base classes first; a class attribute is the
field's default. Defaults must be immutable (use tuples, ``None`` or
``EMPTY``), so instances never share mutable state.
"""

from __future__ import annotations

__all__ = ["EMPTY", "MappingProxy", "Record"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Self, dataclass_transform

#: ``types.MappingProxyType``, without importing ``types`` (~0.3 ms at each ``pallet-runtime`` start)
MappingProxy = type(type.__dict__)

#: an immutable empty mapping, the default for dict-valued fields
EMPTY: Mapping[str, str] = MappingProxy({})

_MUTABLE = (list, dict, set, bytearray)


def _collect_fields(cls: type) -> tuple[tuple[str, ...], dict[str, object]]:
    names: list[str] = []
    defaults: dict[str, object] = {}
    for klass in reversed(cls.__mro__):
        for name, ann in klass.__dict__.get("__annotations__", {}).items():  # noqa: RUF063 - no inspect import
            if name.startswith("_") or str(ann).startswith(("ClassVar", "typing.ClassVar")):
                continue
            if name not in names:
                names.append(name)
            if name in klass.__dict__:
                value = klass.__dict__[name]
                if isinstance(value, _MUTABLE):
                    raise TypeError(f"{cls.__name__}.{name}: mutable default {value!r}")
                defaults[name] = value
            else:
                defaults.pop(name, None)
    return tuple(names), defaults


class _RecordBase:
    __slots__ = ()
    _fields: tuple[str, ...] = ()
    _defaults: dict[str, object] = {}  # noqa: RUF012 - replaced per class

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._fields, cls._defaults = _collect_fields(cls)

    def __init__(self, **values: Any) -> None:
        setter = object.__setattr__
        defaults = self._defaults
        for name in self._fields:
            if name in values:
                setter(self, name, values.pop(name))
            elif name in defaults:
                setter(self, name, defaults[name])
            else:
                raise TypeError(f"{type(self).__name__}() missing keyword argument {name!r}")
        if values:
            raise TypeError(f"{type(self).__name__}() got unexpected keyword arguments {sorted(values)}")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen; use .replace({name}=...)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, n) for n in self._fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        # mapping fields (MappingProxyType) are not hashable themselves
        values = (tuple(sorted(v.items())) if isinstance(v, MappingProxy) else v for v in self._values())
        return hash((type(self), *values))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"{type(self).__name__}({inner})"

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed (``dataclasses.replace``)."""
        values = {n: getattr(self, n) for n in self._fields}
        values.update(changes)
        return type(self)(**values)


if TYPE_CHECKING:

    @dataclass_transform(kw_only_default=True, frozen_default=True, eq_default=True)
    class Record:
        _fields: tuple[str, ...]

        def replace(self, **changes: Any) -> Self: ...

else:

    class Record(_RecordBase):
        __slots__ = ()
