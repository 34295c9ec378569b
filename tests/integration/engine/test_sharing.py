"""Containers that share the host's or another container's namespaces, volumes and links.

``--pid``/``--ipc``/``--uts``/``--cgroupns`` host and ``container:NAME``,
``--ipc shareable|none``, ``--volumes-from``, legacy ``--link`` (and
``rm --link``), ``--device-cgroup-rule``, ``--memory-swappiness`` and volume
subpaths, each judged by what a process inside sees, through the real CLI on
a private root; and ``--pid host``/``--ipc container:`` under runc and crun.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from tests.integration.engine.conftest import PalletEnv

pytestmark = pytest.mark.timeout(300)


def _inspect(env: PalletEnv, name: str) -> dict[str, object]:
    found = json.loads(env.ok("inspect", name))
    assert isinstance(found, list)
    doc = found[0]
    assert isinstance(doc, dict)
    return doc


def _host_config(env: PalletEnv, name: str) -> dict[str, object]:
    host = _inspect(env, name)["HostConfig"]
    assert isinstance(host, dict)
    return host


def test_pid_host_sees_the_hosts_init(pallet_env: PalletEnv) -> None:
    with open("/proc/1/comm") as f:
        host_init = f.read().strip()
    out = pallet_env.ok(
        "run", "--name", "pid1", "--network", "none", "--pid", "host", "busybox", "cat", "/proc/1/comm"
    )
    assert out.strip() == host_init
    assert _host_config(pallet_env, "pid1")["PidMode"] == "host"
    own = pallet_env.ok("run", "--rm", "--network", "none", "busybox", "cat", "/proc/1/comm")
    assert own.strip() == "cat"


def test_pid_container_sees_the_other_containers_processes(pallet_env: PalletEnv) -> None:
    pallet_env.ok("run", "-d", "--name", "target", "--network", "none", "busybox", "sleep", "317")
    out = pallet_env.ok(
        "run", "--rm", "--network", "none", "--pid", "container:target", "busybox", "ps", "-o", "args"
    )
    assert "sleep 317" in out
    pallet_env.ok(
        "create",
        "--name",
        "joiner",
        "--network",
        "none",
        "--pid",
        "container:target",
        "busybox",
        "ps",
        "-o",
        "args",
    )
    assert _host_config(pallet_env, "joiner")["PidMode"] == "container:target"
    pallet_env.ok("stop", "-t", "0", "target")
    done = pallet_env.pallet("start", "joiner")
    assert done.returncode != 0
    assert "failed to join PID namespace" in done.stderr
    assert "is not running" in done.stderr
    # started again, the target has a new init: the joiner's next start joins that one
    pallet_env.ok("start", "target")
    assert "sleep 317" in pallet_env.ok("start", "-a", "joiner")


def test_a_restart_policy_restart_joins_the_targets_current_init(pallet_env: PalletEnv) -> None:
    pallet_env.ok("run", "-d", "--name", "tgt", "--network", "none", "busybox", "sleep", "318")
    pallet_env.ok(
        "run", "-d", "--name", "follower", "--network", "none", "--pid", "container:tgt", "--restart", "always",
        "busybox", "sleep", "319",
    )  # fmt: skip
    old = _inspect(pallet_env, "tgt")["State"]["Pid"]  # type: ignore[index]
    # the target's init ends, and with it its pid namespace and the follower in it; the follower's
    # shim restarts it into the namespace of the target's new init, never the old pid's
    pallet_env.ok("restart", "-t", "0", "tgt")
    new = _inspect(pallet_env, "tgt")["State"]["Pid"]  # type: ignore[index]
    assert new != old
    deadline = time.monotonic() + 90
    while True:
        state = _inspect(pallet_env, "follower")["State"]
        assert isinstance(state, dict)
        if state["Running"] and state["Pid"] and os.path.exists(f"/proc/{state['Pid']}"):
            try:
                if os.readlink(f"/proc/{state['Pid']}/ns/pid") == os.readlink(f"/proc/{new}/ns/pid"):
                    break
            except FileNotFoundError:
                pass
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    assert "sleep 318" in pallet_env.ok("exec", "follower", "ps", "-o", "args")


def test_ipc_shareable_is_joined_with_its_dev_shm(pallet_env: PalletEnv) -> None:
    pallet_env.ok(
        "run", "-d", "--name", "donor", "--network", "none", "--ipc", "shareable", "busybox",
        "sh", "-c", "echo shared > /dev/shm/note; exec sleep 300",
    )  # fmt: skip
    donor_ns = pallet_env.ok("exec", "donor", "readlink", "/proc/self/ns/ipc").strip()
    for _ in range(50):
        if pallet_env.pallet("exec", "donor", "test", "-e", "/dev/shm/note").returncode == 0:
            break
    out = pallet_env.ok(
        "run", "--rm", "--network", "none", "--ipc", "container:donor", "busybox",
        "sh", "-c", "readlink /proc/self/ns/ipc; cat /dev/shm/note",
    )  # fmt: skip
    assert out.split() == [donor_ns, "shared"]
    assert _host_config(pallet_env, "donor")["IpcMode"] == "shareable"
    # a private one cannot be joined (docker's words)
    pallet_env.ok("run", "-d", "--name", "private", "--network", "none", "busybox", "sleep", "300")
    assert _host_config(pallet_env, "private")["IpcMode"] == "private"
    done = pallet_env.pallet(
        "run", "--rm", "--network", "none", "--ipc", "container:private", "busybox", "true"
    )
    assert done.returncode != 0
    assert "can't join IPC of container" in done.stderr
    assert "non-shareable IPC (hint: use IpcMode:shareable for the donor container)" in done.stderr
    # a create is made, as dockerd's; its start is refused in the same words
    pallet_env.ok(
        "create", "--name", "late-ipc", "--network", "none", "--ipc", "container:private", "busybox"
    )
    done = pallet_env.pallet("start", "late-ipc")
    assert done.returncode != 0
    assert "non-shareable IPC" in done.stderr
    # the donor's /dev/shm is a mount of the engine's until the donor goes
    pallet_env.ok("rm", "-f", "donor")
    with open("/proc/self/mountinfo") as f:
        assert not any("/shm " in line for line in f if str(pallet_env.root) in line)


def test_ipc_none_has_no_dev_shm_and_ipc_host_shares_the_hosts(pallet_env: PalletEnv) -> None:
    done = pallet_env.pallet("run", "--rm", "--network", "none", "--ipc", "none", "busybox", "ls", "/dev/shm")
    assert done.returncode != 0
    host_ns = os.readlink("/proc/self/ns/ipc")
    out = pallet_env.ok(
        "run", "--rm", "--network", "none", "--ipc", "host", "busybox", "readlink", "/proc/self/ns/ipc"
    )
    assert out.strip() == host_ns


def test_uts_host_has_the_hosts_hostname(pallet_env: PalletEnv) -> None:
    out = pallet_env.ok(
        "run", "--name", "uts1", "--network", "none", "--uts", "host", "busybox",
        "sh", "-c", "hostname; echo $HOSTNAME; cat /etc/hostname",
    )  # fmt: skip
    doc = _inspect(pallet_env, "uts1")
    short_id = str(doc["Id"])[:12]
    # dockerd's: the kernel's hostname is the host's; HOSTNAME, /etc/hostname and inspect say the id
    assert out.split() == [os.uname().nodename, short_id, short_id]
    assert _host_config(pallet_env, "uts1")["UTSMode"] == "host"
    config = doc["Config"]
    assert isinstance(config, dict)
    assert config["Hostname"] == short_id
    done = pallet_env.pallet("run", "--rm", "--uts", "host", "--hostname", "x", "busybox", "true")
    assert done.returncode == 125
    assert "conflicting options: hostname and the UTS mode" in done.stderr


def test_cgroupns_modes(pallet_env: PalletEnv) -> None:
    host_ns = os.readlink("/proc/self/ns/cgroup")
    private = pallet_env.ok(
        "run", "--name", "cg1", "--network", "none", "--cgroupns", "private", "busybox", "readlink", "/proc/self/ns/cgroup"
    )  # fmt: skip
    assert private.strip() != host_ns
    assert _host_config(pallet_env, "cg1")["CgroupnsMode"] == "private"
    shared = pallet_env.ok(
        "run", "--rm", "--network", "none", "--cgroupns", "host", "busybox", "readlink", "/proc/self/ns/cgroup"
    )  # fmt: skip
    assert shared.strip() == host_ns
    done = pallet_env.pallet("run", "--rm", "--cgroupns", "both", "busybox", "true")
    assert done.returncode == 125
    assert "invalid cgroup namespace mode: both" in done.stderr


def test_host_namespaces_are_warned_about_and_audited(pallet_env: PalletEnv) -> None:
    done = pallet_env.pallet(
        "create", "--name", "warned", "--pid", "host", "--ipc", "host", "--uts", "host", "busybox"
    )
    assert done.returncode == 0, done.stderr
    for setting in ("--pid host (high)", "--ipc host (medium)", "--uts host (low)"):
        assert setting in done.stderr
    audit = pallet_env.pallet("audit", "warned")
    assert audit.returncode == 1
    assert "3 findings in 1 container: 1 high, 1 medium, 1 low" in audit.stdout  # each once


def test_volumes_from_mounts_the_other_containers_volumes(pallet_env: PalletEnv) -> None:
    pallet_env.ok(
        "run", "--name", "data", "--network", "none", "-v", "store:/data", "busybox",
        "sh", "-c", "echo kept > /data/file",
    )  # fmt: skip
    out = pallet_env.ok(
        "run", "--rm", "--network", "none", "--volumes-from", "data", "busybox", "cat", "/data/file"
    )
    assert out.strip() == "kept"
    done = pallet_env.pallet(
        "run", "--name", "reader", "--network", "none", "--volumes-from", "data:ro", "busybox",
        "sh", "-c", "echo no > /data/file",
    )  # fmt: skip
    assert done.returncode != 0
    assert "Read-only file system" in done.stderr
    assert _host_config(pallet_env, "reader")["VolumesFrom"] == ["data:ro"]
    # the volume is in use by the reader too
    assert pallet_env.pallet("volume", "rm", "store").returncode != 0
    done = pallet_env.pallet("run", "--rm", "--volumes-from", "nosuch", "busybox", "true")
    assert done.returncode != 0
    assert "No such container: nosuch" in done.stderr


def test_links_give_hosts_entries_and_variables_and_rm_link_takes_them(pallet_env: PalletEnv) -> None:
    pallet_env.ok(
        "run", "-d", "--name", "db", "-e", "SECRET=s", "--expose", "5432", "busybox", "sleep", "300"
    )
    address = pallet_env.ok("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "db").strip()
    assert address
    pallet_env.ok(
        "create", "--name", "app", "--link", "db:mydb", "busybox", "sh", "-c", "env; cat /etc/hosts"
    )
    pallet_env.ok("start", "-a", "app")
    out = pallet_env.ok("logs", "app")
    assert "MYDB_NAME=/app/mydb" in out
    assert "MYDB_ENV_SECRET=s" in out
    assert f"MYDB_PORT=tcp://{address}:5432" in out
    assert f"MYDB_PORT_5432_TCP_ADDR={address}" in out
    assert any(line.split()[:2] == [address, "mydb"] and "db" in line.split() for line in out.splitlines())
    assert _host_config(pallet_env, "app")["Links"] == ["/db:/app/mydb"]
    # ping by alias reaches the linked container
    pallet_env.ok("run", "--rm", "--link", "db:other", "busybox", "ping", "-c", "1", "-W", "5", "other")
    pallet_env.ok("rm", "--link", "app/mydb")
    assert _host_config(pallet_env, "app")["Links"] is None
    pallet_env.ok("start", "-a", "app")
    assert pallet_env.ok("logs", "app").count("MYDB_NAME") == 1  # only the first run's
    done = pallet_env.pallet("rm", "--link", "app/nosuch")
    assert done.returncode != 0
    assert "No such container" in done.stderr
    done = pallet_env.pallet("run", "--rm", "--link", "nosuch:x", "busybox", "true")
    assert done.returncode != 0
    assert "could not get container for nosuch" in done.stderr
    pallet_env.ok("stop", "-t", "0", "db")
    done = pallet_env.pallet(
        "create", "--name", "late", "--link", "db", "--link", "app:other", "busybox", "true"
    )
    assert done.returncode == 0, done.stderr
    done = pallet_env.pallet("start", "late")
    assert done.returncode != 0
    assert "Cannot link to a non running container: /db AS /late/db" in done.stderr
    # a link to a container removed since goes with it, as docker's
    pallet_env.ok("rm", "db", "app")
    pallet_env.ok("start", "late")
    assert _host_config(pallet_env, "late")["Links"] is None


def test_device_cgroup_rule_and_swappiness_reach_the_spec(pallet_env: PalletEnv) -> None:
    pallet_env.ok(
        "create", "--name", "dev1", "--device-cgroup-rule", "c 7:128 rwm", "--device-cgroup-rule", "b *:* r",
        "--memory-swappiness", "40", "busybox", "true",
    )  # fmt: skip
    doc = _inspect(pallet_env, "dev1")
    host = doc["HostConfig"]
    assert isinstance(host, dict)
    assert host["DeviceCgroupRules"] == ["c 7:128 rwm", "b *:* r"]
    bundle = doc["Pallet"]
    assert isinstance(bundle, dict)
    with open(os.path.join(str(bundle["Bundle"]), "config.json")) as f:
        spec = json.load(f)
    rules = spec["linux"]["resources"]["devices"]
    assert {"allow": True, "type": "c", "major": 7, "minor": 128, "access": "rwm"} in rules
    assert {"allow": True, "type": "b", "access": "r"} in rules
    swappiness = spec["linux"]["resources"].get("memory", {}).get("swappiness")
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):  # cgroup v2: docker's warning, dropped
        assert host["MemorySwappiness"] is None
        assert swappiness is None
    else:
        assert host["MemorySwappiness"] == 40
        assert swappiness == 40
    done = pallet_env.pallet("create", "--device-cgroup-rule", "x 1:2 rwm", "busybox")
    assert done.returncode == 125
    assert "invalid device cgroup format 'x 1:2 rwm'" in done.stderr


def test_volume_subpath_mounts_a_directory_of_the_volume(pallet_env: PalletEnv) -> None:
    pallet_env.ok(
        "run", "--rm", "--network", "none", "-v", "vol:/v", "busybox",
        "sh", "-c", "mkdir /v/sub && echo inside > /v/sub/f && ln -s / /v/out",
    )  # fmt: skip
    out = pallet_env.ok(
        "run", "--rm", "--network", "none", "--mount", "type=volume,src=vol,dst=/m,volume-subpath=sub",
        "busybox", "cat", "/m/f",
    )  # fmt: skip
    assert out.strip() == "inside"
    for subpath, words in (("missing", "no such file"), ("../x", "relative path within the volume")):
        done = pallet_env.pallet(
            "run",
            "--rm",
            "--mount",
            f"type=volume,src=vol,dst=/m,volume-subpath={subpath}",
            "busybox",
            "true",
        )
        assert done.returncode != 0
        assert words in done.stderr
    # a symlink inside the volume is resolved inside it: "out" -> "/" is the volume's own root
    out = pallet_env.ok(
        "run", "--rm", "--network", "none", "--mount", "type=volume,src=vol,dst=/m,volume-subpath=out",
        "busybox", "ls", "/m",
    )  # fmt: skip
    assert out.split() == ["out", "sub"]


def test_env_name_without_value_unsets_it(pallet_env: PalletEnv) -> None:
    os.environ["PALLET_TEST_FROM_HOST"] = "host-value"
    try:
        out = pallet_env.ok(
            "run", "--rm", "-e", "PALLET_TEST_FROM_HOST", "-e", "PALLET_NOT_SET_ANYWHERE", "busybox", "env"
        )
    finally:
        del os.environ["PALLET_TEST_FROM_HOST"]
    assert "PALLET_TEST_FROM_HOST=host-value" in out
    assert "PALLET_NOT_SET_ANYWHERE" not in out


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_shared_namespaces_under_other_runtimes(
    pallet_env: PalletEnv, runtime: str, request: pytest.FixtureRequest
) -> None:
    if shutil.which(runtime) is None:
        pytest.skip(f"{runtime} is not installed")
    if runtime == "crun":
        request.getfixturevalue("crun_ready")
    with open("/proc/1/comm") as f:
        host_init = f.read().strip()
    out = pallet_env.ok(
        "run",
        "--rm",
        "--runtime",
        runtime,
        "--network",
        "none",
        "--pid",
        "host",
        "busybox",
        "cat",
        "/proc/1/comm",
    )
    assert out.strip() == host_init
    pallet_env.ok(
        "run", "-d", "--name", "donor", "--runtime", runtime, "--network", "none", "--ipc", "shareable",
        "busybox", "sleep", "300",
    )  # fmt: skip
    donor_ns = pallet_env.ok("exec", "donor", "readlink", "/proc/self/ns/ipc").strip()
    out = pallet_env.ok(
        "run", "--rm", "--runtime", runtime, "--network", "none", "--ipc", "container:donor", "--uts", "host",
        "busybox", "sh", "-c", "readlink /proc/self/ns/ipc; hostname",
    )  # fmt: skip
    assert out.split() == [donor_ns, os.uname().nodename]


def test_log_driver_none_keeps_no_log(pallet_env: PalletEnv) -> None:
    out = pallet_env.ok(
        "run", "--name", "quiet", "--network", "none", "--log-driver", "none", "busybox", "echo", "hi"
    )
    assert out == "hi\n"  # an attached run still streams
    doc = _inspect(pallet_env, "quiet")
    host = doc["HostConfig"]
    assert isinstance(host, dict)
    assert host["LogConfig"] == {"Type": "none", "Config": {}}
    assert doc["LogPath"] == ""
    done = pallet_env.pallet("logs", "quiet")
    assert done.returncode != 0
    assert "configured logging driver does not support reading" in done.stderr
    assert not list(pallet_env.root.glob("containers/*/*.log*"))
    done = pallet_env.pallet(
        "run", "--rm", "--log-driver", "none", "--log-opt", "max-size=1m", "busybox", "true"
    )
    assert done.returncode == 125
    assert "invalid logging opts for driver none" in done.stderr
    done = pallet_env.pallet("run", "--rm", "--log-driver", "syslog", "busybox", "true")
    assert done.returncode != 0
    assert 'log driver "syslog" is not supported by pallet' in done.stderr


def test_volume_driver_is_shown_and_checked_when_a_volume_is_made(pallet_env: PalletEnv) -> None:
    pallet_env.ok("create", "--name", "drv", "--volume-driver", "foo", "busybox", "true")
    assert _host_config(pallet_env, "drv")["VolumeDriver"] == "foo"
    done = pallet_env.pallet(
        "create", "--name", "drv2", "--volume-driver", "foo", "-v", "named:/x", "busybox"
    )
    assert done.returncode != 0
    assert 'error looking up volume plugin foo: plugin "foo" not found' in done.stderr
    assert pallet_env.ok("ps", "-a", "--format", "{{.Names}}").split() == ["drv"]
    assert pallet_env.ok("volume", "ls", "-q") == ""


def test_links_on_a_user_network_are_the_endpoints(pallet_env: PalletEnv) -> None:
    pallet_env.ok("network", "create", "linknet")
    pallet_env.ok("run", "-d", "--name", "db", "--network", "linknet", "busybox", "sleep", "300")
    pallet_env.ok("create", "--name", "app", "--network", "linknet", "--link", "db:alias", "busybox", "true")
    doc = _inspect(pallet_env, "app")
    host, settings = doc["HostConfig"], doc["NetworkSettings"]
    assert isinstance(host, dict)
    assert isinstance(settings, dict)
    assert host["Links"] is None  # dockerd's: the legacy links are the default bridge's
    assert settings["Networks"]["linknet"]["Links"] == ["db:alias"]
    out = pallet_env.ok(
        "run",
        "--rm",
        "--network",
        "linknet",
        "--link",
        "db:alias",
        "busybox",
        "sh",
        "-c",
        "env; cat /etc/hosts",
    )
    assert "ALIAS_NAME" not in out
    pallet_env.ok(
        "run",
        "--rm",
        "--network",
        "linknet",
        "--link",
        "db:alias",
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "5",
        "alias",
    )
