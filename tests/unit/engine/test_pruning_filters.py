"""The prune commands' ``--filter``: docker's keys, what each accepts, and clear refusals."""

from __future__ import annotations

import pytest

from pallet.engine.gc.prune import PruneFilters
from pallet.errors import InvalidArgument

NOW = 1_700_000_000.0


def test_until_takes_a_go_duration_back_from_now_or_a_time() -> None:
    assert PruneFilters(["until=1h30m"], now=NOW).until == NOW - 5400
    assert PruneFilters(["until=1600000000"], now=NOW).until == 1_600_000_000
    assert PruneFilters(["until=2020-09-13T12:26:40Z"], now=NOW).until == 1_600_000_000


def test_until_keeps_what_was_created_after_it_or_at_an_unknown_time() -> None:
    filters = PruneFilters(["until=10m"], now=NOW)
    assert filters.created_match(NOW - 3600)
    assert not filters.created_match(NOW - 60)
    assert not filters.created_match(None)
    assert PruneFilters([], now=NOW).created_match(None)


def test_labels_all_must_match_and_no_excluded_one_may() -> None:
    filters = PruneFilters(["label=a", "label=b=2", "label!=keep"])
    assert filters.labels_match({"a": "x", "b": "2"})
    assert not filters.labels_match({"a": "x", "b": "3"})
    assert not filters.labels_match({"a": "x", "b": "2", "keep": ""})
    assert not PruneFilters(["label!=keep=yes"]).labels_match({"keep": "yes"})
    assert PruneFilters(["label!=keep=yes"]).labels_match({"keep": "no"})


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("colour=red", 'invalid filter "colour"'),
        ("until", 'bad format of filter "until"'),
        ("until=yesterday", 'invalid value for "until"'),
    ],
)
def test_bad_filters_are_refused_naming_them(value: str, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        PruneFilters([value])


def test_volumes_take_the_label_filters_but_refuse_until() -> None:
    volume_filters = PruneFilters(["label=a=1", "label!=b"]).volume_filters()
    assert volume_filters.by_key == {"label": ["a=1"], "label!": ["b"]}
    with pytest.raises(InvalidArgument, match="until"):
        PruneFilters(["until=1h"]).volume_filters()
