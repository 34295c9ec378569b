"""``pallet inspect``: containers, images and volumes by name, as ``docker inspect`` finds them."""

from __future__ import annotations

import json
import os

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import PalletEnv

pytestmark = pytest.mark.root


def test_inspect_finds_a_container_an_image_and_a_volume_in_one_call(pallet_env: PalletEnv) -> None:
    cid = pallet_env.ok("create", "--name", "box", "busybox", "true").strip()
    pallet_env.ok("volume", "create", "data")
    objects = json.loads(pallet_env.ok("inspect", "box", "busybox", "data"))
    assert len(objects) == 3
    assert objects[0]["Id"] == cid
    assert objects[1]["Id"].startswith("sha256:")
    assert objects[1]["RepoTags"] == ["busybox:latest"]
    assert (objects[2]["Name"], objects[2]["Driver"]) == ("data", "local")


def test_a_container_wins_over_an_image_of_the_same_name_unless_type_says(pallet_env: PalletEnv) -> None:
    pallet_env.ok("create", "--name", "busybox", "busybox", "true")
    assert pallet_env.ok("inspect", "-f", "{{.Name}}", "busybox") == "/busybox\n"
    image_id = pallet_env.ok("inspect", "--type", "image", "-f", "{{.Id}}", "busybox").strip()
    assert image_id.startswith("sha256:")


def test_an_unknown_name_is_reported_and_the_others_still_printed(pallet_env: PalletEnv) -> None:
    done = pallet_env.pallet("inspect", "-f", "{{.Id}}", "nothing-here", "busybox")
    assert done.returncode == 1
    assert done.stderr == "Error: No such object: nothing-here\n"
    assert done.stdout.startswith("sha256:")
    typed = pallet_env.pallet("inspect", "--type", "volume", "busybox")
    assert (typed.returncode, typed.stderr) == (1, "Error: No such volume: busybox\n")


def test_inspect_never_creates_a_volume_store(pallet_env: PalletEnv) -> None:
    assert pallet_env.pallet("inspect", "nothing-here").returncode == 1
    assert not os.path.exists(pallet_env.root / "volumes")
