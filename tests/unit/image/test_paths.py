from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pallet.image.paths import normalise, resolve_roots


@given(st.text(alphabet="/.ab", max_size=16))
def test_normalise_spells_a_path_as_pathlib_does(text: str) -> None:
    assert normalise(text) == str(Path(text))
    assert normalise(Path(text)) == str(Path(text))


def test_roots_are_absolute_like_pathlib_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PALLET_ROOT", raising=False)
    monkeypatch.setenv("PALLET_RUN", "run/./x/")
    assert resolve_roots("store//a/../b") == (str(Path("store//a/../b").absolute()), f"{tmp_path}/run/x")
    assert resolve_roots() == ("/var/lib/pallet", f"{os.getcwd()}/run/x")
