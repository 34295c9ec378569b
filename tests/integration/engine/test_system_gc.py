"""Garbage collection you can see: ``system df`` agrees with the store, ``system prune`` and
``image prune`` remove what nothing uses, and never what is in use, even racing pulls and runs."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from pallet.cli.tables import human_size
from pallet.image.store import ImageStore
from pallet.testing.images import add_to_store, random_image, validate_image
from pallet.testing.registry import FakeRegistry

from .conftest import PalletEnv

pytestmark = pytest.mark.timeout(600)


def _du(path: Path) -> int:
    """``du -s`` in bytes: allocated blocks, each inode once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for top, _, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(top, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def _size(n: int) -> str:
    return human_size(n, precision=4)


def _reclaimable(part: int, whole: int) -> str:
    return f"{_size(part)} ({part * 100 // whole}%)" if whole else _size(part)


def _expected_df(root: Path) -> dict[str, dict[str, str]]:
    """``system df``'s four lines, computed from ``pallet.db``'s rows and the files under ``root``."""
    db = sqlite3.connect(f"file:{root / 'pallet.db'}?mode=ro", uri=True)
    try:
        images = [r[0] for r in db.execute("SELECT id FROM images")]
        active_images = {r[0] for r in db.execute("SELECT DISTINCT image_id FROM image_users")}
        layer_size = {
            chain: (unpacked if unpacked is not None else packed)
            for chain, unpacked, packed in db.execute(
                """SELECT il.chain_id, l.uncompressed_size, il.compressed_size
                   FROM image_layers il JOIN layers l ON l.chain_id = il.chain_id"""
            )
        }
        used_layers = {
            r[0]
            for r in db.execute(
                "SELECT il.chain_id FROM image_layers il JOIN image_users u ON u.image_id = il.image_id"
            )
        }
        containers = list(
            db.execute(
                """SELECT c.state, s.path FROM containers c
                   LEFT JOIN snapshots s ON s.key = 'container-' || c.id"""
            )
        )
        volumes = [
            (name, links)
            for name, links in db.execute(
                "SELECT v.name, (SELECT count(*) FROM volume_users u WHERE u.name = v.name) FROM volumes v"
            )
        ]
    finally:
        db.close()
    all_layers = sum(layer_size.values())
    free_layers = sum(size for chain, size in layer_size.items() if chain not in used_layers)
    sizes = [(state, _du(Path(path) / "upper") if path else 0) for state, path in containers]
    container_total = sum(s for _, s in sizes)
    container_free = sum(s for state, s in sizes if state not in ("running", "paused", "restarting"))
    volume_sizes = [(links, _du(root / "volumes" / name / "_data")) for name, links in volumes]
    volume_total = sum(s for _, s in volume_sizes)
    volume_free = sum(s for links, s in volume_sizes if not links)
    running = sum(1 for state, _ in containers if state in ("running", "paused", "restarting"))
    return {
        "Images": {
            "TotalCount": str(len(images)),
            "Active": str(len(active_images)),
            "Size": _size(all_layers),
            "Reclaimable": _reclaimable(free_layers, all_layers),
        },
        "Containers": {
            "TotalCount": str(len(containers)),
            "Active": str(running),
            "Size": _size(container_total),
            "Reclaimable": _reclaimable(container_free, container_total),
        },
        "Local Volumes": {
            "TotalCount": str(len(volumes)),
            "Active": str(sum(1 for links, _ in volume_sizes if links)),
            "Size": _size(volume_total),
            "Reclaimable": _reclaimable(volume_free, volume_total),
        },
        "Build Cache": {"TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"},
    }


def _df(env: PalletEnv) -> dict[str, dict[str, str]]:
    lines = [json.loads(line) for line in env.ok("system", "df", "--format", "json").splitlines()]
    return {line.pop("Type"): line for line in lines}


def _add_images(root: Path) -> tuple[str, str]:
    """An unused tagged image and a dangling one sharing its base layers; their ids."""
    with ImageStore.open(root) as store:
        base = random_image(seed=11, layers=2)
        dangling = add_to_store(store, base, None)
        store.unpack(str(dangling.id))
        tagged = add_to_store(store, random_image(seed=12, layers=1, base=base), "unused:v1")
        store.unpack(str(tagged.id))
    return str(tagged.id), str(dangling.id)


@pytest.fixture
def scene(pallet_env: PalletEnv) -> PalletEnv:
    """busybox with a running container and an exited one that wrote 300 kB, a named volume with
    data in use, an unused anonymous volume, and two images no container uses (one dangling)."""
    env = pallet_env
    _add_images(env.root)
    env.ok("volume", "create", "named")
    env.ok("run", "-d", "--name", "up", "-v", "named:/data", "busybox", "sleep", "600")
    env.ok("exec", "up", "sh", "-c", "dd if=/dev/zero of=/data/f bs=1k count=120 2>/dev/null")
    env.ok("run", "--name", "done", "busybox", "dd", "if=/dev/zero", "of=/big", "bs=1k", "count=300")
    env.ok("run", "--name", "anon", "-v", "/scratch", "busybox", "true")
    env.ok("rm", "anon")  # leaves its anonymous volume, unused
    return env


def test_system_df_figures_agree_with_the_store(scene: PalletEnv) -> None:
    assert _df(scene) == _expected_df(scene.root)
    table = scene.ok("system", "df").splitlines()
    assert table[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert [line.split()[0] for line in table[1:]] == ["Images", "Containers", "Local", "Build"]


def test_system_df_verbose_shows_shared_and_unique_sizes_links_and_container_sizes(scene: PalletEnv) -> None:
    out = scene.ok("system", "df", "-v")
    sections = [line for line in out.splitlines() if line.endswith("usage:") or "usage: " in line]
    assert sections == [
        "Images space usage:",
        "Containers space usage:",
        "Local Volumes space usage:",
        "Build cache usage: 0B",
    ]
    doc = json.loads(scene.ok("system", "df", "-v", "--format", "json"))
    images = {(i["Repository"], i["Tag"]): i for i in doc["Images"]}
    assert images[("busybox", "latest")]["Containers"] == "2"
    assert images[("busybox", "latest")]["SharedSize"] == "0B"
    unused, dangling = images[("unused", "v1")], images[("<none>", "<none>")]
    assert unused["Containers"] == dangling["Containers"] == "0"
    assert dangling["UniqueSize"] == "0B"  # both its layers are the other image's base
    assert (
        unused["SharedSize"]
        == dangling["SharedSize"]
        == dangling["UniqueSize"].replace("0B", dangling["SharedSize"])
    )
    containers = {c["Names"]: c for c in doc["Containers"]}
    assert set(containers) == {"up", "done"}
    assert containers["up"]["LocalVolumes"] == "1"
    with sqlite3.connect(f"file:{scene.root / 'pallet.db'}?mode=ro", uri=True) as db:
        (path,) = db.execute(
            "SELECT path FROM snapshots WHERE key = (SELECT 'container-' || id FROM containers WHERE name = 'done')"
        ).fetchone()
    assert containers["done"]["Size"] == human_size(_du(Path(path) / "upper"))
    volumes = {v["Name"]: v for v in doc["Volumes"]}
    assert volumes["named"]["Links"] == "1"
    assert volumes["named"]["Size"] == _size(_du(scene.root / "volumes" / "named" / "_data"))
    (anonymous,) = set(volumes) - {"named"}
    assert volumes[anonymous]["Links"] == "0"


def _blobs(root: Path) -> set[str]:
    return {p.name for p in (root / "content" / "blobs" / "sha256").iterdir()}


def _committed(root: Path) -> set[str]:
    return {p.name for p in (root / "snapshots" / "committed").iterdir()}


def test_system_prune_asks_and_a_no_removes_nothing(scene: PalletEnv) -> None:
    before = (_blobs(scene.root), _committed(scene.root), scene.container_ids())
    done = scene.pallet("system", "prune", "--volumes", input=b"n\n")
    assert done.returncode == 0
    assert done.stdout == (
        "WARNING! This will remove:\n"
        "  - all stopped containers\n"
        "  - all networks not used by at least one container\n"
        "  - all anonymous volumes not used by at least one container\n"
        "  - all dangling images\n"
        "  - unused build cache\n"
        "\n"
        "Are you sure you want to continue? [y/N] "
    )
    assert (_blobs(scene.root), _committed(scene.root), scene.container_ids()) == before


def test_system_prune_removes_what_nothing_uses_and_keeps_what_is_used(scene: PalletEnv) -> None:
    unused_id = json.loads(scene.ok("image", "inspect", "unused:v1"))[0]["Id"]
    dangling = {i for i in scene.ok("images", "-q", "--no-trunc", "--filter", "dangling=true").split()}
    assert len(dangling) == 1
    up = scene.ok("inspect", "--format", "{{.Id}}", "up").strip()
    done = scene.ok("inspect", "--format", "{{.Id}}", "done").strip()
    out = scene.ok("system", "prune", "-f", "--volumes")
    assert f"Deleted Containers:\n{done}\n\n" in out
    assert "Deleted Volumes:\n" in out
    assert f"deleted: {dangling.pop()}" in out
    assert out.splitlines()[-1].startswith("Total reclaimed space: ")
    assert out.splitlines()[-1] != "Total reclaimed space: 0B"
    assert scene.container_ids() == [up]
    volumes = scene.ok("volume", "ls", "-q").split()
    assert volumes == ["named"]
    assert scene.ok("exec", "up", "cat", "/data/f") is not None  # still runs, volume still there
    images = {line for line in scene.ok("images", "--format", "{{.Repository}}:{{.Tag}}").split()}
    assert images == {"busybox:latest", "unused:v1"}
    with ImageStore.open(scene.root) as store:
        validate_image(store, "unused:v1")
        validate_image(store, "busybox:latest")
        assert str(store.resolve("unused:v1").id) == unused_id
        # nothing unreferenced is left: every blob and committed snapshot belongs to an image
        referenced = {str(d) for r in store.list_images() for d in (r.id, r.manifest_digest)}
        referenced |= {str(lay.blob.digest) for r in store.list_images() for lay in store.layers(str(r.id))}
        assert {str(d) for d, _ in store.content.walk()} == referenced
        chains = {str(lay.chain_id) for r in store.list_images() for lay in store.layers(str(r.id))}
        assert {s.key for s in store.snapshots.list_snapshots() if s.kind == "committed"} == chains
    assert _df(scene) == _expected_df(scene.root)


def test_image_prune_all_removes_every_image_without_a_container(scene: PalletEnv) -> None:
    out = scene.ok("image", "prune", "-a", "-f")
    assert "untagged: unused:v1" in out
    images = scene.ok("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    assert images == ["busybox:latest"]
    with ImageStore.open(scene.root) as store:
        (busybox,) = store.list_images()
        wanted = {str(busybox.id), str(busybox.manifest_digest)}
        wanted |= {str(lay.blob.digest) for lay in store.layers(str(busybox.id))}
        assert {str(d) for d, _ in store.content.walk()} == wanted


def test_prune_filters_choose_and_bad_ones_change_nothing(scene: PalletEnv) -> None:
    scene.ok("run", "--name", "labelled", "--label", "keep=no", "busybox", "true")
    out = scene.ok("system", "prune", "-f", "--filter", "label=keep=no")
    labelled = [c for c in out.splitlines() if len(c) == 64]
    assert len(labelled) == 1
    names = scene.ok("ps", "-a", "--format", "{{.Names}}").split()
    assert sorted(names) == ["done", "up"]
    before = (_blobs(scene.root), _committed(scene.root), scene.container_ids())
    for bad in (
        ["--filter", "colour=red"],
        ["--filter", "until=yesterday"],
        ["--volumes", "--filter", "until=1h"],
    ):
        done = scene.pallet("system", "prune", "-f", *bad)
        assert done.returncode != 0
        assert bad[-1].partition("=")[0] in done.stderr
    assert (_blobs(scene.root), _committed(scene.root), scene.container_ids()) == before


# --- the race -------------------------------------------------------------------------------------


def _seed(reg: FakeRegistry, repository: str, n: int) -> None:
    """An OCI image of a 30 kB and a 600 kB layer (random bytes, so gzip keeps them big) in ``reg``:
    the small one is in the store well before the big one, so a pull spends a while holding
    blobs and snapshots that no image names yet."""
    import gzip
    import hashlib
    import tarfile

    from pallet.oci import mediatypes

    descriptors, diff_ids = [], []
    for i, size in enumerate((30_000, 600_000)):
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            data = os.urandom(size)
            info = tarfile.TarInfo(f"{repository}-{n}-{i}.bin")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        blob = gzip.compress(raw.getvalue(), mtime=0)
        descriptors.append(
            {
                "mediaType": mediatypes.OCI_LAYER_GZIP,
                "digest": reg.put_blob(repository, blob),
                "size": len(blob),
            }
        )
        diff_ids.append("sha256:" + hashlib.sha256(raw.getvalue()).hexdigest())
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_MANIFEST,
            "config": {
                "mediaType": mediatypes.OCI_CONFIG,
                "digest": reg.put_blob(repository, config),
                "size": len(config),
            },
            "layers": descriptors,
        }
    ).encode()
    reg.put_manifest(repository, "v1", manifest, mediatypes.OCI_MANIFEST)


def test_prune_racing_pulls_and_runs_removes_only_the_garbage(pallet_env: PalletEnv) -> None:
    env = pallet_env
    # garbage made beforehand: a dangling image (blobs and snapshots) and a blob no image names
    with ImageStore.open(env.root) as store:
        garbage = add_to_store(store, random_image(seed=99, layers=2), None)
        store.unpack(str(garbage.id))
        garbage_blobs = {str(d) for d in (garbage.id, garbage.manifest_digest)}
        garbage_blobs |= {str(lay.blob.digest) for lay in store.layers(str(garbage.id))}
        garbage_chains = {str(lay.chain_id) for lay in store.layers(str(garbage.id))}
        with store.lease():
            stray = store.content.ingest(io.BytesIO(b"a blob no image names"))
    garbage_blobs.add(str(stray.digest))
    with FakeRegistry() as reg:
        for n in range(5):
            _seed(reg, f"race{n}", n)
        reg.throttle = 400_000  # the big layer takes over a second: long enough to overlap the prunes
        pulls = [
            subprocess.Popen(
                env.argv("pull", "-q", f"{reg.host}/race{n}:v1"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(5)
        ]
        prunes: list[subprocess.Popen[str]] = []
        runs = [
            subprocess.Popen(
                env.argv("run", "busybox", "echo", f"run-{n}"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(5)
        ]
        try:
            # start when a pull has committed a layer its image row does not name yet
            committed = env.root / "snapshots" / "committed"
            before = set(os.listdir(committed))
            deadline = time.monotonic() + 60  # a bound on waiting, not a measurement
            while time.monotonic() < deadline and not set(os.listdir(committed)) - before:
                time.sleep(0.005)
            # three at once: each one's sweep must wait for every pull's lease
            prunes = [
                subprocess.Popen(
                    env.argv("system", "prune", "-f"),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(3)
            ]
            pruned = [(*p.communicate(timeout=300), p.returncode) for p in prunes]
            pulled = [(*p.communicate(timeout=300), p.returncode) for p in pulls]
            ran = [(*r.communicate(timeout=300), r.returncode) for r in runs]
        finally:
            for proc in (*pulls, *runs, *prunes):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    for out, err, code in pruned:
        assert code == 0, err
        assert out.splitlines()[-1].startswith("Total reclaimed space: ")
    for n, (_, err, code) in enumerate(pulled):
        assert code == 0, f"pull {n}: {err}"
    for n, (out, err, code) in enumerate(ran):
        assert (code, out) == (0, f"run-{n}\n"), err
    assert sum(f"deleted: {garbage.id}" in out for out, _, _ in pruned) == 1
    with ImageStore.open(env.root) as store:
        for n in range(5):
            validate_image(store, f"{reg.host}/race{n}:v1")
            for layer in store.layers(f"{reg.host}/race{n}:v1"):
                assert store.snapshots.stat(str(layer.chain_id)) is not None
        validate_image(store, "busybox:latest")
        left = {str(d) for d, _ in store.content.walk()}
        assert not garbage_blobs & left
        committed = {s.key for s in store.snapshots.list_snapshots()}
        assert not garbage_chains & committed


def test_container_prune_reports_the_space_of_the_writable_layers_it_removed(scene: PalletEnv) -> None:
    done = scene.ok("inspect", "--format", "{{.Id}}", "done").strip()
    with sqlite3.connect(f"file:{scene.root / 'pallet.db'}?mode=ro", uri=True) as db:
        (path,) = db.execute("SELECT path FROM snapshots WHERE key = ?", (f"container-{done}",)).fetchone()
    size = _du(Path(path) / "upper")
    assert size > 300_000
    out = scene.ok("container", "prune", "-f")
    assert out == f"Deleted Containers:\n{done}\n\nTotal reclaimed space: {_size(size)}\n"


def test_image_prune_until_keeps_images_created_since(scene: PalletEnv) -> None:
    scene.ok("rm", "-f", "up", "done")  # busybox is no longer used: only its age keeps it now
    out = scene.ok("image", "prune", "-a", "-f", "--filter", "until=1h")
    assert "untagged: unused:v1" in out
    assert "untagged: busybox:latest" not in out
    assert scene.ok("images", "--format", "{{.Repository}}:{{.Tag}}").split() == ["busybox:latest"]
