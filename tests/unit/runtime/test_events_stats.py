"""``events --stats`` data from cgroup files (plain files standing in for the kernel's): runc's JSON shape."""

from __future__ import annotations

from pathlib import Path

from pallet.runtime.events import stats


def _files(directory: Path, files: dict[str, str]) -> str:
    directory.mkdir(parents=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return str(directory)


def test_v1_stats_convert_ticks_and_keep_runcs_zero_fields(tmp_path: Path) -> None:
    paths = {
        "cpu,cpuacct": _files(
            tmp_path / "cpu",
            {
                "cpuacct.usage": "5000\n",
                "cpuacct.usage_percpu": "3000 2000 \n",
                "cpuacct.stat": "user 3\nsystem 1\n",
                "cpu.stat": "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n",
            },
        ),
        "memory": _files(
            tmp_path / "memory",
            {
                "memory.usage_in_bytes": "4096\n",
                "memory.limit_in_bytes": "65536\n",
                "memory.max_usage_in_bytes": "8192\n",
                "memory.failcnt": "0\n",
                "memory.stat": "cache 10\nrss 20\ntotal_cache 11\n",
            },
        ),
        "pids": _files(tmp_path / "pids", {"pids.current": "2\n", "pids.max": "max\n"}),
        "hugetlb": _files(
            tmp_path / "hugetlb",
            {
                "hugetlb.2MB.usage_in_bytes": "0\n",
                "hugetlb.2MB.max_usage_in_bytes": "0\n",
                "hugetlb.2MB.failcnt": "0\n",
                "hugetlb.2MB.rsvd.usage_in_bytes": "0\n",
            },
        ),
        "blkio": _files(
            tmp_path / "blkio",
            {"blkio.throttle.io_service_bytes": "8:0 Read 512\n8:0 Write 0\nTotal 512\n"},
        ),
    }
    data = stats(paths)
    # zero numbers go (runc's omitempty: minor 0 too), except the fields runc always writes
    assert data["cpu"] == {
        "usage": {"total": 5000, "percpu": [3000, 2000], "kernel": 10_000_000, "user": 30_000_000},
        "throttling": {},
    }
    assert data["memory"] == {
        "cache": 11,
        "usage": {"limit": 65536, "usage": 4096, "max": 8192, "failcnt": 0},
        "swap": {"limit": 0, "failcnt": 0},
        "kernel": {"limit": 0, "failcnt": 0},
        "kernelTCP": {"limit": 0, "failcnt": 0},
        "raw": {"cache": 10, "rss": 20, "total_cache": 11},
    }
    assert data["pids"] == {"current": 2}  # "max" is no limit: omitted, as runc's omitempty does
    assert data["hugetlb"] == {"2MB": {"failcnt": 0}}
    assert data["blkio"] == {
        "ioServiceBytesRecursive": [
            {"major": 8, "op": "Read", "value": 512},
            {"major": 8, "op": "Write"},
        ]
    }


def test_v2_stats_read_the_unified_files(tmp_path: Path) -> None:
    directory = _files(
        tmp_path / "c1",
        {
            "cpu.stat": "usage_usec 7\nuser_usec 5\nsystem_usec 2\nnr_periods 3\nnr_throttled 1\nthrottled_usec 4\n",
            "memory.current": "4096\n",
            "memory.max": "max\n",
            "memory.stat": "anon 100\nfile 50\n",
            "memory.events": "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n",
            "pids.current": "3\n",
            "pids.max": "10\n",
        },
    )
    data = stats({"": directory})
    assert data["cpu"] == {
        "usage": {"total": 7000, "kernel": 2000, "user": 5000},
        "throttling": {"periods": 3, "throttledPeriods": 1, "throttledTime": 4000},
    }
    memory = data["memory"]
    assert isinstance(memory, dict)
    assert memory["usage"] == {"limit": 0, "usage": 4096, "failcnt": 2}
    assert memory["cache"] == 50
    assert data["pids"] == {"current": 3, "limit": 10}
