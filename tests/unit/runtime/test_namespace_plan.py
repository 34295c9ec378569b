"""Which namespaces create makes and which it joins by path (user namespace first)."""

from __future__ import annotations

from pathlib import Path

from pallet.linux import flags as f
from pallet.oci.jsonfast import dumps
from pallet.oci.runtime_spec import default_spec, load_spec
from pallet.runtime.create import _namespace_plan


def test_new_namespaces_become_flags_and_paths_are_opened_user_first(tmp_path: Path) -> None:
    for name in ("net", "user"):
        (tmp_path / name).write_text("")
    doc = default_spec().to_json()
    doc["ociVersion"] = "1.2.0"
    del doc["hostname"]
    doc["linux"]["namespaces"] = [
        {"type": "pid"},
        {"type": "mount"},
        {"type": "network", "path": str(tmp_path / "net")},
        {"type": "user", "path": str(tmp_path / "user")},
        {"type": "cgroup"},
    ]
    opened: list[int] = []
    joins, flags = _namespace_plan(load_spec(dumps(doc)), opened)
    try:
        assert flags == f.CLONE_NEWPID | f.CLONE_NEWNS | f.CLONE_NEWCGROUP
        assert [kind for _, kind in joins] == [f.CLONE_NEWUSER, f.CLONE_NEWNET]
        assert sorted(fd for fd, _ in joins) == sorted(opened)
    finally:
        import os

        for fd in opened:
            os.close(fd)
