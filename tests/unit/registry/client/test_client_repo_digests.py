"""Repo digests (docker's RepoDigests) that push and pull record, and the progress they report as dockerd."""

from __future__ import annotations

import json
import os

import pytest

from pallet.engine.service import inspect_image
from pallet.errors import InvalidArgument, NotFound
from pallet.image.store import ImageStore
from pallet.oci import mediatypes
from pallet.oci.reference import parse
from pallet.registry.client.pull import PullResult, pull
from pallet.registry.client.push import push
from pallet.registry.client.transport import Transport
from pallet.testing.registry import FakeRegistry

from .conftest import RecordingProgress, seed_image

BIG = os.urandom(100_000)


def _pull(
    store: ImageStore, transport: Transport, name: str, progress: RecordingProgress | None = None
) -> PullResult:
    return pull(
        store, parse(name), transport=transport, credentials=None, progress=progress or RecordingProgress()
    )


def _names(store: ImageStore, image: str) -> list[str]:
    return [r.familiar_string() for r in store.resolve(image).references]


def test_pull_by_tag_records_the_tag_and_the_repo_digest_inspect_shows(
    registry: FakeRegistry, store: ImageStore, transport: Transport
) -> None:
    _, digest = seed_image(registry, "team/app", "v1", [{"a": b"a"}])
    repo = f"{registry.host}/team/app"
    result = _pull(store, transport, f"{repo}:v1")
    assert [r.familiar_string() for r in result.image.references] == [f"{repo}:v1", f"{repo}@{digest}"]
    assert [r.familiar_string() for r in result.image.repo_digests] == [f"{repo}@{digest}"]
    shown = inspect_image(store, f"{repo}:v1")
    assert shown["RepoTags"] == [f"{repo}:v1"]
    assert shown["RepoDigests"] == [f"{repo}@{digest}"]
    assert store.resolve(f"{repo}@{digest}").id == result.image.id
    assert not result.image.dangling


def test_pull_by_digest_names_the_image_by_that_digest_only(
    registry: FakeRegistry, store: ImageStore, transport: Transport
) -> None:
    _, digest = seed_image(registry, "app", "v1", [{"a": b"a"}])
    result = _pull(store, transport, f"{registry.host}/app@{digest}")
    assert _names(store, str(result.image.id)) == [f"{registry.host}/app@{digest}"]
    assert result.image.dangling  # no tag: dangling, as docker sees an image only a digest names


def test_pull_of_an_index_records_the_index_digest(
    registry: FakeRegistry, store: ImageStore, transport: Transport
) -> None:
    manifest, digest = seed_image(registry, "multi", None, [{"a": b"a"}])
    entry = {
        "mediaType": mediatypes.OCI_MANIFEST,
        "digest": digest,
        "size": len(manifest),
        "platform": {"os": "linux", "architecture": "amd64"},
    }
    index = json.dumps({"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": [entry]}).encode()
    index_digest = registry.put_manifest("multi", "v1", index, mediatypes.OCI_INDEX)
    from pallet.oci.image_spec import Platform

    result = pull(
        store,
        parse(f"{registry.host}/multi:v1"),
        transport=transport,
        credentials=None,
        progress=RecordingProgress(),
        platform=Platform(os="linux", architecture="amd64"),
    )
    assert [str(r.digest) for r in result.image.repo_digests] == [index_digest]


def test_push_records_the_pushed_repo_digest_and_rmi_of_the_last_tag_untags_it(
    registry: FakeRegistry, store: ImageStore, transport: Transport
) -> None:
    seed_image(registry, "src", "v1", [{"a": b"a"}, {"big": BIG}])
    source = f"{registry.host}/src:v1"
    _pull(store, transport, source)
    target = f"{registry.host}/team/copy:v2"
    store.tag(source, target)
    progress = RecordingProgress()
    result = push(store, target, parse(target), transport=transport, credentials=None, progress=progress)
    copy = f"{registry.host}/team/copy@{result.digest}"
    assert copy in _names(store, target)
    # dockerd's stream: a line per layer, none for the config, no bare "Pushing" status
    manifest = store.manifest(target)
    keys = {d.digest.hex[:12] for d in manifest.layers}
    assert {key for key, _ in progress.events if key not in ("", "result")} == keys
    assert not [e for e in progress.events if e[1] == "Pushing"]
    assert ("result", f"{registry.host}/team/copy:v2") in progress.events  # printed with -q only
    # docker: the repository's last tag takes its repo digests with it; the image stays for src's names
    report = store.remove_image(target)
    assert [r.familiar_string() for r in report.untagged] == [f"{registry.host}/team/copy:v2", copy]
    assert report.deleted == ()
    with pytest.raises(NotFound):
        store.resolve(copy)
    # and by repo digest: that name only
    src_digest = next(r for r in store.resolve(source).repo_digests)
    report = store.remove_image(src_digest.familiar_string())
    assert report.untagged == (src_digest,)
    assert report.deleted == ()
    # the last name goes with the image
    image = store.resolve(source).id
    report = store.remove_image(source)
    assert report.deleted == (image,)


def test_rmi_of_a_tag_keeps_the_repo_digest_while_the_repository_has_another_tag(
    registry: FakeRegistry, store: ImageStore, transport: Transport
) -> None:
    _, digest = seed_image(registry, "app", "v1", [{"a": b"a"}])
    repo = f"{registry.host}/app"
    _pull(store, transport, f"{repo}:v1")
    store.tag(f"{repo}:v1", f"{repo}:v2")
    assert [r.familiar_string() for r in store.remove_image(f"{repo}:v1").untagged] == [f"{repo}:v1"]
    assert _names(store, f"{repo}:v2") == [f"{repo}:v2", f"{repo}@{digest}"]
    report = store.remove_image(f"{repo}:v2")
    assert [r.familiar_string() for r in report.untagged] == [f"{repo}:v2", f"{repo}@{digest}"]
    assert len(report.deleted) == 1


def test_a_pull_of_an_image_in_the_store_reports_no_layer_lines(
    registry: FakeRegistry, store: ImageStore, transport: Transport
) -> None:
    seed_image(registry, "app", "v1", [{"a": b"a"}, {"b": b"b"}])
    registry.manifests[("app", "v2")] = registry.manifests[("app", "v1")]
    first = RecordingProgress()
    _pull(store, transport, f"{registry.host}/app:v1", first)
    assert sum(text == "Pull complete" for _, text in first.events) == 2
    again = RecordingProgress()
    result = _pull(store, transport, f"{registry.host}/app:v2", again)
    # dockerd: the config is known, so no layer is looked at
    assert [key for key, _ in again.events if key not in ("", "result")] == []
    assert ("", f"Status: Downloaded newer image for {registry.host}/app:v2") in again.events
    assert result.fresh


def test_a_repo_digest_must_be_the_images_manifest_or_index(
    registry: FakeRegistry, store: ImageStore, transport: Transport
) -> None:
    _, digest = seed_image(registry, "app", "v1", [{"a": b"a"}])
    _, other = seed_image(registry, "other", "v1", [{"b": b"b"}])
    repo = f"{registry.host}/app"
    image = str(_pull(store, transport, f"{repo}:v1").image.id)
    with pytest.raises(InvalidArgument, match="does not name image"):
        store.add_repo_digest(image, parse(f"{repo}@{other}"))
    with pytest.raises(InvalidArgument, match="not a repo digest"):
        store.add_repo_digest(image, parse(f"{repo}:v3"))
    store.add_repo_digest(image, parse(f"{registry.host}/mirror/app@{digest}"))
    assert f"{registry.host}/mirror/app@{digest}" in _names(store, image)
