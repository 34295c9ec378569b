"""``stats``: docker's CPU and memory arithmetic, and reading a process's cgroups."""

from __future__ import annotations

import os

from pallet.engine.observe.stats import Sample, cgroup_dirs, sample, usage


def test_cpu_percent_is_container_time_over_host_time_times_cpus() -> None:
    before = Sample(cpu_ns=1_000, system_ns=10_000, online_cpus=2)
    after = Sample(cpu_ns=3_000, system_ns=20_000, online_cpus=2, memory=50, memory_limit=200, pids=3)
    result = usage(before, after)
    assert result.cpu_percent == 40.0
    assert result.memory_percent == 25.0
    assert result.pids == 3


def test_no_progress_is_zero_percent_not_an_error() -> None:
    same = Sample(cpu_ns=5, system_ns=5)
    assert usage(same, same).cpu_percent == 0.0
    assert usage(Sample(), Sample()).memory_percent == 0.0


def test_a_gone_process_reads_as_zeros() -> None:
    assert cgroup_dirs(2**22 + 1) == {}
    assert sample(2**22 + 1).memory == 0


def test_own_cgroups_are_found() -> None:
    dirs = cgroup_dirs(os.getpid())
    assert dirs
    assert all(os.path.isdir(d) for d in dirs.values())
