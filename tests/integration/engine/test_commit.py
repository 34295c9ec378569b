"""``pallet commit``: a new image from a container's changes and config, usable by ``run``."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import PalletEnv

pytestmark = pytest.mark.root


def test_committed_image_has_the_changes_config_and_history(pallet_env: PalletEnv) -> None:
    pallet_env.ok(
        "run", "--name", "c1", "-e", "FROM_RUN=1", "busybox", "sh", "-c", "echo made > /made; rm /etc/group"
    )
    image_id = pallet_env.ok(
        "commit", "-a", "Ann <ann@example.com>", "-m", "my change", "-c", "ENV EXTRA=yes", "-c", 'CMD ["cat", "/made"]',
        "c1", "snap:v1",
    ).strip()  # fmt: skip
    assert image_id.startswith("sha256:")
    assert pallet_env.ok("run", "--rm", "snap:v1") == "made\n"
    out = pallet_env.ok("run", "--rm", "snap:v1", "sh", "-c", 'echo "$FROM_RUN $EXTRA"; ls /etc')
    # the new container's /etc files are mounted over placeholders its runtime makes; c1's were not committed
    assert out.splitlines() == ["1 yes", "hostname", "hosts", "passwd", "resolv.conf"]
    pallet_env.ok("create", "--name", "probe", "snap:v1")
    exported = subprocess.run(pallet_env.argv("export", "probe"), capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        names = {m.name.lstrip("./") for m in tar.getmembers()}
    assert "made" in names
    assert {"etc/hosts", "etc/hostname", "etc/resolv.conf"} & names == set()
    (shown,) = json.loads(pallet_env.ok("image", "inspect", "snap:v1"))
    assert shown["Id"] == image_id
    assert shown["Author"] == "Ann <ann@example.com>"
    assert shown["Comment"] == "my change"
    assert len(shown["RootFS"]["Layers"]) == 2
    history = pallet_env.ok("image", "history", "--format", "{{.Comment}}", "snap:v1").splitlines()
    assert history[0] == "my change"


def test_commit_of_a_running_container_pauses_and_resumes_it(pallet_env: PalletEnv) -> None:
    pallet_env.ok(
        "run",
        "-d",
        "--name",
        "live1",
        "--runtime",
        "runc",
        "busybox",
        "sh",
        "-c",
        "echo hi > /hi; sleep 1000",
    )
    for _ in range(100):  # the container's command writes /hi right after start
        if pallet_env.pallet("cp", "-q", "live1:/hi", "-").returncode == 0:
            break
    pallet_env.ok("commit", "live1", "live:v1")
    assert pallet_env.ok("inspect", "-f", "{{.State.Status}}", "live1") == "running\n"
    assert pallet_env.ok("run", "--rm", "live:v1", "cat", "/hi") == "hi\n"


def test_bad_change_fails_and_adds_no_image(pallet_env: PalletEnv) -> None:
    pallet_env.ok("create", "--name", "c2", "busybox", "true")
    before = pallet_env.ok("images", "-q")
    done = pallet_env.pallet("commit", "-c", "FROB x", "c2", "bad:v1")
    assert done.returncode == 1
    assert "FROB is not an instruction" in done.stderr
    assert pallet_env.ok("images", "-q") == before


def test_a_committed_image_names_its_parent_which_rmi_then_only_untags(pallet_env: PalletEnv) -> None:
    base = pallet_env.ok("image", "inspect", "-f", "{{.Id}}", "busybox").strip()
    pallet_env.ok("run", "--name", "kid", "busybox", "touch", "/x")
    pallet_env.ok("commit", "kid", "kid:v1")
    (shown,) = json.loads(pallet_env.ok("image", "inspect", "kid:v1"))
    assert shown["Parent"] == base  # docker's Parent of a commit: the container's image
    # as docker: an image others were made on loses its name, not its files
    assert pallet_env.ok("rmi", "busybox") == "Untagged: busybox:latest\n"
    refused = pallet_env.pallet("rmi", base)
    assert refused.returncode == 1
    assert "image has dependent child images" in refused.stderr
    pallet_env.ok("rm", "kid")
    assert pallet_env.ok("run", "--rm", "kid:v1", "ls", "/x") == "/x\n"
