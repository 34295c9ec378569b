"""Container state JSON: runc's keys in runc's order, read back exactly."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pallet.errors import SpecError
from pallet.oci import state
from pallet.oci.jsonfast import dumps, loads

# `runc state` of a created container with one annotation (runc 1.1.5 on this VM)
RUNC_STATE = """{
  "ociVersion": "1.0.2-dev",
  "id": "rspec-probe-1",
  "pid": 22186,
  "status": "created",
  "bundle": "/tmp/rs",
  "rootfs": "/tmp/rs/rootfs",
  "created": "2026-11-28T02:06:15.732813189Z",
  "annotations": {
    "a": "b"
  },
  "owner": ""
}"""


def test_runc_state_output_reads_and_writes_back_byte_for_byte() -> None:
    st_ = state.State.from_json(loads(RUNC_STATE))
    assert st_.status == state.CREATED
    assert st_.pid == 22186
    assert st_.annotations == {"a": "b"}
    assert dumps(st_.to_json(), indent=2) == RUNC_STATE


def test_to_json_has_exactly_runc_keys_in_runc_order_without_empty_annotations() -> None:
    st_ = state.State(oci_version="1.2.0", id="c1", status=state.STOPPED, bundle="/b")
    assert list(st_.to_json()) == [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
    ]
    assert st_.to_json()["pid"] == 0


def test_statuses_are_the_five_lifecycle_words() -> None:
    assert {"creating", "created", "running", "paused", "stopped"} == state.STATUSES


@given(
    st.builds(
        state.State,
        oci_version=st.just("1.2.0"),
        id=st.text(min_size=1),
        status=st.sampled_from(sorted(state.STATUSES)),
        pid=st.integers(0, 2**22),
        bundle=st.text(),
        annotations=st.dictionaries(st.text(), st.text(), max_size=3),
        rootfs=st.text(),
        created=st.text(),
        owner=st.text(),
    )
)
def test_states_round_trip_through_json(s: state.State) -> None:
    assert state.State.from_json(json.loads(json.dumps(s.to_json()))) == s


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"status": "exploded"},
            'status: unknown status "exploded" (want one of created, creating, paused, running, stopped)',
        ),
        ({"pid": -1}, "pid: must not be negative, got -1"),
        ({"pid": "1"}, "pid: must be an integer"),
        ({"id": None}, "id: required"),
        ({"bundle": 3}, "bundle: must be a string"),
        ({"annotations": {"a": 1}}, 'annotations["a"]: must be a string'),
    ],
)
def test_bad_state_files_are_refused_with_the_field(change: dict[str, object], message: str) -> None:
    doc = {**json.loads(RUNC_STATE), **change}
    with pytest.raises(SpecError) as caught:
        state.State.from_json(doc)
    assert str(caught.value) == message
    with pytest.raises(SpecError) as caught:
        state.State.from_json(doc, "containers[0]")
    assert str(caught.value) == f"containers[0].{message}"
