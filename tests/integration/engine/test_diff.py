"""``pallet diff``: docker's A/C/D lines for what a container changed, without its mount points."""

from __future__ import annotations

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import PalletEnv

pytestmark = pytest.mark.root


def test_diff_lists_added_changed_and_deleted_paths(pallet_env: PalletEnv) -> None:
    pallet_env.ok(
        "run", "--name", "chg1", "-v", "dvol:/data", "busybox", "sh", "-c",
        "mkdir /new && echo x > /new/f && rm /etc/group && echo more >> /etc/passwd && echo v > /data/v",
    )  # fmt: skip
    assert pallet_env.ok("diff", "chg1").splitlines() == [
        "C /etc",
        "D /etc/group",
        "C /etc/passwd",
        "A /new",
        "A /new/f",
    ]


def test_diff_of_an_untouched_container_is_empty(pallet_env: PalletEnv) -> None:
    pallet_env.ok("create", "--name", "clean1", "busybox", "true")
    assert pallet_env.ok("diff", "clean1") == ""


def test_diff_of_unknown_container_fails(pallet_env: PalletEnv) -> None:
    done = pallet_env.pallet("diff", "ghost")
    assert done.returncode == 1
    assert "No such container: ghost" in done.stderr


def test_diff_on_a_two_layer_image_tells_changes_from_additions(pallet_env: PalletEnv) -> None:
    pallet_env.ok("run", "--name", "base2", "busybox", "sh", "-c", "mkdir /layer2 && echo 1 > /layer2/f")
    pallet_env.ok("commit", "base2", "two:layers")
    pallet_env.ok(
        "run", "--name", "chg2", "two:layers", "sh", "-c", "echo 2 >> /layer2/f; echo n > /layer2/g"
    )
    assert pallet_env.ok("diff", "chg2").splitlines() == ["C /layer2", "C /layer2/f", "A /layer2/g"]
