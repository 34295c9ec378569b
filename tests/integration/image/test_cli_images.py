"""``pallet images``, ``image ls``, ``image inspect``, ``tag``, ``rmi``, ``image history``, ``image prune``
with the busybox image: what they print, what they change, and how they refuse bad input."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING

import pytest

from pallet.cli.exits import EXIT_USAGE
from pallet.image.importer import import_tarball
from pallet.image.store import ImageStore
from pallet.testing.busybox import busybox_rootfs_tar
from pallet.testing.cli import run_pallet, store_fingerprint
from pallet.testing.images import add_to_store, random_image

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.root


def busybox_id(root: Path) -> str:
    with ImageStore.open(root) as store:
        return str(store.resolve("busybox").id)


def make_dangling(root: Path) -> str:
    """Import a second image as busybox:latest, leaving the first one without a name; returns its id."""
    old = busybox_id(root)
    buf = io.BytesIO()
    busybox_rootfs_tar(buf)
    buf.seek(0)
    with ImageStore.open(root) as store:
        import_tarball(store, buf, ref="busybox:latest", message="second")
    return old


def assert_one_line_error(result: object, code: int = 1) -> None:
    assert result.code == code, result  # type: ignore[attr-defined]
    assert result.err.startswith("pallet: "), result  # type: ignore[attr-defined]
    assert result.err.count("\n") == 1, result  # type: ignore[attr-defined]


# --- images / image ls --------------------------------------------------------------------------


def test_images_prints_docker_columns_with_busybox(busybox_root: Path) -> None:
    result = run_pallet(busybox_root, "images")
    assert result.code == 0
    header, row = result.out.splitlines()
    assert header.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert header.index("TAG") == 13  # "busybox" + 3 spaces, at least 10 wide
    assert row.split()[:3] == ["busybox", "latest", busybox_id(busybox_root)[7:19]]
    assert row.endswith("MB")


def test_image_ls_is_the_same_as_images(busybox_root: Path) -> None:
    assert run_pallet(busybox_root, "image", "ls").out == run_pallet(busybox_root, "images").out


def test_images_quiet_and_no_trunc_print_ids(busybox_root: Path) -> None:
    image_id = busybox_id(busybox_root)
    assert run_pallet(busybox_root, "images", "-q").out == image_id[7:19] + "\n"
    assert run_pallet(busybox_root, "images", "-q", "--no-trunc").out == image_id + "\n"


def test_images_format_json_has_docker_fields(busybox_root: Path) -> None:
    result = run_pallet(busybox_root, "images", "--format", "json")
    row = json.loads(result.out)
    assert row["Repository"] == "busybox"
    assert row["Tag"] == "latest"
    assert row["ID"] == busybox_id(busybox_root)[7:19]
    assert {"CreatedSince", "CreatedAt", "Size", "Digest"} <= set(row)


def test_images_format_template_renders_each_row(busybox_root: Path) -> None:
    result = run_pallet(busybox_root, "images", "--format", "{{.Repository}}:{{.Tag}}")
    assert result.out == "busybox:latest\n"


def test_images_digests_adds_the_digest_column(busybox_root: Path) -> None:
    header = run_pallet(busybox_root, "images", "--digests").out.splitlines()[0]
    assert header.split()[:3] == ["REPOSITORY", "TAG", "DIGEST"]


def test_images_filter_dangling_shows_only_unnamed_images(busybox_root: Path) -> None:
    old = make_dangling(busybox_root)
    dangling = run_pallet(busybox_root, "images", "--filter", "dangling=true", "--format", "{{.ID}} {{.Tag}}")
    assert dangling.out == f"{old[7:19]} <none>\n"
    named = run_pallet(busybox_root, "images", "-f", "dangling=false", "--format", "{{.Repository}}")
    assert named.out == "busybox\n"
    assert len(run_pallet(busybox_root, "images", "-q").out.splitlines()) == 2


def test_images_filter_reference_uses_docker_globs(busybox_root: Path) -> None:
    assert run_pallet(busybox_root, "tag", "busybox", "example.com/team/tool:v1").code == 0
    fmt = ("--format", "{{.Repository}}:{{.Tag}}")
    assert run_pallet(busybox_root, "images", "--filter", "reference=busy*", *fmt).out == "busybox:latest\n"
    assert run_pallet(busybox_root, "images", "--filter", "reference=*:v1", *fmt).out == ""  # * stops at /
    assert (
        run_pallet(busybox_root, "images", "--filter", "reference=example.com/*/*:v?", *fmt).out
        == "example.com/team/tool:v1\n"
    )
    assert run_pallet(busybox_root, "images", "busybox", *fmt).out == "busybox:latest\n"


@pytest.mark.parametrize(
    "args",
    [
        ("--filter", "colour=red"),
        ("--filter", "dangling=maybe"),
        ("--filter", "nonsense"),
        ("--format", "{{range .}}"),
        ("--bogus",),
    ],
)
def test_images_bad_flag_values_are_usage_errors(busybox_root: Path, args: tuple[str, ...]) -> None:
    result = run_pallet(busybox_root, "images", *args)
    assert_one_line_error(result, EXIT_USAGE)
    assert result.out == ""


# --- inspect ------------------------------------------------------------------------------------


def test_inspect_prints_a_docker_shaped_array(busybox_root: Path) -> None:
    result = run_pallet(busybox_root, "image", "inspect", "busybox")
    assert result.code == 0
    [image] = json.loads(result.out)
    assert image["Id"] == busybox_id(busybox_root)
    assert image["RepoTags"] == ["busybox:latest"]
    assert image["Config"]["Cmd"] == ["sh"]
    assert image["Config"]["Env"][0].startswith("PATH=")
    assert image["Os"] == "linux"
    assert image["RootFS"]["Type"] == "layers"
    assert len(image["RootFS"]["Layers"]) == 1
    assert image["Size"] > 1_000_000
    assert {"Parent", "Comment", "Created", "Architecture", "Metadata", "RepoDigests"} <= set(image)


def test_inspect_format_template(busybox_root: Path) -> None:
    result = run_pallet(
        busybox_root, "image", "inspect", "--format", "{{.Id}} {{json .Config.Cmd}}", "busybox"
    )
    assert result.out == f'{busybox_id(busybox_root)} ["sh"]\n'


def test_inspect_unknown_image_fails_on_one_line(busybox_root: Path) -> None:
    result = run_pallet(busybox_root, "image", "inspect", "busybx")
    assert_one_line_error(result)
    assert 'image "busybx" not found' in result.err


# --- tag ----------------------------------------------------------------------------------------


def test_tag_adds_a_name_to_the_same_image(busybox_root: Path) -> None:
    assert run_pallet(busybox_root, "tag", "busybox", "mine/box:1.0").code == 0
    rows = run_pallet(busybox_root, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").out.splitlines()
    short = busybox_id(busybox_root)[7:19]
    assert sorted(rows) == [f"busybox:latest {short}", f"mine/box:1.0 {short}"]


def test_tag_with_a_bad_reference_changes_nothing(busybox_root: Path) -> None:
    before = store_fingerprint(busybox_root)
    result = run_pallet(busybox_root, "tag", "busybox", "Not A Name")
    assert_one_line_error(result)
    assert "invalid reference format" in result.err
    assert store_fingerprint(busybox_root) == before


def test_tag_of_an_unknown_image_changes_nothing(busybox_root: Path) -> None:
    before = store_fingerprint(busybox_root)
    assert_one_line_error(run_pallet(busybox_root, "tag", "nosuch", "other:1"))
    assert store_fingerprint(busybox_root) == before


# --- rmi ----------------------------------------------------------------------------------------


def test_rmi_of_one_of_two_names_only_untags(busybox_root: Path) -> None:
    run_pallet(busybox_root, "tag", "busybox", "other:1")
    result = run_pallet(busybox_root, "rmi", "other:1")
    assert (result.code, result.out) == (0, "Untagged: other:1\n")
    assert run_pallet(busybox_root, "images", "--format", "{{.Repository}}").out == "busybox\n"


def test_rmi_of_the_last_name_deletes_the_image_and_its_blobs(busybox_root: Path) -> None:
    image_id = busybox_id(busybox_root)
    with ImageStore.open(busybox_root) as store:
        (layer,) = [str(layer.chain_id) for layer in store.layers("busybox")]
    result = run_pallet(busybox_root, "image", "rm", "busybox")
    # docker's lines: the image, then each layer no other image has (its chain id)
    assert (result.code, result.out) == (
        0,
        f"Untagged: busybox:latest\nDeleted: {image_id}\nDeleted: {layer}\n",
    )
    assert run_pallet(busybox_root, "images", "-q").out == ""
    assert store_fingerprint(busybox_root) == ([], set())


def test_rmi_refuses_an_image_a_container_uses(busybox_root: Path) -> None:
    with ImageStore.open(busybox_root) as store:
        store.set_in_use(busybox_id(busybox_root), "c0ffee" * 10 + "abcd")
    before = store_fingerprint(busybox_root)
    result = run_pallet(busybox_root, "rmi", "busybox")
    assert_one_line_error(result)
    assert "must force" in result.err
    assert "c0ffeec0ffee" in result.err
    assert store_fingerprint(busybox_root) == before


def test_rmi_force_of_an_image_in_use_untags_and_keeps_it(busybox_root: Path) -> None:
    image_id = busybox_id(busybox_root)
    with ImageStore.open(busybox_root) as store:
        store.set_in_use(image_id, "c0ffee" * 10 + "abcd")
    result = run_pallet(busybox_root, "rmi", "-f", "busybox")
    assert (result.code, result.out) == (0, "Untagged: busybox:latest\n")
    assert run_pallet(busybox_root, "images", "-q", "--no-trunc").out == image_id + "\n"


def test_rmi_continues_after_an_unknown_image_and_fails(busybox_root: Path) -> None:
    run_pallet(busybox_root, "tag", "busybox", "other:1")
    result = run_pallet(busybox_root, "rmi", "nosuch", "other:1")
    assert result.code == 1
    assert result.out == "Untagged: other:1\n"
    assert result.err.startswith('pallet: image "nosuch" not found')


# --- history ------------------------------------------------------------------------------------


def test_history_shows_the_layer_with_the_import_comment(busybox_root: Path) -> None:
    result = run_pallet(busybox_root, "image", "history", "busybox")
    assert result.code == 0
    header, row = result.out.splitlines()
    assert header.split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert row.startswith(busybox_id(busybox_root)[7:19])
    assert row.endswith("busybox-static from Debian, made by pallet.testing.busybox")


def test_history_quiet_and_no_trunc(busybox_root: Path) -> None:
    image_id = busybox_id(busybox_root)
    assert run_pallet(busybox_root, "image", "history", "-q", "busybox").out == image_id[7:19] + "\n"
    assert run_pallet(busybox_root, "image", "history", "-q", "--no-trunc", "busybox").out == image_id + "\n"


# --- prune --------------------------------------------------------------------------------------


def test_prune_force_removes_dangling_images_only(busybox_root: Path) -> None:
    old = make_dangling(busybox_root)
    result = run_pallet(busybox_root, "image", "prune", "-f")
    assert result.code == 0
    assert f"deleted: {old}" in result.out
    assert "Total reclaimed space:" in result.out
    assert (
        run_pallet(busybox_root, "images", "--format", "{{.Repository}}:{{.Tag}}").out == "busybox:latest\n"
    )


def test_prune_asks_and_does_nothing_without_yes(busybox_root: Path) -> None:
    make_dangling(busybox_root)
    before = store_fingerprint(busybox_root)
    result = run_pallet(busybox_root, "image", "prune", stdin=b"n\n")
    assert result.code == 0
    assert "Are you sure you want to continue? [y/N]" in result.out
    assert store_fingerprint(busybox_root) == before


def test_prune_all_removes_unused_named_images(busybox_root: Path) -> None:
    result = run_pallet(busybox_root, "image", "prune", "-a", stdin=b"y\n")
    assert result.code == 0
    assert "untagged: busybox:latest" in result.out
    assert store_fingerprint(busybox_root) == ([], set())


def test_unknown_command_exits_125(busybox_root: Path) -> None:
    assert_one_line_error(run_pallet(busybox_root, "image", "frobnicate"), EXIT_USAGE)


def test_image_size_is_uncompressed_once_unpacked(tmp_path: Path) -> None:
    image = random_image(layers=2, files_per_layer=40, seed=3, compressed=True)
    with ImageStore.open(tmp_path) as store:
        add_to_store(store, image, "zipped:1")
    inspect = ("image", "inspect", "--format", "{{.Size}}", "zipped:1")
    assert run_pallet(tmp_path, *inspect).out == f"{sum(d.size for d, _ in image.layers)}\n"
    with ImageStore.open(tmp_path) as store:
        store.unpack("zipped:1")
        unpacked = sum(layer.uncompressed_size or 0 for layer in store.layers("zipped:1"))
    assert unpacked > sum(d.size for d, _ in image.layers)
    assert run_pallet(tmp_path, *inspect).out == f"{unpacked}\n"
