"""``--userns=remap`` and the root's ``userns-remap``: container root is an unprivileged host id.

Each test gets a user made for it (``useradd`` plus a free subordinate range in
/etc/subuid and /etc/subgid), removed afterwards with its ranges even when the
test fails; the root's config.toml names it.
"""

from __future__ import annotations

import io
import os
import pwd
import shutil
import signal
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pallet.engine.userns import DEFAULT_USER, SUBUID, resolve_remap
from pallet.image.store import ImageStore
from pallet.testing.engineconfig import add_config
from pallet.testing.images import validate_image
from pallet.testing.networks import remove_networks, use_test_pools

from .conftest import PalletEnv

pytestmark = pytest.mark.root

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"


def _first_free() -> int:
    end = 200000
    for line in Path(SUBUID).read_text().splitlines() if os.path.exists(SUBUID) else []:
        fields = line.split(":")
        if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
            end = max(end, int(fields[1]) + int(fields[2]))
    return end


def _make_user(name: str, *, ranges: bool) -> None:
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    if ranges:
        start = _first_free()
        span = f"{start}-{start + 65535}"
        subprocess.run(
            ["usermod", "--add-subuids", span, "--add-subgids", span, name], check=True, capture_output=True
        )


def _remove_user(name: str) -> None:
    subprocess.run(["userdel", name], check=False, capture_output=True)  # its ranges go with it


@pytest.fixture
def remap_user() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    name = f"prm{os.getpid() % 100000}"
    _remove_user(name)
    try:
        _make_user(name, ranges=True)
        yield name
    finally:
        _remove_user(name)


