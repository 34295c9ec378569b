"""``update``'s merge of a request into a container's options (docker's rules and words), and the
``linux.resources`` sections it hands the runtime; no containers needed."""

from __future__ import annotations

import pytest

from pallet.api.container_config import update_request
from pallet.engine.containers.update import UpdateRequest, linux_resources, merge
from pallet.engine.spec.options import ResourceOptions, RunOptions
from pallet.engine.spec.syntax import RestartPolicy
from pallet.errors import InvalidArgument

MIB = 1 << 20


def options(**resources: object) -> RunOptions:
    return RunOptions(resources=ResourceOptions(**resources))  # type: ignore[arg-type]


def test_fields_left_out_keep_the_containers_values() -> None:
    before = options(memory=64 * MIB, cpu_shares=512, cpuset_cpus="0")
    after = merge(before, UpdateRequest(pids_limit=20))
    assert after.resources.cpu_shares == 512
    assert after.resources.cpuset_cpus == "0"
    assert after.resources.pids_limit == 20


def test_a_new_memory_limit_keeps_the_swap_limit_in_force() -> None:
    after = merge(options(memory=64 * MIB), UpdateRequest(memory=100 * MIB))
    assert (after.resources.memory, after.resources.memory_swap) == (100 * MIB, 128 * MIB)


def test_memory_above_the_swap_limit_needs_a_new_swap_limit() -> None:
    with pytest.raises(InvalidArgument, match="smaller than already set memoryswap limit"):
        merge(options(memory=64 * MIB), UpdateRequest(memory=200 * MIB))
    after = merge(options(memory=64 * MIB), UpdateRequest(memory=200 * MIB, memory_swap=-1))
    assert after.resources.memory_swap == -1


def test_memory_of_a_container_without_limits_needs_no_swap_limit() -> None:
    after = merge(options(), UpdateRequest(memory=50 * MIB))
    assert (after.resources.memory, after.resources.memory_swap) == (50 * MIB, None)


@pytest.mark.parametrize(
    ("before", "request_", "words"),
    [
        ({"cpus": 10**9}, UpdateRequest(cpu_quota=50_000), "CPU Quota cannot be updated as NanoCPUs"),
        ({"cpus": 10**9}, UpdateRequest(cpu_period=50_000), "CPU Period cannot be updated as NanoCPUs"),
        ({"cpu_quota": 50_000}, UpdateRequest(cpus=10**9), "Nano CPUs cannot be updated as CPU Quota"),
        ({}, UpdateRequest(memory=MIB), "Minimum memory limit allowed is 6MB"),
        ({}, UpdateRequest(blkio_weight=2000), "Range of blkio weight is from 10 to 1000"),
        ({}, UpdateRequest(cpu_period=10), "CPU cfs period can not be less than 1ms"),
        ({}, UpdateRequest(cpuset_cpus="zero"), "invalid value zero for cpuset cpus"),
    ],
)
def test_refused_requests_in_dockers_words(
    before: dict[str, int], request_: UpdateRequest, words: str
) -> None:
    with pytest.raises(InvalidArgument, match=words):
        merge(options(**before), request_)


def test_a_restart_policy_is_refused_for_an_auto_remove_container() -> None:
    with pytest.raises(InvalidArgument, match="AutoRemove is enabled"):
        merge(RunOptions(auto_remove=True), UpdateRequest(restart=RestartPolicy(name="always")))
    kept = merge(RunOptions(auto_remove=True), UpdateRequest(restart=RestartPolicy(name="no")))
    assert kept.restart.name == "no"


def test_linux_resources_are_what_run_makes_and_lift_a_pids_limit() -> None:
    sections = linux_resources(
        ResourceOptions(cpu_period=50_000, cpu_quota=25_000, cpu_shares=256, blkio_weight=300, pids_limit=9)
    )
    assert sections["cpu"] == {"shares": 256, "quota": 25_000, "period": 50_000}
    assert sections["blockIO"] == {"weight": 300}
    assert sections["pids"] == {"limit": 9}
    assert "devices" not in sections
    assert linux_resources(ResourceOptions(), unlimited_pids=True) == {"pids": {"limit": -1}}


def test_the_api_body_becomes_a_request_with_zero_meaning_unchanged() -> None:
    request = update_request(
        {
            "Memory": 0,
            "CpuShares": 512,
            "PidsLimit": 0,
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2},
        }
    )
    assert request == UpdateRequest(
        cpu_shares=512, pids_limit=0, restart=RestartPolicy(name="on-failure", max_retries=2)
    )
    assert update_request({}) == UpdateRequest()
    with pytest.raises(InvalidArgument, match=r"UpdateConfig\.Memory of type int64"):
        update_request({"Memory": "lots"})
