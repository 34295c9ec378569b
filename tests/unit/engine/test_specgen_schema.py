"""Generated config.json documents validate against the official runtime-spec JSON schema.

The schema comes from Debian's golang-github-opencontainers-specs-dev (runtime-spec 1.0.2, the
version ``build_spec`` writes); the test is skipped where it is not installed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pallet.engine.spec import generate as g
from pallet.engine.spec.generate import build_spec
from pallet.engine.spec.mounts import ResolvedMount
from pallet.engine.spec.options import RunOptions
from pallet.engine.spec.syntax import DeviceMapping, parse_security_opt, parse_ulimit
from pallet.oci.runtime_spec import Mount, Rlimit
from pallet.testing.options import run_options

from .test_specgen import CID, HOST, IMAGE, rootfs

__all__ = ["rootfs"]

SCHEMA_DIR = Path("/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema")


@pytest.fixture(scope="module")
def validator() -> Any:
    if not (SCHEMA_DIR / "config-schema.json").exists():
        pytest.skip("runtime-spec schema missing (apt-get install golang-github-opencontainers-specs-dev)")
    from jsonschema import Draft4Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    def retrieve(uri: str) -> Resource[Any]:
        name = uri.rsplit("/", 1)[-1]
        return Resource.from_contents(
            json.loads((SCHEMA_DIR / name).read_text()), default_specification=DRAFT4
        )

    schema = json.loads((SCHEMA_DIR / "config-schema.json").read_text())
    registry: Registry[Any] = Registry(retrieve=retrieve)  # type: ignore[call-arg]
    return Draft4Validator({**schema, "id": f"file://{SCHEMA_DIR}/config-schema.json"}, registry=registry)


@pytest.mark.parametrize(
    "options",
    [
        RunOptions(),
        run_options(
            user="alice",
            memory=64 << 20,
            cpus=5 * 10**8,
            cpu_shares=256,
            cpuset_cpus="0",
            pids_limit=10,
            ulimits=(parse_ulimit("nofile=10:20"),),
            tmpfs={"/run": "size=1m"},
            sysctls={"kernel.shmmax": "65536"},
            init=True,
            read_only=True,
            cap_add=("CAP_SYS_ADMIN",),
            cap_drop=("CAP_NET_RAW",),
            security_opt=(parse_security_opt("no-new-privileges"),),
            devices=(DeviceMapping(path_on_host="/dev/null", path_in_container="/dev/n"),),
            network="host",
        ),
        run_options(privileged=True, tty=True, hostname="box", domainname="example.org"),
    ],
    ids=["defaults", "many-options", "privileged"],
)
def test_generated_config_matches_the_runtime_spec_schema(
    validator: Any, rootfs: str, options: RunOptions
) -> None:
    mounts = (ResolvedMount(type="bind", source="/srv", destination="/data", options=("rbind", "rshared")),)
    spec = build_spec(
        container_id=CID, image_config=IMAGE, options=options, rootfs=rootfs, mounts=mounts, host=HOST
    )
    errors = sorted(validator.iter_errors(spec.to_json()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_schema_check_catches_a_broken_config(validator: Any, rootfs: str) -> None:
    doc = build_spec(
        container_id=CID, image_config=IMAGE, options=RunOptions(), rootfs=rootfs, host=HOST
    ).to_json()
    doc["linux"]["namespaces"].append({"type": "moon"})  # type: ignore[index]
    assert list(validator.iter_errors(doc))


def test_a_spec_composed_from_a_few_options_without_run_options_matches_the_schema(
    validator: Any, rootfs: str
) -> None:
    # what a Dockerfile RUN step or exec needs: a command, a user, some limits, no RunOptions
    spec = g.new_spec(
        rootfs,
        g.with_process_args(["/bin/sh", "-c", "make install"]),
        g.with_env(["PATH=/usr/bin:/bin", "HOME=/root"]),
        g.with_cwd("/src"),
        g.with_user(1000, 1000, [1000, 50]),
        g.with_capabilities(["CAP_CHOWN", "CAP_SETUID"]),
        g.with_rlimits([Rlimit(type="RLIMIT_NOFILE", soft=1024, hard=1024)]),
        g.with_no_new_privileges(),
        g.with_hostname("builder"),
        g.with_readonly_rootfs(),
        g.with_network_namespace("/proc/1/ns/net"),
        g.with_namespace("cgroup"),
        g.with_memory_limit(256 << 20),
        g.with_memory_swap(512 << 20),
        g.with_cpus(1_500_000_000),
        g.with_pids_limit(100),
        g.with_sysctls({"net.ipv4.ip_unprivileged_port_start": "0"}),
        g.with_mounts([Mount(destination="/src", type="bind", source="/srv/src", options=("rbind", "ro"))]),
        g.with_cgroups_path("/pallet/build-1"),
    )
    errors = sorted(validator.iter_errors(spec.to_json()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    assert spec.process is not None
    assert spec.linux is not None
    assert spec.root is not None
    assert spec.process.args == ("/bin/sh", "-c", "make install")
    assert spec.root.readonly
    assert [(n.type, n.path) for n in spec.linux.namespaces if n.type == "network"] == [
        ("network", "/proc/1/ns/net")
    ]
    assert spec.linux.resources is not None
    assert spec.linux.resources.memory is not None
    assert (spec.linux.resources.memory.limit, spec.linux.resources.memory.swap) == (256 << 20, 512 << 20)
