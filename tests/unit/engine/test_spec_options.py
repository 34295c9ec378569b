"""Spec options (``engine.spec.generate``'s ``with_...``): one decision each, composed in order,
without a ``RunOptions`` (containerd's spec options)."""

from __future__ import annotations

import pytest

from pallet.engine.spec import defaults
from pallet.engine.spec import generate as g
from pallet.errors import InvalidArgument
from pallet.oci.runtime_spec import Device, DeviceRule, Mount


def test_base_spec_has_dockers_defaults_and_no_command() -> None:
    spec = g.base_spec("/r")
    assert spec.root is not None
    assert (spec.root.path, spec.root.readonly) == ("/r", False)
    assert spec.process is not None
    assert (spec.process.args, spec.process.cwd, spec.process.oom_score_adj) == ((), "/", 0)
    assert spec.linux is not None
    assert [n.type for n in spec.linux.namespaces] == ["mount", "network", "uts", "pid", "ipc"]
    assert spec.linux.masked_paths == defaults.MASKED_PATHS
    assert [m.destination for m in spec.mounts] == [m.destination for m in defaults.default_mounts()]


def test_each_option_changes_only_what_it_names() -> None:
    base = g.base_spec("/r")
    spec = g.compose(base, g.with_hostname("box"))
    assert spec == base.replace(hostname="box")
    spec = g.compose(base, g.with_process_args(["true"]))
    assert spec.process == base.process.replace(args=("true",))  # type: ignore[union-attr]


def test_options_apply_in_order_a_later_one_sees_the_earlier() -> None:
    spec = g.new_spec("/r", g.with_process_args(["sh"]), g.with_init("/usr/bin/tini"))
    assert spec.process is not None
    assert spec.process.args == (defaults.INIT_PATH, "--", "sh")
    assert spec.mounts[-1].destination == defaults.INIT_PATH
    with pytest.raises(InvalidArgument, match="static init binary"):
        g.with_init(None)


def test_network_namespace_options() -> None:
    joined = g.new_spec("/r", g.with_network_namespace("/run/netns/n1"))
    assert joined.linux is not None
    assert [(n.type, n.path) for n in joined.linux.namespaces if n.type == "network"] == [
        ("network", "/run/netns/n1")
    ]
    host = g.new_spec("/r", g.with_host_network())
    assert host.linux is not None
    assert "network" not in [n.type for n in host.linux.namespaces]


def test_memory_and_cpu_options_fill_one_field_each() -> None:
    spec = g.new_spec("/r", g.with_memory_limit(1 << 26), g.with_cpus(500_000_000), g.with_cpu_shares(256))
    assert spec.linux is not None
    resources = spec.linux.resources
    assert resources is not None
    assert resources.memory is not None
    assert (resources.memory.limit, resources.memory.swap, resources.memory.reservation) == (
        1 << 26,
        None,
        None,
    )
    assert resources.cpu is not None
    assert (resources.cpu.quota, resources.cpu.period, resources.cpu.shares) == (50_000, 100_000, 256)
    assert resources.devices == tuple(defaults.DEFAULT_DEVICE_RULES)  # the base's, untouched


def test_readonly_rootfs_leaves_dockers_writable_mounts_and_later_mounts_alone() -> None:
    later = Mount(destination="/data", type="bind", source="/srv", options=("rbind", "rw"))
    spec = g.new_spec("/r", g.with_readonly_rootfs(), g.with_mounts([later]))
    assert spec.root is not None
    assert spec.root.readonly
    by_destination = {m.destination: m.options for m in spec.mounts}
    assert "ro" not in by_destination["/proc"]
    assert "ro" not in by_destination["/dev/shm"]
    assert by_destination["/data"] == ("rbind", "rw")


def test_user_mounts_replace_defaults_sort_by_depth_and_refuse_duplicates() -> None:
    spec = g.new_spec(
        "/r",
        g.with_mounts(
            [
                Mount(destination="/a/b", type="tmpfs", source="tmpfs"),
                Mount(destination="/dev", type="tmpfs", source="tmpfs"),
                Mount(destination="/a", type="tmpfs", source="tmpfs"),
            ]
        ),
    )
    destinations = [m.destination for m in spec.mounts]
    assert not [d for d in destinations if d.startswith("/dev/")]
    assert destinations[-3:] == ["/dev", "/a", "/a/b"]
    with pytest.raises(InvalidArgument, match="Duplicate mount point: /x"):
        g.with_mounts([Mount(destination="/x"), Mount(destination="/x")])


def test_devices_add_nodes_and_rules_after_the_defaults() -> None:
    device = Device(type="c", path="/dev/fuse", major=10, minor=229)
    rule = DeviceRule(allow=True, type="c", major=10, minor=229, access="rwm")
    spec = g.new_spec("/r", g.with_devices([device], [rule]))
    assert spec.linux is not None
    assert spec.linux.devices == (device,)
    assert spec.linux.resources is not None
    assert spec.linux.resources.devices == (*defaults.DEFAULT_DEVICE_RULES, rule)
    privileged = g.compose(spec, g.with_all_devices_allowed())
    assert privileged.linux is not None
    assert privileged.linux.resources is not None
    assert privileged.linux.resources.devices == (DeviceRule(allow=True, access="rwm"),)


def test_sysctls_merge_a_later_value_wins() -> None:
    spec = g.new_spec("/r", g.with_sysctls({"a.b": "1", "c.d": "2"}), g.with_sysctls({"a.b": "3"}))
    assert spec.linux is not None
    assert dict(spec.linux.sysctl) == {"a.b": "3", "c.d": "2"}
