"""docker's healthcheck rules (``engine/healthcheck.py``): checks, merge, defaults, the probe rule,
and the ``health.json`` round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from pallet.engine import healthcheck as hc
from pallet.errors import InvalidArgument
from pallet.oci.image_spec import Healthcheck

_S = 1_000_000_000


def test_check_refuses_what_dockerd_refuses() -> None:
    with pytest.raises(InvalidArgument, match="Interval in Healthcheck cannot be less than 1ms"):
        hc.check(Healthcheck(test=("CMD", "true"), interval=999_999))
    with pytest.raises(InvalidArgument, match="Retries in Healthcheck cannot be negative"):
        hc.check(Healthcheck(test=("CMD", "true"), retries=-1))
    with pytest.raises(InvalidArgument, match="unknown healthcheck type"):
        hc.check(Healthcheck(test=("RUN", "true")))
    hc.check(Healthcheck(test=("NONE",), interval=0))


def test_merge_takes_each_unset_field_from_the_image() -> None:
    image = Healthcheck(test=("CMD", "true"), interval=5 * _S, retries=7)
    merged = hc.merge(Healthcheck(timeout=2 * _S), image)
    assert merged == Healthcheck(test=("CMD", "true"), interval=5 * _S, timeout=2 * _S, retries=7)
    assert hc.merge(None, image) == image
    assert hc.merge(Healthcheck(test=("NONE",)), image).test == ("NONE",)  # type: ignore[union-attr]


def test_settings_fill_dockers_defaults_and_none_disables() -> None:
    found = hc.settings(Healthcheck(test=("CMD-SHELL", "curl -f localhost")))
    assert found == hc.Settings(argv=("/bin/sh", "-c", "curl -f localhost"), interval=30 * _S, timeout=30 * _S,
                                start_period=0, start_interval=5 * _S, retries=3)  # fmt: skip
    assert hc.settings(Healthcheck(test=("NONE",))) is None
    assert hc.settings(None) is None
    assert hc.settings(Healthcheck(test=("CMD", "a", "b"), retries=1)).argv == ("a", "b")  # type: ignore[union-attr]


def _result(code: int) -> hc.ProbeResult:
    return hc.ProbeResult(start="s", end="e", exit_code=code, output="")


def test_a_streak_of_retries_failures_is_unhealthy_and_a_success_heals() -> None:
    health = hc.Health()
    health = hc.record_probe(health, _result(1), retries=2, in_start_period=False)
    assert (health.status, health.failing_streak) == ("starting", 1)
    health = hc.record_probe(health, _result(1), retries=2, in_start_period=False)
    assert (health.status, health.failing_streak) == ("unhealthy", 2)
    health = hc.record_probe(health, _result(0), retries=2, in_start_period=False)
    assert (health.status, health.failing_streak) == ("healthy", 0)


def test_failures_in_the_start_period_do_not_count_while_starting() -> None:
    health = hc.record_probe(hc.Health(), _result(1), retries=1, in_start_period=True)
    assert (health.status, health.failing_streak, len(health.log)) == ("starting", 0, 1)


def test_the_log_keeps_the_last_five() -> None:
    health = hc.Health()
    for code in range(8):
        health = hc.record_probe(health, _result(code), retries=100, in_start_period=False)
    assert [r.exit_code for r in health.log] == [3, 4, 5, 6, 7]


def test_health_file_round_trips_in_dockers_shape(tmp_path: Path) -> None:
    assert hc.read_health(str(tmp_path)) is None
    health = hc.Health(
        status="unhealthy",
        failing_streak=3,
        log=(hc.ProbeResult(start="a", end="b", exit_code=-1, output="x"),),
    )
    hc.write_health(str(tmp_path), health)
    assert hc.read_health(str(tmp_path)) == health
    assert health.to_docker()["Log"] == [{"Start": "a", "End": "b", "ExitCode": -1, "Output": "x"}]


def test_ps_suffixes_are_dockers() -> None:
    assert hc.status_suffix("starting") == " (health: starting)"
    assert hc.status_suffix("healthy") == " (healthy)"
    assert hc.status_suffix("") == ""