@pytest.fixture
def open_env(busybox_store_root: Path) -> Iterator[PalletEnv]:
    """A private root under /var/tmp: a remapped root must be reachable by unprivileged ids, and
    pytest's own temp dirs are 0700."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    base = Path(tempfile.mkdtemp(prefix="pallet-remap-", dir="/var/tmp"))
    base.chmod(0o711)
    root, run_root = base / "root", base / "run"
    env = PalletEnv(root, run_root)
    try:
        shutil.copytree(busybox_store_root, root, symlinks=True)
        use_test_pools(root)
        env.start_zygote()
        yield env
    finally:
        env.cleanup()
        remove_networks(root, run_root)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def remapped_env(open_env: PalletEnv, remap_user: str) -> PalletEnv:
    add_config(open_env.root, keys=f'userns-remap = "{remap_user}"')
    return open_env


def _host_ids(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    uid = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1]
    gid = next(line for line in status.splitlines() if line.startswith("Gid:")).split()[1]
    return int(uid), int(gid)


def _pid(env: PalletEnv, cid: str) -> int:
    return int(env.ok("inspect", "-f", "{{.State.Pid}}", cid))


def test_root_in_the_container_is_the_users_subordinate_id_on_the_host(
    remapped_env: PalletEnv, remap_user: str
) -> None:
    remap = resolve_remap(remap_user)
    assert remap.uid_start >= 100000
    cid = remapped_env.ok("run", "-d", "busybox", "sleep", "300").strip()
    assert _host_ids(_pid(remapped_env, cid)) == (remap.uid_start, remap.gid_start)
    inside = remapped_env.ok("exec", cid, "sh", "-c", "id -u; cat /proc/self/uid_map")
    assert inside.split() == ["0", "0", str(remap.uid_start), str(remap.uid_count)]
    # the image's files read correctly, with the owners the image gave them
    assert remapped_env.ok("exec", cid, "cat", "/etc/passwd") == PASSWD
    assert remapped_env.ok("exec", cid, "stat", "-c", "%u:%g %a", "/bin/busybox").strip() == "0:0 755"
    # a file the container writes is its root's on the host, and unshifted in the store
    remapped_env.ok("exec", cid, "sh", "-c", "echo made > /made")
    rootfs = remapped_env.root / "containers" / cid / "bundle" / "rootfs"
    assert (os.stat(rootfs / "made").st_uid, os.stat(rootfs / "made").st_gid) == (
        remap.uid_start,
        remap.gid_start,
    )
    assert "A /made" in remapped_env.ok("diff", cid)
    assert remapped_env.ok("inspect", "-f", "{{.HostConfig.UsernsMode}}", cid).strip() == ""
    info = remapped_env.ok("info")
    assert f" User Namespace Remap: {remap_user}\n" in info
    assert "  userns\n" in info
    # a restart mounts the rootfs shifted again
    remapped_env.ok("restart", "-t", "1", cid)
    assert _host_ids(_pid(remapped_env, cid))[0] == remap.uid_start
    assert remapped_env.ok("exec", cid, "cat", "/made") == "made\n"


def test_cp_and_export_of_a_remapped_container_see_the_containers_own_ids(
    remapped_env: PalletEnv, tmp_path: Path
) -> None:
    cid = remapped_env.ok("run", "-d", "busybox", "sh", "-c", "echo made > /made; sleep 300").strip()
    for _ in range(300):
        if "made" in remapped_env.ok("exec", cid, "ls", "/"):
            break
    exported = subprocess.run(
        [*remapped_env.argv("export", cid)], capture_output=True, check=True, timeout=120
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        owners = {m.name: (m.uid, m.gid) for m in tar.getmembers()}
    assert owners["bin/busybox"] == (0, 0)
    assert owners["made"] == (0, 0)
    source = tmp_path / "in.txt"
    source.write_text("into\n")
    remapped_env.ok("cp", str(source), f"{cid}:/in.txt")
    assert remapped_env.ok("exec", cid, "stat", "-c", "%u:%g %n", "/in.txt") == "0:0 /in.txt\n"
    remapped_env.ok("cp", f"{cid}:/made", str(tmp_path / "out.txt"))
    assert (tmp_path / "out.txt").read_text() == "made\n"
    remapped_env.ok("stop", "-t", "1", cid)
    remapped_env.ok("cp", str(source), f"{cid}:/in2.txt")
    remapped_env.ok("start", cid)
    assert remapped_env.ok("exec", cid, "stat", "-c", "%u:%g", "/in2.txt") == "0:0\n"
    refused = remapped_env.pallet("cp", "-a", str(source), f"{cid}:/in3.txt")
    assert refused.returncode != 0
    assert "cp -a into a --userns=remap container is not supported" in refused.stderr
    remapped_env.ok("rm", "-f", cid)
    assert remapped_env.leftovers([cid]) == {}


def test_userns_host_opts_a_container_out(remapped_env: PalletEnv) -> None:
    cid = remapped_env.ok("run", "-d", "--userns=host", "busybox", "sleep", "300").strip()
    assert _host_ids(_pid(remapped_env, cid)) == (0, 0)
    assert remapped_env.ok("inspect", "-f", "{{.HostConfig.UsernsMode}}", cid).strip() == "host"


def test_volumes_belong_to_the_mapped_root_and_bind_mounts_keep_host_owners(
    remapped_env: PalletEnv, remap_user: str
) -> None:
    remap = resolve_remap(remap_user)
    base = remapped_env.root.parent  # reachable by the range's ids (0711), removed with the root
    given = base / "given"
    given.mkdir()
    os.chown(given, remap.uid_start, remap.gid_start)
    hosts = base / "hosts"
    hosts.mkdir()
    script = (
        "echo v > /vol/file && echo g > /given/file && "
        "(touch /hosts/file 2>/dev/null && echo wrote || echo refused); stat -c %u /hosts"
    )
    out = remapped_env.ok(
        "run", "--rm", "-v", "remapvol:/vol", "-v", f"{given}:/given", "-v", f"{hosts}:/hosts", "busybox",
        "sh", "-c", script,
    )  # fmt: skip
    # host root's directory: not the container root's to write, shown as nobody
    assert out.split() == ["refused", "65534"]
    data = remapped_env.root / "volumes" / "remapvol" / "_data"
    for path in (data, data / "file", given / "file"):
        assert (os.stat(path).st_uid, os.stat(path).st_gid) == (remap.uid_start, remap.gid_start), path
    remapped_env.ok("volume", "rm", "remapvol")


def test_remap_flag_without_a_root_setting_uses_the_default_user(open_env: PalletEnv) -> None:
    existed = _user_exists(DEFAULT_USER)
    try:
        cid = open_env.ok("run", "-d", "--userns=remap", "busybox", "sleep", "300").strip()
        remap = resolve_remap("default")
        assert remap.user == DEFAULT_USER
        assert _host_ids(_pid(open_env, cid))[0] == remap.uid_start >= 100000
        assert open_env.ok("inspect", "-f", "{{.HostConfig.UsernsMode}}", cid).strip() == "remap"
        # without the flag the root's default (none) holds
        other = open_env.ok("run", "-d", "busybox", "sleep", "300").strip()
        assert _host_ids(_pid(open_env, other))[0] == 0
    finally:
        open_env.cleanup()
        if not existed:
            _remove_user(DEFAULT_USER)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def test_bad_userns_input_is_one_line_and_creates_nothing(pallet_env: PalletEnv) -> None:
    bad = pallet_env.pallet("run", "--rm", "--userns=private", "busybox", "true")
    assert bad.returncode == 125
    assert bad.stderr.strip().splitlines() == [
        """pallet: invalid USER mode "private": want "host" or "remap"; see 'pallet run --help'"""
    ]
    name = f"pnr{os.getpid() % 100000}"
    _remove_user(name)
    try:
        _make_user(name, ranges=False)
        add_config(pallet_env.root, keys=f'userns-remap = "{name}"')
        missing = pallet_env.pallet("run", "--rm", "busybox", "true")
        assert missing.returncode == 125
        assert missing.stderr.strip().splitlines() == [
            f'pallet: userns-remap: "{name}" has no subordinate ids in /etc/subuid; add a range with '
            f"usermod --add-subuids 100000-165535 {name}"
        ]
        (pallet_env.root / "config.toml").write_text(
            (pallet_env.root / "config.toml").read_text().replace(name, "no-such-user-here")
        )
        unknown = pallet_env.pallet("create", "busybox", "true")
        assert unknown.returncode == 125
        assert unknown.stderr.strip().splitlines() == [
            'pallet: userns-remap: no user "no-such-user-here" on this host; create it with subordinate ids '
            'in /etc/subuid and /etc/subgid, or use "default"'
        ]
    finally:
        _remove_user(name)
    assert pallet_env.container_ids() == []
    assert pallet_env.ok("ps", "-aq") == ""


@pytest.mark.slow
def test_sigkill_during_the_first_remapped_run_leaves_the_store_valid(
    remapped_env: PalletEnv, remap_user: str
) -> None:
    remap = resolve_remap(remap_user)
    # the delays only choose where the command dies; nothing asserts on time
    for i, delay in enumerate([0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.45, 0.7, 1.0]):
        proc = subprocess.Popen(
            remapped_env.argv("run", "-d", "--name", f"k{i}", "busybox", "sleep", "300"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        listed = remapped_env.ok("ps", "-a", "--format", "{{.Names}} {{.State}}")
        assert all(line.split()[1] in ("created", "running") for line in listed.splitlines()), listed
    made = remapped_env.container_ids()
    for cid in made:
        remapped_env.ok("rm", "-f", cid)
    assert remapped_env.leftovers(made) == {}
    assert list(remapped_env.run_root.glob("idmap/*")) == []
    # the store: the image checks out, its layers keep their owners on disk, and it still runs remapped
    with ImageStore.open(remapped_env.root) as store:
        validate_image(store, "busybox:latest")
    layers = list((remapped_env.root / "snapshots").glob("committed/*/fs/bin/busybox"))
    assert layers
    assert all(os.stat(p).st_uid == 0 for p in layers)
    cid = remapped_env.ok("run", "-d", "busybox", "sleep", "300").strip()
    assert _host_ids(_pid(remapped_env, cid))[0] == remap.uid_start
    assert remapped_env.ok("exec", cid, "cat", "/etc/passwd") == PASSWD
