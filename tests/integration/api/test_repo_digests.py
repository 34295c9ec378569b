"""Repo digests (``repo@sha256:…``, docker's RepoDigests): what push and pull record, through both front doors.

Against ``pallet registry serve`` on 127.0.0.1: ``pallet push``/``pull``/
``rmi``/``images --digests``/``image inspect`` on the service's root, and the
docker CLI through the service, print what docker prints.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pallet.image.store import ImageStore
from pallet.testing.host import require_host_path
from pallet.testing.images import validate_image
from pallet.testing.registry_server import pallet_registry

if TYPE_CHECKING:
    from conftest import ApiService

pytestmark = pytest.mark.root

_LAYER_LINE = re.compile(r"[0-9a-f]{12}: (.*)")


def _statuses(out: str) -> set[str]:
    """The per-layer statuses of a push or pull's output (``<short id>: <status>`` lines)."""
    return {m.group(1) for line in out.splitlines() if (m := _LAYER_LINE.fullmatch(line))}


def test_pallet_push_pull_and_rmi_record_and_show_repo_digests(api: ApiService, tmp_path: Path) -> None:
    env = api.env
    with pallet_registry(env.argv(), tmp_path / "registry") as registry:
        repo = f"{registry}/team/bb"
        env.ok("tag", "busybox", f"{repo}:v1")
        pushed = env.ok("push", f"{repo}:v1").splitlines()
        # docker push into a pipe: no bare "Pushing" line, no line naming the reference
        assert pushed[0] == f"The push refers to repository [{repo}]"
        found = re.fullmatch(r"v1: digest: (sha256:[0-9a-f]{64}) size: \d+", pushed[-1])
        assert found is not None, pushed
        digest = found.group(1)
        assert _statuses("\n".join(pushed)) == {"Preparing", "Pushed"}
        assert len(pushed) == 2 + 2 * len(
            json.loads(env.ok("image", "inspect", "busybox"))[0]["RootFS"]["Layers"]
        )
        assert env.ok("push", "-q", f"{repo}:v1") == f"{repo}:v1\n"

        shown = json.loads(env.ok("image", "inspect", f"{repo}:v1"))[0]
        assert sorted(shown["RepoTags"]) == sorted(["busybox:latest", f"{repo}:v1"])
        assert shown["RepoDigests"] == [f"{repo}@{digest}"]
        listed = env.ok("images", "--digests", "--format", "{{.Repository}}:{{.Tag}} {{.Digest}}", repo)
        assert listed == f"{repo}:v1 {digest}\n"
        assert env.ok("image", "inspect", "--format", "{{.Id}}", f"{repo}@{digest}") == shown["Id"] + "\n"

        # rmi by repo digest takes that name only; a push records it again
        assert env.ok("rmi", f"{repo}@{digest}") == f"Untagged: {repo}@{digest}\n"
        env.ok("push", "-q", f"{repo}:v1")
        # the repository's last tag takes its repo digest with it (busybox:latest keeps the image)
        assert env.ok("rmi", f"{repo}:v1") == f"Untagged: {repo}:v1\nUntagged: {repo}@{digest}\n"

        # pull of an image whose config is in the store: no layer lines, as dockerd
        assert env.ok("pull", f"{repo}:v1") == (
            f"v1: Pulling from team/bb\nDigest: {digest}\nStatus: Downloaded newer image for {repo}:v1\n{repo}:v1\n"
        )
        assert json.loads(env.ok("image", "inspect", f"{repo}:v1"))[0]["RepoDigests"] == [f"{repo}@{digest}"]

        # a pull that fetches the layers records the repo digest too
        env.ok("rmi", "busybox:latest", f"{repo}:v1")
        pulled = env.ok("pull", f"{repo}:v1")
        assert "Pull complete" in _statuses(pulled)
        assert pulled.endswith(f"Status: Downloaded newer image for {repo}:v1\n{repo}:v1\n")
        assert json.loads(env.ok("image", "inspect", f"{repo}:v1"))[0]["RepoDigests"] == [f"{repo}@{digest}"]
        assert env.ok("pull", "-q", f"{repo}:v1") == f"{repo}:v1\n"
        env.ok("tag", f"{repo}:v1", "busybox:latest")  # the fixture's image, for what follows
    with ImageStore.open(env.root) as store:
        validate_image(store, f"{repo}:v1")


def test_docker_cli_sees_the_repo_digests_and_rmi_untags_them(api: ApiService, tmp_path: Path) -> None:
    require_host_path("/usr/local/bin/docker", "the docker CLI")
    with pallet_registry(api.env.argv(), tmp_path / "registry") as registry:
        repo = f"{registry}/team/bb"
        api.docker_ok("tag", "busybox", f"{repo}:v1")
        pushed = api.docker_ok("push", f"{repo}:v1")
        found = re.search(r"v1: digest: (sha256:[0-9a-f]{64}) size: \d+", pushed)
        assert found is not None, pushed
        digest = found.group(1)
        assert "Pushing" not in pushed
        assert f"\n{repo}:v1\n" not in "\n" + pushed  # dockerd's stream names no reference
        listed = api.docker_ok(
            "images", "--digests", "--format", "{{.Repository}}:{{.Tag}} {{.Digest}}", repo
        )
        assert listed == f"{repo}:v1 {digest}\n"
        assert api.docker_ok("image", "inspect", "--format", "{{json .RepoDigests}}", f"{repo}:v1") == (
            json.dumps([f"{repo}@{digest}"]) + "\n"
        )
        status, _, body = api.request("GET", "/images/json")
        assert status == 200
        summaries = [s for s in json.loads(body) if s["RepoDigests"]]
        assert [s["RepoDigests"] for s in summaries] == [[f"{repo}@{digest}"]]
        assert api.docker_ok("rmi", f"{repo}:v1") == f"Untagged: {repo}:v1\nUntagged: {repo}@{digest}\n"
        assert api.docker_ok("pull", f"{repo}:v1") == (
            f"v1: Pulling from team/bb\nDigest: {digest}\nStatus: Downloaded newer image for {repo}:v1\n{repo}:v1\n"
        )
        assert api.docker_ok("rmi", f"{repo}@{digest}") == f"Untagged: {repo}@{digest}\n"
        assert api.docker_ok("rmi", f"{repo}:v1") == f"Untagged: {repo}:v1\n"
