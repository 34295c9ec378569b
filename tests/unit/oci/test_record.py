from __future__ import annotations

import pytest

from pallet.oci.record import EMPTY, Record


class Point(Record):
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()


class Labelled(Point):
    labels: object = EMPTY


def test_defaults_and_keywords() -> None:
    p = Point(x=1)
    assert (p.x, p.y, p.tags) == (1, 0, ())


def test_missing_and_unknown_fields_are_type_errors() -> None:
    with pytest.raises(TypeError, match="missing keyword argument 'x'"):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected"):
        Point(x=1, z=2)  # type: ignore[call-arg]


def test_frozen() -> None:
    p = Point(x=1)
    with pytest.raises(AttributeError, match="frozen"):
        p.x = 2  # type: ignore[misc]


def test_equality_hash_replace_and_inheritance() -> None:
    a = Labelled(x=1, y=2)
    assert a == Labelled(x=1, y=2)
    assert a != Point(x=1, y=2)
    assert hash(a) == hash(Labelled(x=1, y=2))
    assert a.replace(y=5) == Labelled(x=1, y=5)
    assert Labelled._fields == ("x", "y", "tags", "labels")
    assert "Labelled(x=1" in repr(a)


def test_mutable_default_is_refused() -> None:
    with pytest.raises(TypeError, match="mutable default"):

        class Bad(Record):
            items: list[int] = []  # noqa: RUF012
