"""What an attach costs the ``run`` path in imports: none of the modules the engine bans there."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import textwrap

import pytest

from .conftest import Env, free_port

#: the engine's list (tests/integration/engine/test_run_imports.py), by name or top-level package
BANNED = frozenset({
    "re", "pathlib", "argparse", "json", "subprocess", "typing", "enum", "dataclasses", "contextlib",
    "shutil", "hashlib", "datetime", "asyncio", "http", "urllib", "urllib3", "rich", "ctypes.util",
    "threading", "tempfile",
})  # fmt: skip

_CHILD = textwrap.dedent("""
    import sys
    before = set(sys.modules)
    from pallet.database import Database
    from pallet.network.driver import Driver
    from pallet.network.store import PortMapping
    root, run_dir, tag, network_id, container_id, port = sys.argv[1:7]
    d = Driver(Database(root + "/pallet.db"), run_dir=run_dir, tag=tag, upstreams=[])
    ports = [PortMapping(host_ip="127.0.0.1", host_port=int(port), container_port=80)] if port != "0" else []
    d.attach(d.network(network_id), container_id, name="plain", ports=ports)
    sys.stdout.write("\\n".join(sorted(set(sys.modules) - before)))
""")


@pytest.mark.parametrize(
    ("published", "first_on_user_network"),
    [(False, False), (True, False), (False, True)],
    ids=["plain", "with-a-published-port", "first-on-a-user-network"],
)
def test_an_attach_imports_nothing_the_run_path_bans(
    env: Env, published: bool, first_on_user_network: bool
) -> None:
    """On a set-up network, with or without a port; or the first container of a user network (the
    bridge and its rules set up, the resolver started)."""
    net = env.network(dns=first_on_user_network)
    if not first_on_user_network:
        env.driver.attach(net, secrets.token_hex(32), name="first")  # type: ignore[arg-type]  # sets the network up
    port = str(free_port()) if published else "0"
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, env.root, env.run_dir, env.tag, net.id, secrets.token_hex(32), port],  # type: ignore[attr-defined]
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    imported = result.stdout.split()
    banned = [m for m in imported if m in BANNED or m.partition(".")[0] in BANNED]
    assert banned == [], json.dumps(imported)
